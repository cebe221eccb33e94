using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.FeatureInteraction;

public class FeatureInteractionLoaderTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "fi-loader-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text) { string p = Path.Combine(_dir, name); File.WriteAllText(p, text); return p; }

    [Test]
    public void LibFmLoadsOneSparseVectorOrOneColumnPerField()
    {
        var ml = new MLContext(0);
        string path = Write("a.libfm", "1 0:1 3:1 5:0.5\r\n-1 1:1 4:1 6:2\n\n1 2:1 3:1 5:1\n");
        var single = ml.DeepRec().Data.LoadLibFm(path);
        Assert.That(single.Schema["Features"].Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, 7)));
        Assert.That(single.GetColumn<float>("Label").ToArray(), Is.EqualTo(new[] { 1f, -1f, 1f }));
        // ML.NET reuses VBuffers between rows: copy what is read.
        var first = single.GetColumn<VBuffer<float>>("Features").Select(v => (v.GetIndices().ToArray(), v.GetValues().ToArray())).First();
        Assert.That(first.Item1, Is.EqualTo(new[] { 0, 3, 5 }));
        Assert.That(first.Item2, Is.EqualTo(new[] { 1f, 1f, 0.5f }));

        var options = ml.DeepRec().Data.InferLibFmFields(path);
        Assert.That(options.FieldStarts, Is.EqualTo(new[] { 0, 3, 5 }));
        Assert.That(options.FeatureCount, Is.EqualTo(7));
        options.BooleanLabel = true;
        var fields = ml.DeepRec().Data.LoadLibFm(path, options);
        Assert.That(fields.Schema["Label"].Type, Is.EqualTo(BooleanDataViewType.Instance));
        Assert.That(fields.Schema["Field1"].Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, 2)));
        Assert.That(fields.GetColumn<bool>("Label").ToArray(), Is.EqualTo(new[] { true, false, true }));
        var field2 = fields.GetColumn<VBuffer<float>>("Field2").Select(v => (v.GetIndices().ToArray(), v.GetValues().ToArray())).ToArray();
        Assert.That(field2[1].Item1, Is.EqualTo(new[] { 1 }));
        Assert.That(field2[1].Item2, Is.EqualTo(new[] { 2f }));
    }

    [Test]
    public void LibFmErrorsNameFileLineAndProblem()
    {
        var data = new MLContext(0).DeepRec().Data;
        var beyond = Assert.Throws<FormatException>(() => data.LoadLibFm(Write("b.libfm", "1 0:1 3:1\n1 0:1 9:1\n"), new LibFmLoaderOptions { FeatureCount = 5 }));
        Assert.That(beyond!.Message, Does.Contain("line 2").And.Contain("feature index 9").And.Contain("FeatureCount = 5"));
        var nan = Assert.Throws<FormatException>(() => data.LoadLibFm(Write("c.libfm", "1 0:NaN\n")));
        Assert.That(nan!.Message, Does.Contain("line 1").And.Contain("0:NaN"));
        var label = Assert.Throws<FormatException>(() => data.LoadLibFm(Write("d.libfm", "yes 0:1\n")));
        Assert.That(label!.Message, Does.Contain("label 'yes'"));
        Assert.Throws<FormatException>(() => data.LoadLibFm(Write("e.libfm", "1 0:1 0:1\n")));
        Assert.Throws<FileNotFoundException>(() => data.LoadLibFm(Path.Combine(_dir, "missing.libfm")));
        Assert.Throws<FormatException>(() => data.InferLibFmFields(Write("f.libfm", "1 0:1 3:1\n1 4:1 2:1\n")));
    }

    [Test]
    public void CsvCategoricalDataFeedsNfmThroughMapValueToKey()
    {
        var ml = new MLContext(0);
        var lines = new List<string> { "user,item,\"time of day\",Label" };
        var rng = new Random(3);
        for (int i = 0; i < 400; i++)
        {
            int u = rng.Next(8), it = rng.Next(6), t = rng.Next(3);
            lines.Add($"u{u},\"item, {it}\",{(t == 0 ? "morning" : t == 1 ? "noon" : "night")},{((u + it) % 2 == 0 ? 1 : -1)}");
        }
        string path = Write("ctx.csv", string.Join("\n", lines));
        var raw = ml.DeepRec().Data.LoadCategoricalCsv(path);
        Assert.That(raw.Schema.Select(c => c.Name), Is.EqualTo(new[] { "Label", "user", "item", "time of day" }));
        Assert.That(raw.GetColumn<ReadOnlyMemory<char>>("item").First().ToString(), Does.StartWith("item, "));
        var keys = ml.Transforms.Conversion.MapValueToKey("user").Append(ml.Transforms.Conversion.MapValueToKey("item")).Append(ml.Transforms.Conversion.MapValueToKey("time of day"));
        var data = keys.Fit(raw).Transform(raw);
        using var fm = ml.DeepRec().Trainers.Nfm(new NfmTrainer.Options
        {
            FeatureColumnNames = new[] { "user", "item", "time of day" }, HiddenLayers = Array.Empty<int>(), BatchNormalization = false, BiInteractionDropoutRate = 0,
            Factors = 4, NumberOfEpochs = 40, BatchSize = 64, LearningRate = 0.03, NumberOfThreads = 1,
        }).Fit(data);
        double rmse = ml.Regression.Evaluate(fm.Transform(data)).RootMeanSquaredError;
        Assert.That(rmse, Is.LessThan(0.3), "the (user + item) parity interaction is learnt");

        var bad = Assert.Throws<FormatException>(() => ml.DeepRec().Data.LoadCategoricalCsv(Write("bad.csv", "a,Label\nx,1\ny\n")));
        Assert.That(bad!.Message, Does.Contain("line 3"));
        Assert.Throws<FormatException>(() => ml.DeepRec().Data.LoadCategoricalCsv(Write("nolabel.csv", "a,b\nx,1\n")));
    }

    [Test]
    public void FrappeFilesLoadWithTenInferredFields()
    {
        string dir = Path.Combine(TestContext.CurrentContext.TestDirectory, "..", "..", "..", "..", "..", "..", "shared", "datasets", "frappe");
        string test = Path.Combine(dir, "frappe.test.libfm"), valid = Path.Combine(dir, "frappe.validation.libfm");
        if (!File.Exists(test) || !File.Exists(valid))
            Assert.Ignore($"frappe is not available at {Path.GetFullPath(dir)} (licensed data, never committed); this test needs ../shared/datasets/frappe.");
        var data = new MLContext(0).DeepRec().Data;
        var options = data.InferLibFmFields(valid, test);
        Assert.That(options.FieldStarts, Has.Length.EqualTo(10));
        Assert.That(options.FieldStarts![1], Is.EqualTo(957), "item field starts after the 957 users");
        var view = data.LoadLibFm(test, options);
        Assert.That(view.GetRowCount(), Is.EqualTo(28860));
        Assert.That(view.GetColumn<float>("Label").Count(l => l > 0), Is.EqualTo(9536));
    }
}
