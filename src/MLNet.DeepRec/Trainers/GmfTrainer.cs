using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Trainers;

/// <summary>Generalized Matrix Factorization (NCF's GMF) trained on implicit feedback.</summary>
public sealed class GmfTrainer : CollaborativeTrainerBase<GmfTrainer.Options>
{
    /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
    public static class Defaults
    {
        /// <summary>Latent factors: 8 (the NCF paper's).</summary>
        public const int Factors = 8;
        /// <summary>Default number of epochs.</summary>
        public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
    }

    /// <summary>GMF options. Default <see cref="FactorizationTrainerOptions.Factors"/>: 8.</summary>
    public sealed class Options() : FactorizationTrainerOptions(Defaults.Factors);

    internal GmfTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.Gmf.Name) { }

    private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
        new GmfModule(userCount, itemCount, TrainerOptions.Factors);
}
