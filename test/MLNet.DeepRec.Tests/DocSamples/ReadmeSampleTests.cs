// <doc:readme-pipeline>
using Microsoft.ML;
using MLNet.DeepRec;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
// </doc:readme-pipeline>
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.DocSamples.Readme;

/// <summary>The README's "A minimal pipeline", run as written.</summary>
[NonParallelizable]
public class ReadmeSampleTests
{
    [Test]
    public void MinimalPipelineTrainsEvaluatesSavesAndReloads()
    {
        using var directory = new SampleDirectory();
        // <doc:readme-pipeline>
        var ml = new MLContext(seed: 0);
        // Implicit feedback: UserId, ItemId (text), Label, Timestamp. Generated here so that the sample runs anywhere;
        // for MovieLens 100K use ml.DeepRec().Data.LoadMovieLens("u.data") instead.
        IDataView data = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 300, ItemCount = 200, InteractionsPerUser = 20, Seed = 1 });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(data);              // latest interaction per user → Test

        // Raw ids → keys (the trainers read key-typed columns), then NeuMF.
        var pipeline = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
            .Append(ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
            {
                UserIdColumnName = "UserKey",
                ItemIdColumnName = "ItemKey",
                NumberOfEpochs = 10,
                Seed = 42,
            }));
        var model = pipeline.Fit(split.Train);
        CollaborativeFilteringTransformer neumf = model.LastTransformer;

        // Top-K metrics next to a popularity baseline. Each report names its protocol: "Sampled (99 negatives) @10: HR=…".
        IDataView train = model.Transform(split.Train), test = model.Transform(split.Test);
        var options = new TopKEvaluationOptions { K = 10, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        TopKMetrics metrics = ml.DeepRec().Evaluation.EvaluateTopK(neumf, test, train, options);
        TopKMetrics popularity = ml.DeepRec().Evaluation.EvaluateTopK(
            ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey"), test, train, options);
        Console.WriteLine($"NeuMF:      {metrics}");
        Console.WriteLine($"Popularity: {popularity}");

        // Top 5 unseen items for a user, by original id.
        foreach (var r in neumf.Recommend("u0", k: 5))
            Console.WriteLine($"{r.ItemId}: {r.Score:F2}");

        // Save the whole chain, then load it in a fresh context and score with ONNX Runtime (libtorch is not used).
        ml.Model.Save(model, split.Train.Schema, "neumf.zip");
        var serving = new MLContext();
        ITransformer loaded = DeepRecServing.LoadModel(serving, "neumf.zip");
        var engine = serving.Model.CreatePredictionEngine<Pair, Prediction>(loaded);
        Prediction p = engine.Predict(new Pair { UserId = "u0", ItemId = "i7" });
        Console.WriteLine($"Score {p.Score:F3}, Probability {p.Probability:F3}");
        // </doc:readme-pipeline>

        Assert.That(metrics.Protocol, Is.EqualTo(RankingProtocol.Sampled));
        Assert.That(metrics.HitRate, Is.GreaterThan(popularity.HitRate + 0.1), "NeuMF must beat popularity on planted data");
        Assert.That(metrics.Ndcg, Is.GreaterThan(popularity.Ndcg + 0.05));
        var inMemory = ml.Model.CreatePredictionEngine<Pair, Prediction>(model).Predict(new Pair { UserId = "u0", ItemId = "i7" });
        Assert.That(p.Score, Is.EqualTo(inMemory.Score).Within(1e-5f), "reloaded score equals the in-memory one");
        Assert.That(p.Probability, Is.EqualTo(1 / (1 + MathF.Exp(-p.Score))).Within(1e-5f));
        Assert.That(loaded, Is.Not.InstanceOf<CollaborativeFilteringTransformer>());
        neumf.Dispose();
    }
}

// <doc:readme-pipeline>
public sealed class Pair { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; }
public sealed class Prediction { public float Score { get; set; } public float Probability { get; set; } }
// </doc:readme-pipeline>
