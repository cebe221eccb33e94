using System.Diagnostics;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Sequential;

/// <summary>The small SASRec settings that the SASRec-only tests share (the registry's SASRec entry is the same model).</summary>
public static class SasRecTrainingTests
{
    internal static SasRecTrainer.Options Small(SequentialLoss loss, int epochs = 15) => new()
    {
        UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", TimestampColumnName = "Timestamp",
        MaxLength = 20, HiddenSize = 32, NumberOfBlocks = 1, NumberOfHeads = 2, DropoutRate = 0.1,
        LearningRate = 0.005, BatchSize = 64, NumberOfEpochs = epochs, Loss = loss, NegativesPerPositive = 20, Seed = 3, TopK = 5,
    };
}

/// <summary>Every sequential model of <see cref="SequentialTestModels"/> with every loss learns planted sequences.</summary>
public class SequentialTrainingTests
{
    private static SequenceTestData.Keyed D => SequenceTestData.Data;

    private static TopKMetrics Evaluate(IItemScorer scorer, RankingProtocol protocol) =>
        D.Context.DeepRec().Evaluation.EvaluateTopK(scorer, D.Test, D.Train,
            new TopKEvaluationOptions { K = 10, Protocol = protocol, NegativesPerPositive = 30, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Seed = 5 });

    private static readonly Lazy<(TopKMetrics Sampled, TopKMetrics Full)> Popularity = new(() =>
    {
        var pop = D.Context.DeepRec().Evaluation.PopularityBaseline(D.Train, "UserKey", "ItemKey");
        return (Evaluate(pop, RankingProtocol.Sampled), Evaluate(pop, RankingProtocol.FullRanking));
    });

    private static IEnumerable<TestCaseData> ModelsAndLosses() =>
        from model in SequentialTestModels.All
        from loss in model.Losses ?? Enum.GetValues<SequentialLoss>()
        select new TestCaseData(model, loss).SetName($"{model.Name} learns the planted successor with {loss}");

    // The planted successor makes the next item ~90% predictable from the last one; popularity is uniform, so every
    // model must beat it by a wide margin: full-ranking NDCG@10 by 0.3 (absolute), sampled HR@10 by 0.3.
    [TestCaseSource(nameof(ModelsAndLosses))]
    public void EachModelAndLossLearnsThePlantedSuccessorAndBeatsPopularity(SequentialTestModels.Model model, SequentialLoss loss)
    {
        var watch = Stopwatch.StartNew();
        using var trained = model.Fit(D, loss, epochs: 15);
        double seconds = watch.Elapsed.TotalSeconds;
        // Test protocol of the SASRec paper: the history includes the validation item.
        using var scorer = (IDisposable)trained.CreateScorer(D.Train, D.Validation);
        var sampled = Evaluate((IItemScorer)scorer, RankingProtocol.Sampled);
        var full = Evaluate((IItemScorer)scorer, RankingProtocol.FullRanking);
        TestContext.Out.WriteLine($"{model} {loss}: {seconds:F1} s ({string.Join(", ", trained.TrainingReport.Epochs.Select(e => e.TrainSeconds.ToString("F2")))}); {sampled}\n{full}\npopularity: {Popularity.Value.Sampled}\n{Popularity.Value.Full}");
        var epochs = trained.TrainingReport.Epochs;
        Assert.That(trained.ModelName, Is.EqualTo(model.Name.Split(' ')[0]));
        Assert.That(epochs[^1].Loss, Is.LessThan(epochs[0].Loss * 0.8), "loss decreases");
        Assert.That(full.HitRate, Is.GreaterThan(0.6), "full-ranking HR@10 on the planted successor");
        Assert.That(full.Ndcg, Is.GreaterThan(Popularity.Value.Full.Ndcg + 0.3), "full-ranking NDCG@10 margin over popularity");
        Assert.That(sampled.HitRate, Is.GreaterThan(Popularity.Value.Sampled.HitRate + 0.3), "sampled HR@10 margin over popularity");
    }

    [Test]
    public void SameSeedGivesTheSameModel([ValueSource(typeof(SequentialTestModels), nameof(SequentialTestModels.All))] SequentialTestModels.Model model)
    {
        using var a = model.Fit(D, SequentialLoss.SampledSoftmax, epochs: 2);
        using var b = model.Fit(D, SequentialLoss.SampledSoftmax, epochs: 2);
        Assert.That(b.TrainingReport.Epochs.Select(e => e.Loss), Is.EqualTo(a.TrainingReport.Epochs.Select(e => e.Loss)));
        Assert.That(b.ScoreAllItems([1, 2, 3]), Is.EqualTo(a.ScoreAllItems([1, 2, 3])));
    }

    [Test]
    public void FullRankingValidationStopsOnTheFullRankingMetric([ValueSource(typeof(SequentialTestModels), nameof(SequentialTestModels.All))] SequentialTestModels.Model model)
    {
        var trained = model.Create(D.Context.DeepRec().Trainers, o =>
        {
            SequentialTestModels.Common(o, SequentialLoss.SampledSoftmax, epochs: 4);
            (o.ValidationProtocol, o.ValidationK, o.ValidationSet) = (RankingProtocol.FullRanking, 5, D.Validation);
        }).Fit(D.Train);
        using (trained)
        {
            var report = trained.TrainingReport;
            Assert.That(report.ValidationMetricName, Is.EqualTo("NDCG@5 (full ranking)"));
            double best = report.Epochs.Max(e => e.ValidationMetric!.Value);
            Assert.That(report.Epochs[report.BestEpoch!.Value - 1].ValidationMetric, Is.EqualTo(best));
            // The validation item is scored from the training history, as during training.
            using var scorer = (IDisposable)trained.CreateScorer(D.Train);
            var again = D.Context.DeepRec().Evaluation.EvaluateTopK((IItemScorer)scorer, D.Validation, D.Train,
                new TopKEvaluationOptions { K = 5, Protocol = RankingProtocol.FullRanking, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" });
            Assert.That(again.Ndcg, Is.EqualTo(best).Within(1e-6), "the kept weights reproduce the best full-ranking validation NDCG@5");
        }
    }
}
