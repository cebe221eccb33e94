using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.DocSamples.Sequential;

/// <summary>The GRU4Rec sample of docs/models/sasrec.md, run as written on the SASRec sample's synthetic data.</summary>
[NonParallelizable]
public class Gru4RecSampleTests
{
    [Test]
    public void Gru4RecTrainsEvaluatesAndServesFromTheZip()
    {
        using var directory = new SampleDirectory();
        var ml = new MLContext(seed: 0);
        IDataView log = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 300, ItemCount = 200, InteractionsPerUser = 20, Seed = 1 });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(log, holdOutValidation: true);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(log);
        IDataView train = keys.Transform(split.Train), validation = keys.Transform(split.Validation!), test = keys.Transform(split.Test);
        var options = new TopKEvaluationOptions { K = 10, NegativesPerPositive = 100, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };

        // <doc:gru4rec-minimal>
        // The same log, split, keys and evaluation options as the SASRec program above.
        SequentialTransformer gru = ml.DeepRec().Trainers.Gru4Rec(new Gru4RecTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey",
            MaxLength = 20, HiddenSize = 64, Loss = SequentialLoss.CrossEntropy, DropoutRate = 0.1,
            LearningRate = 0.01, NumberOfEpochs = 30, EarlyStoppingPatience = 5, Seed = 1,
        }).Fit(train, validation);

        IItemScorer scorer = gru.CreateScorer(train, validation);
        TopKMetrics metrics = ml.DeepRec().Evaluation.EvaluateTopK(scorer, test, train, options);
        ((IDisposable)scorer).Dispose();
        Console.WriteLine($"GRU4Rec: {metrics}");

        // A service without TorchSharp: the zip's recommender ranks the next items of a live history with ONNX Runtime.
        DeepRecServing.SaveModel(ml, gru, ml.Data.LoadFromEnumerable(new List<NextItemInput>()).Schema, "gru4rec.zip");
        using DeepRecRecommender recommender = DeepRecServing.LoadRecommender(new MLContext(), "gru4rec.zip");
        IReadOnlyList<Recommendation> next = recommender.RecommendFromHistory(new[] { "i3", "i8", "i21" }, k: 5);
        Console.WriteLine($"{recommender.ModelKind}: {string.Join(", ", next.Select(r => r.ItemId))}");
        // </doc:gru4rec-minimal>

        var baseline = ml.DeepRec().Evaluation.EvaluateTopK(ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey"), test, train, options);
        TestContext.Out.WriteLine($"popularity: {baseline}; best epoch {gru.TrainingReport.BestEpoch} of {gru.TrainingReport.Epochs.Count}");
        Assert.That(metrics.HitRate, Is.GreaterThan(baseline.HitRate + 0.05), "GRU4Rec must beat popularity on planted data");
        Assert.That(recommender.ModelKind, Is.EqualTo("GRU4Rec"));
        Assert.That(next.Select(r => r.ItemId), Is.EqualTo(gru.Recommend(new[] { "i3", "i8", "i21" }, 5).Select(r => r.ItemId)));
        gru.Dispose();
    }
}
