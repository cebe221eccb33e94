namespace MLNet.DeepRec.Benchmarks;

/// <summary>One benchmark suite: runs, prints progress, and returns its markdown section (or null when its data is missing).</summary>
internal interface IBenchmarkSuite
{
    /// <summary>Suite name, used by --suite and as the section name in docs/benchmarks.md.</summary>
    string Name { get; }

    /// <summary>
    /// File-name prefix of the suite's charts: the model family, not the dataset, so that files committed under
    /// docs/benchmarks/ are never mistaken for (licensed) data.
    /// </summary>
    string PlotPrefix { get; }

    /// <summary>How many <see cref="BenchmarkProgress.Step"/> calls the suite makes (for the progress bar).</summary>
    int PlannedSteps(bool quick);

    /// <summary>Runs the suite; returns its section, curves, points and summary rows, or null when its data is missing.</summary>
    SuiteResult? Run(BenchmarkContext context);
}

/// <summary>Command-line options shared by the suites.</summary>
internal sealed class BenchmarkContext
{
    private readonly string[] _args;

    public BenchmarkContext(string[] args, BenchmarkProgress progress)
    {
        _args = args;
        Progress = progress;
        RepositoryRoot = FindRepoRoot();
        SharedDatasets = Arg("--shared") ?? Path.Combine(RepositoryRoot, "..", "shared", "datasets");
    }

    /// <summary>Quick mode: fewer epochs, for a smoke run of the whole report.</summary>
    public bool Quick => _args.Contains("--quick");

    /// <summary>The folder with MLNet.DeepRec.sln (the current directory when not found).</summary>
    public string RepositoryRoot { get; }

    /// <summary>Folder holding ml-100k/, frappe/, sasrec/ (default ../shared/datasets beside the repository).</summary>
    public string SharedDatasets { get; }

    /// <summary>The run's progress bar.</summary>
    public BenchmarkProgress Progress { get; }

    /// <summary>
    /// Echoes the trainers' per-epoch log lines (and early stopping) to the console and moves the progress bar with
    /// them: the trainers log "Epoch N/M: …" after every epoch.
    /// </summary>
    public void EchoTrainingProgress(Microsoft.ML.MLContext ml) => ml.Log += (_, e) =>
    {
        if (e.Kind != Microsoft.ML.Runtime.ChannelMessageKind.Info) return;
        string m = e.Message;
        int at = m.IndexOf("] Epoch ", StringComparison.Ordinal);
        if (at >= 0 || m.Contains("Early stopping", StringComparison.Ordinal) || m.Contains("Restored the weights", StringComparison.Ordinal))
            Console.WriteLine($"  [{DateTime.Now:HH:mm:ss}] {e.Source.Split(';')[0]}: {m[(m.IndexOf("] ", StringComparison.Ordinal) + 2)..]}");
        if (at >= 0)
        {
            string[] parts = m[(at + 8)..].Split(':', 2)[0].Split('/');
            if (parts.Length == 2 && int.TryParse(parts[0], out int epoch) && int.TryParse(parts[1], out int epochs)) Progress.Epoch(epoch, epochs);
        }
    };

    /// <summary>Amazon Games (<c>Video.txt</c>, the sasrec and games-graph suites' file): --games, else under
    /// <see cref="SharedDatasets"/>; null, after saying so, when it is missing (the suite is skipped).</summary>
    public string? AmazonGamesFile()
    {
        string data = Arg("--games") ?? Path.Combine(SharedDatasets, "sasrec", "Video.txt");
        if (File.Exists(data)) return data;
        Console.Error.WriteLine($"Amazon Games (Video.txt) not found at {Path.GetFullPath(data)}; pass --games path/to/Video.txt. Skipping.");
        return null;
    }

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
