using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>
/// Truncated or corrupted model zips and ONNX files give managed exceptions with useful messages, never a native crash
/// (a crash would take the test host down), and the files themselves are never modified.
/// </summary>
[TestFixture]
public class BadFileTests
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

    /// <summary>Feeds ONNX bytes to the DeepRec transformer path with the collaborative models' input names.</summary>
    private sealed class OnnxBytesTransformer(MLContext ml, byte[] onnx) : DeepRecTransformerBase(ml, onnx,
        new Dictionary<string, string> { ["user_key"] = "UserKey", ["item_key"] = "ItemKey" }, DeepRecScoreKind.Ranking, null);

    private string _dir = "";
    private string _zip = "";
    private string _onnx = "";
    private byte[] _zipBytes = [];
    private byte[] _onnxBytes = [];

    [OneTimeSetUp]
    public void TrainSaveExport()
    {
        _dir = Path.Combine(Path.GetTempPath(), "deeprec-badfiles-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        var data = TestData.Create(new SyntheticInteractionOptions { UserCount = 60, ItemCount = 120, InteractionsPerUser = 10, Seed = 5 });
        using CollaborativeFilteringTransformer neumf = data.Context.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 4, MlpLayers = [16, 8, 4], NumberOfEpochs = 1, Seed = 1,
        }).Fit(data.Train);
        _zip = Path.Combine(_dir, "neumf.zip");
        _onnx = Path.Combine(_dir, "neumf.onnx");
        data.Context.Model.Save(new TransformerChain<ITransformer>(data.Keys, neumf), data.All.Schema, _zip);
        neumf.ExportOnnx(_onnx);
        _zipBytes = File.ReadAllBytes(_zip);
        _onnxBytes = File.ReadAllBytes(_onnx);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private static byte[] Truncated(byte[] bytes, int length) => bytes[..length];

    private static byte[] Corrupted(byte[] bytes, int offset, int count, byte value)
    {
        byte[] copy = (byte[])bytes.Clone();
        for (int n = offset; n < Math.Min(bytes.Length, offset + count); n++) copy[n] = value;
        return copy;
    }

    // ---- model zips -------------------------------------------------------------------------------------------------

    private static IEnumerable<TestCaseData> BadZips()
    {
        yield return new TestCaseData("empty", (Func<byte[], byte[]>)(b => [])).SetName("Zip_Empty");
        yield return new TestCaseData("first 100 bytes", (Func<byte[], byte[]>)(b => Truncated(b, 100))).SetName("Zip_TruncatedTo100Bytes");
        yield return new TestCaseData("half", (Func<byte[], byte[]>)(b => Truncated(b, b.Length / 2))).SetName("Zip_TruncatedToHalf");
        yield return new TestCaseData("all but the last byte", (Func<byte[], byte[]>)(b => Truncated(b, b.Length - 1))).SetName("Zip_LastByteMissing");
        yield return new TestCaseData("central directory zeroed", (Func<byte[], byte[]>)(b => Corrupted(b, b.Length - 300, 200, 0))).SetName("Zip_CentralDirectoryZeroed");
        yield return new TestCaseData("random bytes", (Func<byte[], byte[]>)(b => RandomBytes(b.Length, 1))).SetName("Zip_RandomBytes");
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [TestCaseSource(nameof(BadZips))]
    public void BadZip_ModelLoad_ThrowsManaged_AndLoadModelNamesTheFile(string what, Func<byte[], byte[]> damage)
    {
        string path = Write("bad.zip", damage(_zipBytes));
        string before = Hash(path);

        // ML.NET's own Load: a managed exception, whatever its type.
        var ml = new MLContext();
        DeepRecServing.RegisterForLoading(ml);
        Exception? raw = null;
        try { using var s = File.OpenRead(path); ml.Model.Load(s, out _); }
        catch (Exception x) { raw = x; }
        Assert.That(raw, Is.Not.Null, $"{what}: ML.NET loaded a damaged zip");
        TestContext.Out.WriteLine($"{what}: mlContext.Model.Load → {raw!.GetType().Name}: {raw.Message}");

        // The helper: InvalidDataException naming the file, with ML.NET's explanation kept.
        var e = Assert.Throws<InvalidDataException>(() => DeepRecServing.LoadModel(new MLContext(), path));
        Assert.That(e!.Message, Does.Contain(path).And.Contain("could not be loaded as an ML.NET model"));
        Assert.That(e.InnerException, Is.Not.Null);
        TestContext.Out.WriteLine($"{what}: DeepRecServing.LoadModel → {e.Message}");
        Assert.That(Hash(path), Is.EqualTo(before), "the file must not be modified");
    }

    [Test]
    public void ByteCorruptionSweep_OverTheWholeZip_NeverCrashes_AndIsRejectedOrScores()
    {
        // Flip one byte every 97 bytes. Positions the zip reader ignores (local headers, timestamps) or that land in
        // data it does not check (ML.NET reads entries without verifying their CRC-32) let the model load; it must then
        // score or fail with a managed exception. Every other position must make LoadModel throw InvalidDataException.
        var ml0 = new MLContext();
        using var reference = ml0.Model.CreatePredictionEngine<Pair, Prediction>(DeepRecServing.LoadModel(ml0, _zip));
        var probe = new Pair { UserId = "u1", ItemId = "i1" };
        float expected = reference.Predict(probe).Score;

        int rejected = 0, loadedSame = 0, loadedDifferent = 0, scoringFailed = 0;
        var inner = new SortedDictionary<string, int>(StringComparer.Ordinal);
        for (int offset = 0; offset < _zipBytes.Length; offset += 97)
        {
            byte[] bytes = (byte[])_zipBytes.Clone();
            bytes[offset] ^= 0x5A;
            string path = Write("flip.zip", bytes);
            string before = Hash(path);
            var ml = new MLContext();
            ITransformer? model = null;
            try
            {
                model = DeepRecServing.LoadModel(ml, path);
            }
            catch (InvalidDataException e)
            {
                rejected++;
                Assert.That(e.Message, Does.Contain(path));
                string key = e.InnerException?.GetType().Name ?? "none";
                inner[key] = inner.GetValueOrDefault(key) + 1;
            }
            if (model != null)
            {
                try
                {
                    using var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
                    if (engine.Predict(probe).Score == expected) loadedSame++; else loadedDifferent++;
                }
                catch (Exception e) when (e is not AssertionException)
                {
                    scoringFailed++;
                }
            }
            Assert.That(Hash(path), Is.EqualTo(before));
        }
        TestContext.Out.WriteLine($"{rejected} corrupted zips rejected (inner: {string.Join(", ", inner.Select(kv => $"{kv.Key} × {kv.Value}"))}); " +
            $"{loadedSame} loaded and scored as the original, {loadedDifferent} loaded and scored differently, {scoringFailed} loaded but failed to score.");
        Assert.That(rejected, Is.GreaterThan(0));
    }

    [Test]
    public void GoodZip_LoadModel_Loads_AndLeavesTheFileUntouched()
    {
        string before = Hash(_zip);
        var ml = new MLContext();
        ITransformer model = DeepRecServing.LoadModel(ml, _zip, out DataViewSchema schema);
        Assert.That(schema.GetColumnOrNull("UserId"), Is.Not.Null);
        using var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
        Assert.That(float.IsFinite(engine.Predict(new Pair { UserId = "u1", ItemId = "i1" }).Score), Is.True);
        Assert.That(Hash(_zip), Is.EqualTo(before));
    }

    [Test]
    public void MissingZip_LoadModel_ThrowsFileNotFound()
    {
        string path = Path.Combine(_dir, "does-not-exist.zip");
        var e = Assert.Throws<FileNotFoundException>(() => DeepRecServing.LoadModel(new MLContext(), path));
        Assert.That(e!.Message, Does.Contain(path));
    }

    // ---- exported ONNX files ----------------------------------------------------------------------------------------

    private static IEnumerable<TestCaseData> BadOnnx()
    {
        yield return new TestCaseData("empty", (Func<byte[], byte[]>)(b => [])).SetName("Onnx_Empty");
        yield return new TestCaseData("first 10 bytes", (Func<byte[], byte[]>)(b => Truncated(b, 10))).SetName("Onnx_TruncatedTo10Bytes");
        yield return new TestCaseData("half", (Func<byte[], byte[]>)(b => Truncated(b, b.Length / 2))).SetName("Onnx_TruncatedToHalf");
        yield return new TestCaseData("all but the last byte", (Func<byte[], byte[]>)(b => Truncated(b, b.Length - 1))).SetName("Onnx_LastByteMissing");
        yield return new TestCaseData("header overwritten", (Func<byte[], byte[]>)(b => Corrupted(b, 0, 16, 0xFF))).SetName("Onnx_HeaderOverwritten");
        yield return new TestCaseData("random bytes", (Func<byte[], byte[]>)(b => RandomBytes(b.Length, 2))).SetName("Onnx_RandomBytes");
    }

    [TestCaseSource(nameof(BadOnnx))]
    public void BadOnnx_TransformerPath_ThrowsInvalidDataException(string what, Func<byte[], byte[]> damage)
    {
        string path = Write("bad.onnx", damage(_onnxBytes));
        string before = Hash(path);
        var e = Assert.Throws<InvalidDataException>(() => new OnnxBytesTransformer(new MLContext(), File.ReadAllBytes(path)).Dispose());
        Assert.That(e!.Message, Does.Contain("ONNX"));
        TestContext.Out.WriteLine($"{what}: {e.Message}");
        Assert.That(Hash(path), Is.EqualTo(before));
    }

    [Test]
    public void TruncationSweep_OverTheOnnxFile_AlwaysInvalidDataException()
    {
        int rejected = 0;
        for (int length = 0; length < _onnxBytes.Length; length += 61)
        {
            try { new OnnxBytesTransformer(new MLContext(), _onnxBytes[..length]).Dispose(); }
            catch (InvalidDataException) { rejected++; continue; }
            Assert.Fail($"An ONNX model truncated to {length} of {_onnxBytes.Length} bytes was accepted.");
        }
        Assert.That(rejected, Is.GreaterThan(10));
    }

    [Test]
    public void ModelZipGivenAsOnnx_ThrowsInvalidDataException()
    {
        var e = Assert.Throws<InvalidDataException>(() => new OnnxBytesTransformer(new MLContext(), _zipBytes).Dispose());
        TestContext.Out.WriteLine(e!.Message);
    }

    [Test]
    public void GoodOnnx_TransformerPath_Scores_AndFileUntouched()
    {
        string before = Hash(_onnx);
        using var transformer = new OnnxBytesTransformer(new MLContext(), File.ReadAllBytes(_onnx));
        Assert.That(transformer.ScoreKind, Is.EqualTo(DeepRecScoreKind.Ranking));
        Assert.That(Hash(_onnx), Is.EqualTo(before));
    }

    [Test]
    public void TruncatedOnnx_MlNetApplyOnnxModel_ThrowsManaged()
    {
        // The same file given straight to ML.NET's OnnxTransformer (no DeepRec check): ONNX Runtime rejects it with a
        // managed exception, not a crash.
        string path = Write("truncated.onnx", Truncated(_onnxBytes, _onnxBytes.Length / 2));
        string before = Hash(path);
        var ml = new MLContext();
        var input = ml.Data.LoadFromEnumerable(new[] { new { user_key = 1u, item_key = 1u } });
        Exception? error = null;
        try { ml.Transforms.ApplyOnnxModel(["Score"], ["user_key", "item_key"], path).Fit(input); }
        catch (Exception e) { error = e; }
        Assert.That(error, Is.Not.Null);
        TestContext.Out.WriteLine($"{error!.GetType().Name}: {error.Message}");
        Assert.That(Hash(path), Is.EqualTo(before));
    }
}
