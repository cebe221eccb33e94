using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using Microsoft.ML;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models
{
    /// <summary>
    /// NCF's Multi-Layer Perceptron (He et al. 2017, §3.3): logit = hᵀ MLP([p_u; q_i]). The first layer width is twice the
    /// embedding size; ReLU between layers (the paper's tower, e.g. 64 → 32 → 16 → 8).
    /// </summary>
    internal sealed class MlpModule : CollaborativeModule
    {
        public MlpModule(int userCount, int itemCount, IReadOnlyList<int> layers, bool withOutputLayer = true) : base(CollaborativeModels.Mlp.Name, userCount, itemCount)
        {
            Layers = layers.ToArray();
            int embedding = Layers[0] / 2;
            // Larger than GMF's N(0, 0.01): with tiny embeddings the tower's input is ~0 and its ReLUs can all die, leaving
            // a constant output (observed on planted data).
            user_embedding = UserTable(userCount, embedding, 0.1);
            item_embedding = ItemTable(itemCount, embedding, 0.1);
            var stack = new List<nn.Module<Tensor, Tensor>>();
            for (int l = 1; l < Layers.Length; l++)
            {
                var linear = nn.Linear(Layers[l - 1], Layers[l]);
                // Glorot-uniform weights and zero biases, as in the NCF reference code: with PyTorch's default init the
                // ReLUs of a narrow tower often all die while the loss first falls to the label prior.
                using (no_grad())
                {
                    nn.init.xavier_uniform_(linear.weight!);
                    nn.init.zeros_(linear.bias!);
                }
                stack.Add(linear);
                stack.Add(nn.ReLU());
            }
            tower = nn.Sequential(stack);
            // As a NeuMF branch the model has no output layer of its own (an unused parameter would still be decayed).
            if (withOutputLayer) output = nn.Linear(Layers[^1], 1);
            RegisterComponents();
        }

        public int[] Layers { get; }
        private readonly EmbeddingTable user_embedding;
        public EmbeddingTable UserEmbedding => user_embedding;
        private readonly EmbeddingTable item_embedding;
        public EmbeddingTable ItemEmbedding => item_embedding;
        private readonly Sequential tower;
        public Sequential Tower => tower;
        private readonly Linear? output;
        public Linear Output => output ?? throw new InvalidOperationException("This module is a NeuMF branch without an output layer.");

        /// <summary>The last hidden layer of the tower, NeuMF's MLP branch.</summary>
        public Tensor Hidden(Tensor users, Tensor items) =>
            Tower.call(cat(new[] { UserEmbedding.call(users), ItemEmbedding.call(items) }, 1));

        public override Tensor forward(Tensor users, Tensor items) => Output.call(Hidden(users, items)).squeeze(-1);

        /// <summary>ONNX of <see cref="Hidden"/>: [N, last layer].</summary>
        public string HiddenOnnx(OnnxGraphBuilder g, string users, string items, string prefix)
        {
            string x = g.Concat(1,
                g.Gather(Weights(g, prefix + "user_embedding", UserEmbedding.Weight), users),
                g.Gather(Weights(g, prefix + "item_embedding", ItemEmbedding.Weight), items));
            int layer = 0;
            foreach (var linear in TowerLinears())
                x = g.Relu(LinearOnnx(g, $"{prefix}tower.{layer++}", linear, x));
            return x;
        }

        public override string ExportOnnx(OnnxGraphBuilder g, string users, string items) =>
            g.Reshape(LinearOnnx(g, "mlp.output", Output, HiddenOnnx(g, users, items, "mlp.")), new long[] { -1 });

        /// <summary>hᵀ tower([p_u; q_i]) + b for every item, the tower as in <see cref="AllItemsHiddenOnnx"/>.</summary>
        public override string ExportAllItemsOnnx(OnnxGraphBuilder g, string users) =>
            g.Add(g.Reshape(g.MatMul(AllItemsHiddenOnnx(g, users, "mlp."), g.AddWeights("mlp.output_t", Output.weight!.t())), [-1, ItemCount]),
                g.AddWeights("mlp.output_bias", Output.bias!));

        /// <summary>
        /// The tower's last hidden layer for every (user, item) pair, flattened to [U·I, h] (also NeuMF's MLP branch). The
        /// first layer is split into a per-user part [U, h] and a per-item part [I, h], computed once at export and added by
        /// broadcasting, so only the later, narrower layers run per pair.
        /// </summary>
        /// <exception cref="NotSupportedException">The tower has no hidden layer.</exception>
        public string AllItemsHiddenOnnx(OnnxGraphBuilder g, string users, string prefix)
        {
            var linears = TowerLinears().ToArray();
            if (linears.Length == 0)
                throw new NotSupportedException("An MLP without hidden layers has no all-items graph.");
            long e = Layers[0] / 2;
            var first = linears[0];
            Tensor wUser = first.weight!.narrow(1, 0, e), wItem = first.weight!.narrow(1, e, e);
            string perUser = g.MatMul(g.Gather(g.AddWeights(prefix + "user_embedding", UserEmbedding.Weight), users), g.AddWeights(prefix + "tower.0.user_weight_t", wUser.t())); // [U, h]
            Tensor perItem = TrainedItemRows(ItemEmbedding.Weight).matmul(wItem.t()).Plus(first.bias!);                                                                      // [I, h]
            string x = g.Relu(g.Add(g.Unsqueeze(perUser, [1]), g.AddWeights(prefix + "tower.0.per_item", perItem)));                                                     // [U, I, h]
            x = g.Reshape(x, [-1, first.weight!.shape[0]]);
            for (int l = 1; l < linears.Length; l++)
                x = g.Relu(g.Linear($"{prefix}tower.{l}", linears[l], x));
            return x;
        }

        /// <summary>The Linear layers of the tower in order.</summary>
        public IEnumerable<Linear> TowerLinears() => Tower.children().OfType<Linear>();

        public override void InitializeOutputBias(double logit)
        {
            using (no_grad()) Output.bias!.fill_(LiveScalars.Of(logit)); // a live Scalar (see LiveScalars)
        }

        public override IReadOnlyDictionary<string, int[]> HyperParameters => new Dictionary<string, int[]> { [CollaborativeModels.Layers.Name] = Layers.ToArray() };
    }
}

namespace MLNet.DeepRec.Trainers
{
    /// <summary>NCF's Multi-Layer Perceptron model trained on implicit feedback.</summary>
    public sealed class MlpTrainer : CollaborativeTrainerBase<MlpTrainer.Options>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
        public static class Defaults
        {
            /// <summary>Tower widths {64, 32, 16, 8} (the NCF paper's 3-layer tower, 8 predictive factors); a fresh array each call.</summary>
            public static int[] MlpLayers => [64, 32, 16, 8];
            /// <summary>Default number of epochs.</summary>
            public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
        }

        /// <summary>MLP options.</summary>
        public sealed class Options : CollaborativeTrainerOptions
        {
            /// <summary>
            /// Widths of the tower, first to last. The first is the concatenated embedding width (user and item embeddings
            /// are each half of it), so it must be even. 1..<see cref="Training.DeepRecTrainerOptionsBase.MaxLayers"/> widths, each
            /// 1..<see cref="Training.DeepRecTrainerOptionsBase.MaxWidth"/>. Default {64, 32, 16, 8} (the paper's 3-layer tower, 8 predictive factors).
            /// </summary>
            public int[] MlpLayers = Defaults.MlpLayers;

            internal override void Validate()
            {
                base.Validate();
                ValidateLayers(MlpLayers, nameof(MlpLayers));
            }

            internal static void ValidateLayers(int[]? layers, string name)
            {
                CheckWidths(layers, name, allowEmpty: false);
                if (layers![0] % 2 != 0) throw new ArgumentOutOfRangeException(name, layers[0], "The first layer width must be even (user and item embeddings each take half).");
            }
        }

        internal MlpTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.Mlp.Name) { }

        private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
            new MlpModule(userCount, itemCount, TrainerOptions.MlpLayers);
    }
}
