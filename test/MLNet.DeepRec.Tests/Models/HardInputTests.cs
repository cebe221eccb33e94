using MLNet.DeepRec.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Models;

/// <summary>Hostile and careless inputs to the collaborative trainers and their transformer (issue #12).</summary>
public class HardInputTests
{
    private sealed class Row { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; }

    /// <summary>Plain UInt32 ids where keys are expected.</summary>
    private sealed class RawIds { public uint UserKey { get; set; } public uint ItemKey { get; set; } }

    /// <summary>Keys of another cardinality than the model's (ML.NET stores a POCO key member's value v as key v + 1).</summary>
    private sealed class OtherKeys { [KeyType(7)] public uint UserKey { get; set; } [KeyType(7)] public uint ItemKey { get; set; } }

    private static IDataView Keyed(MLContext ml, IEnumerable<Row> rows)
    {
        var view = ml.Data.LoadFromEnumerable(rows);
        return ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(view).Transform(view);
    }

    /// <summary>1,000 items; user "heavy" has seen 900 of them, 50 light users see 20 each (every item occurs).</summary>
    private static IDataView DenseUserData(MLContext ml, int heavySeen = 900)
    {
        var rows = new List<Row>();
        for (int i = 0; i < heavySeen; i++) rows.Add(new Row { UserId = "heavy", ItemId = $"i{i}" });
        for (int i = 0; i < 1000; i++) rows.Add(new Row { UserId = $"light{i % 50}", ItemId = $"i{i}" });
        return Keyed(ml, rows);
    }

    private static readonly Row[] Tiny =
    {
        new() { UserId = "a", ItemId = "x" }, new() { UserId = "a", ItemId = "y" }, new() { UserId = "b", ItemId = "y" },
        new() { UserId = "b", ItemId = "z" }, new() { UserId = "c", ItemId = "x" }, new() { UserId = "c", ItemId = "w" },
    };

    private static BiasedMatrixFactorizationTrainer.Options Mf(int epochs = 1) => new() { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = epochs, Factors = 4, Seed = 1 };

    /// <summary>A token that is already cancelled: a Fit that reached the epoch loop would throw OperationCanceledException,
    /// so an ArgumentException proves the check ran before any training.</summary>
    private static CancellationToken Cancelled => new(canceled: true);

    [Test]
    public void OptionsChangedAfterTheTrainerIsCreatedAreValidatedAtFit()
    {
        var ml = new MLContext(0);
        var data = Keyed(ml, Tiny);
        var options = Mf();
        var trainer = ml.DeepRec().Trainers.MatrixFactorization(options);

        options.BatchSize = 0; // used to loop forever
        var batch = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(data));
        Assert.That(batch!.ParamName, Is.EqualTo("BatchSize"));
        Assert.That(batch.Message, Does.Contain("BatchSize").And.Contain("1.."));

        options.BatchSize = 256;
        options.NumberOfEpochs = 0; // used to return an untrained model
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(data))!.ParamName, Is.EqualTo("NumberOfEpochs"));

        options.NumberOfEpochs = 1;
        options.LearningRate = 1e300; // used to fail in native code
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(data))!.ParamName, Is.EqualTo("LearningRate"));

        // Valid again: the same trainer trains, with the changed options.
        options.LearningRate = 0.01;
        options.NumberOfEpochs = 2;
        using var model = trainer.Fit(data);
        Assert.That(model.TrainingReport.Epochs, Has.Count.EqualTo(2));
    }

    private static IEnumerable<TestCaseData> BadCollaborativeOptions()
    {
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.LearningRate = 1e300), "LearningRate").SetName("LearningRate 1e300");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.LearningRate = double.PositiveInfinity), "LearningRate").SetName("LearningRate +Inf");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.LearningRate = 0), "LearningRate").SetName("LearningRate 0");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.LearningRate = 1001), "LearningRate").SetName("LearningRate above 1000");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.L2Regularization = 1e300), "L2Regularization").SetName("L2 1e300");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.L2Regularization = -1e-9), "L2Regularization").SetName("L2 negative");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.L2Regularization = double.NaN), "L2Regularization").SetName("L2 NaN");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.BatchSize = 0), "BatchSize").SetName("BatchSize 0");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.BatchSize = (1 << 24) + 1), "BatchSize").SetName("BatchSize above 2^24");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.NumberOfEpochs = 0), "NumberOfEpochs").SetName("NumberOfEpochs 0");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.NumberOfEpochs = 1_000_001), "NumberOfEpochs").SetName("NumberOfEpochs above 1e6");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.EarlyStoppingPatience = -1), "EarlyStoppingPatience").SetName("EarlyStoppingPatience -1");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.NumberOfThreads = -1), "NumberOfThreads").SetName("NumberOfThreads -1");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.NumberOfThreads = 5000), "NumberOfThreads").SetName("NumberOfThreads 5000");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.Factors = 0), "Factors").SetName("Factors 0");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.Factors = 1 << 20), "Factors").SetName("Factors 2^20");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.MlpLayers = new[] { 64, 0 }), "MlpLayers").SetName("MlpLayers with 0");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.MlpLayers = new[] { 1 << 20 }), "MlpLayers").SetName("MlpLayers width 2^20");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.MlpLayers = Enumerable.Repeat(8, 65).ToArray()), "MlpLayers").SetName("MlpLayers 65 layers");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.MlpLayers = Array.Empty<int>()), "MlpLayers").SetName("MlpLayers empty");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.NegativesPerPositive = 0), "NegativesPerPositive").SetName("NegativesPerPositive 0");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.NegativesPerPositive = 1001), "NegativesPerPositive").SetName("NegativesPerPositive 1001");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.ValidationK = 0), "ValidationK").SetName("ValidationK 0");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.ValidationNegativesPerPositive = 100_001), "ValidationNegativesPerPositive").SetName("ValidationNegativesPerPositive 100001");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.PretrainAlpha = double.NaN), "PretrainAlpha").SetName("PretrainAlpha NaN");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.RatingThreshold = float.PositiveInfinity), "RatingThreshold").SetName("RatingThreshold +Inf");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.ItemIdColumnName = "UserKey"), "ItemIdColumnName").SetName("ItemIdColumnName same as UserIdColumnName");
        yield return new TestCaseData((Action<NeuMFTrainer.Options>)(o => o.LabelColumnName = "ItemKey"), "LabelColumnName").SetName("LabelColumnName same as ItemIdColumnName");
    }

    [TestCaseSource(nameof(BadCollaborativeOptions))]
    public void EveryBadOptionIsRejectedAtCreationAndAtFitNamingIt(Action<NeuMFTrainer.Options> change, string option)
    {
        var ml = new MLContext(0);
        var options = new NeuMFTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1, CancellationToken = Cancelled };
        change(options);
        var atCreation = Assert.Catch<ArgumentException>(() => ml.DeepRec().Trainers.NeuMF(options));
        Assert.That(atCreation!.ParamName, Is.EqualTo(option));
        Assert.That(atCreation.Message, Does.Contain(option));

        // The same value set after creation: rejected by Fit, before any epoch (the token is already cancelled).
        var fresh = new NeuMFTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1, CancellationToken = Cancelled };
        var trainer = ml.DeepRec().Trainers.NeuMF(fresh);
        change(fresh);
        var atFit = Assert.Catch<ArgumentException>(() => trainer.Fit(Keyed(ml, Tiny)));
        Assert.That(atFit!.ParamName, Is.EqualTo(option));
    }

    [TestCase("MF", NegativeSampling.Uniform)]
    [TestCase("MF", NegativeSampling.Popularity)]
    [TestCase("NeuMF", NegativeSampling.Uniform)]
    public void AUserWhoHasSeen900Of1000ItemsTrains(string model, NegativeSampling sampling)
    {
        var ml = new MLContext(0);
        var data = DenseUserData(ml);
        CollaborativeFilteringTransformer trained = model == "MF"
            ? ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
                { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 2, Factors = 8, NegativeSampling = sampling, Seed = 3 }).Fit(data)
            : ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
                { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 2, Factors = 8, MlpLayers = new[] { 16, 8 }, NegativeSampling = sampling, Seed = 3 }).Fit(data);
        using (trained)
        {
            Assert.That(trained.TrainedItemCount, Is.EqualTo(1000));
            Assert.That(trained.TrainingReport.Epochs.All(e => double.IsFinite(e.Loss)), Is.True);
            // Recommendations for the heavy user come from the 100 items they have not seen.
            uint heavy = trained.Vocabulary.UserKey("heavy");
            var top = trained.Recommend(heavy, 100);
            Assert.That(top, Has.Count.EqualTo(100));
            Assert.That(top.All(r => int.Parse(r.ItemId![1..]) >= 900), Is.True);
        }
    }

    [Test]
    public void AUserWhoHasSeenEveryItemIsNamedBeforeTraining()
    {
        var ml = new MLContext(0);
        var data = DenseUserData(ml, heavySeen: 1000);
        var options = Mf();
        options.CancellationToken = Cancelled;
        var e = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.MatrixFactorization(options).Fit(data));
        Assert.That(e!.Message, Does.Contain("'heavy'").And.Contain("User key").And.Contain("all 1000 items"));
    }

    [Test]
    public void PlainUInt32ColumnsAreRejectedByTheTrainerAndTheTransformer()
    {
        var ml = new MLContext(0);
        var raw = ml.Data.LoadFromEnumerable(new[] { new RawIds { UserKey = 1, ItemKey = 2 }, new RawIds { UserKey = 2, ItemKey = 1 } });
        var fit = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.MatrixFactorization(Mf()).Fit(raw));
        Assert.That(fit!.Message, Does.Contain("'UserKey'").And.Contain("UInt32").And.Contain("MapValueToKey"));

        using var model = ml.DeepRec().Trainers.MatrixFactorization(Mf()).Fit(Keyed(ml, Tiny));
        foreach (var call in new Action[] { () => model.Transform(raw), () => model.GetOutputSchema(raw.Schema), () => model.GetRowToRowMapper(raw.Schema) })
        {
            var e = Assert.Throws<ArgumentException>(() => call());
            Assert.That(e!.Message, Does.Contain("'UserKey'").And.Contain("not a key type").And.Contain("MapValueToKey"));
        }
    }

    [Test]
    public void KeysOfAnotherCardinalityAreRejectedWhenScoringAndInValidationData()
    {
        var ml = new MLContext(0);
        var data = Keyed(ml, Tiny); // 3 users, 4 items
        var other = ml.Data.LoadFromEnumerable(new[] { new OtherKeys { UserKey = 0, ItemKey = 1 } });
        using var model = ml.DeepRec().Trainers.MatrixFactorization(Mf()).Fit(data);
        var scoring = Assert.Throws<ArgumentException>(() => model.Transform(other));
        Assert.That(scoring!.Message, Does.Contain("'UserKey'").And.Contain("7 keys").And.Contain("has 3"));

        // Validation data: checked at the start of Fit, before any epoch.
        var options = Mf();
        options.CancellationToken = Cancelled;
        var validation = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.MatrixFactorization(options).Fit(data, other));
        Assert.That(validation!.Message, Does.StartWith("The validation data's key types (7 users, 7 items) differ from the training data's (3, 4)").And.Contain("MapValueToKey"));
        var rawValidation = ml.Data.LoadFromEnumerable(new[] { new RawIds { UserKey = 1, ItemKey = 1 } });
        Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.MatrixFactorization(options).Fit(data, rawValidation));
    }

    [Test]
    public void TheDivergenceMessageNamesTheLearningRate()
    {
        var e = TrainingCore.Diverged(3, double.NaN, new BiasedMatrixFactorizationTrainer.Options { LearningRate = 5 }, null);
        Assert.That(e.Message, Does.Contain("epoch 3").And.Contain("NaN").And.Contain("LearningRate = 5").And.Contain("L2Regularization"));
    }
}
