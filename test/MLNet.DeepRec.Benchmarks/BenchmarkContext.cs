namespace MLNet.DeepRec.Benchmarks;

/// <summary>One benchmark suite: runs, prints progress, and returns its markdown section (or null when its data is missing).</summary>
internal interface IBenchmarkSuite
{
    /// <summary>Suite name, used by --suite and as the section name in docs/benchmarks.md.</summary>
    string Name { get; }

    /// <summary>Runs the suite; returns the markdown section wrapped in begin/end markers for <see cref="Report.ReplaceSection"/>.</summary>
    string? Run(BenchmarkContext context);
}

/// <summary>Command-line options shared by the suites.</summary>
internal sealed class BenchmarkContext
{
    private readonly string[] _args;

    public BenchmarkContext(string[] args)
    {
        _args = args;
        SharedDatasets = Arg("--shared") ?? Path.Combine(FindRepoRoot(), "..", "shared", "datasets");
    }

    /// <summary>Quick mode: fewer epochs, for a smoke run of the whole report.</summary>
    public bool Quick => _args.Contains("--quick");

    /// <summary>Folder holding ml-100k/, frappe/, sasrec/ (default ../shared/datasets beside the repository).</summary>
    public string SharedDatasets { get; }

    /// <summary>The arguments as typed, for the report's "Command" line.</summary>
    public string CommandLine => string.Join(" ", _args);

    /// <summary>Echoes the trainers' per-epoch log lines (and early stopping) to the console: the progress of long runs.</summary>
    public static void EchoTrainingProgress(Microsoft.ML.MLContext ml) => ml.Log += (_, e) =>
    {
        if (e.Kind != Microsoft.ML.Runtime.ChannelMessageKind.Info) return;
        string m = e.Message;
        if (m.Contains("] Epoch ", StringComparison.Ordinal) || m.Contains("Early stopping", StringComparison.Ordinal) || m.Contains("Restored the weights", StringComparison.Ordinal))
            Console.WriteLine($"  [{DateTime.Now:HH:mm:ss}] {e.Source.Split(';')[0]}: {m[(m.IndexOf("] ", StringComparison.Ordinal) + 2)..]}");
    };

    /// <summary>The value after <paramref name="name"/>, or null.</summary>
    public string? Arg(string name)
    {
        int i = Array.IndexOf(_args, name);
        return i >= 0 && i + 1 < _args.Length ? _args[i + 1] : null;
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "MLNet.DeepRec.sln"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
