using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers
{
    /// <summary>
    /// Wide&amp;Deep (Cheng et al. 2016) for regression or binary classification over one or more feature columns (fields):
    /// a wide linear model over the features and a deep MLP over their embeddings side by side, trained jointly, outputs
    /// added. The wide part sees the features as given; the paper's cross-product transformations are features you add
    /// yourself (e.g. a key column of concatenated values), as in ML.NET.
    /// </summary>
    public sealed class WideAndDeepTrainer : FeatureInteractionTrainerBase<WideAndDeepTrainer.Options, FeatureInteractionTransformer>
    {
        /// <summary>Default values of <see cref="Options"/> and of the catalog's short overloads.</summary>
        public static class Defaults
        {
            /// <summary>Embedding size: 64.</summary>
            public const int Factors = NfmTrainer.Defaults.Factors;

            /// <summary>Hidden layers {400, 400, 400} (the deep component DeepFM's paper compares with); a fresh array each call.</summary>
            public static int[] HiddenLayers => [400, 400, 400];

            /// <summary>Dropout rate after each hidden layer: 0.5.</summary>
            public const double HiddenDropoutRate = 0.5;

            /// <summary>Default number of epochs.</summary>
            public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
        }

        /// <summary>Wide&amp;Deep options. Defaults: <see cref="DeepFeatureInteractionTrainerOptions.HiddenLayers"/> {400, 400, 400},
        /// <see cref="DeepFeatureInteractionTrainerOptions.HiddenDropoutRate"/> 0.5, no batch norm.</summary>
        public sealed class Options() : DeepFeatureInteractionTrainerOptions(Defaults.HiddenLayers, Defaults.HiddenDropoutRate);

        internal WideAndDeepTrainer(MLContext mlContext, Options options) : base(mlContext, options, "WideAndDeep") { }

        private protected override FieldFeatureModule CreateModule(FieldFeatureLayout layout) =>
            new DeepFieldModule("WideAndDeep", fmTerm: false, layout.FeatureCount, layout.SlotCount, TrainerOptions.Factors, TrainerOptions.HiddenLayers,
                TrainerOptions.BatchNormalization, TrainerOptions.HiddenDropoutRate, TrainerOptions.EmbeddingDropoutRate);

        private protected override FeatureInteractionTransformer CreateTransformer(FieldFeatureModule module, FieldFeatureLayout layout, IDataView trainData, TrainingReport report, Device device) =>
            new(Context, Name, module, layout, TrainerOptions.Task, trainData, report, device);
    }
}

namespace MLNet.DeepRec
{
    public sealed partial class DeepRecTrainers
    {
        /// <summary>Wide&amp;Deep over several feature columns, each a field (key columns and/or known-size Vector&lt;Single&gt; columns).</summary>
        /// <param name="featureColumnNames">The feature columns (fields).</param>
        /// <param name="labelColumnName">Label: Single for regression, Boolean for binary classification.</param>
        /// <param name="task">Regression (default) or binary classification.</param>
        /// <param name="factors">Embedding size of the deep component.</param>
        /// <param name="numberOfEpochs">Training epochs.</param>
        public WideAndDeepTrainer WideAndDeep(string[] featureColumnNames, string labelColumnName = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression,
            int factors = WideAndDeepTrainer.Defaults.Factors, int numberOfEpochs = WideAndDeepTrainer.Defaults.NumberOfEpochs) =>
            WideAndDeep(new WideAndDeepTrainer.Options { FeatureColumnNames = featureColumnNames, LabelColumnName = labelColumnName, Task = task, Factors = factors, NumberOfEpochs = numberOfEpochs });

        /// <summary>Wide&amp;Deep with full options.</summary>
        public WideAndDeepTrainer WideAndDeep(WideAndDeepTrainer.Options options) => new(Context, options);
    }
}
