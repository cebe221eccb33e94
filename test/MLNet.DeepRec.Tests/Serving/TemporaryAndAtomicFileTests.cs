using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Tests.Examples;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>What the library leaves in the temp folder (nothing), and what a failed save leaves at the target (the old file).</summary>
[TestFixture]
public sealed class TemporaryAndAtomicFileTests
{
    private string _temp = "";

    [SetUp]
    public void SetUp()
    {
        _temp = Path.Combine(Path.GetTempPath(), $"deeprec-tempfiles-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_temp);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_temp, recursive: true);

    [Test]
    public void FitWritesItsOnnxFilePrivatelyAndDisposeDeletesIt()
    {
        var ml = new MLContext(0) { TempFilePath = _temp };
        IDataView data = TinyData(ml);
        var model = Fit(ml, data);
        string[] files = Directory.GetFiles(_temp, "*", SearchOption.AllDirectories);
        Assert.That(files, Has.Length.EqualTo(1), "one ONNX file for the fitted transformer, nothing else");
        Assert.That(files[0], Does.EndWith(".onnx"));
        if (!OperatingSystem.IsWindows())
        {
            Assert.That(File.GetUnixFileMode(files[0]), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(File.GetUnixFileMode(Path.GetDirectoryName(files[0])!),
                Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
        }
        // Saving reads the file again (ML.NET's OnnxTransformer does), so it must still be there and complete.
        string saved = Path.Combine(_temp, "model.zip");
        DeepRecServing.SaveModel(ml, model, data.Schema, saved);
        Assert.That(new FileInfo(saved).Length, Is.GreaterThan(new FileInfo(files[0]).Length));
        File.Delete(saved);

        model.Dispose();
        Assert.That(Directory.GetFiles(_temp, "*", SearchOption.AllDirectories), Is.Empty);
        model.Dispose(); // idempotent
    }

    [Test]
    public void AProcessThatExitsWithoutDisposingLeavesNoModelFiles([Values("exit", "kill")] string ending)
    {
        // A child process with its own temp folder trains, saves with DeepRecServing.SaveModel, loads with
        // DeepRecServing.LoadModel, scores, and ends without disposing anything: by exiting, or by SIGKILL (no exit handler
        // runs; the next process cleans up).
        string dll = ExampleProcess.ProjectDll(Path.Combine("test", "MLNet.DeepRec.Probes"), "MLNet.DeepRec.Probes");
        string tmp = Path.Combine(_temp, "child-tmp");
        Directory.CreateDirectory(tmp);
        string modelPath = Path.Combine(_temp, "model.zip");
        var env = new Dictionary<string, string> { ["TMPDIR"] = tmp };
        string[] args = ending == "kill" ? ["litter", modelPath, "kill"] : ["litter", modelPath];
        var run = ExampleProcess.Run(dll, args, TimeSpan.FromMinutes(2), env);
        Assert.That(run.Stdout, Does.Contain("result=ok"), run.Stdout + run.Stderr);
        if (ending == "kill")
        {
            Assert.That(Directory.GetDirectories(tmp, "mlnet-deeprec-*"), Has.Length.EqualTo(1), "a killed process cannot clean up");
            // The next process that needs a temporary file removes the folders of processes that are gone.
            var next = ExampleProcess.Run(dll, ["fit-tiny"], TimeSpan.FromMinutes(2), env);
            Assert.That(next.ExitCode, Is.EqualTo(0), next.Stdout + next.Stderr);
        }
        // What may remain is not ours: ONNX Runtime's telemetry session file (.ses) and, after SIGKILL, the .NET runtime's
        // diagnostic pipes of the killed process.
        string[] left = Directory.GetFileSystemEntries(tmp, "*", SearchOption.AllDirectories)
            .Select(Path.GetFileName)
            .Where(n => n != ".ses" && !n!.StartsWith("clr-debug-pipe-", StringComparison.Ordinal) && !n.StartsWith("dotnet-diagnostic-", StringComparison.Ordinal))
            .ToArray()!;
        Assert.That(left, Is.Empty, "files left in the temp folder");
        Assert.That(Directory.GetFiles(_temp, ".model.zip.*"), Is.Empty, "no temporary file of the atomic save");
    }

    [Test]
    public void SaveModelThatFailsHalfWayLeavesThePreviousFileIntact()
    {
        var ml = new MLContext(0) { TempFilePath = _temp };
        IDataView data = TinyData(ml);
        using var model = Fit(ml, data);
        string path = Path.Combine(_temp, "model.zip");
        DeepRecServing.SaveModel(ml, model, data.Schema, path);
        byte[] good = File.ReadAllBytes(path);

        // A chain ML.NET cannot save (a custom mapping without a contract name) fails after the DeepRec part is written.
        var unsavable = new TransformerChain<ITransformer>(model,
            ml.Transforms.CustomMapping<ScoreRow, ScoreRow>((i, o) => o.Score = i.Score, contractName: null).Fit(model.Transform(data)));
        Assert.That(() => DeepRecServing.SaveModel(ml, unsavable, data.Schema, path), Throws.Exception);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(good), "the previous model is untouched");
        Assert.That(Directory.GetFiles(_temp, ".model.zip.*"), Is.Empty, "the partial file is removed");
        using var loaded = (IDisposable)DeepRecServing.LoadModel(new MLContext(), path);

        // For contrast, ML.NET's own Save truncates the target before it fails: that is why SaveModel exists.
        Assert.That(() => ml.Model.Save(unsavable, data.Schema, path), Throws.Exception);
        Assert.That(new FileInfo(path).Length, Is.Not.EqualTo(good.Length));
    }

    [Test]
    public void ExportOnnxReplacesAFileAtomicallyAndFailsCleanlyWithoutAFolder()
    {
        var ml = new MLContext(0) { TempFilePath = _temp };
        IDataView data = TinyData(ml);
        using var model = Fit(ml, data);
        string path = Path.Combine(_temp, "model.onnx");
        File.WriteAllText(path, "previous");
        model.ExportOnnx(path);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(model.OnnxModel));
        Assert.That(() => model.ExportOnnx(Path.Combine(_temp, "no-such-folder", "m.onnx")), Throws.InstanceOf<DirectoryNotFoundException>());
        model.ExportTopKOnnx(path, k: 3);
        Assert.That(Directory.GetFiles(_temp, ".model.onnx.*"), Is.Empty);
    }

    private static CollaborativeFilteringTransformer Fit(MLContext ml, IDataView data) =>
        ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = nameof(KeyRow.UserId), ItemIdColumnName = nameof(KeyRow.ItemId), NumberOfEpochs = 1, Seed = 1,
        }).Fit(data);

    private static IDataView TinyData(MLContext ml)
    {
        var random = new Random(3);
        return ml.Data.LoadFromEnumerable(Enumerable.Range(0, 300).Select(_ => new KeyRow
        {
            UserId = (uint)random.Next(1, 31),
            ItemId = (uint)random.Next(1, 21),
        }).ToArray());
    }

    private sealed class KeyRow
    {
        [KeyType(30)] public uint UserId { get; set; }
        [KeyType(20)] public uint ItemId { get; set; }
    }

    private sealed class ScoreRow
    {
        public float Score { get; set; }
    }
}
