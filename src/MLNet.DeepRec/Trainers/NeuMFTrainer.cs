using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Trainers;

/// <summary>Neural Matrix Factorization (He et al. 2017), optionally initialised from trained GMF and MLP models.</summary>
public sealed class NeuMFTrainer : CollaborativeTrainerBase<NeuMFTrainer.Options>
{
    /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
    public static class Defaults
    {
        /// <summary>Latent factors of the GMF branch: 8.</summary>
        public const int Factors = 8;

        /// <summary>Tower widths of the MLP branch {64, 32, 16, 8}; a fresh array each call.</summary>
        public static int[] MlpLayers => [64, 32, 16, 8];

        /// <summary>Weight of the GMF branch in the pre-trained output layer: 0.5.</summary>
        public const double PretrainAlpha = 0.5;
        /// <summary>Default number of epochs.</summary>
        public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
    }

    /// <summary>NeuMF options.</summary>
    public sealed class Options : CollaborativeTrainerOptions
    {
        /// <summary>Latent factors of the GMF branch, 1..<see cref="Training.DeepRecTrainerOptionsBase.MaxWidth"/>. Default 8.</summary>
        public int Factors = Defaults.Factors;

        /// <summary>Widths of the MLP branch's tower (first = concatenated embedding width, even), as <see cref="MlpTrainer.Options.MlpLayers"/>. Default {64, 32, 16, 8}.</summary>
        public int[] MlpLayers = Defaults.MlpLayers;

        /// <summary>
        /// A trained GMF model to initialise the GMF branch from (NCF §3.4.1 pre-training). Must be given together with
        /// <see cref="PretrainedMlp"/>, trained on the same key types with the same <see cref="Factors"/>. Default null.
        /// </summary>
        public CollaborativeFilteringTransformer? PretrainedGmf;

        /// <summary>A trained MLP model to initialise the MLP branch from (same <see cref="MlpLayers"/>). Default null.</summary>
        public CollaborativeFilteringTransformer? PretrainedMlp;

        /// <summary>Weight of the GMF branch in the pre-trained output layer (the paper's α). Default 0.5.</summary>
        public double PretrainAlpha = Defaults.PretrainAlpha;

        internal override void Validate()
        {
            base.Validate();
            CheckWidth(Factors, nameof(Factors));
            MlpTrainer.Options.ValidateLayers(MlpLayers, nameof(MlpLayers));
            if ((PretrainedGmf == null) != (PretrainedMlp == null))
                throw new ArgumentException("PretrainedGmf and PretrainedMlp must be given together.");
            if (!(PretrainAlpha >= 0 && PretrainAlpha <= 1)) throw new ArgumentOutOfRangeException(nameof(PretrainAlpha), PretrainAlpha, "PretrainAlpha must be in [0, 1].");
        }
    }

    internal NeuMFTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.NeuMF.Name) { }

    /// <summary>The pre-trained GMF and MLP (given together or not at all, as <see cref="Options.Validate"/> checks).</summary>
    private protected override IReadOnlyList<(string Option, CollaborativeFilteringTransformer Model)> PretrainedModels =>
        TrainerOptions is { PretrainedGmf: { } gmf, PretrainedMlp: { } mlp } ? [(nameof(Options.PretrainedGmf), gmf), (nameof(Options.PretrainedMlp), mlp)] : [];

    private protected override CollaborativeModule CreateModule(int userCount, int itemCount)
    {
        var module = new NeuMFModule(userCount, itemCount, TrainerOptions.Factors, TrainerOptions.MlpLayers);
        if (TrainerOptions.PretrainedGmf != null && TrainerOptions.PretrainedMlp != null)
        {
            if (TrainerOptions.PretrainedGmf.Module is not GmfModule gmf || gmf.Factors != TrainerOptions.Factors)
                throw new ArgumentException($"PretrainedGmf must be a GMF model with {TrainerOptions.Factors} factors.", nameof(TrainerOptions.PretrainedGmf));
            if (TrainerOptions.PretrainedMlp.Module is not MlpModule mlp || !mlp.Layers.SequenceEqual(TrainerOptions.MlpLayers))
                throw new ArgumentException($"PretrainedMlp must be an MLP model with layers {{{string.Join(", ", TrainerOptions.MlpLayers)}}}.", nameof(TrainerOptions.PretrainedMlp));
            if (gmf.UserCount != userCount || gmf.ItemCount != itemCount || mlp.UserCount != userCount || mlp.ItemCount != itemCount)
                throw new ArgumentException("The pre-trained models were trained on different user/item key types than this data.");
            module.InitializeFrom(gmf, mlp, TrainerOptions.PretrainAlpha);
        }
        return module;
    }
}
