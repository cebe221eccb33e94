using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNet.DeepRec.Serving;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

[TestFixture]
public class DeepRecTransformerTests
{
    public sealed class Row
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
        public float Rating { get; set; }
        public bool Clicked { get; set; }
    }

    public sealed class KeyedRow
    {
        [KeyType(10)] public uint UserId { get; set; }
        [KeyType(10)] public uint ItemId { get; set; }
    }

    public sealed class RankingPrediction
    {
        public float Score { get; set; }
        public float Probability { get; set; }
    }

    public sealed class BinaryPrediction
    {
        public float Score { get; set; }
        public float Probability { get; set; }
        public bool PredictedLabel { get; set; }
    }

    private const int Users = 4, Items = 5; // keys 1..n, row 0 = unknown
    private static readonly float[] UserEmb = Random((Users + 1) * DotProductTestTransformer.Dim, 11);
    private static readonly float[] ItemEmb = Random((Items + 1) * DotProductTestTransformer.Dim, 12);
    private string _dir = "";

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static Row[] Rows()
    {
        var rng = new Random(3);
        var rows = new List<Row>();
        for (int u = 0; u < Users; u++)
            for (int i = 0; i < Items; i++)
                rows.Add(new Row { UserId = $"u{u}", ItemId = $"i{i}", Rating = (float)rng.NextDouble() * 5, Clicked = rng.Next(2) == 1 });
        return [.. rows];
    }

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "deeprec-serving-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static (MLContext Ml, IDataView Data, ITransformer Keys, IDataView Keyed) Setup()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(Rows());
        ITransformer keys = ml.Transforms.Conversion.MapValueToKey("UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemId")).Fit(data);
        return (ml, data, keys, keys.Transform(data));
    }

    private static (uint[] Users, uint[] Items) KeysOf(IDataView view) =>
        (view.GetColumn<uint>("UserId").ToArray(), view.GetColumn<uint>("ItemId").ToArray());

    [Test]
    public void Ranking_ScoresEqualHandComputation_AndColumnsAreScalars()
    {
        var (ml, _, _, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Ranking, keyed);
        IDataView scored = transformer.Transform(keyed);

        Assert.That(scored.Schema["Score"].Type, Is.EqualTo(NumberDataViewType.Single));
        Assert.That(scored.Schema["Probability"].Type, Is.EqualTo(NumberDataViewType.Single));
        Assert.That(scored.Schema["UserId"].Type, Is.InstanceOf<KeyDataViewType>(), "input key columns are kept");
        Assert.That(scored.Schema.GetColumnOrNull("PredictedLabel"), Is.Null);

        var (users, items) = KeysOf(scored);
        float[] scores = scored.GetColumn<float>("Score").ToArray();
        float[] probabilities = scored.GetColumn<float>("Probability").ToArray();
        Assert.That(scores, Has.Length.EqualTo(Users * Items));
        Assert.That(users.Min(), Is.EqualTo(1u), "MapValueToKey keys are 1-based");
        for (int r = 0; r < scores.Length; r++)
        {
            float expected = DotProductTestTransformer.Dot(UserEmb, ItemEmb, users[r], items[r]);
            Assert.That(scores[r], Is.EqualTo(expected).Within(1e-6));
            Assert.That(probabilities[r], Is.EqualTo(1 / (1 + Math.Exp(-expected))).Within(1e-6));
        }
        Assert.That(transformer.IsRowToRowMapper, Is.True);
        Assert.That(transformer.GetOutputSchema(keyed.Schema)["Score"].Type, Is.EqualTo(NumberDataViewType.Single));
    }

    [Test]
    public void SaveTransformerAlone_LoadInFreshContext_SamePredictions()
    {
        var (ml, _, _, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Ranking, keyed);
        string path = Path.Combine(_dir, "alone.zip");
        ml.Model.Save(transformer, keyed.Schema, path);

        var fresh = new MLContext();
        DeepRecServing.RegisterForLoading(fresh);
        ITransformer loaded = fresh.Model.Load(path, out DataViewSchema inputSchema);
        Assert.That(loaded, Is.InstanceOf<TransformerChain<ITransformer>>(), "Load returns the inner ML.NET chain");
        Assert.That(inputSchema["UserId"].Type, Is.InstanceOf<KeyDataViewType>());

        float[] before = transformer.Transform(keyed).GetColumn<float>("Score").ToArray();
        float[] after = loaded.Transform(keyed).GetColumn<float>("Score").ToArray();
        Assert.That(after, Is.EqualTo(before).Within(1e-6));

        using var engine = fresh.Model.CreatePredictionEngine<KeyedRow, RankingPrediction>(loaded);
        using var originalEngine = ml.Model.CreatePredictionEngine<KeyedRow, RankingPrediction>(transformer);
        var p = engine.Predict(new KeyedRow { UserId = 2, ItemId = 3 });
        Assert.That(p.Score, Is.EqualTo(originalEngine.Predict(new KeyedRow { UserId = 2, ItemId = 3 }).Score).Within(1e-6));
        // ML.NET 5.0.1 maps a POCO [KeyType] value v to key v + 1 (see MlNetFactsTests), so this scores keys (3, 4).
        Assert.That(p.Score, Is.EqualTo(DotProductTestTransformer.Dot(UserEmb, ItemEmb, 3, 4)).Within(1e-6));
    }

    [Test]
    public void SaveWholeChain_LoadInFreshContext_PredictionEngineIdentical()
    {
        var (ml, data, keys, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Ranking, keyed);
        TransformerChain<ITransformer> model = new TransformerChain<ITransformer>(keys, transformer);
        string path = Path.Combine(_dir, "chain.zip");
        ml.Model.Save(model, data.Schema, path);

        var fresh = new MLContext();
        DeepRecServing.RegisterForLoading(fresh);
        ITransformer loaded = fresh.Model.Load(path, out _);
        using var original = ml.Model.CreatePredictionEngine<Row, RankingPrediction>(model);
        using var reloaded = fresh.Model.CreatePredictionEngine<Row, RankingPrediction>(loaded);
        foreach (Row row in Rows())
        {
            var a = original.Predict(row);
            var b = reloaded.Predict(row);
            Assert.That(b.Score, Is.EqualTo(a.Score).Within(1e-6));
            Assert.That(b.Probability, Is.EqualTo(a.Probability).Within(1e-6));
        }
        // Scores through the engine equal the batch Transform.
        float[] batch = model.Transform(data).GetColumn<float>("Score").ToArray();
        Row[] rows = Rows();
        for (int r = 0; r < rows.Length; r++)
            Assert.That(reloaded.Predict(rows[r]).Score, Is.EqualTo(batch[r]).Within(1e-6));
    }

    [Test]
    public void RegisterForLoading_IsIdempotent_AndLoadedBinaryModelScores()
    {
        var (ml, data, keys, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.BinaryClassification, keyed);
        var model = new TransformerChain<ITransformer>(keys, transformer);
        string path = Path.Combine(_dir, "binary.zip");
        ml.Model.Save(model, data.Schema, path);
        var fresh = new MLContext();
        DeepRecServing.RegisterForLoading(fresh);
        DeepRecServing.RegisterForLoading(fresh);
        ITransformer loaded = fresh.Model.Load(path, out _);
        using var engine = fresh.Model.CreatePredictionEngine<Row, BinaryPrediction>(loaded);
        using var originalEngine = ml.Model.CreatePredictionEngine<Row, BinaryPrediction>(model);
        foreach (Row row in Rows())
        {
            var a = originalEngine.Predict(row);
            var b = engine.Predict(row);
            Assert.That(b.Score, Is.EqualTo(a.Score).Within(1e-6));
            Assert.That(b.Probability, Is.EqualTo(a.Probability).Within(1e-6));
            Assert.That(b.PredictedLabel, Is.EqualTo(b.Probability > 0.5f));
        }
    }

    [Test]
    public void UnknownUser_ScoresWithEmbeddingRowZero()
    {
        var (ml, data, keys, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Ranking, keyed);
        var model = new TransformerChain<ITransformer>(keys, transformer);
        using var engine = ml.Model.CreatePredictionEngine<Row, RankingPrediction>(model);
        var (_, items) = KeysOf(keyed);
        uint itemKeyOfI0 = items[Array.FindIndex(Rows(), r => r.ItemId == "i0")];
        var p = engine.Predict(new Row { UserId = "never-seen", ItemId = "i0" });
        Assert.That(p.Score, Is.EqualTo(DotProductTestTransformer.Dot(UserEmb, ItemEmb, 0, itemKeyOfI0)).Within(1e-6));
        var q = engine.Predict(new Row { UserId = "never-seen", ItemId = "never-seen-either" });
        Assert.That(q.Score, Is.EqualTo(DotProductTestTransformer.Dot(UserEmb, ItemEmb, 0, 0)).Within(1e-6));
    }

    [Test]
    public void Regression_ProducesScoreOnly_AndRegressionEvaluateRuns()
    {
        var (ml, _, _, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Regression, keyed);
        IDataView scored = transformer.Transform(keyed);
        Assert.That(scored.Schema["Score"].Type, Is.EqualTo(NumberDataViewType.Single));
        Assert.That(scored.Schema.GetColumnOrNull("Probability"), Is.Null);
        Assert.That(scored.Schema.GetColumnOrNull("PredictedLabel"), Is.Null);

        RegressionMetrics metrics = ml.Regression.Evaluate(scored, labelColumnName: "Rating");
        float[] scores = scored.GetColumn<float>("Score").ToArray();
        float[] labels = scored.GetColumn<float>("Rating").ToArray();
        double rmse = Math.Sqrt(scores.Zip(labels, (s, l) => (double)(s - l) * (s - l)).Average());
        Assert.That(metrics.RootMeanSquaredError, Is.EqualTo(rmse).Within(1e-5));
    }

    [Test]
    public void BinaryClassification_ProducesThreeColumns_AndEvaluateRuns()
    {
        var (ml, _, _, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.BinaryClassification, keyed);
        IDataView scored = transformer.Transform(keyed);
        Assert.That(scored.Schema["PredictedLabel"].Type, Is.EqualTo(BooleanDataViewType.Instance));
        Assert.That(scored.Schema["Probability"].Type, Is.EqualTo(NumberDataViewType.Single));

        CalibratedBinaryClassificationMetrics metrics = ml.BinaryClassification.Evaluate(scored, labelColumnName: "Clicked");
        float[] probabilities = scored.GetColumn<float>("Probability").ToArray();
        bool[] predicted = scored.GetColumn<bool>("PredictedLabel").ToArray();
        bool[] labels = scored.GetColumn<bool>("Clicked").ToArray();
        Assert.That(predicted, Is.EqualTo(probabilities.Select(p => p > 0.5f).ToArray()));
        double accuracy = predicted.Zip(labels, (p, l) => p == l ? 1.0 : 0.0).Average();
        Assert.That(metrics.Accuracy, Is.EqualTo(accuracy).Within(1e-9));
        Assert.That(metrics.AreaUnderRocCurve, Is.InRange(0.0, 1.0));
        Assert.That(metrics.LogLoss, Is.GreaterThan(0));

        // The non-calibrated evaluator also runs on the output.
        Assert.DoesNotThrow(() => ml.BinaryClassification.EvaluateNonCalibrated(scored, labelColumnName: "Clicked"));
    }

    [Test]
    public void OnnxInputsNamedDifferently_AreFedFromMappedColumns_AndLeaveNoExtraColumns()
    {
        var (ml, _, _, keyed) = Setup();
        using var renamed = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Ranking, keyed, "user", "item");
        using var plain = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Ranking, keyed);
        IDataView scored = renamed.Transform(keyed);
        Assert.That(scored.Schema.GetColumnOrNull("user"), Is.Null);
        Assert.That(scored.Schema.GetColumnOrNull("item"), Is.Null);
        Assert.That(scored.GetColumn<float>("Score").ToArray(), Is.EqualTo(plain.Transform(keyed).GetColumn<float>("Score").ToArray()).Within(1e-7));
    }

    [Test]
    public void WithoutSchemaSource_SchemaComesFromTheOnnxSignature()
    {
        var (ml, _, _, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Ranking, schemaSource: null);
        var (users, items) = KeysOf(keyed);
        float[] scores = transformer.Transform(keyed).GetColumn<float>("Score").ToArray();
        for (int r = 0; r < scores.Length; r++)
            Assert.That(scores[r], Is.EqualTo(DotProductTestTransformer.Dot(UserEmb, ItemEmb, users[r], items[r])).Within(1e-6));
    }

    [Test]
    public void BadModels_AreRejectedBeforeOnnxRuntime()
    {
        var ml = new MLContext();
        byte[] good = DotProductTestTransformer.BuildGraph(UserEmb, ItemEmb, DeepRecScoreKind.Regression);
        var map = new Dictionary<string, string> { ["UserId"] = "UserId", ["ItemId"] = "ItemId" };
        Assert.Throws<InvalidDataException>(() => _ = new RawTransformer(ml, good.AsSpan(0, good.Length / 2).ToArray(), map, DeepRecScoreKind.Regression));
        // A regression graph has no Probability output: not a valid ranking model.
        Assert.Throws<ArgumentException>(() => _ = new RawTransformer(ml, good, map, DeepRecScoreKind.Ranking));
        Assert.Throws<ArgumentException>(() => _ = new RawTransformer(ml, good, new Dictionary<string, string> { ["UserId"] = "UserId" }, DeepRecScoreKind.Regression));
        Assert.DoesNotThrow(() => new RawTransformer(ml, good, map, DeepRecScoreKind.Regression).Dispose());
    }

    [Test]
    public void ExportOnnx_WritesTheModelOnnxRuntimeRunsInBatches()
    {
        var (ml, _, _, keyed) = Setup();
        using var transformer = new DotProductTestTransformer(ml, UserEmb, ItemEmb, DeepRecScoreKind.Ranking, keyed);
        string path = Path.Combine(_dir, "model.onnx");
        transformer.ExportOnnx(path);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(transformer.OnnxModel));

        using var session = new InferenceSession(path);
        uint[] u = [1, 2, 0], i = [3, 4, 5];
        using var uv = OrtValue.CreateTensorValueFromMemory(u, [3, 1]);
        using var iv = OrtValue.CreateTensorValueFromMemory(i, [3, 1]);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["UserId", "ItemId"], [uv, iv], ["Score"]);
        float[] scores = results[0].GetTensorDataAsSpan<float>().ToArray();
        for (int r = 0; r < 3; r++)
            Assert.That(scores[r], Is.EqualTo(DotProductTestTransformer.Dot(UserEmb, ItemEmb, u[r], i[r])).Within(1e-6));
    }

    private sealed class RawTransformer(MLContext ml, byte[] model, IReadOnlyDictionary<string, string> map, DeepRecScoreKind kind)
        : DeepRecTransformerBase(ml, model, map, kind, null);
}
