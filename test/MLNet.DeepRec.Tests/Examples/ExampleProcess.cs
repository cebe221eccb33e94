using System.Diagnostics;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Examples;

/// <summary>
/// Runs a built example (examples/&lt;Name&gt;) in a child process, as <c>dotnet &lt;Name&gt;.dll</c>: no <c>dotnet run</c>,
/// so no restore or build in the test. The test project builds the examples through ProjectReferences with
/// ReferenceOutputAssembly="false".
/// </summary>
internal static class ExampleProcess
{
    /// <summary>The example's output for this test run's configuration and framework.</summary>
    public static string Dll(string example) => ProjectDll(Path.Combine("examples", example), example);

    /// <summary>The output assembly of the program project in <paramref name="projectFolder"/> (relative to the repository root).</summary>
    public static string ProjectDll(string projectFolder, string assemblyName)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string framework = output.Name, configuration = output.Parent!.Name;
        DirectoryInfo? root = output;
        while (root != null && !File.Exists(Path.Combine(root.FullName, "MLNet.DeepRec.sln"))) root = root.Parent;
        Assert.That(root, Is.Not.Null, $"No MLNet.DeepRec.sln above {output.FullName}.");
        string dll = Path.Combine(root!.FullName, projectFolder, "bin", configuration, framework, assemblyName + ".dll");
        Assert.That(File.Exists(dll), Is.True, $"{dll} is missing: build {projectFolder} ({configuration}).");
        return dll;
    }

    /// <summary>Runs <paramref name="dll"/> with <paramref name="arguments"/>; fails the test if it runs longer than <paramref name="timeout"/>.</summary>
    public static (int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed) Run(string dll, IEnumerable<string> arguments, TimeSpan timeout)
        => Run(dll, arguments, timeout, environment: null);

    /// <summary>Runs <paramref name="dll"/> with <paramref name="arguments"/> and extra <paramref name="environment"/> variables.</summary>
    public static (int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed) Run(string dll, IEnumerable<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment)
        => RunProgram(DotnetHost(), [dll, .. arguments], timeout, environment?.ToDictionary(e => e.Key, e => (string?)e.Value));

    /// <summary>
    /// Runs <paramref name="program"/> with <paramref name="arguments"/>, captures both streams, and fails the test if it
    /// runs longer than <paramref name="timeout"/>. <paramref name="environment"/> sets variables, or removes those whose
    /// value is null.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed) RunProgram(string program, IEnumerable<string> arguments,
        TimeSpan timeout, IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (workingDirectory != null) start.WorkingDirectory = workingDirectory;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        foreach (string a in arguments) start.ArgumentList.Add(a);
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{Path.GetFileName(program)} {string.Join(' ', arguments.Take(2))} did not finish within {timeout.TotalSeconds:F0} s.");
        }
        return (process.ExitCode, stdout.Result, stderr.Result, watch.Elapsed);
    }

    /// <summary>The dotnet host that runs this test (for children started with their own environment).</summary>
    public static string DotnetHost()
    {
        // Set by the .NET SDK for the processes it starts (dotnet test); otherwise the dotnet on PATH.
        string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(host) && File.Exists(host) ? host : "dotnet";
    }
}
