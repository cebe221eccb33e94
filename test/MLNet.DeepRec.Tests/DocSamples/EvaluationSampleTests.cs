using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.DocSamples.Evaluation;

/// <summary>The samples of docs/evaluation.md: the two protocols on one model, a popularity baseline and a random scorer.</summary>
public class EvaluationSampleTests
{
    [Test]
    public void BothProtocolsRankTheSameModelAndTheNumbersDiffer()
    {
        var ml = new MLContext(seed: 0);
        var interactions = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 300, ItemCount = 200, InteractionsPerUser = 20, Seed = 4 });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(interactions);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(interactions);
        IDataView train = keys.Transform(split.Train), test = keys.Transform(split.Test);
        using var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
            { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 10, LearningRate = 0.005, Seed = 1 }).Fit(train);

        // <doc:evaluation-protocols>
        // The same model and data under both protocols, next to a popularity ranking and a random one.
        var sampled = new TopKEvaluationOptions { K = 10, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };   // 99 negatives
        var full = new TopKEvaluationOptions
            { K = 10, Protocol = RankingProtocol.FullRanking, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        var scorers = new (string Name, IItemScorer Scorer)[]
        {
            ("MF", model),
            ("Popularity", ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey")),
            ("Random", new RandomScorer(model.UserCount, model.ItemCount, seed: 1)),
        };
        foreach (var (name, scorer) in scorers)
        {
            TopKMetrics s = ml.DeepRec().Evaluation.EvaluateTopK(scorer, test, train, sampled);
            TopKMetrics f = ml.DeepRec().Evaluation.EvaluateTopK(scorer, test, train, full);
            Console.WriteLine($"{name,-10} {s}");
            Console.WriteLine($"{name,-10} {f}");
        }
        // </doc:evaluation-protocols>

        var results = scorers.ToDictionary(x => x.Name, x => (
            Sampled: ml.DeepRec().Evaluation.EvaluateTopK(x.Scorer, test, train, sampled),
            Full: ml.DeepRec().Evaluation.EvaluateTopK(x.Scorer, test, train, full)));
        foreach (var (name, (s, f)) in results)
        {
            Assert.That(s.ToString(), Does.StartWith("Sampled (99 negatives) @10:"));
            Assert.That(f.ToString(), Does.StartWith($"FullRanking (all {model.ItemCount} items, seen excluded) @10:"));
            Assert.That(f.HitRate, Is.LessThan(s.HitRate), $"{name}: full ranking is the harder test");
        }
        // Chance level: 10 of 100 candidates under Sampled; 10 of the ~180 unseen items under FullRanking.
        Assert.That(results["Random"].Sampled.HitRate, Is.EqualTo(0.10).Within(0.05));
        Assert.That(results["Random"].Full.HitRate, Is.EqualTo(10.0 / (model.ItemCount - 19)).Within(0.04));
        Assert.That(results["MF"].Sampled.HitRate, Is.GreaterThan(results["Popularity"].Sampled.HitRate + 0.1));
        Assert.That(results["MF"].Full.HitRate, Is.GreaterThan(results["Popularity"].Full.HitRate));
    }
}

// <doc:evaluation-random-scorer>
// Any model can be evaluated through IItemScorer. This one scores at random: the chance level of each protocol.
public sealed class RandomScorer(int userCount, int itemCount, int seed) : IItemScorer
{
    private readonly Random _random = new(seed);

    public int UserCount => userCount;
    public int ItemCount => itemCount;

    // items: row-major [users.Length, candidatesPerUser]; return one score per entry, higher = more relevant.
    public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser) =>
        items.Select(_ => _random.NextSingle()).ToArray();

    // Row-major [users.Length, ItemCount]: column j holds the score of item key j + 1.
    public float[] ScoreAllItems(int[] users) =>
        Enumerable.Range(0, users.Length * itemCount).Select(_ => _random.NextSingle()).ToArray();
}
// </doc:evaluation-random-scorer>
