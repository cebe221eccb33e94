using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.FeatureInteraction;

public class FeatureInteractionBadInputTests
{
    private static PlantedData.Set D => PlantedData.Default;

    private sealed class VectorRow
    {
        [VectorType(3)] public float[] F { get; set; } = new float[3];
        public float Label { get; set; }
        public bool Flag { get; set; }
    }

    private sealed class WideRow
    {
        [VectorType(4)] public float[] F { get; set; } = new float[4];
        public float Label { get; set; }
    }

    private sealed class VariableRow
    {
        public float[] F { get; set; } = new float[3];
        public float Label { get; set; }
    }

    private static IDataView Vectors(MLContext ml, float bad = 1f) => ml.Data.LoadFromEnumerable(new[]
    {
        new VectorRow { F = new[] { 1f, 0f, 2f }, Label = 1 },
        new VectorRow { F = new[] { 0f, bad, 1f }, Label = 0 },
    });

    [Test]
    public void NaNFeatureValuesAreRejectedNamingColumnAndRow()
    {
        var ml = new MLContext(0);
        var ex = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Nfm("F", numberOfEpochs: 1).Fit(Vectors(ml, float.NaN)));
        Assert.That(ex!.Message, Does.Contain("'F'").And.Contain("NaN").And.Contain("row 1"));
    }

    // Every registered model reads its data through the shared reader: the same clear errors, never a libtorch crash.
    [TestCaseSource(typeof(FeatureInteractionModels), nameof(FeatureInteractionModels.All))]
    public void EveryModelRejectsBadFeaturesLabelsAndColumnsClearly(FeatureInteractionModels.Model model)
    {
        var ml = new MLContext(0);
        IEstimator<FeatureInteractionTransformer> Trainer(string[] columns, string label = "Label", FeatureInteractionTask task = FeatureInteractionTask.Regression) =>
            model.Create(ml.DeepRec().Trainers, o => { o.FeatureColumnNames = columns; o.LabelColumnName = label; o.Task = task; o.NumberOfEpochs = 1; });
        var nan = Assert.Throws<InvalidOperationException>(() => Trainer(["F"]).Fit(Vectors(ml, float.NaN)));
        Assert.That(nan!.Message, Does.Contain("'F'").And.Contain("NaN").And.Contain("row 1"));
        var huge = Assert.Throws<InvalidOperationException>(() => Trainer(["F"]).Fit(Vectors(ml, 1e30f)));
        Assert.That(huge!.Message, Does.Contain("'F'").And.Contain("row 1"));
        var nanLabel = Assert.Throws<InvalidOperationException>(() => Trainer(["F"]).Fit(ml.Data.LoadFromEnumerable(new[] { new VectorRow { F = [1f, 0f, 2f], Label = float.NaN } })));
        Assert.That(nanLabel!.Message, Does.Contain("'Label'").And.Contain("NaN"));
        var kind = Assert.Throws<ArgumentException>(() => Trainer(["F"], task: FeatureInteractionTask.BinaryClassification).Fit(Vectors(ml)));
        Assert.That(kind!.Message, Does.Contain("'Label'").And.Contain("Boolean"));
        var text = Assert.Throws<ArgumentException>(() => Trainer(["AKey", "A"]).Fit(D.Train));
        Assert.That(text!.Message, Does.Contain("'A'").And.Contain("MapValueToKey"));
    }

    [Test]
    public void DeepModelOptionsAreValidated()
    {
        var t = new MLContext(0).DeepRec().Trainers;
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => t.DeepFm(new DeepFmTrainer.Options { FmDropoutRate = 1 }))!.ParamName, Is.EqualTo("FmDropoutRate"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => t.WideAndDeep(new WideAndDeepTrainer.Options { EmbeddingDropoutRate = -0.1 }))!.ParamName, Is.EqualTo("EmbeddingDropoutRate"));
        Assert.Throws<ArgumentException>(() => t.DeepFm(new DeepFmTrainer.Options { HiddenLayers = [] }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.DcnV2(new DcnV2Trainer.Options { CrossLayers = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.DcnV2(new DcnV2Trainer.Options { CrossRank = -1 }));
        Assert.Throws<ArgumentException>(() => t.DcnV2(new DcnV2Trainer.Options { CrossLayers = 0, HiddenLayers = [] }));
        // Full-rank cross layers over a wide input would hold d² weights each: a clear error suggesting a rank.
        var ml = new MLContext(0);
        var wide = Assert.Throws<ArgumentException>(() => t.DcnV2(new DcnV2Trainer.Options { FeatureColumnNames = ["AKey", "BKey", "CKey"], Factors = 2048, NumberOfEpochs = 1 }).Fit(D.Train));
        Assert.That(wide!.Message, Does.Contain("CrossRank").And.Contain("6144"));
    }

    [Test]
    public void NaNLabelsAreRejected()
    {
        var ml = new MLContext(0);
        var rows = new[] { new VectorRow { F = new[] { 1f, 0f, 2f }, Label = float.NaN } };
        var ex = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Nfm("F", numberOfEpochs: 1).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.That(ex!.Message, Does.Contain("'Label'").And.Contain("NaN"));
    }

    [Test]
    public void WrongLabelKindForTheTaskIsAClearError()
    {
        var ml = new MLContext(0);
        var binaryOnSingle = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Nfm("F", task: FeatureInteractionTask.BinaryClassification).Fit(Vectors(ml)));
        Assert.That(binaryOnSingle!.Message, Does.Contain("'Label'").And.Contain("Boolean"));
        var regressionOnBool = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Afm("F", labelColumnName: "Flag").Fit(Vectors(ml)));
        Assert.That(regressionOnBool!.Message, Does.Contain("'Flag'").And.Contain("BinaryClassification"));
    }

    [Test]
    public void ColumnsOfTheWrongTypeOrSizeAreClearErrors()
    {
        var ml = new MLContext(0);
        var text = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Nfm(new[] { "AKey", "A" }).Fit(D.Train));
        Assert.That(text!.Message, Does.Contain("'A'").And.Contain("MapValueToKey"));
        var missing = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Nfm("Nope").Fit(Vectors(ml)));
        Assert.That(missing!.Message, Does.Contain("'Nope'"));
        var variable = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Nfm("F").Fit(ml.Data.LoadFromEnumerable(new[] { new VariableRow() })));
        Assert.That(variable!.Message, Does.Contain("'F'").And.Contain("variable size"));

        // Validation data (or data to explain) with another vector size than the training data.
        using var model = ml.DeepRec().Trainers.Afm(new AfmTrainer.Options { FeatureColumnNames = new[] { "F" }, NumberOfEpochs = 1 }).Fit(Vectors(ml));
        var wide = ml.Data.LoadFromEnumerable(new[] { new WideRow { F = new[] { 1f, 0, 0, 1 } } });
        var size = Assert.Throws<ArgumentException>(() => model.Explain(wide));
        Assert.That(size!.Message, Does.Contain("'F'").And.Contain("size 4").And.Contain("size 3"));
        Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Nfm("F", numberOfEpochs: 1).Fit(Vectors(ml), wide));
        // Scoring through ML.NET with a wrong vector size fails in ML.NET's OnnxTransformer, naming the column.
        var scoring = Assert.Catch(() => model.Transform(wide).GetColumn<float>("Score").ToArray());
        Assert.That(scoring!.Message, Does.Contain("F"));
    }

    [Test]
    public void OptionsAreValidated()
    {
        var t = new MLContext(0).DeepRec().Trainers;
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => t.Nfm(new NfmTrainer.Options { BiInteractionDropoutRate = 1 }))!.ParamName, Is.EqualTo("BiInteractionDropoutRate"));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Nfm(new NfmTrainer.Options { HiddenLayers = new[] { 0 } }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Afm(new AfmTrainer.Options { AttentionSize = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Afm(new AfmTrainer.Options { AttentionL2 = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Afm(new AfmTrainer.Options { Factors = 0 }));
        Assert.Throws<ArgumentException>(() => t.Nfm(new NfmTrainer.Options { FeatureColumnNames = new[] { "A", "A" } }));
        Assert.Throws<ArgumentException>(() => t.Nfm(new NfmTrainer.Options { FeatureColumnNames = new[] { "Label" } }));
        Assert.Throws<ArgumentException>(() => t.Nfm(new NfmTrainer.Options { FeatureColumnNames = Array.Empty<string>() }));
        // AFM needs pairs.
        var ml = new MLContext(0);
        var ex = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Afm(new[] { "AKey" }).Fit(D.Train));
        Assert.That(ex!.Message, Does.Contain("pairs"));
    }
}

