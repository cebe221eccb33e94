using MLNet.DeepRec.Tests.Examples;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Packaging;

/// <summary>
/// <c>Fit</c> with a native runtime missing, in a child process: a copy of the probe program's output folder from which
/// one native package's libraries are left out, as in an application that does not reference that package.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MissingNativeRuntimeTests
{
    [Test]
    public void FitWithoutOnnxRuntimeFailsBeforeTheFirstEpochNamingThePackage()
    {
        var (exitCode, stdout, stderr) = RunFitWithout(name => name.StartsWith("libonnxruntime", StringComparison.Ordinal));
        Assert.That(exitCode, Is.EqualTo(1), stdout + stderr);
        Assert.That(stdout, Does.Contain("result=failed epochs_logged=0 error_type=DllNotFoundException"), "no epoch may run before the check");
        Assert.That(stdout, Does.Contain("Add the package Microsoft.ML.OnnxRuntime 1.31.1"));
    }

    [Test]
    public void FitWithoutLibTorchFailsBeforeTheFirstEpochNamingThePackage()
    {
        var (exitCode, stdout, stderr) = RunFitWithout(name => name.StartsWith("libtorch", StringComparison.Ordinal) || name.StartsWith("libc10", StringComparison.Ordinal));
        Assert.That(exitCode, Is.EqualTo(1), stdout + stderr);
        Assert.That(stdout, Does.Contain("result=failed epochs_logged=0 error_type=DllNotFoundException"));
        Assert.That(stdout, Does.Contain("Add the package libtorch-cpu-linux-x64"));
    }

    [Test]
    public void FitWithBothRuntimesTrains()
    {
        var (exitCode, stdout, stderr) = RunFitWithout(_ => false);
        Assert.That(exitCode, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Contain("result=trained epochs_logged=3"));
    }

    private static (int ExitCode, string Stdout, string Stderr) RunFitWithout(Func<string, bool> leaveOut)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("The probe's native libraries are laid out for linux-x64.");
        string dll = ExampleProcess.ProjectDll(Path.Combine("test", "MLNet.DeepRec.Probes"), "MLNet.DeepRec.Probes");
        string source = Path.GetDirectoryName(dll)!;
        string copy = Path.Combine(Path.GetTempPath(), $"deeprec-nonative-{Guid.NewGuid():N}");
        try
        {
            // Managed files are copied (the host and TorchSharp look for natives relative to them); native libraries are
            // linked, not copied (libtorch is 460 MB), and the left-out ones are not there at all.
            foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            {
                string relative = Path.GetRelativePath(source, file);
                string target = Path.Combine(copy, relative);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                bool native = relative.StartsWith("runtimes", StringComparison.Ordinal);
                if (!native) File.Copy(file, target);
                else if (!leaveOut(Path.GetFileName(file))) File.CreateSymbolicLink(target, file);
            }
            // TorchSharp's last resort copies libtorch out of the NuGet cache (460 MB); an empty cache keeps the child from it,
            // as on a machine that never restored the package.
            string emptyCache = Path.Combine(copy, "empty-nuget-cache");
            Directory.CreateDirectory(emptyCache);
            var result = ExampleProcess.Run(Path.Combine(copy, Path.GetFileName(dll)), ["fit-tiny"], TimeSpan.FromMinutes(2),
                new Dictionary<string, string> { ["NUGET_PACKAGES"] = emptyCache });
            TestContext.Out.WriteLine(result.Stdout.Length > 2000 ? result.Stdout[^2000..] : result.Stdout);
            return (result.ExitCode, result.Stdout, result.Stderr);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }
}
