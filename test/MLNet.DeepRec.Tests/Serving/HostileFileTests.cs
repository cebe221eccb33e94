using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>
/// Issue #12: files whose numbers are hostile (a checkpoint claiming 10^8 factors, 5·10^7 users, negative widths; a
/// 7 KB model zip whose graph builds 2^30 floats) are rejected with an <see cref="InvalidDataException"/> naming the
/// field, before anything of the claimed size is allocated — so these tests run in milliseconds — and a rejected or
/// failed model load leaves nothing in the temporary folder.
/// </summary>
[TestFixture]
public class HostileFileTests
{
    private string _dir = "";
    private byte[] _checkpoint = [];
    private byte[] _zip = [];

    [OneTimeSetUp]
    public void TrainAndSave()
    {
        _dir = Path.Combine(Path.GetTempPath(), "deeprec-hostile-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        var data = TestData.Create(new SyntheticInteractionOptions { UserCount = 60, ItemCount = 120, InteractionsPerUser = 10, Seed = 5 });
        using var neumf = data.Context.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 4, MlpLayers = [16, 8], NumberOfEpochs = 1, Seed = 1,
        }).Fit(data.Train);
        string checkpoint = Path.Combine(_dir, "neumf.ckpt"), zip = Path.Combine(_dir, "neumf.zip");
        neumf.SaveCheckpoint(checkpoint);
        data.Context.Model.Save(new TransformerChain<ITransformer>(data.Keys, neumf), data.All.Schema, zip);
        _checkpoint = File.ReadAllBytes(checkpoint);
        _zip = File.ReadAllBytes(zip);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    // ---- checkpoints ------------------------------------------------------------------------------------------------

    /// <summary>Loads a checkpoint whose manifest <paramref name="edit"/> changed; returns the exception, after checking
    /// that the rejection was immediate and allocated next to nothing.</summary>
    private InvalidDataException RejectedCheckpoint(string name, Action<JsonObject> edit)
    {
        string path = Path.Combine(_dir, name + ".ckpt");
        File.WriteAllBytes(path, RewriteEntry(_checkpoint, "manifest.json", bytes =>
        {
            var manifest = JsonNode.Parse(bytes)!.AsObject();
            edit(manifest);
            return System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString());
        }));
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<InvalidDataException>(() => CollaborativeFilteringTransformer.LoadCheckpoint(new MLContext(), path).Dispose())!;
        watch.Stop();
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        TestContext.Out.WriteLine($"{name}: {e.Message} ({watch.ElapsedMilliseconds} ms, {allocated / 1024} KB managed)");
        Assert.That(e.Message, Does.Contain(path));
        Assert.That(allocated, Is.LessThan(16L << 20), "managed bytes allocated by the rejected load");
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
        return e;
    }

    [Test]
    public void Checkpoint_HundredMillionFactors_RejectedNamingFactors()
    {
        // Was: 24 GB allocated by the network's constructor, process killed.
        var e = RejectedCheckpoint("factors-1e8", m => m["HyperParameters"]!["factors"] = new JsonArray(100_000_000));
        Assert.That(e.Message, Does.Contain("hyper-parameter 'factors' = 100000000"));
    }

    [Test]
    public void Checkpoint_FiftyMillionUsersWithoutVocabulary_RejectedNamingUserCount()
    {
        // Was: 3.3 GB of tables allocated, then an InvalidDataException about the weights.
        var e = RejectedCheckpoint("users-5e7", m =>
        {
            m["UserCount"] = 50_000_000;
            m["DeclaredUserCount"] = 50_000_000;
            m["Users"] = null;
        });
        Assert.That(e.Message, Does.Contain("UserCount + 1 = 50000001 rows").And.Contain("user_embedding.weight"));
    }

    [Test]
    public void Checkpoint_NegativeFactors_RejectedNamingFactors()
    {
        // Was: an ExternalException with libtorch's text.
        var e = RejectedCheckpoint("factors-neg", m => m["HyperParameters"]!["factors"] = new JsonArray(-3));
        Assert.That(e.Message, Does.Contain("hyper-parameter 'factors' = -3"));
    }

    [Test]
    public void Checkpoint_NegativeLayerWidth_RejectedNamingTheLayer()
    {
        var e = RejectedCheckpoint("layers-neg", m => m["HyperParameters"]!["layers"] = new JsonArray(16, -8));
        Assert.That(e.Message, Does.Contain("hyper-parameter 'layers'[1] = -8"));
    }

    [Test]
    public void Checkpoint_MismatchedButPlausibleFactors_RejectedByStoredShapes()
    {
        // Within the limits, but not what the stored tensors hold: caught by the header pass, not by a copy.
        var e = RejectedCheckpoint("factors-8", m => m["HyperParameters"]!["factors"] = new JsonArray(8));
        Assert.That(e.Message, Does.Contain("factors = 8").And.Contain("gmf.user_embedding.weight").And.Contain("[61,4]"));
    }

    [Test]
    public void Checkpoint_HugeSeenCount_RejectedNamingTheCount()
    {
        string path = Path.Combine(_dir, "seen.ckpt");
        File.WriteAllBytes(path, RewriteEntry(_checkpoint, "seen.bin", b => { BitConverter.GetBytes(int.MaxValue).CopyTo(b, 0); return b; }));
        var e = Assert.Throws<InvalidDataException>(() => CollaborativeFilteringTransformer.LoadCheckpoint(new MLContext(), path).Dispose())!;
        Assert.That(e.Message, Does.Contain($"declares {int.MaxValue} pairs"));
    }

    [TestCaseSource(typeof(MLNet.DeepRec.Tests.Models.CollaborativeRegistryTests), nameof(MLNet.DeepRec.Tests.Models.CollaborativeRegistryTests.Kinds))]
    public void Describe_MatchesTheStateDictOfTheBuiltNetwork(string kind)
    {
        // The header check compares stored tensors with Describe, never with a built network: the two must agree, on
        // the names and shapes and on which tables follow the user and the item keys.
        var entry = CollaborativeModels.Get(kind, "test");
        var hp = MLNet.DeepRec.Tests.Models.CollaborativeRegistryTests.SmallHyperParameters(entry);
        using var module = entry.Create(7, 9, hp);
        var actual = module.state_dict().ToDictionary(p => p.Key, p => p.Value.shape);
        var specs = entry.Describe(7, 9, hp, "test");
        Assert.That(specs.ToDictionary(p => p.Name, p => p.Shape), Is.EquivalentTo(actual));
        Assert.That(specs.Where(p => p.Role != null).ToDictionary(p => p.Name, p => p.Role!.Value),
            Is.EquivalentTo(module.KeyedTables.ToDictionary(t => t.WeightName, t => t.Table.Role)));
    }

    // ---- model zips -------------------------------------------------------------------------------------------------

    private const string OnnxEntry = "OnnxModel";

    [Test]
    public void ModelZip_HoldsTheOnnxModelWhereTheInspectorLooks()
    {
        // ML.NET's format, as saved: the OnnxTransformer's directory has an "OnnxModel" entry = int32 length + ModelProto.
        using var zip = new ZipArchive(new MemoryStream(_zip), ZipArchiveMode.Read);
        TestContext.Out.WriteLine(string.Join("\n", zip.Entries.Select(e => $"{e.FullName} ({e.Length} bytes)")));
        var onnx = zip.Entries.Where(e => Path.GetFileName(e.FullName) == OnnxEntry).ToList();
        Assert.That(onnx, Has.Count.EqualTo(1));
        byte[] bytes = ReadAll(onnx[0]);
        Assert.That(BitConverter.ToInt32(bytes, 0), Is.EqualTo(bytes.Length - 4));
        Assert.That(OnnxModelInspector.Read(bytes[4..]).ProducerName, Is.EqualTo(OnnxGraphBuilder.ProducerName));
    }

    /// <summary>A ranking graph over user_key/item_key whose Score adds 0 × (a reduction of <paramref name="bomb"/>).</summary>
    private static byte[] GraphWith(Func<OnnxGraphBuilder, string> bomb)
    {
        using var g = new OnnxGraphBuilder("hostile");
        string u = g.AddInput("user_key", OnnxElementType.UInt32, -1, 1);
        g.AddInput("item_key", OnnxElementType.UInt32, -1, 1);
        string total = g.ReduceSum(bomb(g), [0], keepDims: false);
        string score = g.Add(g.Cast(u, OnnxElementType.Float), g.Mul(total, g.ConstFloat(0f)));
        g.AddOutput(g.Identity(score, "Score"), OnnxElementType.Float, -1, 1);
        g.AddOutput(g.Identity(g.Sigmoid(score), "Probability"), OnnxElementType.Float, -1, 1);
        return g.Build();
    }

    private string ZipWithOnnx(string name, byte[] onnx)
    {
        string path = Path.Combine(_dir, name + ".zip");
        File.WriteAllBytes(path, RewriteEntry(_zip, e => Path.GetFileName(e) == OnnxEntry, _ => [.. BitConverter.GetBytes(onnx.Length), .. onnx]));
        return path;
    }

    private static InvalidDataException RejectedModel(string path, string tempFolder)
    {
        var ml = new MLContext { TempFilePath = tempFolder };
        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<InvalidDataException>(() => DeepRecServing.LoadModel(ml, path))!;
        TestContext.Out.WriteLine($"{Path.GetFileName(path)} ({new FileInfo(path).Length} bytes): {e.Message} ({watch.ElapsedMilliseconds} ms)");
        Assert.That(e.Message, Does.Contain(path));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        return e;
    }

    private string FreshTempFolder()
    {
        string folder = Path.Combine(_dir, "tmp-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    [Test]
    public void ModelZip_ConstantOfShapeOf2Pow30Floats_RejectedBeforeOnnxRuntime()
    {
        // Was: loaded, then every Predict took 4 s and 4.4 GB.
        string path = ZipWithOnnx("constantofshape", GraphWith(g => g.Node("ConstantOfShape", [g.ConstInt64Vector(1L << 30)])));
        Assert.That(new FileInfo(path).Length, Is.LessThan(64 * 1024));
        string temp = FreshTempFolder();
        var e = RejectedModel(path, temp);
        Assert.That(e.Message, Does.Contain("op_type 'ConstantOfShape'"));
        Assert.That(Directory.EnumerateFileSystemEntries(temp), Is.Empty, "nothing reached ML.NET, so nothing is left in the temp folder");
    }

    [Test]
    public void ModelZip_ExpandToAHugeConstantShape_Rejected()
    {
        string path = ZipWithOnnx("expand", GraphWith(g => g.Node("Expand", [g.ConstFloat(1f), g.ConstInt64Vector(1L << 30)])));
        var e = RejectedModel(path, FreshTempFolder());
        Assert.That(e.Message, Does.Contain("(Expand) expands to the constant shape [1073741824]"));
    }

    [Test]
    public void ModelZip_BroadcastOfTwoSmallConstantsIntoAHugeOne_Rejected()
    {
        // Two 128 KB initializers whose sum is 2^30 floats (constant-folded by ONNX Runtime at session creation).
        string path = ZipWithOnnx("broadcast", GraphWith(g => g.Add(
            g.AddInitializer("column", new float[1 << 15], 1 << 15, 1), g.AddInitializer("row", new float[1 << 15], 1, 1 << 15))));
        var e = RejectedModel(path, FreshTempFolder());
        Assert.That(e.Message, Does.Contain("(Add) computes a constant of 1073741824 values"));
    }

    [Test]
    public void ModelZip_InitializerDimsInflated_RejectedNamingTheInitializer()
    {
        // A [100, 4] float initializer whose packed dims (0A 02 64 04, then data_type 10 01) are edited to [127, 4]:
        // ONNX Runtime would size the tensor by the dims.
        byte[] onnx = GraphWith(g => g.AddInitializer("weights", new float[400], 100, 4));
        byte[] inflated = (byte[])onnx.Clone();
        int at = inflated.AsSpan().IndexOf(new byte[] { 0x0A, 0x02, 0x64, 0x04, 0x10, 0x01 });
        Assert.That(at, Is.GreaterThan(0));
        inflated[at + 2] = 0x7F;
        string path = ZipWithOnnx("dims", inflated);
        var e = RejectedModel(path, FreshTempFolder());
        Assert.That(e.Message, Does.Contain("ONNX initializer 'weights' declares dims [127,4] (508 values of 4 bytes) but its data holds 1600 bytes"));
    }

    [Test]
    public void ModelZip_OnnxRuntimeRejectsAfterTheChecks_LeavesNoTempFiles()
    {
        // Passes the policy (allowed operators, consistent sizes) but is not a valid graph for ONNX Runtime: a node reads
        // a value nobody produces. ML.NET has by then extracted the zip and written the ONNX copy; both must go.
        byte[] onnx = GraphWith(g => g.Node("Relu", [g.ConstFloat(1f)]));
        byte[] broken = ReplaceAscii(onnx, "const_f32", "const_f99");
        string path = ZipWithOnnx("ort-rejects", broken);
        string temp = FreshTempFolder();
        var e = RejectedModel(path, temp);
        Assert.That(e.InnerException, Is.Not.Null);
        // The library's private process folder may stay (empty) until the process exits; nothing else may.
        Assert.That(Directory.EnumerateFiles(temp, "*", SearchOption.AllDirectories), Is.Empty, "ONNX copy removed");
        Assert.That(Directory.EnumerateDirectories(temp, "*", SearchOption.AllDirectories).Where(d => !Path.GetFileName(d).StartsWith("mlnet-deeprec-", StringComparison.Ordinal)),
            Is.Empty, "ml_dotnet_* folder removed");
    }

    [Test]
    public void ModelZip_OnlyMlNetTransformers_StillLoads()
    {
        // No ONNX inside: nothing for the graph policy to check, and ML.NET loads it as before.
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Pair { UserId = "a", ItemId = "x" }, new Pair { UserId = "b", ItemId = "y" } });
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Fit(data);
        string path = Path.Combine(_dir, "keys-only.zip");
        ml.Model.Save(keys, data.Schema, path);
        string temp = FreshTempFolder();
        var loaded = DeepRecServing.LoadModel(new MLContext { TempFilePath = temp }, path);
        Assert.That(loaded.Transform(data).Schema.GetColumnOrNull("UserKey"), Is.Not.Null);
        (loaded as IDisposable)?.Dispose();
    }

    [Test]
    public void ModelZip_Good_StillLoadsAndScores()
    {
        string path = Path.Combine(_dir, "good.zip");
        File.WriteAllBytes(path, _zip);
        var ml = new MLContext();
        var model = DeepRecServing.LoadModel(ml, path);
        using var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
        Assert.That(float.IsFinite(engine.Predict(new Pair { UserId = "u1", ItemId = "i1" }).Score), Is.True);
    }

    public sealed class Pair
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float Score { get; set; }
    }

    // ---- helpers ----------------------------------------------------------------------------------------------------

    private static byte[] ReadAll(ZipArchiveEntry entry)
    {
        using var s = entry.Open();
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    private static byte[] RewriteEntry(byte[] zip, string entry, Func<byte[], byte[]> change) => RewriteEntry(zip, n => n == entry, change);

    private static byte[] RewriteEntry(byte[] zip, Func<string, bool> which, Func<byte[], byte[]> change)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var e in source.Entries)
            {
                byte[] content = ReadAll(e);
                using var w = target.CreateEntry(e.FullName).Open();
                w.Write(which(e.FullName) ? change(content) : content);
            }
        }
        return output.ToArray();
    }

    private static byte[] ReplaceAscii(byte[] bytes, string from, string to)
    {
        byte[] f = System.Text.Encoding.ASCII.GetBytes(from), t = System.Text.Encoding.ASCII.GetBytes(to);
        byte[] copy = (byte[])bytes.Clone();
        int at = copy.AsSpan().IndexOf(f);
        Assert.That(at, Is.GreaterThanOrEqualTo(0));
        t.CopyTo(copy, at);
        return copy;
    }
}
