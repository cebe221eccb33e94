using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Training;
using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models
{
    /// <summary>
    /// SASRec (Kang &amp; McAuley 2018): item embeddings (scaled by √d) plus learned position embeddings, N causal
    /// self-attention blocks and a final layer norm; the hidden state at position t predicts item t + 1 by a dot product
    /// with the same item embedding table. Sequences are [B, L] int64 item keys, left-padded with 0, the most recent item
    /// at position L − 1.
    /// </summary>
    /// <remarks>
    /// Each block is pre-norm with residuals, as in the paper: x ← x + Dropout(Attention(LN(x))), x ← x + Dropout(FFN(LN(x))),
    /// then padded positions are zeroed (the paper's timeline mask). Attention masks future positions and padded keys with
    /// a large finite negative (−1e9) rather than −∞, so a fully padded row (empty history) stays finite: its hidden state is
    /// the final layer norm's bias, a learned "no history" query. Embedding row 0 (padding) never reaches the blocks
    /// (masked); after training it holds the mean item embedding so that an unknown candidate item scores as an average item.
    /// <para>Both tables are <see cref="EmbeddingTable"/>s (roles Item and Position), so the item table can be trained with
    /// row-wise updates: training code reads item rows only through <see cref="ItemTable"/> lookups (or
    /// <see cref="EmbeddingTable.AllRows"/> for a full softmax), never through <see cref="SequentialModule.ItemWeights"/>.</para>
    /// </remarks>
    internal sealed class SasRecModule : SequentialModule
    {
        internal const float MaskValue = -1e9f;
        internal const double LayerNormEpsilon = 1e-8;

        public SasRecModule(int itemCount, int maxLength, int hiddenSize, int blocks, int heads, int feedForwardSize, double dropout)
            : base(SequentialModels.SasRec, itemCount, maxLength)
        {
            HiddenSize = hiddenSize; Heads = heads;
            // N(0, 1) first, as nn.Embedding initialised itself before these tables replaced it: the Glorot init below
            // overwrites it, but drawing it keeps the random stream, so a seed gives the same weights as before.
            item_embedding = new EmbeddingTable("item_embedding", itemCount + 1L, hiddenSize, EmbeddingRole.Item).Initialize(1.0);
            position_embedding = new EmbeddingTable("position_embedding", maxLength, hiddenSize, EmbeddingRole.Position).Initialize(1.0);
            embedding_dropout = new FastDropout(dropout);
            layers = new ModuleList<SasRecBlock>();
            for (int b = 0; b < blocks; b++) layers.Add(new SasRecBlock($"block{b}", hiddenSize, heads, feedForwardSize, dropout));
            final_norm = nn.LayerNorm(hiddenSize, LayerNormEpsilon);
            RegisterComponents();
            using (no_grad())
            {
                // Glorot matrices and zero biases, as in the widely used PyTorch port of the paper's code, except that the port's
                // are Glorot-normal and ours Glorot-uniform: TorchSharp 0.107's xavier_normal_ calls the uniform initialiser,
                // which is what every recorded result of this model used, so the code says so.
                foreach (var (name, p) in named_parameters())
                {
                    if (p.dim() == 2) nn.init.xavier_uniform_(p);
                    else if (name.EndsWith("bias", StringComparison.Ordinal)) p.zero_();
                }
            }
        }

        public int HiddenSize { get; }
        public int Heads { get; }

        private readonly EmbeddingTable item_embedding;
        private readonly EmbeddingTable position_embedding;
        private readonly FastDropout embedding_dropout;
        private readonly ModuleList<SasRecBlock> layers;
        private readonly LayerNorm final_norm;

        public override EmbeddingTable ItemTable => item_embedding;

        /// <summary>Hidden states for every position: int64 [B, L] → float [B, L, d].</summary>
        public override Tensor forward(Tensor sequences)
        {
            CheckWindow(sequences);
            long b = sequences.shape[0], l = sequences.shape[1];
            // Table lookups before the scope: under row-wise updates a table keeps the rows looked up in a training step for
            // the optimizer, so they must outlive this method.
            var items = item_embedding.call(sequences);
            var positions = position_embedding.AllRows();
            using var scope = NewDisposeScope();
            var valid = sequences.gt(LiveScalars.Zero);
            var timeline = valid.unsqueeze(-1).to(float32);
            var x = items.mul(LiveScalars.Of(Math.Sqrt(HiddenSize))).Plus(positions.unsqueeze(0));
            x = embedding_dropout.call(x) * timeline;
            // Causal [L, L] plus key padding [B, 1, 1, L] → [B, 1, L, L].
            var causal = ones(l, l, dtype: @bool, device: sequences.device).triu(1).to(float32).mul(LiveScalars.Of(MaskValue));
            var padding = valid.logical_not().to(float32).mul(LiveScalars.Of(MaskValue)).view(b, 1, 1, l);
            var bias = causal.view(1, 1, l, l).Plus(padding);
            foreach (var block in layers) x = block.call(x, bias, timeline);
            return final_norm.call(x).MoveToOuterDisposeScope();
        }

        /// <summary>The encoder in eval mode, as ONNX nodes (see <see cref="SequentialModule.ExportOnnx"/>).</summary>
        protected override string ExportHiddenOnnx(OnnxGraphBuilder g, string sequences, string itemTable)
        {
            long l = MaxLength, d = HiddenSize;
            string valid = ValidOnnx(g, sequences);                                                                 // [N, L]
            string timeline = g.Unsqueeze(valid, new long[] { 2 });                                                // [N, L, 1]
            string x = g.Mul(g.Gather(itemTable, sequences), g.ConstFloat((float)Math.Sqrt(HiddenSize)));
            x = g.Mul(g.Add(x, g.Embedding("sasrec.position_embedding", position_embedding)), timeline);
            string bias = g.CausalAttentionBias("sasrec.causal_bias", valid, l, MaskValue);
            int n = 0;
            foreach (var block in layers) x = block.ExportOnnx(g, $"sasrec.block{n++}", x, bias, timeline, l, d);
            x = g.LayerNorm("sasrec.final_norm", final_norm, x, LayerNormEpsilon);
            return g.Reshape(g.Slice(x, new long[] { l - 1 }, new long[] { l }, new long[] { 1 }), new long[] { -1, d });
        }
    }

    /// <summary>One pre-norm causal self-attention block with a point-wise feed-forward network.</summary>
    internal sealed class SasRecBlock : nn.Module<Tensor, Tensor, Tensor, Tensor>
    {
        private readonly int _heads;

        public SasRecBlock(string name, int hidden, int heads, int feedForward, double dropout) : base(name)
        {
            _heads = heads;
            attention_norm = nn.LayerNorm(hidden, SasRecModule.LayerNormEpsilon);
            query = nn.Linear(hidden, hidden);
            key = nn.Linear(hidden, hidden);
            value = nn.Linear(hidden, hidden);
            output = nn.Linear(hidden, hidden);
            feed_forward_norm = nn.LayerNorm(hidden, SasRecModule.LayerNormEpsilon);
            feed_forward_in = nn.Linear(hidden, feedForward);
            feed_forward_out = nn.Linear(feedForward, hidden);
            attention_dropout = new FastDropout(dropout);
            dropout_layer = new FastDropout(dropout);
            RegisterComponents();
        }

        private readonly LayerNorm attention_norm;
        private readonly Linear query, key, value, output;
        private readonly LayerNorm feed_forward_norm;
        private readonly Linear feed_forward_in, feed_forward_out;
        private readonly FastDropout attention_dropout, dropout_layer;

        /// <summary>x [B, L, d], additive attention bias [B, 1, L, L], timeline mask [B, L, 1] → [B, L, d].</summary>
        public override Tensor forward(Tensor x, Tensor bias, Tensor timeline)
        {
            long b = x.shape[0], l = x.shape[1], d = x.shape[2], dh = d / _heads;
            var y = attention_norm.call(x);
            var q = query.call(y).view(b, l, _heads, dh).transpose(1, 2);
            var k = key.call(y).view(b, l, _heads, dh).transpose(1, 2);
            var v = value.call(y).view(b, l, _heads, dh).transpose(1, 2);
            var scores = q.matmul(k.transpose(2, 3)).mul(LiveScalars.Of(1.0 / Math.Sqrt(dh))).Plus(bias);
            var attention = attention_dropout.call(nn.functional.softmax(scores, -1));
            var context = attention.matmul(v).transpose(1, 2).reshape(b, l, d);
            x = x.Plus(dropout_layer.call(output.call(context)));
            var f = feed_forward_out.call(dropout_layer.call(nn.functional.relu(feed_forward_in.call(feed_forward_norm.call(x)))));
            x = x.Plus(dropout_layer.call(f));
            return x * timeline;
        }

        /// <summary>The block in eval mode (dropout is the identity), with the shared layer exporters.</summary>
        public string ExportOnnx(OnnxGraphBuilder g, string prefix, string x, string bias, string timeline, long l, long d)
        {
            string y = g.LayerNorm($"{prefix}.attention_norm", attention_norm, x, SasRecModule.LayerNormEpsilon);
            x = g.Add(x, g.MultiHeadSelfAttention(prefix, query, key, value, output, _heads, y, bias, l, d));
            string f = g.LayerNorm($"{prefix}.feed_forward_norm", feed_forward_norm, x, SasRecModule.LayerNormEpsilon);
            return g.Mul(g.Add(x, g.FeedForward($"{prefix}.feed_forward", feed_forward_in, feed_forward_out, f)), timeline);
        }
    }
}

namespace MLNet.DeepRec.Trainers
{
    /// <summary>
    /// SASRec (Kang &amp; McAuley 2018, "Self-Attentive Sequential Recommendation"): a causal Transformer over each user's
    /// item history that predicts the next item. <c>Fit</c> reads an interaction log (key-typed user and item columns, and
    /// an optional timestamp); the returned <see cref="SasRecTransformer"/> scores rows that carry a history column
    /// (variable-length vector of item keys) and a candidate item column. Data, validation and large catalogues: see
    /// <see cref="SequentialTrainerBase{TOptions, TTransformer}"/>.
    /// </summary>
    public sealed class SasRecTrainer : SequentialTrainerBase<SasRecTrainer.Options, SasRecTransformer>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload (the SASRec paper's settings).</summary>
        public static class Defaults
        {
            /// <summary>Maximum sequence length: 50.</summary>
            public const int MaxLength = 50;

            /// <summary>Hidden size: 50.</summary>
            public const int HiddenSize = 50;

            /// <summary>Self-attention blocks: 2.</summary>
            public const int NumberOfBlocks = 2;

            /// <summary>Dropout rate: 0.5 (the paper's for sparse Amazon data).</summary>
            public const double DropoutRate = 0.5;

            /// <summary>Sampled negatives per positive under sampled softmax: 100.</summary>
            public const int NegativesPerPositive = 100;

            /// <summary>Batch size: 128 (the paper's).</summary>
            public const int BatchSize = 128;

            /// <summary>Number of epochs: 200.</summary>
            public const int NumberOfEpochs = 200;
        }

        /// <summary>SASRec options. Defaults are the paper's Amazon Games settings.</summary>
        public sealed class Options : SequentialTrainerOptions
        {
            /// <summary>Sets the paper's training defaults: batch size 128, 200 epochs, Adam with learning rate 0.001.</summary>
            public Options()
            {
                BatchSize = Defaults.BatchSize;
                NumberOfEpochs = Defaults.NumberOfEpochs;
            }

            /// <summary>Hidden size d (item and position embeddings, attention), 1..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>. Must be a multiple of <see cref="NumberOfHeads"/>. Default 50.</summary>
            public int HiddenSize = Defaults.HiddenSize;

            /// <summary>Number of self-attention blocks, 1..<see cref="DeepRecTrainerOptionsBase.MaxLayers"/>. Default 2.</summary>
            public int NumberOfBlocks = Defaults.NumberOfBlocks;

            /// <summary>Attention heads per block. Default 1.</summary>
            public int NumberOfHeads = 1;

            /// <summary>Inner size of the point-wise feed-forward network, 0..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>; 0 means <see cref="HiddenSize"/> (the paper's choice). Default 0.</summary>
            public int FeedForwardSize;

            /// <summary>Dropout rate on embeddings, attention weights and sub-layer outputs. Default 0.5 (the paper's value for sparse Amazon data; 0.2 for MovieLens).</summary>
            public double DropoutRate = Defaults.DropoutRate;

            internal int EffectiveFeedForwardSize => FeedForwardSize == 0 ? HiddenSize : FeedForwardSize;

            internal override void Validate()
            {
                base.Validate();
                CheckWidth(HiddenSize, nameof(HiddenSize));
                CheckRange(NumberOfBlocks, 1, MaxLayers, nameof(NumberOfBlocks));
                if (NumberOfHeads <= 0 || HiddenSize % NumberOfHeads != 0)
                    throw new ArgumentOutOfRangeException(nameof(NumberOfHeads), NumberOfHeads, $"NumberOfHeads must be positive and divide HiddenSize ({HiddenSize}); it is {NumberOfHeads}.");
                CheckRange(FeedForwardSize, 0, MaxWidth, nameof(FeedForwardSize));
                CheckDropout(DropoutRate, nameof(DropoutRate));
            }
        }

        internal SasRecTrainer(MLContext mlContext, Options options) : base(mlContext, options, SequentialModels.SasRec) { }

        private protected override SequentialModule CreateModule(int itemCount)
        {
            var o = TrainerOptions;
            return new SasRecModule(itemCount, o.MaxLength, o.HiddenSize, o.NumberOfBlocks, o.NumberOfHeads, o.EffectiveFeedForwardSize, o.DropoutRate);
        }

        private protected override SasRecTransformer CreateTransformer(SequentialModule module, Device device, SequentialTrainingResult result) =>
            new(Context, module, device, TrainerOptions, result);
    }

    /// <summary>A trained SASRec model: see <see cref="SequentialTransformer"/> for its columns, input handling and methods.</summary>
    public sealed class SasRecTransformer : SequentialTransformer
    {
        internal SasRecTransformer(MLContext mlContext, SequentialModule module, Device device, SasRecTrainer.Options options, SequentialTrainingResult result)
            : base(mlContext, module, device, options, result)
        {
        }
    }
}

namespace MLNet.DeepRec
{
    public sealed partial class DeepRecTrainers
    {
        /// <summary>
        /// SASRec next-item recommender with standard column names: trains on an interaction log with key-typed "UserId" and
        /// "ItemId" columns and an optional "Timestamp"; the model scores rows with a "History" vector of item keys and a
        /// candidate "ItemId".
        /// </summary>
        /// <param name="userIdColumnName">Key-typed user column of the training log.</param>
        /// <param name="itemIdColumnName">Key-typed item column (training events; candidate item when scoring).</param>
        /// <param name="historyColumnName">Vector-of-item-keys history column read when scoring.</param>
        /// <param name="loss">Training loss (default: the paper's BCE with one sampled negative).</param>
        /// <param name="maxLength">Maximum sequence length.</param>
        /// <param name="numberOfEpochs">Training epochs.</param>
        public SasRecTrainer SasRec(string userIdColumnName = "UserId", string itemIdColumnName = "ItemId", string historyColumnName = "History",
            SequentialLoss loss = SequentialLoss.BinaryCrossEntropy, int maxLength = SasRecTrainer.Defaults.MaxLength, int numberOfEpochs = SasRecTrainer.Defaults.NumberOfEpochs) =>
            SasRec(new SasRecTrainer.Options
            {
                UserIdColumnName = userIdColumnName, ItemIdColumnName = itemIdColumnName, HistoryColumnName = historyColumnName,
                Loss = loss, MaxLength = maxLength, NumberOfEpochs = numberOfEpochs,
            });

        /// <summary>SASRec next-item recommender with full options.</summary>
        /// <param name="options">The options.</param>
        public SasRecTrainer SasRec(SasRecTrainer.Options options) => new(Context, options);
    }
}
