using System.Diagnostics;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Sequential;

public class SasRecTrainingTests
{
    private static SequenceTestData.Keyed D => SequenceTestData.Data;

    internal static SasRecTrainer.Options Small(SasRecLoss loss, int epochs = 15) => new()
    {
        UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", TimestampColumnName = "Timestamp",
        MaxLength = 20, HiddenSize = 32, NumberOfBlocks = 1, NumberOfHeads = 2, DropoutRate = 0.1,
        LearningRate = 0.005, BatchSize = 64, NumberOfEpochs = epochs, Loss = loss, NegativesPerPositive = 20, Seed = 3, TopK = 5,
    };

    private static TopKMetrics Evaluate(IItemScorer scorer, RankingProtocol protocol) =>
        D.Context.DeepRec().Evaluation.EvaluateTopK(scorer, D.Test, D.Train,
            new TopKEvaluationOptions { K = 10, Protocol = protocol, NegativesPerPositive = 30, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Seed = 5 });

    private static readonly Lazy<(TopKMetrics Sampled, TopKMetrics Full)> Popularity = new(() =>
    {
        var pop = D.Context.DeepRec().Evaluation.PopularityBaseline(D.Train, "UserKey", "ItemKey");
        return (Evaluate(pop, RankingProtocol.Sampled), Evaluate(pop, RankingProtocol.FullRanking));
    });

    // The planted successor makes the next item ~90% predictable from the last one; popularity is uniform.
    [TestCase(SasRecLoss.BinaryCrossEntropy)]
    [TestCase(SasRecLoss.SampledSoftmax)]
    [TestCase(SasRecLoss.CrossEntropy)]
    public void EachLossLearnsThePlantedSuccessorAndBeatsPopularity(SasRecLoss loss)
    {
        var watch = Stopwatch.StartNew();
        using var model = D.Context.DeepRec().Trainers.SasRec(Small(loss)).Fit(D.Train);
        double seconds = watch.Elapsed.TotalSeconds;
        // Test protocol of the paper: the history includes the validation item.
        using var scorer = (IDisposable)model.CreateScorer(D.Train, D.Validation);
        var sampled = Evaluate((IItemScorer)scorer, RankingProtocol.Sampled);
        var full = Evaluate((IItemScorer)scorer, RankingProtocol.FullRanking);
        TestContext.Out.WriteLine($"{loss}: {seconds:F1} s ({string.Join(", ", model.TrainingReport.Epochs.Select(e => e.TrainSeconds.ToString("F2")))}); {sampled}\n{full}\npopularity: {Popularity.Value.Sampled}\n{Popularity.Value.Full}");
        var epochs = model.TrainingReport.Epochs;
        Assert.That(epochs[^1].Loss, Is.LessThan(epochs[0].Loss * 0.8), "loss decreases");
        Assert.That(full.HitRate, Is.GreaterThan(0.6), "full-ranking HR@10 on the planted successor");
        Assert.That(full.Ndcg, Is.GreaterThan(Popularity.Value.Full.Ndcg + 0.3), "full-ranking NDCG@10 margin over popularity");
        Assert.That(sampled.HitRate, Is.GreaterThan(Popularity.Value.Sampled.HitRate + 0.3), "sampled HR@10 margin over popularity");
    }
}
