using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Models;

/// <summary>The collaborative trainers as ML.NET's trainer interfaces, their outputs for ML.NET's evaluators, the
/// learned embeddings, and validation data inside a pipeline.</summary>
public class TrainerShapeTests
{
    private static TestData.Keyed D => TestData.SmallSynthetic;

    private sealed class LabelledPair
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
        public bool Label { get; set; }
    }

    [Test]
    public void CollaborativeTrainersAreMlNetTrainerEstimatorsWithPredictionTransformers()
    {
        var ml = D.Context;
        ITrainerEstimator<CollaborativeFilteringTransformer, CollaborativeModelParameters> trainer =
            ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 8, MlpLayers = [16, 8], NumberOfEpochs = 1 });
        Assert.That(trainer.Info.NeedNormalization, Is.False);
        Assert.That(trainer.Info.WantCaching, Is.False);
        using var model = trainer.Fit(D.Train);
        IPredictionTransformer<CollaborativeModelParameters> prediction = model;
        var parameters = prediction.Model;
        var users = parameters.GetUserEmbeddings();
        var items = parameters.GetItemEmbeddings();
        // NeuMF's user vector is its GMF vector followed by its MLP vector (16 / 2 = 8 wide).
        Assert.That(users.Dimension, Is.EqualTo(8 + 8));
        Assert.That(users.KeyCount, Is.EqualTo(model.UserCount));
        Assert.That(items.KeyCount, Is.EqualTo(model.ItemCount));
        Assert.That(users.Values.Length, Is.EqualTo((model.UserCount + 1) * 16));
        Assert.That(parameters.GetEmbeddingTables().Select(t => t.Name), Is.EquivalentTo(new[] { "gmf.user_embedding", "gmf.item_embedding", "mlp.user_embedding", "mlp.item_embedding" }));
        Assert.That(parameters.GetUserBiases(), Is.Null, "NeuMF has no user biases");
    }

    // The embeddings handed out are the ones the model scores with: MF's score is p_u·q_i + b_u + b_i + b exactly.
    [Test]
    public void MfEmbeddingsAndBiasesReproduceItsScores()
    {
        var ml = D.Context;
        using var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 8, NumberOfEpochs = 2 }).Fit(D.Train);
        var p = model.Model.GetUserEmbeddings();
        var q = model.Model.GetItemEmbeddings();
        var bu = model.Model.GetUserBiases()!;
        var bi = model.Model.GetItemBiases()!;
        float b = model.Model.GlobalBias!.Value;
        var scored = model.Transform(D.Test);
        var u = scored.GetColumn<uint>("UserKey").ToArray();
        var i = scored.GetColumn<uint>("ItemKey").ToArray();
        var s = scored.GetColumn<float>("Score").ToArray();
        for (int n = 0; n < s.Length; n++)
        {
            float expected = b + bu[u[n]] + bi[i[n]];
            var pu = p.GetVector(u[n]); var qi = q.GetVector(i[n]);
            for (int f = 0; f < pu.Length; f++) expected += pu[f] * qi[f];
            Assert.That(s[n], Is.EqualTo(expected).Within(1e-4), $"row {n}");
        }
        // Key 0 (unknown) holds the mean of the trained rows, the documented fallback.
        var mean = Enumerable.Range(0, p.Dimension).Select(f => Enumerable.Range(1, p.KeyCount).Average(k => p.GetVector((uint)k)[f])).ToArray();
        Assert.That(p.GetVector(0).ToArray(), Is.EqualTo(mean).Within(1e-4));
        Assert.Throws<ArgumentOutOfRangeException>(() => p.GetVector((uint)p.KeyCount + 1));
    }

    // Implicit-feedback models output PredictedLabel, so ML.NET's binary-classification evaluator works on them.
    [Test]
    public void ImplicitModelsAreEvaluatedByBinaryClassificationEvaluate()
    {
        var ml = D.Context;
        using var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 16, NumberOfEpochs = 8, LearningRate = 0.005 }).Fit(D.Train);
        var itemIds = D.All.GetColumn<string>("ItemId").Distinct().ToArray();
        var random = new Random(4);
        var rows = new List<LabelledPair>();
        foreach (var (user, item) in D.Test.GetColumn<string>("UserId").Zip(D.Test.GetColumn<string>("ItemId")))
        {
            rows.Add(new LabelledPair { UserId = user, ItemId = item, Label = true });
            rows.Add(new LabelledPair { UserId = user, ItemId = itemIds[random.Next(itemIds.Length)], Label = false });
        }
        var labelled = D.Keys.Transform(ml.Data.LoadFromEnumerable(rows));
        var scored = model.Transform(labelled);
        Assert.That(scored.Schema["PredictedLabel"].Type, Is.EqualTo(BooleanDataViewType.Instance));
        var metrics = ml.BinaryClassification.Evaluate(scored);
        TestContext.Out.WriteLine($"AUC {metrics.AreaUnderRocCurve:F4}, accuracy {metrics.Accuracy:F4}");
        // The planted structure makes held-out positives rank well above random items.
        Assert.That(metrics.AreaUnderRocCurve, Is.GreaterThan(0.8));
    }

    // Options.ValidationSet makes early stopping work where only Fit(data) is called: inside an estimator chain.
    [Test]
    public void ValidationSetDrivesEarlyStoppingInsideAPipeline()
    {
        var ml = D.Context;
        var options = new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 8, NumberOfEpochs = 6, ValidationSet = D.Validation, EarlyStoppingPatience = 2,
        };
        // The chain fits a no-op copy first and then the trainer, with Fit(data) only.
        var chain = ml.Transforms.CopyColumns("UserKeyCopy", "UserKey").Append(ml.DeepRec().Trainers.MatrixFactorization(options));
        var fitted = chain.Fit(D.Train);
        var report = fitted.LastTransformer.TrainingReport;
        Assert.That(report.ValidationMetricName, Does.StartWith("NDCG@10"));
        Assert.That(report.BestEpoch, Is.Not.Null);
        Assert.That(report.Epochs.All(e => e.ValidationMetric != null));
        fitted.LastTransformer.Dispose();
    }

    // A validation set whose keys were fitted separately means different ids for the same key: rejected, naming both.
    [Test]
    public void ValidationKeysFittedSeparatelyAreRejected()
    {
        var ml = D.Context;
        var split = ml.DeepRec().Data.LeaveOneOutSplit(D.All, holdOutValidation: true);
        // Fitted on the validation rows in reverse order: same cardinality is not guaranteed, so reuse the ids in another order.
        var reversedIds = ml.Data.LoadFromEnumerable(D.All.GetColumn<string>("UserId").Distinct().Reverse().Select(id => new { UserId = id }).ToArray());
        var otherKeys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Fit(reversedIds)
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId").Fit(D.All));
        var validation = otherKeys.Transform(split.Validation!);
        var trainer = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1, ValidationSet = validation });
        var e = Assert.Throws<ArgumentException>(() => trainer.Fit(D.Train));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.Message, Does.Contain("'UserKey'").And.Contain("different MapValueToKey"));
    }
}
