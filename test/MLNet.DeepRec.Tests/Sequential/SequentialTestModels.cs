using Microsoft.ML;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Tests.Sequential;

/// <summary>
/// Every sequential model the library ships, each with small test settings. The quality, ONNX-parity, save/load,
/// PredictionEngine, saved-recommender and bad-input tests run over this list, so a model added here gets them all.
/// </summary>
public static class SequentialTestModels
{
    /// <summary>A model: its name, a factory taking the options every test sets (columns, loss, epochs, seed…), and the
    /// losses its quality test trains with (null: all three).</summary>
    public sealed record Model(string Name, Func<DeepRecTrainers, Action<SequentialTrainerOptions>, IEstimator<SequentialTransformer>> Create, SequentialLoss[]? Losses = null)
    {
        public override string ToString() => Name;

        /// <summary>Trains on <paramref name="train"/> with the common small settings, then <paramref name="tune"/>.</summary>
        internal SequentialTransformer Fit(SequenceTestData.Keyed data, SequentialLoss loss, int epochs, Action<SequentialTrainerOptions>? tune = null, IDataView? train = null) =>
            Create(data.Context.DeepRec().Trainers, o => { Common(o, loss, epochs); tune?.Invoke(o); }).Fit(train ?? data.Train);
    }

    /// <summary>The settings every test shares: the planted-data columns, a short window, a small batch, seed 3, top 5.</summary>
    public static void Common(SequentialTrainerOptions o, SequentialLoss loss, int epochs)
    {
        o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.TimestampColumnName = "Timestamp";
        o.MaxLength = 20; o.BatchSize = 64; o.NumberOfEpochs = epochs; o.Loss = loss; o.NegativesPerPositive = 20; o.Seed = 3; o.TopK = 5;
        o.LearningRate = 0.005;
    }

    private static T With<T>(T options, Action<SequentialTrainerOptions> common) where T : SequentialTrainerOptions
    {
        common(options);
        return options;
    }

    public static readonly Model SasRec = new("SASRec", (t, c) => t.SasRec(With(new SasRecTrainer.Options { HiddenSize = 32, NumberOfBlocks = 1, NumberOfHeads = 2, DropoutRate = 0.1 }, c)));

    public static readonly Model Gru4Rec = new("GRU4Rec", (t, c) => t.Gru4Rec(With(new Gru4RecTrainer.Options { HiddenSize = 32, DropoutRate = 0.1 }, c)));

    public static readonly Model[] All =
    [
        SasRec,
        Gru4Rec,
        new("GRU4Rec 2 layers, projection", (t, c) => t.Gru4Rec(With(new Gru4RecTrainer.Options { HiddenSize = 48, EmbeddingSize = 32, NumberOfLayers = 2, DropoutRate = 0.1, EmbeddingDropoutRate = 0.1 }, c)), [SequentialLoss.SampledSoftmax]),
    ];

    /// <summary>The models as NUnit test-fixture arguments.</summary>
    public static IEnumerable<Model> Fixtures => All;
}
