using Microsoft.ML;
using MLNet.DeepRec.Models;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// Dot-product matrix factorization with user/item/global biases, trained on implicit feedback with BCE or BPR loss.
/// The baseline every neural model should be compared with (Rendle et al. 2020).
/// </summary>
public sealed class MatrixFactorizationTrainer : CollaborativeTrainerBase<MatrixFactorizationTrainer.Options>
{
    /// <summary>Dot-product MF options.</summary>
    public sealed class Options : CollaborativeTrainerOptions
    {
        /// <summary>Latent factors, 1..<see cref="Training.DeepRecTrainerOptionsBase.MaxWidth"/>. Default 32.</summary>
        public int Factors = 32;

        internal override void Validate()
        {
            base.Validate();
            CheckWidth(Factors, nameof(Factors));
        }
    }

    internal MatrixFactorizationTrainer(MLContext mlContext, Options options) : base(mlContext, options, "MF") { }

    private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
        new DotProductMFModule(userCount, itemCount, TrainerOptions.Factors);
}
