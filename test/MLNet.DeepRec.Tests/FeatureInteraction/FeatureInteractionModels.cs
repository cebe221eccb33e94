using Microsoft.ML;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Tests.FeatureInteraction;

/// <summary>
/// Every feature-interaction model the library ships, each with small test settings. The ONNX-parity/save-load test and
/// the planted-interaction quality test run over this list, so a model added here gets both for free.
/// </summary>
public static class FeatureInteractionModels
{
    /// <summary>A model: its name and a factory taking the options every test sets (columns, label, task, epochs, seed).</summary>
    public sealed record Model(string Name, Func<DeepRecTrainers, Action<FeatureInteractionTrainerOptions>, IEstimator<FeatureInteractionTransformer>> Create)
    {
        public override string ToString() => Name;
    }

    /// <summary>The test's common settings, then the model's own overrides (<paramref name="tune"/>).</summary>
    private static T With<T>(T options, Action<FeatureInteractionTrainerOptions> common, Action<T>? tune = null) where T : FeatureInteractionTrainerOptions
    {
        common(options);
        tune?.Invoke(options);
        return options;
    }

    // Without a deep network after it, a cross network starts as a linear model in the embeddings (x_L ≈ x₀ while the
    // embeddings are small); at the tests' learning rate (0.01) it stays on that plateau for the 8 binary epochs (measured
    // training loss 0.51, AUC 0.79, the linear model's), at 0.03 it leaves it (AUC 0.88-0.89).
    private static void FasterForTheCrossNetwork(FeatureInteractionTrainerOptions o) => o.LearningRate = Math.Max(o.LearningRate, 0.03);

    public static readonly Model[] All =
    [
        new("FM", (t, c) => t.Nfm(With(new NfmTrainer.Options { Factors = 8, HiddenLayers = [], BatchNormalization = false, BiInteractionDropoutRate = 0 }, c))),
        new("NFM", (t, c) => t.Nfm(With(new NfmTrainer.Options { Factors = 16, HiddenLayers = [16, 8], BiInteractionDropoutRate = 0.1, HiddenDropoutRate = 0 }, c))),
        new("AFM", (t, c) => t.Afm(With(new AfmTrainer.Options { Factors = 16, AttentionSize = 8, DropoutRate = 0, AttentionL2 = 0.01 }, c))),
        new("DeepFM", (t, c) => t.DeepFm(With(new DeepFmTrainer.Options { Factors = 16, HiddenLayers = [32, 16], HiddenDropoutRate = 0.1, FmDropoutRate = 0.2 }, c))),
        new("DeepFM+BN", (t, c) => t.DeepFm(With(new DeepFmTrainer.Options { Factors = 8, HiddenLayers = [16], BatchNormalization = true, HiddenDropoutRate = 0, EmbeddingDropoutRate = 0.1 }, c))),
        new("DCN-V2", (t, c) => t.DcnV2(With(new DcnV2Trainer.Options { Factors = 16, CrossLayers = 2, HiddenLayers = [32, 16] }, c))),
        new("DCN-V2 low-rank parallel", (t, c) => t.DcnV2(With(new DcnV2Trainer.Options { Factors = 16, CrossLayers = 2, CrossRank = 8, Structure = DcnStructure.Parallel, HiddenLayers = [16] }, c, FasterForTheCrossNetwork))),
        new("DCN-V2 cross only", (t, c) => t.DcnV2(With(new DcnV2Trainer.Options { Factors = 16, CrossLayers = 3, HiddenLayers = [] }, c, FasterForTheCrossNetwork))),
        new("WideAndDeep", (t, c) => t.WideAndDeep(With(new WideAndDeepTrainer.Options { Factors = 16, HiddenLayers = [32, 16], HiddenDropoutRate = 0.1 }, c))),
    ];
}
