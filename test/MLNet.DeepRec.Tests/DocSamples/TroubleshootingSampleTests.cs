using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.DocSamples.Troubleshooting;

/// <summary>
/// docs/troubleshooting.md quotes the library's error messages: each is triggered here and checked against the quote,
/// and the page's fixes are run.
/// </summary>
[NonParallelizable]
public class TroubleshootingSampleTests
{
    private static (MLContext Ml, IDataView Raw) Data()
    {
        var ml = new MLContext(seed: 0);
        return (ml, ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 60, ItemCount = 120, InteractionsPerUser = 8, Seed = 5 }));
    }

    private static NeuMFTrainer.Options Quick() => new() { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1 };

    [Test]
    public void TextIdsNeedMapValueToKey()
    {
        var (ml, raw) = Data();
        var e = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.NeuMF().Fit(raw));
        Assert.That(e!.Message, Does.StartWith("The user column 'UserId' must be key-typed (use mlContext.Transforms.Conversion.MapValueToKey), but it is String."));
        var schemaCheck = Assert.Throws<ArgumentException>(() => ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.DeepRec().Trainers.NeuMF()).Fit(raw));
        Assert.That(schemaCheck!.Message, Does.Contain("must be a scalar key-typed column (use mlContext.Transforms.Conversion.MapValueToKey)"));
        var missing = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.NeuMF(userIdColumnName: "X").Fit(raw));
        Assert.That(missing!.Message, Does.StartWith("The user column 'X' was not found in the data. Available columns: "));

        // <doc:troubleshooting-keys>
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"));
        // </doc:troubleshooting-keys>
        using var model = keys.Append(ml.DeepRec().Trainers.NeuMF(Quick())).Fit(raw).LastTransformer;
        Assert.That(model.ModelName, Is.EqualTo("NeuMF"));
    }

    [Test]
    public void RatingsNeedARatingThreshold()
    {
        var (ml, raw) = Data();
        var rated = ml.Transforms.CustomMapping<LabelIn, LabelIn>((i, o) => o.Label = 4, contractName: null).Fit(raw).Transform(raw);
        var keyed = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(rated).Transform(rated);
        var o = Quick(); o.LabelColumnName = "Label";
        var e = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.NeuMF(o).Fit(keyed));
        Assert.That(e!.Message, Does.StartWith("Label column 'Label' has value 4 at row ").And.Contain("; without RatingThreshold labels must be 0 or 1."));

        o.RatingThreshold = 4f;
        using (var model = ml.DeepRec().Trainers.NeuMF(o).Fit(keyed)) Assert.That(model.TrainingReport.Epochs, Has.Count.EqualTo(1));

        var noLabel = Quick(); noLabel.RatingThreshold = 4f;
        Assert.That(Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.NeuMF(noLabel))!.Message, Does.StartWith("RatingThreshold needs LabelColumnName."));

        o.RatingThreshold = 5f;
        Assert.That(Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.NeuMF(o).Fit(keyed))!.Message,
            Does.StartWith("The training data has no usable positive interactions (rows: "));
    }

    public sealed class LabelIn { public float Label { get; set; } }

    [Test]
    public void GpuWithoutCudaAndKeyMismatchesGiveTheDocumentedMessages()
    {
        var (ml, raw) = Data();
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(raw);
        var keyed = keys.Transform(raw);
        var gpu = new MLContext(seed: 0) { GpuDeviceId = 0, FallbackToCpu = false };
        var e = Assert.Throws<InvalidOperationException>(() => gpu.DeepRec().Trainers.NeuMF(Quick()).Fit(keyed));
        Assert.That(e!.Message, Is.EqualTo("MLContext.GpuDeviceId = 0 but CUDA is not available (this process uses libtorch's CPU build, or no GPU is present). "
            + "Set MLContext.FallbackToCpu = true to train on the CPU instead, or reference a CUDA build of libtorch."));

        // Validation keyed by a second MapValueToKey fit: other key types.
        var split = ml.DeepRec().Data.LeaveOneOutSplit(raw);
        var otherKeys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(split.Test);
        var mismatch = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.NeuMF(Quick()).Fit(keys.Transform(split.Train), otherKeys.Transform(split.Test)));
        Assert.That(mismatch!.Message, Does.StartWith("The validation data's key types (").And.Contain("; transform both with the same fitted MapValueToKey."));

        using var model = ml.DeepRec().Trainers.NeuMF(Quick()).Fit(keyed);
        var evaluation = Assert.Throws<ArgumentException>(() => ml.DeepRec().Evaluation.EvaluateTopK(model, otherKeys.Transform(split.Test), keyed,
            new TopKEvaluationOptions { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" }));
        Assert.That(evaluation!.Message, Does.StartWith("The test data has ").And.Contain(" item keys but the scorer has ").And.Contain(": they must share the item key mapping."));

        var tooMany = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Evaluation.EvaluateTopK(model, keys.Transform(split.Test), keys.Transform(split.Train),
            new TopKEvaluationOptions { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NegativesPerPositive = 115 }));
        Assert.That(tooMany!.Message, Does.StartWith("Cannot sample 115 distinct negatives for user key "));
    }

    [Test]
    public void LoadingNeedsTheRegisteredMappings()
    {
        using var directory = new SampleDirectory();
        var (ml, raw) = Data();
        var model = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
            .Append(ml.DeepRec().Trainers.NeuMF(Quick())).Fit(raw);
        ml.Model.Save(model, raw.Schema, "model.zip");
        model.LastTransformer.Dispose();

        // <doc:troubleshooting-register>
        var mlContext = new MLContext();
        DeepRecServing.RegisterForLoading(mlContext);
        ITransformer loaded = mlContext.Model.Load("model.zip", out DataViewSchema inputSchema);
        // </doc:troubleshooting-register>

        Assert.That(loaded, Is.Not.InstanceOf<CollaborativeFilteringTransformer>());
        Assert.That(loaded.GetOutputSchema(inputSchema).GetColumnOrNull("Score"), Is.Not.Null);
    }
}
