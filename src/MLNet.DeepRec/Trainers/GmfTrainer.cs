using Microsoft.ML;
using MLNet.DeepRec.Models;

namespace MLNet.DeepRec.Trainers;

/// <summary>Generalized Matrix Factorization (NCF's GMF) trained on implicit feedback.</summary>
public sealed class GmfTrainer : CollaborativeTrainerBase<GmfTrainer.Options>
{
    /// <summary>GMF options.</summary>
    public sealed class Options : CollaborativeTrainerOptions
    {
        /// <summary>Latent factors (predictive factors in the paper), 1..<see cref="Training.DeepRecTrainerOptionsBase.MaxWidth"/>. Default 8.</summary>
        public int Factors = 8;

        internal override void Validate()
        {
            base.Validate();
            CheckWidth(Factors, nameof(Factors));
        }
    }

    internal GmfTrainer(MLContext mlContext, Options options) : base(mlContext, options, "GMF") { }

    private protected override CollaborativeModule CreateModule(int userCount, int itemCount) =>
        new GmfModule(userCount, itemCount, TrainerOptions.Factors);
}
