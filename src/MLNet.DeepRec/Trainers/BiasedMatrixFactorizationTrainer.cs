using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// Dot-product matrix factorization with user/item/global biases, trained on implicit feedback with BCE or BPR loss.
/// The baseline every neural model should be compared with (Rendle et al. 2020).
/// </summary>
public sealed class BiasedMatrixFactorizationTrainer : CollaborativeTrainerBase<BiasedMatrixFactorizationTrainer.Options>
{
    /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload.</summary>
    public static class Defaults
    {
        /// <summary>Latent factors: 32.</summary>
        public const int Factors = 32;
        /// <summary>Default number of epochs.</summary>
        public const int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;
    }

    /// <summary>Dot-product MF options. Default <see cref="FactorizationTrainerOptions.Factors"/>: 32.</summary>
    public sealed class Options() : FactorizationTrainerOptions(Defaults.Factors);

    internal BiasedMatrixFactorizationTrainer(MLContext mlContext, Options options) : base(mlContext, options, CollaborativeModels.MatrixFactorization.Name) { }

    private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
        new DotProductMFModule(userCount, itemCount, TrainerOptions.Factors);
}
