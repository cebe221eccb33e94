using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Evaluation;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Sequential;

/// <summary>Hostile and careless inputs to SASRec (issue #12): column conflicts, wrongly typed scoring columns, option
/// ranges, non-finite timestamps.</summary>
public class SasRecHardInputTests
{
    private static SequenceTestData.Keyed D => SequenceTestData.Data;

    private static CancellationToken Cancelled => new(canceled: true);

    private sealed class PlainRow { public uint[] History { get; set; } = []; public uint ItemKey { get; set; } }

    private sealed class Event { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; public double Timestamp { get; set; } }

    [Test]
    public void HistoryColumnEqualToItemColumnIsRejectedBeforeAnyTraining()
    {
        var trainers = D.Context.DeepRec().Trainers;
        var options = SasRecTrainingTests.Small(SequentialLoss.BinaryCrossEntropy, epochs: 200);
        options.HistoryColumnName = options.ItemIdColumnName;
        var atCreation = Assert.Throws<ArgumentException>(() => trainers.SasRec(options));
        Assert.That(atCreation!.ParamName, Is.EqualTo("ItemIdColumnName"));
        Assert.That(atCreation.Message, Does.Contain("HistoryColumnName").And.Contain("'ItemKey'"));

        // Changed after creation: Fit rejects it before the first epoch (a started epoch would see the cancelled token).
        var later = SasRecTrainingTests.Small(SequentialLoss.BinaryCrossEntropy, epochs: 200);
        later.CancellationToken = Cancelled;
        var trainer = trainers.SasRec(later);
        later.HistoryColumnName = later.ItemIdColumnName;
        Assert.Throws<ArgumentException>(() => trainer.Fit(D.Train));
    }

    [Test]
    public void PlainUInt32HistoryOrItemIsRejectedNamingTheColumn([ValueSource(typeof(SequentialTestModels), nameof(SequentialTestModels.All))] SequentialTestModels.Model sequential)
    {
        var model = SequentialServingTests.Trained(sequential);
        var plain = D.Context.Data.LoadFromEnumerable(new[] { new PlainRow { History = new uint[] { 1, 2 }, ItemKey = 3 } });
        foreach (var call in new Action[] { () => model.Transform(plain), () => model.GetOutputSchema(plain.Schema), () => model.GetRowToRowMapper(plain.Schema) })
        {
            var e = Assert.Throws<ArgumentException>(() => call());
            Assert.That(e!.Message, Does.Contain("'History'").And.Contain("not a key type").And.Contain("MapValueToKey"));
        }
        // History as keys, the candidate still plain: named too.
        var halfKeyed = SequenceTestData.AsItemKeys(D.Context, plain, model.ItemCount, "History");
        Assert.That(Assert.Throws<ArgumentException>(() => model.Transform(halfKeyed))!.Message, Does.Contain("'ItemKey'").And.Contain("MapValueToKey"));
        // Keys of another item key type: the cardinality is named.
        var otherKeys = SequenceTestData.AsItemKeys(D.Context, plain, model.ItemCount + 5);
        Assert.That(Assert.Throws<ArgumentException>(() => model.Transform(otherKeys))!.Message, Does.Contain("'History'").And.Contain($"{model.ItemCount + 5} keys"));
        // A scalar key where the history vector is expected.
        var scalarHistory = SequenceTestData.AsItemKeys(D.Context, D.Context.Data.LoadFromEnumerable(new[] { new ScalarRow { History = 1, ItemKey = 2 } }), model.ItemCount);
        Assert.That(Assert.Throws<ArgumentException>(() => model.Transform(scalarHistory))!.Message, Does.Contain("'History'").And.Contain("vector"));
    }

    private sealed class ScalarRow { public uint History { get; set; } public uint ItemKey { get; set; } }

    [Test]
    public void ValidationDataWithOtherKeysIsRejectedBeforeAnyTraining()
    {
        var options = SasRecTrainingTests.Small(SequentialLoss.BinaryCrossEntropy, epochs: 1);
        options.CancellationToken = Cancelled;
        var other = SequenceTestData.Create(50, 9); // its own MapValueToKey: other cardinalities
        var e = Assert.Throws<ArgumentException>(() => D.Context.DeepRec().Trainers.SasRec(options).Fit(D.Train, other.Validation));
        Assert.That(e!.Message, Does.StartWith("The validation data's key types (").And.Contain("'UserKey'/'ItemKey'"));
    }

    [Test]
    public void NonFiniteTimestampsAreRejectedNamingTheColumn()
    {
        var ml = new MLContext(0);
        var events = Enumerable.Range(0, 6).Select(n => new Event { UserId = "u" + n % 2, ItemId = "i" + n, Timestamp = n == 4 ? double.NaN : n }).ToArray();
        var view = ml.Data.LoadFromEnumerable(events);
        var keyed = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(view).Transform(view);
        var options = SasRecTrainingTests.Small(SequentialLoss.BinaryCrossEntropy, epochs: 1);
        options.TopK = 2;
        var e = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.SasRec(options).Fit(keyed));
        Assert.That(e!.Message, Does.Contain("'Timestamp'").And.Contain("NaN").And.Contain("row 4"));
    }

    private static IEnumerable<TestCaseData> BadOptions()
    {
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.LearningRate = 1e300), "LearningRate").SetName("SASRec LearningRate 1e300");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.L2Regularization = double.PositiveInfinity), "L2Regularization").SetName("SASRec L2 +Inf");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.DropoutRate = 1), "DropoutRate").SetName("SASRec DropoutRate 1");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.HiddenSize = 1 << 20), "HiddenSize").SetName("SASRec HiddenSize 2^20");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.NumberOfBlocks = 0), "NumberOfBlocks").SetName("SASRec NumberOfBlocks 0");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.NumberOfBlocks = 65), "NumberOfBlocks").SetName("SASRec NumberOfBlocks 65");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.NumberOfHeads = 0), "NumberOfHeads").SetName("SASRec NumberOfHeads 0");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.NumberOfHeads = 3), "NumberOfHeads").SetName("SASRec NumberOfHeads not dividing HiddenSize");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.FeedForwardSize = -1), "FeedForwardSize").SetName("SASRec FeedForwardSize -1");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.MaxLength = 1025), "MaxLength").SetName("SASRec MaxLength 1025");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.NegativesPerPositive = 0), "NegativesPerPositive").SetName("SASRec NegativesPerPositive 0");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.TopK = 0), "TopK").SetName("SASRec TopK 0");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.BatchSize = 0), "BatchSize").SetName("SASRec BatchSize 0");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.ItemIdColumnName = "UserKey"), "ItemIdColumnName").SetName("SASRec item column same as user column");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.TimestampColumnName = "ItemKey"), "TimestampColumnName").SetName("SASRec timestamp column same as item column");
        yield return new TestCaseData((Action<SasRecTrainer.Options>)(o => o.ValidationProtocol = (RankingProtocol)7), "ValidationProtocol").SetName("SASRec ValidationProtocol undefined");
    }

    [TestCaseSource(nameof(BadOptions))]
    public void EveryBadOptionIsRejectedNamingIt(Action<SasRecTrainer.Options> change, string option)
    {
        var options = SasRecTrainingTests.Small(SequentialLoss.BinaryCrossEntropy, epochs: 1);
        change(options);
        var e = Assert.Catch<ArgumentException>(() => D.Context.DeepRec().Trainers.SasRec(options));
        Assert.That(e!.ParamName, Is.EqualTo(option));
        Assert.That(e.Message, Does.Contain(option));
    }
}
