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
    /// <summary>NFM options.</summary>
    public sealed class Options : FeatureInteractionTrainerOptions
    {
        /// <summary>Widths of the hidden layers after bi-interaction pooling; empty = NFM-0 (FM); at most
        /// <see cref="DeepRecTrainerOptionsBase.MaxLayers"/> widths, each 1..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>. Default { 64 } (the paper's one layer).</summary>
        public int[] HiddenLayers = { 64 };

        /// <summary>Batch normalisation of the bi-interaction output and of each hidden layer, as in the paper. Default true.</summary>
        public bool BatchNormalization = true;

        /// <summary>Dropout rate on the bi-interaction output, in [0, 1). Default 0.5 (the paper's keep probability 0.5).</summary>
        public double BiInteractionDropout = 0.5;

        /// <summary>Dropout rate after each hidden layer, in [0, 1). Default 0.2 (keep probability 0.8).</summary>
        public double HiddenDropout = 0.2;

        internal override void Validate()
        {
            base.Validate();
            CheckWidths(HiddenLayers, nameof(HiddenLayers), allowEmpty: true);
            CheckDropout(BiInteractionDropout, nameof(BiInteractionDropout));
            CheckDropout(HiddenDropout, nameof(HiddenDropout));
        }
    }

    internal NfmTrainer(MLContext mlContext, Options options) : base(mlContext, options, "NFM") { }

    private protected override FieldFeatureModule CreateModule(FieldFeatureLayout layout) =>
        new NfmModule(layout.FeatureCount, layout.SlotCount, TrainerOptions.Factors, TrainerOptions.HiddenLayers, TrainerOptions.BatchNormalization,
            TrainerOptions.BiInteractionDropout, TrainerOptions.HiddenDropout);

    private protected override FeatureInteractionTransformer CreateTransformer(FieldFeatureModule module, FieldFeatureLayout layout, IDataView trainData, TrainingReport report, Device device) =>
        new(Context, Name, module, layout, TrainerOptions.Task, trainData, report, device);
}
