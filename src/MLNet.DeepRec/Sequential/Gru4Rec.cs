using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models
{
    /// <summary>
    /// GRU4Rec (Hidasi et al. 2016; Hidasi &amp; Karatzoglou 2018): item embeddings → stacked GRU layers → hidden state at
    /// every position → (a linear projection when the hidden size differs from the embedding size) → scores h·E[i] with
    /// the same item table (the 2018 code's constrained embedding). Padding and unknown items (key 0) enter the GRU as
    /// zero vectors, in TorchSharp and in ONNX alike, so row 0 (the mean item after training) never reaches the state.
    /// </summary>
    internal sealed class Gru4RecModule : SequentialModule
    {
        public Gru4RecModule(int itemCount, int maxLength, int embeddingSize, int hiddenSize, int layers, double embeddingDropout, double dropout)
            : base(SequentialModels.Gru4Rec, itemCount, maxLength)
        {
            HiddenSize = hiddenSize;
            item_embedding = new EmbeddingTable("item_embedding", itemCount + 1L, embeddingSize, EmbeddingRole.Item);
            embedding_dropout = new FastDropout(embeddingDropout);
            // One single-layer GRU per layer with our dropout between them: nn.GRU's own inter-layer dropout would draw
            // from libtorch's global generator, not the fit's (concurrent fits must not share random numbers).
            this.layers = new ModuleList<GRU>();
            for (int n = 0; n < layers; n++) this.layers.Add(nn.GRU(n == 0 ? embeddingSize : hiddenSize, hiddenSize, batchFirst: true));
            hidden_dropout = new FastDropout(dropout);
            projection = hiddenSize == embeddingSize ? null : nn.Linear(hiddenSize, embeddingSize);
            RegisterComponents();
            using (no_grad())
            {
                // Glorot embeddings and GRU matrices, zero biases (RecBole's GRU4Rec initialisation, Glorot-normal there; uniform
                // here: TorchSharp 0.107's xavier_normal_ calls the uniform initialiser, which every recorded result used).
                foreach (var (name, p) in named_parameters())
                {
                    if (p.dim() == 2) nn.init.xavier_uniform_(p);
                    else p.zero_();
                }
            }
        }

        public int HiddenSize { get; }

        private readonly EmbeddingTable item_embedding;
        private readonly FastDropout embedding_dropout, hidden_dropout;
        private readonly ModuleList<GRU> layers;
        private readonly Linear? projection;

        public override EmbeddingTable ItemTable => item_embedding;

        /// <summary>Hidden states for every position: int64 [B, L] → float [B, L, d].</summary>
        public override Tensor forward(Tensor sequences)
        {
            CheckWindow(sequences);
            var items = item_embedding.call(sequences); // before the scope: row-wise updates keep the looked-up rows
            using var scope = NewDisposeScope();
            var x = embedding_dropout.call(items * sequences.gt(LiveScalars.Zero).unsqueeze(-1).to(items.dtype));
            foreach (var gru in layers) x = hidden_dropout.call(gru.call(x, null).Item1);
            if (projection is not null) x = projection.call(x);
            return x.MoveToOuterDisposeScope();
        }

        /// <summary>The same computation with ONNX GRU nodes (linear_before_reset = 1, PyTorch's formula); the final
        /// state Y_h of the last layer is the last position's output.</summary>
        protected override string ExportHiddenOnnx(OnnxGraphBuilder g, string sequences, string itemTable)
        {
            string x = g.Mul(g.Gather(itemTable, sequences), g.Unsqueeze(ValidOnnx(g, sequences), new long[] { 2 })); // [N, L, E]
            x = g.Transpose(x, new long[] { 1, 0, 2 });                                                                   // [L, N, E]
            string state = x;
            int n = 0;
            foreach (var gru in layers)
            {
                var (y, yh) = g.Gru($"{OnnxPrefix}.gru{n++}", gru, x);
                x = g.Squeeze(y, new long[] { 1 }); // [L, N, H]
                state = yh;                          // [1, N, H]
            }
            state = g.Reshape(state, new long[] { -1, HiddenSize });
            return projection is null ? state : g.Linear($"{OnnxPrefix}.projection", projection, state);
        }
    }
}

namespace MLNet.DeepRec.Trainers
{
    /// <summary>
    /// GRU4Rec (Hidasi et al. 2016, "Session-based Recommendations with Recurrent Neural Networks", with the 2018 paper's
    /// softmax losses over sampled negatives and its shared input/output item embedding): a GRU over each user's item
    /// history that predicts the next item. Data, losses, validation and serving as SASRec
    /// (<see cref="SequentialTrainerBase{TOptions, TTransformer}"/>, <see cref="SequentialTransformer"/>).
    /// </summary>
    public sealed class Gru4RecTrainer : SequentialTrainerBase<Gru4RecTrainer.Options, SequentialTransformer>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
        public static class Defaults
        {
            /// <summary>GRU hidden size: 100.</summary>
            public const int HiddenSize = 100;

            /// <summary>GRU layers: 1.</summary>
            public const int NumberOfLayers = 1;

            /// <summary>Dropout on each GRU layer's output: 0.2.</summary>
            public const double DropoutRate = 0.2;

            /// <summary>Loss: sampled softmax (the 2018 paper's cross-entropy over the target and sampled negatives).</summary>
            public const SequentialLoss Loss = SequentialLoss.SampledSoftmax;

            /// <summary>Number of epochs: 30.</summary>
            public const int NumberOfEpochs = 30;
        }

        /// <summary>GRU4Rec options.</summary>
        public sealed class Options : SequentialTrainerOptions
        {
            /// <summary>Sets the GRU4Rec defaults: batch size 128, 30 epochs, sampled softmax with 100 negatives, Adam with
            /// learning rate 0.002.</summary>
            public Options()
            {
                BatchSize = SasRecTrainer.Defaults.BatchSize;
                NumberOfEpochs = Defaults.NumberOfEpochs;
                LearningRate = 0.002;
                Loss = Defaults.Loss;
            }

            /// <summary>Hidden size of every GRU layer, 1..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>. Default 100.</summary>
            public int HiddenSize = Defaults.HiddenSize;

            /// <summary>Item embedding size d, 0..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>; 0 means <see cref="HiddenSize"/>
            /// (no projection). Otherwise a linear layer projects the GRU output to d before the scores. Default 0.</summary>
            public int EmbeddingSize;

            /// <summary>Stacked GRU layers, 1..<see cref="DeepRecTrainerOptionsBase.MaxLayers"/>. Default 1.</summary>
            public int NumberOfLayers = Defaults.NumberOfLayers;

            /// <summary>Dropout rate on each GRU layer's output, in [0, 1). Default 0.2.</summary>
            public double DropoutRate = Defaults.DropoutRate;

            /// <summary>Dropout rate on the input item embeddings, in [0, 1). Default 0.</summary>
            public double EmbeddingDropoutRate;

            internal int EffectiveEmbeddingSize => EmbeddingSize == 0 ? HiddenSize : EmbeddingSize;

            internal override void Validate()
            {
                base.Validate();
                CheckWidth(HiddenSize, nameof(HiddenSize));
                CheckRange(EmbeddingSize, 0, MaxWidth, nameof(EmbeddingSize));
                CheckRange(NumberOfLayers, 1, MaxLayers, nameof(NumberOfLayers));
                CheckDropout(DropoutRate, nameof(DropoutRate));
                CheckDropout(EmbeddingDropoutRate, nameof(EmbeddingDropoutRate));
            }
        }

        internal Gru4RecTrainer(MLContext mlContext, Options options) : base(mlContext, options, SequentialModels.Gru4Rec) { }

        private protected override SequentialModule CreateModule(int itemCount)
        {
            var o = TrainerOptions;
            return new Gru4RecModule(itemCount, o.MaxLength, o.EffectiveEmbeddingSize, o.HiddenSize, o.NumberOfLayers, o.EmbeddingDropoutRate, o.DropoutRate);
        }

        private protected override SequentialTransformer CreateTransformer(SequentialModule module, Device device, SequentialTrainingResult result) =>
            new(Context, module, device, TrainerOptions, result);
    }
}

namespace MLNet.DeepRec
{
    public sealed partial class DeepRecTrainers
    {
        /// <summary>GRU4Rec next-item recommender with standard column names (as <see cref="SasRec(string, string, string, SequentialLoss, int, int)"/>).</summary>
        /// <param name="userIdColumnName">Key-typed user column of the training log.</param>
        /// <param name="itemIdColumnName">Key-typed item column (training events; candidate item when scoring).</param>
        /// <param name="historyColumnName">Vector-of-item-keys history column read when scoring.</param>
        /// <param name="hiddenSize">GRU hidden size (and item embedding size).</param>
        /// <param name="maxLength">Maximum sequence length.</param>
        /// <param name="numberOfEpochs">Training epochs.</param>
        public Gru4RecTrainer Gru4Rec(string userIdColumnName = "UserId", string itemIdColumnName = "ItemId", string historyColumnName = "History",
            int hiddenSize = Gru4RecTrainer.Defaults.HiddenSize, int maxLength = SasRecTrainer.Defaults.MaxLength, int numberOfEpochs = Gru4RecTrainer.Defaults.NumberOfEpochs) =>
            Gru4Rec(new Gru4RecTrainer.Options
            {
                UserIdColumnName = userIdColumnName, ItemIdColumnName = itemIdColumnName, HistoryColumnName = historyColumnName,
                HiddenSize = hiddenSize, MaxLength = maxLength, NumberOfEpochs = numberOfEpochs,
            });

        /// <summary>GRU4Rec next-item recommender with full options.</summary>
        /// <param name="options">The options.</param>
        public Gru4RecTrainer Gru4Rec(Gru4RecTrainer.Options options) => new(Context, options);
    }
}
