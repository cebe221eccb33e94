using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.FeatureInteraction;

/// <summary>Hostile and careless inputs to NFM/AFM (issue #12): non-finite and absurd feature values, divergence,
/// wrongly typed columns, option ranges.</summary>
public class FeatureInteractionHardInputTests
{
    private sealed class Row
    {
        public string S { get; set; } = "";
        [VectorType(3)] public float[] F { get; set; } = new float[3];
        public float Label { get; set; }
        public bool Flag { get; set; }
    }

    private sealed class VariableRow
    {
        public string S { get; set; } = "";
        public float[] F { get; set; } = new float[3];
        public float Label { get; set; }
        public bool Flag { get; set; }
    }

    private sealed class RawKeyRow
    {
        public uint K { get; set; }
        [VectorType(3)] public float[] F { get; set; } = new float[3];
        public float Label { get; set; }
    }

    private sealed class Scored { public float Score { get; set; } }
    private sealed class ScoredBinary { public float Score { get; set; } public float Probability { get; set; } public bool PredictedLabel { get; set; } }

    private static CancellationToken Cancelled => new(canceled: true);

    /// <summary>40 rows: a key column "K" (from "S") and F[3]; with <paramref name="dense"/> every element is non-zero,
    /// otherwise at most two per row (the sparse top-k path).</summary>
    private static (IDataView Data, ITransformer Keys) Rows(MLContext ml, bool dense, float scale = 1, Func<int, float[]?>? special = null)
    {
        var rng = new Random(5);
        var rows = Enumerable.Range(0, 40).Select(n =>
        {
            var f = new[] { (float)rng.NextDouble() + 0.1f, (float)rng.NextDouble() + 0.1f, dense ? (float)rng.NextDouble() + 0.1f : 0f };
            if (!dense) f[n % 2] = 0; // two non-zeros at most
            f = f.Select(x => x * scale).ToArray();
            f = special?.Invoke(n) ?? f;
            return new Row { S = "s" + n % 4, F = f, Label = f.Sum() / scale + n % 4, Flag = n % 3 == 0 };
        }).ToArray();
        var view = ml.Data.LoadFromEnumerable(rows);
        var keys = ml.Transforms.Conversion.MapValueToKey("K", "S").Fit(view);
        return (keys.Transform(view), keys);
    }

    [TestCase(float.PositiveInfinity)]
    [TestCase(float.NegativeInfinity)]
    public void InfiniteFeaturesAreRejectedNamingColumnRowAndElement(float bad)
    {
        var ml = new MLContext(0);
        var (data, _) = Rows(ml, dense: true, special: n => n == 7 ? new[] { 1f, bad, 1f } : null);
        var e = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Nfm(new[] { "K", "F" }, numberOfEpochs: 1).Fit(data));
        Assert.That(e!.Message, Does.Contain("'F'").And.Contain("row 7").And.Contain("element 1").And.Contain("Infinity"));
        var afm = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Afm(new[] { "K", "F" }, numberOfEpochs: 1).Fit(data));
        Assert.That(afm!.Message, Does.Contain("'F'").And.Contain("row 7"));
    }

    [TestCase(1e30f)]
    [TestCase(-2e6f)]
    public void AbsurdMagnitudesAreRejectedWithTheRuleAndAHint(float bad)
    {
        var ml = new MLContext(0);
        var (data, _) = Rows(ml, dense: true, special: n => n == 3 ? new[] { bad, 1f, 1f } : null);
        var e = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Nfm(new[] { "K", "F" }, numberOfEpochs: 1).Fit(data));
        Assert.That(e!.Message, Does.Contain("'F'").And.Contain("row 3").And.Contain("element 0").And.Contain("1000000").And.Contain("Normalize"));

        // The same rule for validation data.
        var (good, _) = Rows(ml, dense: true);
        var v = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Nfm(new[] { "K", "F" }, numberOfEpochs: 1).Fit(good, data));
        Assert.That(v!.Message, Does.Contain("'F'").And.Contain("row 3"));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void NonFiniteFeaturesAtPredictionTimeScoreNaNWithoutAnException(bool dense)
    {
        var ml = new MLContext(0);
        var (data, keys) = Rows(ml, dense);
        using var nfm = ml.DeepRec().Trainers.Nfm(new NfmTrainer.Options { FeatureColumnNames = new[] { "K", "F" }, NumberOfEpochs = 2, Factors = 4, HiddenLayers = new[] { 4 } }).Fit(data);
        using var afm = ml.DeepRec().Trainers.Afm(new AfmTrainer.Options
            { FeatureColumnNames = new[] { "K", "F" }, NumberOfEpochs = 2, Factors = 4, Task = FeatureInteractionTask.BinaryClassification, LabelColumnName = "Flag" }).Fit(data);

        var inputs = new[]
        {
            new[] { 0.5f, 0f, 0.2f },              // finite
            new[] { float.NaN, 0f, 1f },
            new[] { 0f, float.PositiveInfinity, 0f },
            new[] { float.NegativeInfinity, 1f, 1f },
            new[] { 1f, 1f, float.NaN },           // three values in a two-slot sparse column: the NaN is not among the top 2
        };
        var rows = keys.Transform(ml.Data.LoadFromEnumerable(inputs.Select(f => new Row { S = "s1", F = f })));

        var regression = ml.Data.CreateEnumerable<Scored>(nfm.Transform(rows), reuseRowObject: false).ToArray();
        Assert.That(float.IsFinite(regression[0].Score), Is.True);
        Assert.That(regression.Skip(1).Select(p => p.Score), Is.All.NaN);

        var binary = ml.Data.CreateEnumerable<ScoredBinary>(afm.Transform(rows), reuseRowObject: false).ToArray();
        Assert.That(float.IsFinite(binary[0].Score) && float.IsFinite(binary[0].Probability), Is.True);
        foreach (var p in binary.Skip(1))
        {
            Assert.That(p.Score, Is.NaN);
            Assert.That(p.Probability, Is.NaN);
            Assert.That(p.PredictedLabel, Is.False);
        }

        // Huge but finite values are scored as they are: no exception.
        var huge = keys.Transform(ml.Data.LoadFromEnumerable(new[] { new Row { S = "s1", F = new[] { 1e30f, 0f, 0f } } }));
        Assert.DoesNotThrow(() => ml.Data.CreateEnumerable<Scored>(nfm.Transform(huge), reuseRowObject: false).ToArray());
    }

    [Test]
    public void DivergenceNamesTheLearningRateAndTheLargestFeature()
    {
        var ml = new MLContext(0);
        var (data, _) = Rows(ml, dense: true, scale: 5e5f);
        var options = new NfmTrainer.Options
        {
            FeatureColumnNames = new[] { "K", "F" }, NumberOfEpochs = 2, Factors = 4, HiddenLayers = Array.Empty<int>(), BatchNormalization = false,
            Optimizer = DeepRecOptimizer.Sgd, LearningRate = 1000, BatchSize = 8,
        };
        var e = Assert.Throws<InvalidOperationException>(() => ml.DeepRec().Trainers.Nfm(options).Fit(data));
        Assert.That(e!.Message, Does.Contain("diverged").And.Contain("LearningRate = 1000").And.Contain("largest |feature value|").And.Contain("E+05")
            .And.Contain("NormalizeMeanVariance"));
    }

    [Test]
    public void AVariableLengthVectorIsAClearErrorNamingTheFixedSize()
    {
        var ml = new MLContext(0);
        var (data, keys) = Rows(ml, dense: true);
        var variable = keys.Transform(ml.Data.LoadFromEnumerable(new[] { new VariableRow { S = "s1", F = new[] { 1f, 2f, 3f } } }));
        using var model = ml.DeepRec().Trainers.Nfm(new NfmTrainer.Options { FeatureColumnNames = new[] { "K", "F" }, NumberOfEpochs = 1, Factors = 4 }).Fit(data);
        foreach (var call in new Action[] { () => model.Transform(variable), () => model.GetOutputSchema(variable.Schema), () => model.GetRowToRowMapper(variable.Schema) })
        {
            var e = Assert.Throws<ArgumentException>(() => call());
            Assert.That(e!.Message, Does.Contain("'F'").And.Contain("variable-size").And.Contain("fixed size 3"));
        }
        // As validation data: rejected at the start of Fit, before any epoch (the token is already cancelled).
        var validation = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Afm(new AfmTrainer.Options
            { FeatureColumnNames = new[] { "K", "F" }, NumberOfEpochs = 1, CancellationToken = Cancelled }).Fit(data, variable));
        Assert.That(validation!.Message, Does.Contain("'F'").And.Contain("fixed size 3"));
        // As training data: the estimator's schema check says a known size is needed.
        var training = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Nfm(new[] { "K", "F" }, numberOfEpochs: 1).Fit(variable));
        Assert.That(training!.Message, Does.Contain("'F'").And.Contain("variable size"));
    }

    [Test]
    public void APlainUInt32FeatureColumnIsRejectedByTrainerAndTransformer()
    {
        var ml = new MLContext(0);
        var (data, _) = Rows(ml, dense: true);
        var raw = ml.Data.LoadFromEnumerable(new[] { new RawKeyRow { K = 2, F = new[] { 1f, 1f, 1f }, Label = 1 } });
        using var model = ml.DeepRec().Trainers.Nfm(new NfmTrainer.Options { FeatureColumnNames = new[] { "K", "F" }, NumberOfEpochs = 1, Factors = 4 }).Fit(data);
        var scoring = Assert.Throws<ArgumentException>(() => model.Transform(raw));
        Assert.That(scoring!.Message, Does.Contain("'K'").And.Contain("MapValueToKey"));
        var fit = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Nfm(new[] { "K", "F" }, numberOfEpochs: 1).Fit(raw));
        Assert.That(fit!.Message, Does.Contain("'K'").And.Contain("MapValueToKey"));
    }

    private static IEnumerable<TestCaseData> BadOptions()
    {
        TestCaseData Nfm(string name, string value, Action<NfmTrainer.Options> change) =>
            new TestCaseData((Func<DeepRecTrainers, object>)(t => { var o = new NfmTrainer.Options(); change(o); return t.Nfm(o); }), name).SetName($"NFM {name} {value}");
        TestCaseData Afm(string name, string value, Action<AfmTrainer.Options> change) =>
            new TestCaseData((Func<DeepRecTrainers, object>)(t => { var o = new AfmTrainer.Options(); change(o); return t.Afm(o); }), name).SetName($"AFM {name} {value}");
        yield return Nfm("LearningRate", "1e300", o => o.LearningRate = 1e300);
        yield return Nfm("L2Regularization", "1e300", o => o.L2Regularization = 1e300);
        yield return Nfm("Factors", "2^20", o => o.Factors = 1 << 20);
        yield return Nfm("HiddenLayers", "with width 0", o => o.HiddenLayers = new[] { 0 });
        yield return Nfm("HiddenLayers", "65 layers", o => o.HiddenLayers = Enumerable.Repeat(4, 65).ToArray());
        yield return Nfm("HiddenLayers", "null", o => o.HiddenLayers = null!);
        yield return Nfm("BiInteractionDropoutRate", "NaN", o => o.BiInteractionDropoutRate = double.NaN);
        yield return Nfm("HiddenDropoutRate", "1", o => o.HiddenDropoutRate = 1);
        yield return Nfm("BatchSize", "0", o => o.BatchSize = 0);
        yield return Afm("AttentionSize", "2^20", o => o.AttentionSize = 1 << 20);
        yield return Afm("DropoutRate", "-0.1", o => o.DropoutRate = -0.1);
        yield return Afm("AttentionDropoutRate", "1", o => o.AttentionDropoutRate = 1);
        yield return Afm("AttentionL2", "1e300", o => o.AttentionL2 = 1e300);
        yield return Afm("NumberOfEpochs", "0", o => o.NumberOfEpochs = 0);
        yield return Afm("LabelColumnName", "same as a feature column", o => o.LabelColumnName = "Features");
    }

    [TestCaseSource(nameof(BadOptions))]
    public void EveryBadOptionIsRejectedNamingIt(Func<DeepRecTrainers, object> create, string option)
    {
        var e = Assert.Catch<ArgumentException>(() => create(new MLContext(0).DeepRec().Trainers));
        Assert.That(e!.ParamName, Is.EqualTo(option));
        Assert.That(e.Message, Does.Contain(option));
    }
}
