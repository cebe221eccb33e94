// <doc:sasrec-minimal>
using Microsoft.ML;
using MLNet.DeepRec;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
// </doc:sasrec-minimal>
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.DocSamples.Sequential;

/// <summary>The sample of docs/models/sasrec.md, run as written on small synthetic data.</summary>
[NonParallelizable]
public class SasRecSampleTests
{
    [Test]
    public void SasRecTrainsEvaluatesSavesAndReloads()
    {
        using var directory = new SampleDirectory();
        // <doc:sasrec-minimal>
        var ml = new MLContext(seed: 0);
        // An interaction log: UserId, ItemId and Timestamp. For the SASRec repository's "user item" files use
        // ml.DeepRec().Data.LoadUserItemSequences("Video.txt") (row order is time order there).
        IDataView log = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 300, ItemCount = 200, InteractionsPerUser = 20, Seed = 1 });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(log, holdOutValidation: true);   // last → test, second last → validation
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
            .Fit(log);
        IDataView train = keys.Transform(split.Train);
        IDataView validation = keys.Transform(split.Validation!);
        IDataView test = keys.Transform(split.Test);

        SasRecTransformer model = ml.DeepRec().Trainers.SasRec(new SasRecTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey",
            MaxLength = 20, HiddenSize = 32, DropoutRate = 0.2, Loss = SequentialLoss.CrossEntropy,
            LearningRate = 0.01, NumberOfEpochs = 20, EarlyStoppingPatience = 3, Seed = 1,
        }).Fit(train, validation);

        // Rank each test item with the user's training + validation history (the paper's test input), 100 negatives.
        var options = new TopKEvaluationOptions { K = 10, NegativesPerPositive = 100, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        IItemScorer scorer = model.CreateScorer(train, validation);
        TopKMetrics metrics = ml.DeepRec().Evaluation.EvaluateTopK(scorer, test, train, options);
        TopKMetrics baseline = ml.DeepRec().Evaluation.EvaluateTopK(
            ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey"), test, train, options);
        ((IDisposable)scorer).Dispose();
        Console.WriteLine($"SASRec: {metrics}");
        Console.WriteLine($"Popularity: {baseline}");

        // In memory: the next items after a live history of original ids.
        IReadOnlyList<Recommendation> next = model.Recommend(new[] { "i3", "i8", "i21" }, k: 5);
        Console.WriteLine(string.Join(", ", next.Select(r => r.ItemId)));

        // Save with the scoring input's schema (History: item keys, oldest first; ItemKey: the candidate), then reload.
        ml.Model.Save(model, ml.Data.LoadFromEnumerable(new List<NextItemInput>()).Schema, "sasrec.zip");
        var serving = new MLContext();
        ITransformer loaded = DeepRecServing.LoadModel(serving, "sasrec.zip");
        var engine = serving.Model.CreatePredictionEngine<NextItemInput, NextItemPrediction>(loaded);
        uint[] history = new[] { "i3", "i8", "i21" }.Select(model.Vocabulary.ItemKey).ToArray();
        NextItemPrediction prediction = engine.Predict(new NextItemInput { History = history, ItemKey = history[0] });
        Console.WriteLine($"Top {prediction.TopKItems.Length}: {string.Join(", ", prediction.TopKItems.Select(k => model.Vocabulary.ItemId(k)))}");
        // </doc:sasrec-minimal>

        TestContext.Out.WriteLine($"best epoch {model.TrainingReport.BestEpoch} of {model.TrainingReport.Epochs.Count}");
        Assert.That(metrics.NegativesPerPositive, Is.EqualTo(100));
        Assert.That(metrics.HitRate, Is.GreaterThan(baseline.HitRate + 0.05), "SASRec must beat popularity on planted data");
        Assert.That(next.Select(r => r.ItemId), Is.EqualTo(model.Recommend(history, 5).Select(r => r.ItemId)));
        Assert.That(prediction.TopKItems, Is.EqualTo(model.Recommend(history, model.TopK).Select(r => r.ItemKey).ToArray()),
            "the reloaded model's top-K equals the in-memory Recommend");
        Assert.That(prediction.Probability, Is.EqualTo(1 / (1 + MathF.Exp(-prediction.Score))).Within(1e-5f));
        Assert.That(float.IsFinite(prediction.Score), Is.True);
        model.Dispose();
    }
}

// <doc:sasrec-minimal>
// Raw key values as plain UInt32 (not [KeyType] members, which ML.NET would shift by one).
public sealed class NextItemInput
{
    public uint[] History { get; set; } = [];
    public uint ItemKey { get; set; }
}

public sealed class NextItemPrediction
{
    public float Score { get; set; }             // logit of ItemKey being the next item
    public float Probability { get; set; }       // σ(Score)
    public uint[] TopKItems { get; set; } = [];  // the best next item keys, history items left out
    public float[] TopKScores { get; set; } = []; // their logits
}
// </doc:sasrec-minimal>
