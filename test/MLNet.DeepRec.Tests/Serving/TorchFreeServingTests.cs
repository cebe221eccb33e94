using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Tests.Examples;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>
/// A saved NeuMF chain (MapValueToKey steps + model) is scored by examples/ServeSavedModel in a child process that
/// references no libtorch package: its predictions equal the in-memory transformer's and no torch native is mapped.
/// </summary>
[TestFixture]
[NonParallelizable]
public class TorchFreeServingTests
{
    public sealed class Pair
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float Score { get; set; }
        public float Probability { get; set; }
    }

    private string _dir = "";
    private string _zip = "";
    private string _onnx = "";
    private KeyVocabulary? _vocabulary;
    private readonly List<(string User, string Item, float Score, float Probability)> _expected = [];
    private readonly Dictionary<string, List<(string Item, float Score)>> _expectedTop = [];

    [OneTimeSetUp]
    public void TrainAndSave()
    {
        _dir = Path.Combine(Path.GetTempPath(), "deeprec-torchfree-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _zip = Path.Combine(_dir, "neumf.zip");

        var data = TestData.Create(new SyntheticInteractionOptions { UserCount = 80, ItemCount = 150, InteractionsPerUser = 12, Seed = 11 });
        MLContext ml = data.Context;
        using CollaborativeFilteringTransformer neumf = ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey",
            ItemIdColumnName = "ItemKey",
            Factors = 4,
            MlpLayers = [16, 8, 4],
            NumberOfEpochs = 2,
            Seed = 3,
        }).Fit(data.Train);
        var chain = new TransformerChain<ITransformer>(data.Keys, neumf);
        DeepRecServing.SaveModel(ml, chain, data.All.Schema, _zip); // with the top-K entries (--top below)
        _onnx = Path.Combine(_dir, "neumf.onnx");
        neumf.ExportOnnx(_onnx);
        _vocabulary = neumf.Vocabulary;

        foreach (string user in new[] { "u0", "u1", "u17", "u79", "u33", "stranger", "u2" })
            _expectedTop[user] = neumf.Recommend(user, 5).Select(r => (r.ItemId!, r.Score)).ToList();
        using var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(chain);
        // Known pairs, an unknown user, an unknown item and both unknown (key 0 → the mean embedding row).
        string[][] pairs = [["u0", "i0"], ["u1", "i5"], ["u17", "i42"], ["u79", "i149"], ["u33", "i7"], ["stranger", "i3"], ["u2", "no-such-item"], ["stranger", "no-such-item"]];
        foreach (string[] p in pairs)
        {
            Prediction r = engine.Predict(new Pair { UserId = p[0], ItemId = p[1] });
            _expected.Add((p[0], p[1], r.Score, r.Probability));
        }
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public void ServeSavedModel_InChildProcess_PredictsLikeInMemoryModel_WithoutTorchNatives()
    {
        string dll = ServeSavedModelDll();
        string outputFolder = Path.GetDirectoryName(dll)!;
        Assert.That(Directory.EnumerateFiles(outputFolder, "*", SearchOption.AllDirectories)
                .Select(Path.GetFileName).Where(n => n!.StartsWith("libtorch", StringComparison.Ordinal) || n!.StartsWith("libc10", StringComparison.Ordinal)
                    || n!.Contains("LibTorchSharp", StringComparison.Ordinal)),
            Is.Empty, "ServeSavedModel must deploy neither libtorch nor TorchSharp's native shim");

        var (exitCode, stdout, stderr) = Run(dll, [_zip, .. _expected.Select(e => $"{e.User}:{e.Item}"), "--top", "5"]);
        Assert.That(exitCode, Is.EqualTo(0), $"ServeSavedModel failed.\nstdout:\n{stdout}\nstderr:\n{stderr}");

        string[][] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(l => l.Split('\t')).ToArray();
        string[][] predictions = lines.Where(l => l[0] == "PREDICTION").ToArray();
        Assert.That(predictions, Has.Length.EqualTo(_expected.Count), stdout);
        for (int n = 0; n < _expected.Count; n++)
        {
            var e = _expected[n];
            Assert.That(predictions[n][1..3], Is.EqualTo(new[] { e.User, e.Item }));
            float score = float.Parse(predictions[n][3], CultureInfo.InvariantCulture);
            float probability = float.Parse(predictions[n][4], CultureInfo.InvariantCulture);
            Assert.That(score, Is.EqualTo(e.Score).Within(1e-6), $"Score of ({e.User}, {e.Item})");
            Assert.That(probability, Is.EqualTo(e.Probability).Within(1e-6), $"Probability of ({e.User}, {e.Item})");
        }
        Assert.That(_expected.Select(e => e.Score).Distinct().Count(), Is.GreaterThan(1), "the model must not be constant");

        // Top-5 from the zip (DeepRecRecommender, ONNX Runtime only) = the in-memory transformer's Recommend.
        foreach (var (user, expected) in _expectedTop)
        {
            string[][] top = lines.Where(l => l[0] == "RECOMMENDATION" && l[1] == user).ToArray();
            Assert.That(top.Select(l => l[3]), Is.EqualTo(expected.Select(e => e.Item)), $"top-5 of {user}: {stdout}");
            Assert.That(top.Select(l => float.Parse(l[4], CultureInfo.InvariantCulture)), Is.EqualTo(expected.Select(e => e.Score)).Within(1e-5), $"top-5 scores of {user}");
        }

        string Value(string key) => lines.Single(l => l[0] == key)[1];
        Assert.That(Value("TORCH_NATIVE_LOADED"), Is.EqualTo("false"), stdout);
        // TorchSharp.dll itself is read as metadata when ML.NET enumerates MLNet.DeepRec's types to find the custom
        // mapping (see docs/serving.md); that runs no TorchSharp code and maps no native, which is what counts.
        Assert.That(lines.Any(l => l[0] == "TORCHSHARP_MANAGED_ASSEMBLY_LOADED"), Is.True, stdout);
        Assert.That(lines.Where(l => l[0] == "NATIVE").Select(l => Path.GetFileName(l[1])), Has.Some.Contains("onnxruntime"),
            "ONNX Runtime must be what scored the rows: " + stdout);
    }

    [Test]
    public void TorchNativeDetection_SeesLibtorchInThisTrainingProcess()
    {
        // The check the child process prints must be able to see libtorch where it is loaded: here, after training.
        string[] mapped = File.Exists("/proc/self/maps") ? File.ReadAllLines("/proc/self/maps") : [];
        if (mapped.Length == 0) Assert.Ignore("/proc/self/maps is not available on this OS.");
        Assert.That(mapped.Any(l => l.Contains("libtorch", StringComparison.Ordinal)), Is.True);
        Assert.That(mapped.Any(l => l.Contains("LibTorchSharp", StringComparison.Ordinal)), Is.True);
    }

    [Test]
    public void ServeSavedModel_TruncatedZip_FailsWithMessage_NotACrash()
    {
        string truncated = Path.Combine(_dir, "truncated.zip");
        byte[] bytes = File.ReadAllBytes(_zip);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        var (exitCode, _, stderr) = Run(ServeSavedModelDll(), [truncated, "u0:i0"]);
        Assert.That(exitCode, Is.EqualTo(1), stderr);
        Assert.That(stderr, Does.Contain("truncated.zip").And.Contain("could not be loaded"));
    }

    [Test]
    public void ExportedOnnx_InferenceSessionOutsideMlNet_ScoresABatchLikeTheTransformer()
    {
        // The docs/serving.md snippet: the exported graph in ONNX Runtime directly, a batch of N rows in one Run.
        uint[] users = _expected.Select(e => _vocabulary!.UserKey(e.User)).ToArray(); // 0 for an unknown id
        uint[] items = _expected.Select(e => _vocabulary!.ItemKey(e.Item)).ToArray();
        Assert.That(users, Has.Some.EqualTo(0u), "the batch includes an unknown user");

        using var session = new InferenceSession(_onnx);
        Assert.That(session.InputMetadata.Keys, Is.EquivalentTo(new[] { "user_key", "item_key" }));
        Assert.That(session.InputMetadata["user_key"].ElementDataType, Is.EqualTo(TensorElementType.UInt32));
        Assert.That(session.InputMetadata["user_key"].Dimensions, Is.EqualTo(new[] { -1, 1 }));
        Assert.That(session.OutputMetadata.Keys, Is.EquivalentTo(new[] { "Score", "Probability" }));
        Assert.That(session.OutputMetadata["Score"].Dimensions, Is.EqualTo(new[] { -1, 1 }));

        using var userKeys = OrtValue.CreateTensorValueFromMemory(users, [users.Length, 1]);
        using var itemKeys = OrtValue.CreateTensorValueFromMemory(items, [items.Length, 1]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { ["user_key"] = userKeys, ["item_key"] = itemKeys },
            ["Score", "Probability"]);
        float[] scores = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        float[] probabilities = outputs[1].GetTensorDataAsSpan<float>().ToArray();
        Assert.That(outputs[0].GetTensorTypeAndShape().Shape, Is.EqualTo(new long[] { users.Length, 1 }));
        for (int n = 0; n < _expected.Count; n++)
        {
            Assert.That(scores[n], Is.EqualTo(_expected[n].Score).Within(1e-6));
            Assert.That(probabilities[n], Is.EqualTo(_expected[n].Probability).Within(1e-6));
        }
    }

    [Test]
    public void LoadModel_GpuAskedForButOnnxRuntimeIsCpuOnly_FallsBackToCpuWhenAllowed()
    {
        // This repository references the CPU package of ONNX Runtime (no CUDA entry point). ML.NET's own Load fails here
        // even with FallbackToCpu = true; DeepRecServing.LoadModel honours FallbackToCpu.
        var raw = new MLContext { GpuDeviceId = 0, FallbackToCpu = true };
        Assert.That(() => raw.Model.Load(_zip, out _), Throws.Exception, "ML.NET 5.0.1 does not fall back on a CPU-only ONNX Runtime");

        var warnings = new List<string>();
        var ml = new MLContext { GpuDeviceId = 0, FallbackToCpu = true };
        ml.Log += (_, e) => { if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        ITransformer model = DeepRecServing.LoadModel(ml, _zip);
        using var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
        foreach (var e in _expected)
            Assert.That(engine.Predict(new Pair { UserId = e.User, ItemId = e.Item }).Score, Is.EqualTo(e.Score).Within(1e-6));
        Assert.That(warnings, Has.Some.Contains("FallbackToCpu"));

        var strict = new MLContext { GpuDeviceId = 0, FallbackToCpu = false };
        var error = Assert.Throws<InvalidOperationException>(() => DeepRecServing.LoadModel(strict, _zip));
        Assert.That(error!.Message, Does.Contain("Microsoft.ML.OnnxRuntime.Gpu").And.Contain("FallbackToCpu"));
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(string dll, IEnumerable<string> arguments)
    {
        var (exitCode, stdout, stderr, _) = ExampleProcess.Run(dll, arguments, TimeSpan.FromMinutes(3));
        return (exitCode, stdout, stderr);
    }

    /// <summary>examples/ServeSavedModel's output for this test run's configuration (built through a ProjectReference
    /// with ReferenceOutputAssembly="false" in the test project).</summary>
    private static string ServeSavedModelDll() => ExampleProcess.Dll("ServeSavedModel");
}
