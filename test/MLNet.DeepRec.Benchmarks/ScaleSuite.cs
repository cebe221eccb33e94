using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// Cost against size on synthetic data (<c>GenerateSyntheticInteractions</c> with key-typed ids): MF and NeuMF epoch
/// time, throughput and peak memory at 1M, 5M and 20M interactions in the ML-20M shape; MF throughput against catalogue
/// size (10K, 100K, 1M items) with the default (Auto) and dense embedding updates; and full-catalogue top-10 over 1M
/// items. Every measurement runs in a fresh child process of this program (<c>--scale-run</c>), so that each peak
/// resident set is that run's own: the kernel's high-water mark (VmHWM) of the child. <c>--quick</c>: 1/10 sizes.
/// </summary>
internal sealed class ScaleSuite : IBenchmarkSuite
{
    /// <summary>Prefix of the one stdout line in which a child reports its measurement (JSON).</summary>
    private const string ResultMarker = "SCALE-RESULT ";
    private const int Seed = 2026;
    private const int BatchSize = 1024;
    private const int Negatives = 4;

    // ML-20M's shape (138,493 users, 26,744 items, 20M ratings).
    private const int Ml20mUsers = 138_493, Ml20mItems = 26_744;
    private const int CatalogueUsers = 50_000;
    private const long CatalogueInteractions = 5_000_000;
    private const int TopKUsers = 50_000, TopKInteractionsPerUser = 40, TopKRecommendUsers = 10_000;

    // Targets of issue 10 (full sizes).
    private const double MfEpochTarget = 150, NeuMfEpochTarget = 400, CatalogueRatioTarget = 0.7, MfPeakTargetMb = 3 * 1024, TopKTarget = 15;
    private const double DenseLimitSeconds = 300;

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public string Name => "scale";

    public string PlotPrefix => "scale";

    // 6 size runs, 3 catalogue runs (Auto), 2 dense runs, the dense probe, dense at the largest catalogue, top-K.
    public int PlannedSteps(bool quick) => 14;

    /// <summary>What one child process runs.</summary>
    /// <param name="Kind">"train" or "topk" (train, then time <c>Recommend</c>).</param>
    /// <param name="Model">"MF" or "NeuMF".</param>
    /// <param name="RecommendUsers">For "topk": how many users (keys 1..n) get a top-10 list.</param>
    internal sealed record RunSpec(string Kind, string Model, int Users, int Items, int InteractionsPerUser, EmbeddingUpdateMode Updates, int Seed, int RecommendUsers = 0);

    /// <summary>What one child process measured.</summary>
    /// <param name="SparseTables">Which embedding tables the run updated row-wise, e.g. "2 of 4 (97% of values)".</param>
    /// <param name="OtherCores">CPU used by other processes during the run, in cores (null without /proc).</param>
    internal sealed record RunResult(long Interactions, double GenerateSeconds, double FitSeconds, double EpochSeconds, double SamplesPerSecond,
        double DataSeconds, double StartRssMb, double DataRssMb, double PeakRssMb, string SparseTables, double? OtherCores, double? TopKSeconds, int TopKLists);

    /// <summary>One measurement as the report shows it: its spec and its result, or why there is none.</summary>
    private sealed record Row(string Label, RunSpec Spec, RunResult? Result, string? Error)
    {
        public string Failure => Error ?? "no result";
    }

    public SuiteResult? Run(BenchmarkContext context)
    {
        bool quick = context.Quick;
        double f = quick ? 0.1 : 1;
        int Size(long n) => (int)Math.Round(n * f);
        var progress = context.Progress;
        string? threads = context.Arg("--threads");
        var suiteWatch = Stopwatch.StartNew();

        // 1. Cost against interactions, ML-20M shape.
        int users = Size(Ml20mUsers), items = Size(Ml20mItems);
        long[] totals = { Size(1_000_000), Size(5_000_000), Size(20_000_000) };
        var bySize = new List<Row>();
        foreach (string model in new[] { "MF", "NeuMF" })
            foreach (long total in totals)
            {
                var spec = new RunSpec("train", model, users, items, PerUser(total, users), EmbeddingUpdateMode.Auto, Seed);
                bySize.Add(Launch($"{model}, {Count(total)} interactions", spec, progress, threads, quick));
            }

        // 2. MF against catalogue size at a fixed number of interactions; Auto, then dense.
        int catUsers = Size(CatalogueUsers);
        int[] catalogues = { Size(10_000), Size(100_000), Size(1_000_000) };
        int catPerUser = PerUser(Size(CatalogueInteractions), catUsers);
        var byCatalogue = new List<Row>();
        foreach (int n in catalogues)
            byCatalogue.Add(Launch($"MF, {Count(n)} items, Auto", new RunSpec("train", "MF", catUsers, n, catPerUser, EmbeddingUpdateMode.Auto, Seed), progress, threads, quick));
        foreach (int n in catalogues.Take(2))
            byCatalogue.Add(Launch($"MF, {Count(n)} items, Dense", new RunSpec("train", "MF", catUsers, n, catPerUser, EmbeddingUpdateMode.Dense, Seed), progress, threads, quick));
        // Dense at the largest catalogue only when an epoch fits the limit: its step rate, measured on few interactions
        // over the same tables (a dense step's cost follows the tables, not the data), projects the epoch.
        int largest = catalogues[^1];
        double limit = DenseLimitSeconds * f;
        var probe = Launch($"MF, {Count(largest)} items, Dense (probe)", new RunSpec("train", "MF", catUsers, largest, 3, EmbeddingUpdateMode.Dense, Seed), progress, threads, quick);
        long largestInteractions = byCatalogue.First(r => r.Spec.Items == largest).Result?.Interactions ?? (long)catUsers * catPerUser;
        double? projected = probe.Result is { } p ? largestInteractions * (1.0 + Negatives) / p.SamplesPerSecond : null;
        string denseLargestLabel = $"MF, {Count(largest)} items, Dense";
        var denseSpec = new RunSpec("train", "MF", catUsers, largest, catPerUser, EmbeddingUpdateMode.Dense, Seed);
        Row denseLargest;
        if (projected is double s && s <= limit)
            denseLargest = Launch(denseLargestLabel, denseSpec, progress, threads, quick);
        else
        {
            progress.Step($"{denseLargestLabel}: skipped");
            string why = probe.Result is { } pr
                ? string.Create(CultureInfo.InvariantCulture, $"skipped: projected epoch {projected:N0} s > {limit:N0} s (dense probe on {pr.Interactions:N0} interactions over the same tables: {pr.SamplesPerSecond:N0} samples/s, peak RSS {pr.PeakRssMb:N0} MB)")
                : $"skipped: the dense probe failed ({probe.Failure})";
            Console.WriteLine($"{denseLargestLabel}: {why}");
            denseLargest = new Row(denseLargestLabel, denseSpec, null, why);
        }
        byCatalogue.Add(denseLargest);

        // 3. Full-catalogue top-10 with a trained MF over the largest catalogue.
        var topSpec = new RunSpec("topk", "MF", Size(TopKUsers), largest, TopKInteractionsPerUser, EmbeddingUpdateMode.Auto, Seed, Size(TopKRecommendUsers));
        var topK = Launch($"MF top-10 over {Count(largest)} items for {Count(topSpec.RecommendUsers)} users", topSpec, progress, threads, quick);

        var all = bySize.Concat(byCatalogue).Append(probe).Append(topK).ToList();
        return Build(quick, users, items, catUsers, bySize, byCatalogue, probe, topK, all, suiteWatch.Elapsed.TotalSeconds);
    }

    /// <summary>Interactions per user (the generator's mean) that reach <paramref name="total"/>.</summary>
    private static int PerUser(long total, int users) => (int)Math.Max(1, Math.Round((double)total / users));

    private static string Count(long n) => n switch
    {
        >= 1_000_000 when n % 100_000 == 0 => (n / 1e6).ToString("0.#", CultureInfo.InvariantCulture) + "M",
        >= 1_000 when n % 100 == 0 => (n / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "K",
        _ => n.ToString("N0", CultureInfo.InvariantCulture),
    };

    // ---------------------------------------------------------------- parent: one child process per measurement

    private static Row Launch(string label, RunSpec spec, BenchmarkProgress progress, string? threads, bool quick)
    {
        progress.Step(label);
        Console.WriteLine($"{label}: {spec.Users:N0} users, {spec.Items:N0} items, {spec.InteractionsPerUser} interactions per user, {spec.Updates} updates (child process)");
        var start = ChildStart();
        start.ArgumentList.Add("--scale-run");
        start.ArgumentList.Add(JsonSerializer.Serialize(spec, Json));
        if (threads != null) { start.ArgumentList.Add("--threads"); start.ArgumentList.Add(threads); }
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;

        RunResult? result = null;
        var stderr = new StringBuilder();
        var watch = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            if (e.Data.StartsWith(ResultMarker, StringComparison.Ordinal)) result = JsonSerializer.Deserialize<RunResult>(e.Data[ResultMarker.Length..], Json);
            else Console.WriteLine("    " + e.Data);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        // Ending the benchmark (SIGTERM, SIGINT, SIGHUP) ends the run in progress too, rather than leaving it behind.
        void Stop(PosixSignalContext _)
        {
            try { process.Kill(entireProcessTree: true); }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
        var signals = new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP }.Select(s => PosixSignalRegistration.Create(s, Stop)).ToList();
        try
        {
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var timeout = TimeSpan.FromMinutes(quick ? 30 : 180);
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                return Failed(label, spec, $"did not finish within {timeout.TotalMinutes:F0} min");
            }
            process.WaitForExit(); // drains the asynchronous output readers
        }
        finally
        {
            foreach (var signal in signals) signal.Dispose();
        }
        if (process.ExitCode != 0 || result == null)
        {
            string tail = stderr.ToString().Trim();
            if (tail.Length > 2000) tail = tail[^2000..];
            Console.WriteLine($"  {label} failed: exit code {process.ExitCode}\n{tail}");
            string reason = process.ExitCode == 137 ? "killed (exit code 137: out of memory?)" : $"exit code {process.ExitCode}";
            string lastLine = tail.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.Length > 0) ?? "";
            return Failed(label, spec, lastLine.Length > 0 ? $"{reason}: {lastLine}" : reason);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  → {result.Interactions:N0} interactions: {result.EpochSeconds:F1} s/epoch, {result.SamplesPerSecond:N0} samples/s, peak RSS {result.PeakRssMb:N0} MB{(result.TopKSeconds is double t ? $", top-10 {t:F2} s" : "")} (child ran {watch.Elapsed.TotalSeconds:F0} s)"));
        return new Row(label, spec, result, null);
    }

    private static Row Failed(string label, RunSpec spec, string error)
    {
        Console.WriteLine($"  {label}: {error}");
        return new Row(label, spec, null, error);
    }

    /// <summary>This program again: through the dotnet host when it runs as <c>dotnet X.dll</c>, else its apphost.</summary>
    private static ProcessStartInfo ChildStart()
    {
        string host = Environment.ProcessPath ?? "dotnet";
        string dll = typeof(ScaleSuite).Assembly.Location;
        if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            var start = new ProcessStartInfo(host);
            start.ArgumentList.Add(dll);
            return start;
        }
        return new ProcessStartInfo(host);
    }

    // ---------------------------------------------------------------- child: one measurement

    /// <summary>
    /// The child side (<c>--scale-run JSON</c>): generates the data, trains one epoch (and times top-10 for "topk"),
    /// prints its progress and then one <see cref="ResultMarker"/> line; the exit code is 0 on success.
    /// </summary>
    public static int RunChild(string specJson, string? threads)
    {
        var spec = JsonSerializer.Deserialize<RunSpec>(specJson, Json) ?? throw new ArgumentException("Empty --scale-run spec.", nameof(specJson));
        using var sampled = new PeakMemory(); // only where /proc/self/status has no VmHWM
        var others = new OtherProcessesCpu();
        if (threads != null) TorchSharp.torch.set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));
        using (TorchSharp.torch.zeros(1)) { } // load libtorch before the start-up figure
        double startMb = StatusMb("VmRSS") ?? sampled.PeakMb;

        var ml = new MLContext(spec.Seed);
        ml.Log += (_, e) =>
        {
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info && e.Message.Contains("] Epoch ", StringComparison.Ordinal))
                Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {e.Message[(e.Message.IndexOf("] ", StringComparison.Ordinal) + 2)..]}");
        };
        var watch = Stopwatch.StartNew();
        IDataView data = ml.DeepRec().Data.GenerateSyntheticInteractions(new SyntheticInteractionOptions
        {
            UserCount = spec.Users,
            ItemCount = spec.Items,
            InteractionsPerUser = spec.InteractionsPerUser,
            PopularitySkew = 0.8,
            Seed = spec.Seed,
            KeyTypedIds = true,
        });
        double generateSeconds = watch.Elapsed.TotalSeconds;
        long interactions = data.GetRowCount() ?? throw new InvalidOperationException("The synthetic data view has no row count.");
        double dataMb = StatusMb("VmRSS") ?? sampled.PeakMb;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{DateTime.Now:HH:mm:ss}] generated {interactions:N0} interactions in {generateSeconds:F1} s; training {spec.Model} for 1 epoch…"));

        T Common<T>(T o) where T : CollaborativeTrainerOptions
        {
            o.NumberOfEpochs = 1; o.BatchSize = BatchSize; o.NegativesPerPositive = Negatives; o.Seed = spec.Seed; o.EmbeddingUpdates = spec.Updates;
            return o;
        }
        watch.Restart();
        using CollaborativeFilteringTransformer model = spec.Model switch
        {
            "MF" => ml.DeepRec().Trainers.MatrixFactorization(Common(new BiasedMatrixFactorizationTrainer.Options())).Fit(data),
            "NeuMF" => ml.DeepRec().Trainers.NeuMF(Common(new NeuMFTrainer.Options())).Fit(data),
            _ => throw new ArgumentException($"Unknown model '{spec.Model}'.", nameof(specJson)),
        };
        double fitSeconds = watch.Elapsed.TotalSeconds;
        var epoch = model.TrainingReport.Epochs[0];

        double? topKSeconds = null;
        int lists = 0;
        if (spec.Kind == "topk")
        {
            uint[] keys = Enumerable.Range(1, Math.Min(spec.RecommendUsers, model.UserCount)).Select(u => (uint)u).ToArray();
            _ = model.Recommend(keys.Take(256).ToArray(), 10); // warm-up: one batch of users
            watch.Restart();
            var recommended = model.Recommend(keys, 10);
            topKSeconds = watch.Elapsed.TotalSeconds;
            if (recommended.Count != keys.Length || recommended.Any(l => l.Count != 10)) throw new InvalidOperationException("Recommend returned short lists.");
            lists = recommended.Count;
        }

        var result = new RunResult(interactions, generateSeconds, fitSeconds, epoch.TrainSeconds, epoch.SamplesPerSecond, epoch.DataSeconds,
            startMb, dataMb, StatusMb("VmHWM") ?? sampled.PeakMb, SparseTables(model, spec.Updates), others.Cores, topKSeconds, lists);
        Console.WriteLine(ResultMarker + JsonSerializer.Serialize(result, Json));
        return 0;
    }

    /// <summary>Which embedding tables the optimizer updated row-wise under <paramref name="mode"/>.</summary>
    private static string SparseTables(CollaborativeFilteringTransformer model, EmbeddingUpdateMode mode)
    {
        var tables = model.Module.modules().OfType<EmbeddingTable>().ToList();
        var sparse = StepOptimizer.SparseTables(model.Module, mode);
        long values = tables.Sum(t => t.Rows * t.Dimension), sparseValues = sparse.Sum(t => t.Rows * t.Dimension);
        return string.Create(CultureInfo.InvariantCulture, $"{sparse.Count} of {tables.Count} ({(values == 0 ? 0 : 100.0 * sparseValues / values):F0}% of values)");
    }

    /// <summary>A "VmXxx:" figure of /proc/self/status in MB (MiB); null where there is none.</summary>
    private static double? StatusMb(string field)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return null;
    }

    // ---------------------------------------------------------------- report

    private static SuiteResult Build(bool quick, int users, int items, int catUsers, List<Row> bySize, List<Row> byCatalogue, Row probe, Row topK,
        List<Row> all, double seconds)
    {
        var inv = CultureInfo.InvariantCulture;
        string F(double v, string format) => v.ToString(format, inv);
        string Cores(RunResult r) => r.OtherCores is double c ? F(c, "F2") : "–";
        string Target(string text, bool? met) => quick ? $"{text} (full run only)" : met switch { true => $"{text}: **met**", false => $"{text}: **not met**", null => text };
        // A message over `columns` table cells (the cell separators after it left empty).
        string Span(int columns, string text) => text + string.Concat(Enumerable.Repeat(" |", columns - 1));
        var sb = new StringBuilder();
        sb.AppendLine($"- Data: synthetic implicit feedback from `mlContext.DeepRec().Data.GenerateSyntheticInteractions` with `KeyTypedIds = true` (UserId/ItemId already `UInt32` keys, no `MapValueToKey`): planted 8-factor structure, Zipf item popularity (exponent 0.8), a log-normal number of distinct items per user around a mean chosen to reach each total (the tables give the actual count), seed {Seed}.");
        sb.AppendLine($"- Training: 1 epoch, batch {BatchSize}, {Negatives} sampled negatives per interaction (so {1 + Negatives} training samples per interaction), Adam lr 0.001, default options otherwise: `EmbeddingUpdates = Auto` (tables of at least {StepOptimizer.AutoSparseThreshold:N0} values updated row-wise, smaller ones densely) unless a row says Dense. MF: 32 factors with biases; NeuMF: GMF 8 + MLP 64-32-16-8. libtorch threads {TorchSharp.torch.get_num_threads()}.");
        sb.AppendLine("- Each row is a fresh child process of the benchmark program (`--scale-run`): it generates the data, trains, and reports. **Peak RSS** is that process's high-water resident set from the kernel (`VmHWM`): .NET runtime, libtorch, the generated data (16 bytes per interaction), the trainer's copies of it, model and optimizer state. *RSS at start* is the process after loading libtorch, before any data. *Bytes/interaction* = peak RSS / interactions; *above start* = (peak − start) / interactions, the part that grows with the data. s/epoch is the epoch's training time (negative sampling and shuffling included; reading the data view and building the model are in *fit s*). *Others' CPU*: cores other processes kept busy during that run (0 = idle machine).");
        if (quick) sb.AppendLine("- **Quick mode**: every size is 1/10 of the full run's (users, items and interactions), so the figures are not comparable with the targets, which apply to the full sizes. At these sizes most tables fall under Auto's row-wise threshold and are updated densely (the *Sparse tables* column), unlike the full run's.");
        sb.AppendLine();

        sb.AppendLine($"### Cost against interactions ({users:N0} users × {items:N0} items{(quick ? ", 1/10 of" : ",")} ML-20M's shape)");
        sb.AppendLine();
        sb.AppendLine("| Model | Interactions | Generate s | s/epoch | samples/s | Fit s | RSS at start (MB) | Peak RSS (MB) | Bytes/interaction | Above start | Sparse tables | Others' CPU | Target |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        int largestPerUser = bySize.Max(r => r.Spec.InteractionsPerUser);
        foreach (var row in bySize)
        {
            bool largest = row.Spec.InteractionsPerUser == largestPerUser;
            string target = !largest ? "" : row.Spec.Model == "MF"
                ? Target($"≤ {MfEpochTarget:F0} s/epoch, peak ≤ 3 GB", row.Result is { } m ? m.EpochSeconds <= MfEpochTarget && m.PeakRssMb <= MfPeakTargetMb : false)
                : Target($"≤ {NeuMfEpochTarget:F0} s/epoch", row.Result is { } n ? n.EpochSeconds <= NeuMfEpochTarget : false);
            if (row.Result is not { } r)
            {
                sb.AppendLine($"| {row.Spec.Model} | ≈{(long)row.Spec.Users * row.Spec.InteractionsPerUser:N0} | {Span(10, $"failed: {row.Failure}")} | {target} |");
                continue;
            }
            sb.AppendLine(string.Create(inv, $"| {row.Spec.Model} | {r.Interactions:N0} | {r.GenerateSeconds:F1} | {r.EpochSeconds:F1} | {r.SamplesPerSecond:N0} | {r.FitSeconds:F1} | {r.StartRssMb:N0} | {r.PeakRssMb:N0} | {r.PeakRssMb * 1048576 / r.Interactions:N0} | {(r.PeakRssMb - r.StartRssMb) * 1048576 / r.Interactions:N0} | {r.SparseTables} | {Cores(r)} | {target} |"));
        }
        sb.AppendLine();

        var auto10K = byCatalogue.FirstOrDefault(r => r.Spec.Updates == EmbeddingUpdateMode.Auto)?.Result;
        int smallest = byCatalogue.Min(r => r.Spec.Items), largestItems = byCatalogue.Max(r => r.Spec.Items);
        sb.AppendLine($"### MF throughput against catalogue size ({catUsers:N0} users, about {Count((long)catUsers * byCatalogue[0].Spec.InteractionsPerUser)} interactions)");
        sb.AppendLine();
        sb.AppendLine($"Same users and number of interactions, more items: with row-wise updates a step's cost follows the batch, so throughput should hold up as the catalogue grows; Dense rows update every row of every table at every step, so their step cost grows with the catalogue. *× {Count(smallest)}*: samples/s relative to the Auto row at {Count(smallest)} items. *Auto ÷ Dense*: what the default buys over dense updates at that size.");
        sb.AppendLine();
        sb.AppendLine($"| Items | Updates | Interactions | s/epoch | samples/s | × {Count(smallest)} | Auto ÷ Dense | Peak RSS (MB) | Bytes/interaction | Sparse tables | Others' CPU | Target |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var row in byCatalogue)
        {
            var auto = byCatalogue.FirstOrDefault(x => x.Spec.Items == row.Spec.Items && x.Spec.Updates == EmbeddingUpdateMode.Auto)?.Result;
            string target = row.Spec.Items == largestItems && row.Spec.Updates == EmbeddingUpdateMode.Auto
                ? Target($"≥ {CatalogueRatioTarget:F1} × the {Count(smallest)} rate", row.Result is { } c && auto10K != null ? c.SamplesPerSecond >= CatalogueRatioTarget * auto10K.SamplesPerSecond : false)
                : "";
            if (row.Result is not { } r)
            {
                sb.AppendLine($"| {row.Spec.Items:N0} | {row.Spec.Updates} | ≈{(long)row.Spec.Users * row.Spec.InteractionsPerUser:N0} | {Span(8, row.Failure)} | {target} |");
                continue;
            }
            string ratio = auto10K == null ? "–" : F(r.SamplesPerSecond / auto10K.SamplesPerSecond, "F2");
            string speedup = row.Spec.Updates == EmbeddingUpdateMode.Dense && auto != null ? F(auto.SamplesPerSecond / r.SamplesPerSecond, "F2") + "×" : "";
            sb.AppendLine(string.Create(inv, $"| {row.Spec.Items:N0} | {row.Spec.Updates} | {r.Interactions:N0} | {r.EpochSeconds:F1} | {r.SamplesPerSecond:N0} | {ratio} | {speedup} | {r.PeakRssMb:N0} | {r.PeakRssMb * 1048576 / r.Interactions:N0} | {r.SparseTables} | {Cores(r)} | {target} |"));
        }
        sb.AppendLine();
        var denseLargest = byCatalogue.FirstOrDefault(r => r.Spec.Items == largestItems && r.Spec.Updates == EmbeddingUpdateMode.Dense);
        string outcome = denseLargest?.Result is { } dl ? string.Create(inv, $" It was projected at {ProjectedEpochSeconds(dl):N0} s and took {dl.EpochSeconds:N0} s.") : " It was skipped (see the table).";
        sb.AppendLine(probe.Result is { } pr
            ? string.Create(inv, $"Dense at {largestItems:N0} items runs only when its epoch is projected to take at most {DenseLimitSeconds * (quick ? 0.1 : 1):N0} s: a probe trained densely over the same {catUsers:N0} × {largestItems:N0} tables on {pr.Interactions:N0} interactions ran at {pr.SamplesPerSecond:N0} samples/s (peak RSS {pr.PeakRssMb:N0} MB), as a dense step's cost follows the tables, not the data.{outcome}")
            : $"The dense probe at {largestItems:N0} items failed ({probe.Failure}).");
        double ProjectedEpochSeconds(RunResult r) => probe.Result is { } p ? r.Interactions * (1.0 + Negatives) / p.SamplesPerSecond : double.NaN;
        sb.AppendLine();

        sb.AppendLine($"### Full-catalogue top-10 ({Count(topK.Spec.Items)} items)");
        sb.AppendLine();
        sb.AppendLine($"MF trained for 1 epoch (Auto updates) on about {Count((long)topK.Spec.Users * topK.Spec.InteractionsPerUser)} interactions of {topK.Spec.Users:N0} users over {topK.Spec.Items:N0} items, then `model.Recommend(userKeys, 10)` for user keys 1..{topK.Spec.RecommendUsers:N0}: every item scored for every user (TorchSharp, 256 users per batch, the catalogue in slices of 8,192 items, item biases folded into the matrix product and per-user constants added to the winners only), the user's training items excluded, top-10 in two stages (the maximum of each block of 64 items, then the exact top-10 among the 10 best blocks). One warm-up batch of 256 users first; the time is one call for all the users. Peak RSS covers generation, training and recommendation.");
        sb.AppendLine();
        sb.AppendLine("| Users | Items | Training interactions | Train (fit) s | Top-10 s | ms per user | Peak RSS (MB) | Others' CPU | Target |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        string topTarget = Target($"≤ {TopKTarget:F0} s", topK.Result?.TopKSeconds is double ts ? ts <= TopKTarget : false);
        if (topK.Result is { TopKSeconds: double sec } t)
            sb.AppendLine(string.Create(inv, $"| {t.TopKLists:N0} | {topK.Spec.Items:N0} | {t.Interactions:N0} | {t.FitSeconds:F1} | {sec:F2} | {sec * 1000 / t.TopKLists:F2} | {t.PeakRssMb:N0} | {Cores(t)} | {topTarget} |"));
        else
            sb.AppendLine($"| {topK.Spec.RecommendUsers:N0} | {topK.Spec.Items:N0} | {Span(6, $"failed: {topK.Failure}")} | {topTarget} |");
        sb.AppendLine();
        sb.AppendLine(string.Create(inv, $"The footer's peak memory is the coordinating parent process's; each run's own is in the tables. The {all.Count} child processes took {seconds / 60:F1} min in all."));

        var result = new SuiteResult(quick ? "Scale: cost against data and catalogue size (quick: 1/10 sizes)" : "Scale: cost against data and catalogue size",
            sb.ToString(), Array.Empty<TrainingCurve>(), Array.Empty<QualityPoint>(), "", Summary(quick, bySize, byCatalogue, topK));
        var measured = all.Where(r => r.Result?.OtherCores != null).Select(r => r.Result!.OtherCores!.Value).ToList();
        result.Disturbance = measured.Count == 0
            ? "CPU use of other processes: not measured (no /proc)."
            : string.Create(inv, $"Other processes used {measured.Average():F2} of the {Environment.ProcessorCount} cores on average over the runs (at most {measured.Max():F2} in one run; measured in each child process).") +
              (measured.Max() > OtherProcessesCpu.DisturbedAbove
                  ? " **Timings are disturbed**: other processes competed for the CPU in at least one run (see the Others' CPU column)."
                  : " The machine was otherwise idle.");
        Figures(result, quick, bySize, byCatalogue);
        return result;
    }

    private static void Figures(SuiteResult result, bool quick, List<Row> bySize, List<Row> byCatalogue)
    {
        SizeSeries Series(string name, IEnumerable<Row> rows, Func<RunResult, double> x, Func<RunResult, double> y) =>
            new(name, rows.Where(r => r.Result != null).Select(r => (x(r.Result!), y(r.Result!))).ToList());
        var mf = bySize.Where(r => r.Spec.Model == "MF").ToList();
        var neumf = bySize.Where(r => r.Spec.Model == "NeuMF").ToList();
        double Millions(RunResult r) => r.Interactions / 1e6;
        var time = new SizePanel("Epoch time against interactions", "Interactions (millions)", "Seconds per epoch",
            new[] { Series("MF", mf, Millions, r => r.EpochSeconds), Series("NeuMF", neumf, Millions, r => r.EpochSeconds) },
            Targets: quick ? null : new[] { ($"MF target {MfEpochTarget:F0} s", MfEpochTarget), ($"NeuMF target {NeuMfEpochTarget:F0} s", NeuMfEpochTarget) });
        var memory = new SizePanel("Peak resident memory against interactions", "Interactions (millions)", "Peak RSS of the run (MB)",
            new[] { Series("MF", mf, Millions, r => r.PeakRssMb), Series("NeuMF", neumf, Millions, r => r.PeakRssMb) },
            Targets: quick ? null : new[] { ("MF target 3 GB", MfPeakTargetMb) });
        result.Figures.Add(new SizeFigure("cost-vs-interactions", "scale: epoch time and peak resident memory against interactions (MF and NeuMF, 1 epoch each, ML-20M shape)",
            new[] { time, memory }));
        // The size axis is the run's item count (from its spec).
        var catalogue = new SizePanel("MF throughput against catalogue size", "Items (log scale)", "Training samples per second",
            new[] { EmbeddingUpdateMode.Auto, EmbeddingUpdateMode.Dense }.Select(mode => new SizeSeries($"MF, {mode} updates",
                byCatalogue.Where(r => r.Spec.Updates == mode && r.Result != null).Select(r => ((double)r.Spec.Items, r.Result!.SamplesPerSecond)).ToList())).ToList(),
            LogX: true);
        result.Figures.Add(new SizeFigure("throughput-vs-catalogue", "scale: MF training throughput against catalogue size, Auto (row-wise) and Dense embedding updates", new[] { catalogue }));
    }

    private static List<SummaryRow> Summary(bool quick, List<Row> bySize, List<Row> byCatalogue, Row topK)
    {
        var inv = CultureInfo.InvariantCulture;
        var rows = new List<SummaryRow>();
        string shape = quick ? "Synthetic, 1/10 of ML-20M's shape (quick)" : "Synthetic, ML-20M shape";
        foreach (string model in new[] { "MF", "NeuMF" })
        {
            var row = bySize.Where(r => r.Spec.Model == model).MaxBy(r => r.Spec.InteractionsPerUser);
            if (row?.Result is not { } r) continue;
            rows.Add(new SummaryRow($"{shape}, {Count((long)Math.Round(r.Interactions / 1e5) * 100_000)} interactions", model, "1 epoch: seconds · peak RSS",
                string.Create(inv, $"{r.EpochSeconds:F1} s · {r.PeakRssMb:N0} MB"), "–", string.Create(inv, $"{r.SamplesPerSecond:N0} samples/s")));
        }
        var autos = byCatalogue.Where(r => r.Spec.Updates == EmbeddingUpdateMode.Auto && r.Result != null).OrderBy(r => r.Spec.Items).ToList();
        if (autos.Count >= 2)
            rows.Add(new SummaryRow($"Synthetic, {autos[0].Spec.Users:N0} users{(quick ? " (quick)" : "")}", "MF", $"samples/s at {Count(autos[^1].Spec.Items)} ÷ at {Count(autos[0].Spec.Items)} items",
                (autos[^1].Result!.SamplesPerSecond / autos[0].Result!.SamplesPerSecond).ToString("F2", inv), "–",
                string.Create(inv, $"{autos[^1].Result!.SamplesPerSecond:N0} samples/s at {Count(autos[^1].Spec.Items)} items")));
        if (topK.Result is { TopKSeconds: double s } t)
            rows.Add(new SummaryRow($"Synthetic, {Count(topK.Spec.Items)} items{(quick ? " (quick)" : "")}", "MF", $"top-10 over all items for {t.TopKLists:N0} users",
                s.ToString("F2", inv) + " s", "–", string.Create(inv, $"{s * 1000 / t.TopKLists:F2} ms per user")));
        return rows;
    }
}
