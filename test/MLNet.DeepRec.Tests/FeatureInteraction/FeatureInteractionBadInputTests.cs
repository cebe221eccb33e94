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

