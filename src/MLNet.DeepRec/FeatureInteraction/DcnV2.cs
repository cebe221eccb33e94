using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers
{
    /// <summary>How DCN-V2 combines its cross network with its deep network.</summary>
    public enum DcnStructure
    {
        /// <summary>The deep network reads the cross network's output (the paper's "stacked" structure).</summary>
        Stacked,
        /// <summary>Both read the embeddings; their outputs are concatenated before the output layer ("parallel").</summary>
        Parallel,
    }

    /// <summary>
    /// DCN-V2 (Wang et al. 2021) for regression or binary classification over one or more feature columns (fields): a cross
    /// network x_{l+1} = x₀ ⊙ (W_l x_l + b_l) + x_l over the field embeddings side by side x₀, with full-rank W_l or the
    /// low-rank W_l = U_l V_lᵀ (<see cref="Options.CrossRank"/>), stacked with or parallel to a deep network, plus the
    /// linear part of every feature-interaction model. The paper's mixture of low-rank experts is not implemented.
    /// </summary>
    public sealed class DcnV2Trainer : FeatureInteractionTrainerBase<DcnV2Trainer.Options, FeatureInteractionTransformer>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overloads.</summary>
        public static class Defaults
        {
            /// <summary>Embedding size: 64.</summary>
            public const int Factors = NfmTrainer.Defaults.Factors;
            /// <summary>Cross layers: 3.</summary>
            public const int CrossLayers = 3;
            /// <summary>Hidden layers of the deep network {400, 400}; a fresh array each call.</summary>
            public static int[] HiddenLayers => [400, 400];
            /// <summary>Dropout rate after each hidden layer: 0.</summary>
            public const double HiddenDropoutRate = 0;
            /// <summary>Default number of epochs.</summary>
            public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
            /// <summary>Largest cross-network width (slots × factors) with full-rank cross layers: 4,096 (16.8M weights per layer).</summary>
            public const int MaxFullRankWidth = 4096;
        }

        /// <summary>DCN-V2 options.</summary>
        public sealed class Options() : DeepFeatureInteractionTrainerOptions(Defaults.HiddenLayers, Defaults.HiddenDropoutRate)
        {
            /// <summary>Number of cross layers, 0..<see cref="DeepRecTrainerOptionsBase.MaxLayers"/>. Default 3.</summary>
            public int CrossLayers = Defaults.CrossLayers;
            /// <summary>Rank r of each cross layer's W = U Vᵀ; 0 (default) = full rank (W is d × d, d = slots × factors,
            /// at most <see cref="Defaults.MaxFullRankWidth"/>). A low rank (the paper uses d/4 and less) cuts cost and memory.</summary>
            public int CrossRank;
            /// <summary>Stacked (default) or parallel cross and deep networks.</summary>
            public DcnStructure Structure = DcnStructure.Stacked;
            private protected override bool AllowsNoHiddenLayer => true;
            internal override void Validate()
            {
                base.Validate();
                CheckRange(CrossLayers, 0, MaxLayers, nameof(CrossLayers));
                CheckRange(CrossRank, 0, MaxWidth, nameof(CrossRank));
                if (CrossLayers == 0 && HiddenLayers.Length == 0) throw new ArgumentException("DCN-V2 needs at least one cross layer or one hidden layer.", nameof(CrossLayers));
            }
        }

        internal DcnV2Trainer(MLContext mlContext, Options options) : base(mlContext, options, "DCN-V2") { }

        private protected override FieldFeatureModule CreateModule(FieldFeatureLayout layout)
        {
            var o = TrainerOptions;
            long width = (long)layout.SlotCount * o.Factors;
            if (o.CrossRank == 0 && o.CrossLayers > 0 && width > Defaults.MaxFullRankWidth)
                throw new ArgumentException($"DCN-V2's cross network is {layout.SlotCount} slots × {o.Factors} factors = {width} wide; full-rank cross layers " +
                    $"({width}² weights each) are limited to width {Defaults.MaxFullRankWidth}. Set CrossRank (e.g. {Math.Max(1, width / 4)}) or fewer factors.", nameof(o.CrossRank));
            return new DcnV2Module(layout.FeatureCount, layout.SlotCount, o.Factors, o.CrossLayers, o.CrossRank, o.Structure == DcnStructure.Parallel,
                o.HiddenLayers, o.BatchNormalization, o.HiddenDropoutRate, o.EmbeddingDropoutRate);
        }

        private protected override FeatureInteractionTransformer CreateTransformer(FieldFeatureModule module, FieldFeatureLayout layout, IDataView trainData, TrainingReport report, Device device) =>
            new(Context, Name, module, layout, TrainerOptions.Task, trainData, report, device);
    }
}

namespace MLNet.DeepRec.Models
{
    /// <summary>DCN-V2's network: cross layers over x₀ = the value-scaled embeddings side by side, a deep MLP, an output layer.</summary>
    internal sealed class DcnV2Module : FieldFeatureModule
    {
        public DcnV2Module(int featureCount, int slotCount, int factors, int crossLayers, int crossRank, bool parallel, IReadOnlyList<int> hiddenLayers, bool batchNorm, double dropoutRate, double embeddingDropoutRate)
            : base("DCN-V2", featureCount, slotCount, factors)
        {
            int width = slotCount * factors;
            (Parallel, HiddenLayers) = (parallel, hiddenLayers.ToArray());
            // Each cross layer's W x + b as a stack: one d × d Linear, or Vᵀ (d → r, no bias) then U (r → d).
            cross = nn.ModuleList(Enumerable.Range(0, crossLayers).Select(_ => crossRank == 0
                ? nn.Sequential(MlpStack.GlorotLinear(width, width))
                : nn.Sequential(MlpStack.GlorotLinear(width, crossRank, hasBias: false), MlpStack.GlorotLinear(crossRank, width))).ToArray());
            input_dropout = new FastDropout(embeddingDropoutRate);
            deep = MlpStack.Create(width, HiddenLayers, batchNorm, dropoutRate);
            int deepWidth = MlpStack.OutputWidth(width, HiddenLayers);
            output = MlpStack.GlorotLinear(parallel ? width + deepWidth : deepWidth, 1);
            RegisterComponents();
        }

        public bool Parallel { get; }
        public int[] HiddenLayers { get; }
        private readonly ModuleList<Sequential> cross;
        private readonly FastDropout input_dropout;
        private readonly Sequential deep;
        private readonly Linear output;
        protected override long ActivationsPerRow => Math.Max(base.ActivationsPerRow * (Parallel ? 2 : 1), HiddenLayers.DefaultIfEmpty(0).Max());

        protected override Tensor Interaction(Tensor scaled, Tensor? values)
        {
            var x0 = input_dropout.call(Flatten(scaled));
            var x = x0;
            foreach (var layer in cross) x = (x0 * layer.call(x)).Plus(x);
            var h = Parallel ? cat([x, deep.call(x0)], 1) : deep.call(x);
            return output.call(h).squeeze(-1);
        }

        protected override string InteractionOnnx(OnnxGraphBuilder g, string scaled, string values)
        {
            string x0 = FlattenOnnx(g, scaled), x = x0;
            int l = 0;
            foreach (var layer in cross) x = g.Add(g.Mul(x0, g.Sequential($"cross.{l++}", layer, x)), x);
            string h = Parallel ? g.Concat(1, x, g.Sequential("deep", deep, x0)) : g.Sequential("deep", deep, x);
            return g.Reshape(g.Linear("output", output, h), new long[] { -1 });
        }
    }
}

namespace MLNet.DeepRec
{
    public sealed partial class DeepRecTrainers
    {
        /// <summary>DCN-V2 over several feature columns, each a field (key columns and/or known-size Vector&lt;Single&gt; columns).</summary>
        /// <param name="featureColumnNames">The feature columns (fields).</param>
        /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
        /// <param name="task">Regression (default) or binary classification.</param>
        /// <param name="factors">Embedding size.</param>
        /// <param name="numberOfEpochs">Training epochs.</param>
        public DcnV2Trainer DcnV2(string[] featureColumnNames, string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
            int factors = DcnV2Trainer.Defaults.Factors, int numberOfEpochs = DcnV2Trainer.Defaults.NumberOfEpochs) =>
            DcnV2(new DcnV2Trainer.Options { FeatureColumnNames = featureColumnNames, LabelColumnName = labelColumnName, Task = task, Factors = factors, NumberOfEpochs = numberOfEpochs });

        /// <summary>DCN-V2 with full options.</summary>
        public DcnV2Trainer DcnV2(DcnV2Trainer.Options options) => new(Context, options);
    }
}
