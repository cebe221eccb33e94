using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

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
