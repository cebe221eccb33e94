using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// Options of the collaborative models whose only size is a number of latent factors: GMF
/// (<see cref="GmfTrainer.Options"/>), dot-product MF (<see cref="BiasedMatrixFactorizationTrainer.Options"/>) and
/// LightGCN (<see cref="LightGcnTrainer.Options"/>).
/// </summary>
public abstract class FactorizationTrainerOptions : CollaborativeTrainerOptions
{
    /// <summary>Creates options with the model's default number of factors.</summary>
    private protected FactorizationTrainerOptions(int factors) { Factors = factors; }

    /// <summary>Latent factors (predictive factors in the NCF paper), 1..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>.
    /// The default depends on the model: <see cref="GmfTrainer.Defaults.Factors"/> (8),
    /// <see cref="BiasedMatrixFactorizationTrainer.Defaults.Factors"/> (32), <see cref="LightGcnTrainer.Defaults.Factors"/> (64).</summary>
    public int Factors;

    internal override void Validate()
    {
        base.Validate();
        CheckWidth(Factors, nameof(Factors));
    }
}
