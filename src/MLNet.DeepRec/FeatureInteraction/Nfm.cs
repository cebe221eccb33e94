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
    /// Neural Factorization Machine (He &amp; Chua 2017): ŷ = w₀ + Σ wᵢxᵢ + hᵀ MLP(BI(x)), where the bi-interaction pooling
    /// BI(x) = ½[(Σ xᵢvᵢ)² − Σ (xᵢvᵢ)²] (element-wise) is FM's pairwise term before summation. Optional batch norm and
    /// dropout on BI(x), then hidden layers Linear → [batch norm] → ReLU → dropout. With no hidden layers this is NFM-0, which
    /// is FM (hᵀBI(x) = Σᵢ&lt;ⱼ ⟨vᵢ, vⱼ ∘ h⟩xᵢxⱼ, the FM term with h absorbed into the factors).
    /// </summary>
    internal sealed class NfmModule : FieldFeatureModule
    {
        public NfmModule(int featureCount, int slotCount, int factors, IReadOnlyList<int> hiddenLayers, bool batchNorm, double biDropout, double hiddenDropout)
            : base("NFM", featureCount, slotCount, factors)
        {
            HiddenLayers = hiddenLayers.ToArray();
            BatchNorm = batchNorm;
            bi_norm = nn.BatchNorm1d(factors);
            bi_dropout = new FastDropout(biDropout);
            hidden = MlpStack.Create(factors, HiddenLayers, batchNorm, hiddenDropout);
            prediction = nn.Linear(MlpStack.OutputWidth(factors, HiddenLayers), 1, hasBias: false);
            using (no_grad())
            {
                if (HiddenLayers.Length == 0) nn.init.ones_(prediction.weight!); // NFM-0 starts as FM exactly (h = 1)
                else nn.init.xavier_uniform_(prediction.weight!);
            }
            RegisterComponents();
        }

        public int[] HiddenLayers { get; }
        public bool BatchNorm { get; }
        private readonly BatchNorm1d bi_norm;
        private readonly FastDropout bi_dropout;
        private readonly Sequential hidden;
        private readonly Linear prediction;

        protected override Tensor Interaction(Tensor scaled, Tensor? values)
        {
            var bi = BiInteraction(scaled);
            if (BatchNorm) bi = bi_norm.call(bi);
            bi = bi_dropout.call(bi);
            return prediction.call(hidden.call(bi)).squeeze(-1);
        }

        protected override string InteractionOnnx(OnnxGraphBuilder g, string scaled, string values)
        {
            string x = BiInteractionOnnx(g, scaled);
            if (BatchNorm) x = BatchNormOnnx(g, "bi_norm", bi_norm, x);
            x = g.Sequential("hidden", hidden, x);
            return g.Reshape(LinearOnnx(g, "prediction", prediction, x), new long[] { -1 });
        }
    }
}

namespace MLNet.DeepRec.Trainers
{
    /// <summary>
    /// Neural Factorization Machine (He &amp; Chua 2017) for regression or binary classification over one or more feature
    /// columns (fields). Bi-interaction pooling of the feature embeddings, optional batch norm and dropout, optional hidden
    /// layers, plus the linear part and a global bias. With no hidden layers this is NFM-0, i.e. a factorization machine.
    /// </summary>
    public sealed class NfmTrainer : FeatureInteractionTrainerBase<NfmTrainer.Options, FeatureInteractionTransformer>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overloads.</summary>
        public static class Defaults
        {
            /// <summary>Embedding size: 64 (the NFM paper's).</summary>
            public const int Factors = 64;

            /// <summary>Hidden layers {64} (the paper's one layer); a fresh array each call.</summary>
            public static int[] HiddenLayers => [64];

            /// <summary>Dropout rate on the bi-interaction output: 0.5.</summary>
            public const double BiInteractionDropoutRate = 0.5;

            /// <summary>Dropout rate after each hidden layer: 0.2.</summary>
            public const double HiddenDropoutRate = 0.2;
            /// <summary>Default number of epochs.</summary>
            public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
        }

        /// <summary>NFM options.</summary>
        public sealed class Options : FeatureInteractionTrainerOptions
        {
            /// <summary>Widths of the hidden layers after bi-interaction pooling; empty = NFM-0 (FM); at most
            /// <see cref="DeepRecTrainerOptionsBase.MaxLayers"/> widths, each 1..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>. Default { 64 } (the paper's one layer).</summary>
            public int[] HiddenLayers = Defaults.HiddenLayers;

            /// <summary>Batch normalisation of the bi-interaction output and of each hidden layer, as in the paper. Default true.</summary>
            public bool BatchNormalization = true;

            /// <summary>Dropout rate on the bi-interaction output, in [0, 1). Default 0.5 (the paper's keep probability 0.5).</summary>
            public double BiInteractionDropoutRate = Defaults.BiInteractionDropoutRate;

            /// <summary>Dropout rate after each hidden layer, in [0, 1). Default 0.2 (keep probability 0.8).</summary>
            public double HiddenDropoutRate = Defaults.HiddenDropoutRate;

            internal override void Validate()
            {
                base.Validate();
                CheckWidths(HiddenLayers, nameof(HiddenLayers), allowEmpty: true);
                CheckDropout(BiInteractionDropoutRate, nameof(BiInteractionDropoutRate));
                CheckDropout(HiddenDropoutRate, nameof(HiddenDropoutRate));
            }
        }

        internal NfmTrainer(MLContext mlContext, Options options) : base(mlContext, options, "NFM") { }

        private protected override FieldFeatureModule CreateModule(FieldFeatureLayout layout) =>
            new NfmModule(layout.FeatureCount, layout.SlotCount, TrainerOptions.Factors, TrainerOptions.HiddenLayers, TrainerOptions.BatchNormalization,
                TrainerOptions.BiInteractionDropoutRate, TrainerOptions.HiddenDropoutRate);

        private protected override FeatureInteractionTransformer CreateTransformer(FieldFeatureModule module, FieldFeatureLayout layout, IDataView trainData, TrainingReport report, Device device) =>
            new(Context, Name, module, layout, TrainerOptions.Task, trainData, report, device);
    }
}

namespace MLNet.DeepRec
{
    public sealed partial class DeepRecTrainers
    {
        /// <summary>Neural Factorization Machine over one feature column (default "Features": a sparse libFM-style vector, or any known-size Vector&lt;Single&gt;).</summary>
        /// <param name="featureColumnName">The feature column.</param>
        /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
        /// <param name="task">Regression (default) or binary classification.</param>
        /// <param name="factors">Embedding size.</param>
        /// <param name="numberOfEpochs">Training epochs.</param>
        public NfmTrainer Nfm(string featureColumnName = "Features", string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
            int factors = NfmTrainer.Defaults.Factors, int numberOfEpochs = NfmTrainer.Defaults.NumberOfEpochs) =>
            Nfm(new[] { featureColumnName }, labelColumnName, task, factors, numberOfEpochs);

        /// <summary>Neural Factorization Machine over several feature columns, each a field (key columns and/or known-size Vector&lt;Single&gt; columns, as ML.NET's FieldAwareFactorizationMachine takes).</summary>
        /// <param name="featureColumnNames">The feature columns (fields).</param>
        /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
        /// <param name="task">Regression (default) or binary classification.</param>
        /// <param name="factors">Embedding size.</param>
        /// <param name="numberOfEpochs">Training epochs.</param>
        public NfmTrainer Nfm(string[] featureColumnNames, string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
            int factors = NfmTrainer.Defaults.Factors, int numberOfEpochs = NfmTrainer.Defaults.NumberOfEpochs) =>
            Nfm(new NfmTrainer.Options { FeatureColumnNames = featureColumnNames, LabelColumnName = labelColumnName, Task = task, Factors = factors, NumberOfEpochs = numberOfEpochs });

        /// <summary>Neural Factorization Machine with full options (NFM-0, i.e. FM, with <c>HiddenLayers = []</c>).</summary>
        public NfmTrainer Nfm(NfmTrainer.Options options) => new(Context, options);
    }
}
