using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using Microsoft.ML;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models
{
    /// <summary>LightGCN (He et al. 2020): E⁽ᵏ⁺¹⁾ = Â E⁽ᵏ⁾ over the training graph (<see cref="InteractionGraph"/>), no transforms
    /// or nonlinearity, final embeddings = mean of E⁽⁰⁾..E⁽ᴷ⁾, logit = e_u · e_i. Only E⁽⁰⁾ (user/item_embedding) is trained;
    /// the final tables (user/item_final) are recomputed whenever the module leaves training mode, and scoring outside
    /// training, checkpoints and ONNX use them: a served model is MF's Gather and dot product, with no graph.</summary>
    internal sealed class LightGcnModule : CollaborativeModule
    {
        private readonly EmbeddingTable user_embedding, item_embedding, user_final, item_final;
        private InteractionGraph? _graph; // only while Fit trains
        private bool _stale;              // E⁽⁰⁾ may have changed since the final tables were computed
        private readonly double _edgeDropout;
        private readonly int _seed;
        private Random _edgeRandom = new(0);

        public LightGcnModule(int userCount, int itemCount, int factors, int layers, double edgeDropout = 0, int seed = 0) : base(CollaborativeModels.LightGcn.Name, userCount, itemCount)
        {
            (Factors, Layers, _edgeDropout, _seed) = (factors, layers, edgeDropout, seed);
            user_embedding = UserTable(userCount, factors, 0.1);
            item_embedding = ItemTable(itemCount, factors, 0.1);
            user_embedding.PreferDense = item_embedding.PreferDense = true; // every step propagates every row
            user_final = UserTable(userCount, factors, 0).AsDerived();
            item_final = ItemTable(itemCount, factors, 0).AsDerived();
            RegisterComponents();
        }

        public int Factors { get; }
        /// <summary>K, the propagation layers: a training setting, not stored (the final tables are).</summary>
        public int Layers { get; }
        public override IReadOnlyDictionary<string, int[]> HyperParameters => new Dictionary<string, int[]> { [CollaborativeModels.Factors.Name] = [Factors] };

        /// <summary>Attaches the training graph (<see cref="InteractionGraph"/>) until the returned lease is disposed.</summary>
        public override IDisposable UseInteractions(int[] userRows, int[] itemRows, Device device)
        {
            _graph?.Dispose();
            _graph = InteractionGraph.Build(userRows, itemRows, UserCount, ItemCount, device);
            _edgeRandom = new Random(_seed); // each fit draws the same edge masks for the same seed
            _stale = true;
            return new GraphLease(this);
        }

        private sealed class GraphLease(LightGcnModule m) : IDisposable { public void Dispose() { m._graph?.Dispose(); m._graph = null; } }

        /// <summary>The final tables from E⁽⁰⁾ through Â, differentiable: users [U+1, f], items [I+1, f]. In training mode with
        /// edge dropout, each call (one per step) propagates over a freshly dropped graph; the final tables never drop edges.</summary>
        private (Tensor Users, Tensor Items) Propagate()
        {
            var graph = _graph ?? throw new InvalidOperationException("LightGCN propagates only while Fit trains: no interaction graph is attached.");
            if (training && Layers > 0) graph = graph.WithDroppedEdges(_edgeDropout, _edgeRandom);
            var final = graph.LayerMean(cat(new[] { user_embedding.AllRows(), item_embedding.AllRows() }), Layers);
            return (final.narrow(0, 0, UserCount + 1), final.narrow(0, UserCount + 1, ItemCount + 1));
        }

        /// <summary>Entering training marks the final tables stale; leaving it (eval) recomputes them while a graph is attached.</summary>
        public override void train(bool train = true)
        {
            base.train(train);
            if (train) { _stale = true; return; }
            if (!_stale || _graph is null) return;
            using (no_grad()) using (NewDisposeScope()) { var (u, i) = Propagate(); user_final.Weight.copy_(u); item_final.Weight.copy_(i); }
            SetUnknownRowsToMean(); // row 0 of every table: key 0 has no edges
            _stale = false;
        }

        public override Tensor forward(Tensor users, Tensor items) => Score(users, i => i.index_select(0, items));

        /// <summary>One propagation for the positives and the negatives of a BPR batch.</summary>
        public override Tensor PairwiseDifference(Tensor users, Tensor positives, Tensor negatives) =>
            Score(users, i => i.index_select(0, positives).sub(i.index_select(0, negatives)));

        /// <summary>e_u · itemSide(item table), with the propagated tables in training and the final ones otherwise.</summary>
        private Tensor Score(Tensor users, Func<Tensor, Tensor> itemSide)
        {
            var (u, i) = training ? Propagate() : (user_final.Weight, item_final.Weight);
            return u.index_select(0, users).mul(itemSide(i)).sum(1);
        }

        public override Tensor ScoreItemRange(Tensor users, long first, long count) => user_final.call(users).matmul(item_final.Weight.narrow(0, first, count).t());

        public override string ExportOnnx(OnnxGraphBuilder g, string users, string items) =>
            g.ReduceSum(g.Mul(g.Gather(Weights(g, "lightgcn.user_final", user_final.Weight), users),
                              g.Gather(Weights(g, "lightgcn.item_final", item_final.Weight), items)), new long[] { 1 }, keepDims: false);

        /// <summary>e_u · Eᵢᵀ: one MatMul against the pre-transposed final item table.</summary>
        public override string ExportAllItemsOnnx(OnnxGraphBuilder g, string users) =>
            g.MatMul(g.Gather(g.AddWeights("lightgcn.user_final", user_final.Weight), users), g.AddWeights("lightgcn.item_final_t", TrainedItemRows(item_final.Weight).t()));

        public override void InitializeOutputBias(double logit) { } // no output bias: BPR only
    }
}

namespace MLNet.DeepRec.Trainers
{
    /// <summary>LightGCN (He et al. 2020): embeddings smoothed over the user–item interaction graph, trained with BPR on
    /// implicit feedback, served as a dot product of the propagated embeddings.</summary>
    public sealed class LightGcnTrainer : CollaborativeTrainerBase<LightGcnTrainer.Options>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload (the paper's, where it gives one).</summary>
        public static class Defaults
        {
            /// <summary>Embedding size: 64.</summary>
            public const int Factors = 64;
            /// <summary>Propagation layers K: 3.</summary>
            public const int NumberOfLayers = 3;
            /// <summary>Fraction of the graph's edges dropped at each training step: 0 (the paper's model; the authors' code offers it off by default).</summary>
            public const double EdgeDropout = 0;
            /// <summary>λ of the L2 penalty on the batch's layer-0 embeddings: 1e-4.</summary>
            public const double EmbeddingRegularization = 1e-4;
            /// <summary>Sampled negatives per positive per epoch: 1.</summary>
            public const int NegativesPerPositive = 1;
            /// <summary>(user, positive, negative) triples per step: 2048 (the authors' code; every step propagates the whole graph).</summary>
            public const int BatchSize = 2048;
            /// <summary>Epochs: 200.</summary>
            public const int NumberOfEpochs = 200;
        }

        /// <summary>LightGCN options: <see cref="FactorizationTrainerOptions.Factors"/> is the embedding size (default 64);
        /// <c>Loss</c> must stay <see cref="CollaborativeLoss.Bpr"/>.</summary>
        public sealed class Options : FactorizationTrainerOptions
        {
            /// <summary>Creates options with LightGCN's defaults (<see cref="Defaults"/>).</summary>
            public Options() : base(Defaults.Factors) => (Loss, EmbeddingRegularization, NegativesPerPositive, BatchSize, NumberOfEpochs) =
                (CollaborativeLoss.Bpr, Defaults.EmbeddingRegularization, Defaults.NegativesPerPositive, Defaults.BatchSize, Defaults.NumberOfEpochs);

            /// <summary>Propagation layers K, 0..<see cref="DeepRecTrainerOptionsBase.MaxLayers"/>; the final embedding is the mean of layers 0..K.
            /// K = 0 is the LightGCN paper's MF baseline (BPR on a dot product, no biases). Default 3.</summary>
            public int NumberOfLayers = Defaults.NumberOfLayers;

            /// <summary>Edge dropout, in [0, 1): at each training step every edge of the interaction graph (both directions) is
            /// dropped with this probability and the kept ones are scaled by 1/(1 − rate), the option of the authors' code (which
            /// drops the two directions independently); the served embeddings always use the whole graph; with NumberOfLayers = 0 there is no graph and it has no effect.
            /// Default 0 (off).</summary>
            public double EdgeDropout = Defaults.EdgeDropout;

            internal override void Validate()
            {
                base.Validate();
                CheckRange(NumberOfLayers, 0, MaxLayers, nameof(NumberOfLayers));
                CheckDropout(EdgeDropout, nameof(EdgeDropout));
                if (Loss != CollaborativeLoss.Bpr)
                    throw new ArgumentException($"LightGCN is trained with BPR, the paper's loss; Loss = {Loss} is not supported (leave Loss = Bpr).", nameof(Loss));
            }
        }

        internal LightGcnTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.LightGcn.Name) { }

        private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
            new LightGcnModule(userCount, itemCount, TrainerOptions.Factors, TrainerOptions.NumberOfLayers, TrainerOptions.EdgeDropout, TrainerOptions.Seed);
    }
}
