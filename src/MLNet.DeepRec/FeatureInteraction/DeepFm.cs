using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers
{
    /// <summary>
    /// DeepFM (Guo et al. 2017) for regression or binary classification over one or more feature columns (fields): an FM
    /// component (linear part plus pairwise interactions ⟨vᵢ, vⱼ⟩xᵢxⱼ) and a deep component (an MLP over the field
    /// embeddings side by side) that share the same feature embeddings and are trained together; their outputs add up.
    /// </summary>
    public sealed class DeepFmTrainer : FeatureInteractionTrainerBase<DeepFmTrainer.Options, FeatureInteractionTransformer>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overloads.</summary>
        public static class Defaults
        {
            /// <summary>Embedding size: 64.</summary>
            public const int Factors = NfmTrainer.Defaults.Factors;

            /// <summary>Hidden layers {400, 400, 400} (the paper's deep component); a fresh array each call.</summary>
            public static int[] HiddenLayers => [400, 400, 400];

            /// <summary>Dropout rate after each hidden layer: 0.5 (the paper's keep probability 0.5).</summary>
            public const double HiddenDropoutRate = 0.5;

            /// <summary>Default number of epochs.</summary>
            public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
        }

        /// <summary>DeepFM options. Defaults: <see cref="DeepFeatureInteractionTrainerOptions.HiddenLayers"/> {400, 400, 400},
        /// <see cref="DeepFeatureInteractionTrainerOptions.HiddenDropoutRate"/> 0.5, no batch norm.</summary>
        public sealed class Options() : DeepFeatureInteractionTrainerOptions(Defaults.HiddenLayers, Defaults.HiddenDropoutRate)
        {
            /// <summary>Dropout rate on the FM component's pairwise vector ½[(Σxᵢvᵢ)² − Σ(xᵢvᵢ)²] before it is summed, in
            /// [0, 1): the <c>dropout_fm</c> of the DeepFM reference code, NFM-0's dropout. Default 0.</summary>
            public double FmDropoutRate;

            internal override void Validate()
            {
                base.Validate();
                CheckDropout(FmDropoutRate, nameof(FmDropoutRate));
            }
        }

        internal DeepFmTrainer(MLContext mlContext, Options options) : base(mlContext, options, "DeepFM") { }

        private protected override FieldFeatureModule CreateModule(FieldFeatureLayout layout) =>
            new DeepFieldModule("DeepFM", fmTerm: true, layout.FeatureCount, layout.SlotCount, TrainerOptions.Factors, TrainerOptions.HiddenLayers,
                TrainerOptions.BatchNormalization, TrainerOptions.HiddenDropoutRate, TrainerOptions.EmbeddingDropoutRate, TrainerOptions.FmDropoutRate);

        private protected override FeatureInteractionTransformer CreateTransformer(FieldFeatureModule module, FieldFeatureLayout layout, IDataView trainData, TrainingReport report, Device device) =>
            new(Context, Name, module, layout, TrainerOptions.Task, trainData, report, device);
    }
}

namespace MLNet.DeepRec
{
    public sealed partial class DeepRecTrainers
    {
        /// <summary>DeepFM over several feature columns, each a field (key columns and/or known-size Vector&lt;Single&gt; columns).</summary>
        /// <param name="featureColumnNames">The feature columns (fields).</param>
        /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
        /// <param name="task">Regression (default) or binary classification.</param>
        /// <param name="factors">Embedding size, shared by the FM and deep components.</param>
        /// <param name="numberOfEpochs">Training epochs.</param>
        public DeepFmTrainer DeepFm(string[] featureColumnNames, string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
            int factors = DeepFmTrainer.Defaults.Factors, int numberOfEpochs = DeepFmTrainer.Defaults.NumberOfEpochs) =>
            DeepFm(new DeepFmTrainer.Options { FeatureColumnNames = featureColumnNames, LabelColumnName = labelColumnName, Task = task, Factors = factors, NumberOfEpochs = numberOfEpochs });

        /// <summary>DeepFM with full options.</summary>
        public DeepFmTrainer DeepFm(DeepFmTrainer.Options options) => new(Context, options);
    }
}
