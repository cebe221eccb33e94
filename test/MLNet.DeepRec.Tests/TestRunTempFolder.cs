using NUnit.Framework;

namespace MLNet.DeepRec.Tests;

/// <summary>
/// Points the system temp path (<c>TMPDIR</c>, read by <see cref="Path.GetTempPath"/> on every call, and so the default
/// <c>MLContext.TempFilePath</c> of every context created afterwards) at one folder for the whole test run, and deletes
/// it at the end. ML.NET's plain <c>mlContext.Model.Load</c> writes each ONNX model of a zip to a temp file that only
/// disposing the loaded model deletes; tests that load a model and then fail an assertion, or load it on purpose
/// without disposing, would otherwise leave those files in /tmp (observed: about a dozen per run).
/// </summary>
[SetUpFixture]
public sealed class TestRunTempFolder
{
    private const string Variable = "TMPDIR";
    private string? _previous;
    private TempFolder? _folder;

    [OneTimeSetUp]
    public void PointTempAtOneFolder()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return; // Windows reads TMP/TEMP; not redirected there
        _previous = Environment.GetEnvironmentVariable(Variable);
        _folder = new TempFolder("deeprec-test-run");
        Environment.SetEnvironmentVariable(Variable, _folder.Path + Path.DirectorySeparatorChar);
    }

    [OneTimeTearDown]
    public void DeleteTheFolder()
    {
        if (_folder is null) return;
        Environment.SetEnvironmentVariable(Variable, _previous);
        _folder.Dispose();
    }
}
