using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// Which rows of the SASRec suite run (<c>--sasrec-rows a,b</c>; default all). Popularity always runs: it is cheap and
/// the section's data line reads its counts.
/// </summary>
internal sealed class SasRecRows
{
    /// <summary>The row names <c>--sasrec-rows</c> accepts.</summary>
    public static readonly string[] Known = { "mf", "bce", "sampled-softmax", "cross-entropy", Gru4Rec, SasRecPeer.Row };

    /// <summary>The row name of the GRU4Rec rows.</summary>
    public const string Gru4Rec = "gru4rec";

    private readonly HashSet<string>? _wanted;

    private SasRecRows(HashSet<string>? wanted) => _wanted = wanted;

    /// <summary>The selection of <c>--sasrec-rows</c>, or null (after a message) when it names an unknown row.</summary>
    public static SasRecRows? FromArgs(BenchmarkContext context)
    {
        if (context.Arg("--sasrec-rows") is not string list) return new SasRecRows(null).CheckPeerOptions(context);
        var wanted = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => s.ToLowerInvariant()).ToHashSet(StringComparer.Ordinal);
        if (wanted.FirstOrDefault(w => !Known.Contains(w, StringComparer.Ordinal)) is string unknown)
        {
            Console.Error.WriteLine($"Unknown SASRec row '{unknown}' in --sasrec-rows. Known: {string.Join(", ", Known)}. Skipping the sasrec suite.");
            return null;
        }
        return new SasRecRows(wanted).CheckPeerOptions(context);
    }

    /// <summary>The selection, or null (after a message) when a peer option is malformed: checked before any training.</summary>
    public SasRecRows? CheckPeerOptions(BenchmarkContext context)
    {
        if (!Has(SasRecPeer.Row) || SasRecPeer.OptionError(context) is not string error) return this;
        Console.Error.WriteLine($"{error} Skipping the sasrec suite.");
        return null;
    }

    /// <summary>Whether the row runs.</summary>
    public bool Has(string row) => _wanted == null || _wanted.Contains(row);

    /// <summary>The row name of a SASRec loss.</summary>
    public static string KeyOf(SequentialLoss loss) => loss switch
    {
        SequentialLoss.BinaryCrossEntropy => "bce",
        SequentialLoss.SampledSoftmax => "sampled-softmax",
        SequentialLoss.CrossEntropy => "cross-entropy",
        _ => loss.ToString().ToLowerInvariant(),
    };
}

/// <summary>
/// The SASRec suite's peer comparison: the widely used PyTorch port of SASRec (pmixer/SASRec.pytorch, in
/// <c>../shared/peers/sasrec-pytorch</c>) run as a child process in the same run, on the same file with the same split
/// and the paper's settings, beside a separate short training of our BCE SASRec for the same number of epochs. Reports
/// seconds per epoch of both, their ratio, and the sampled HR@10/NDCG@10 of both after those epochs. When python,
/// torch or the peer is missing it says so and the suite goes on.
/// </summary>
/// <remarks>
/// The peer runs in a temporary work folder (its <c>data/Video.txt</c> is a link to our data file) that is deleted
/// afterwards; it gets <c>OMP_NUM_THREADS</c> = our libtorch threads. On timeout or when this process is cancelled or
/// terminated, the peer gets SIGINT (Python then stops its sampler processes itself) and, if still running after
/// 15 s, its whole process tree is killed; it is always waited for, so no zombie is left behind.
/// </remarks>
internal static partial class SasRecPeer
{
    /// <summary>The row name in <c>--sasrec-rows</c>.</summary>
    public const string Row = "peer";

    /// <summary>How to install the peer's dependency (Debian 12: PyTorch 1.13, CPU).</summary>
    public const string InstallStep = "apt-get install -y python3-torch";

    private const int DefaultEpochs = 3, QuickEpochs = 1;
    private const int DefaultSamplerWorkers = 3; // upstream's WarpSampler n_workers
    private const string Dataset = "Video";      // the peer reads data/<dataset>.txt in its work folder

    // The paper's settings, as the suite's BCE row uses them.
    private const int MaxLength = 50, Hidden = 50, Blocks = 2, Heads = 1, BatchSize = 128;
    private const double Dropout = 0.5, LearningRate = 0.001;

    private sealed record OurRun(IReadOnlyList<double> EpochSeconds, TopKMetrics Sampled, double WallSeconds, double? OtherCores);

    private sealed record PeerRun(IReadOnlyList<double> EpochSeconds, double? TestHr, double? TestNdcg, double? ValidHr, double? ValidNdcg,
        double WallSeconds, string? Failure, double? OtherCores);

    private sealed record Setup(string Python, string MainPy, string TorchVersion, int TorchThreads);

    /// <summary>One line of the interaction file as our loader produces it (to rebuild the peer's split).</summary>
    private sealed class Interaction
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
        public float Label { get; set; }
        public double Timestamp { get; set; }
    }

    /// <summary>
    /// Runs the comparison; returns the markdown subsection (the comparison table, or why it did not run).
    /// <paramref name="split"/> is the suite's leave-one-out split of <paramref name="data"/> (text ids) and
    /// <paramref name="keys"/> the suite's fitted key mapping (UserKey, ItemKey).
    /// </summary>
    public static string Run(BenchmarkContext context, MLContext ml, string data, RecommendationSplit split, ITransformer keys,
        TopKEvaluationOptions sampledOptions, int seed)
    {
        var inv = CultureInfo.InvariantCulture;
        int epochs = IntArg(context, "--peer-epochs", context.Quick ? QuickEpochs : DefaultEpochs, 1);
        int workers = IntArg(context, "--peer-sampler-workers", DefaultSamplerWorkers, 1);
        int timeout = IntArg(context, "--peer-timeout", 900 + 600 * epochs, 1);
        int threads = TorchSharp.torch.get_num_threads();

        var (setup, skip) = Locate(context, threads);
        if (setup == null)
        {
            Console.WriteLine($"Peer comparison not run: {skip}");
            return Heading() + $"Not run in this run: {skip}. {HowTo()}\n";
        }
        Console.WriteLine($"Peer: {setup.MainPy} with {setup.Python} (torch {setup.TorchVersion}, {setup.TorchThreads} threads), {Epochs(epochs)}, {workers} sampler processes");

        // The peer's data_partition: users with fewer than 4 events keep all of them for training (no validation or test
        // item); the others hold out the last event (test) and the one before (validation), as our split does.
        var (train, validation, test, trainSequences, peerBatches) = PeerSplit(ml, split, keys, MaxLength);

        context.Progress.Step($"SASRec BCE, {Epochs(epochs)} (peer comparison)");
        var ours = TrainOurs(ml, train, validation, test, sampledOptions, seed, epochs);
        Console.WriteLine(string.Create(inv, $"Ours, {Epochs(epochs)}: {string.Join(", ", ours.EpochSeconds.Select(s => s.ToString("F1", inv)))} s per epoch; sampled {ours.Sampled}"));

        context.Progress.Step("Peer: PyTorch SASRec (pmixer)");
        var peer = RunPeer(setup, data, epochs, workers, threads, timeout);
        Console.WriteLine(peer.Failure == null
            ? string.Create(inv, $"Peer, {Epochs(epochs)}: {string.Join(", ", peer.EpochSeconds.Select(s => s.ToString("F1", inv)))} s per epoch; test HR@10 {peer.TestHr:F4}, NDCG@10 {peer.TestNdcg:F4}")
            : $"Peer failed: {peer.Failure}");
        return Table(setup, ours, peer, epochs, workers, threads, trainSequences, peerBatches, timeout);
    }

    /// <summary>The suite's result with the peer subsection appended and the suite's CPU disturbance, counting the peer
    /// (our child process) as ours.</summary>
    public static SuiteResult Attach(SuiteResult result, string? peerSection, OtherProcessesCpu suiteCpu)
    {
        var r = peerSection == null ? result : result with { Body = result.Body.TrimEnd() + "\n\n" + peerSection.TrimEnd() + "\n" };
        r.Disturbance = suiteCpu.Describe();
        return r;
    }

    private static string Heading() => "### Peer: PyTorch SASRec (pmixer), same run\n\n";

    private static string HowTo() =>
        $"To run it: `{InstallStep}` (Debian 12: PyTorch 1.13, CPU) and the peer's code in `../shared/peers/sasrec-pytorch` " +
        "(`--peers DIR`, `--peer-python PATH`); `--sasrec-rows peer` runs only this comparison, `--peer-epochs N` sets its epochs.";

    private static readonly string[] IntegerOptions = { "--peer-epochs", "--peer-sampler-workers", "--peer-timeout" };

    /// <summary>What is wrong with the peer's integer options (each at least 1), or null.</summary>
    public static string? OptionError(BenchmarkContext context) =>
        IntegerOptions.Where(name => context.Arg(name) is string s && !(int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1))
            .Select(name => $"{name} must be a positive integer; got '{context.Arg(name)}'.").FirstOrDefault();

    private static int IntArg(BenchmarkContext context, string name, int fallback, int min) =>
        context.Arg(name) is string s && int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min ? v : fallback;

    /// <summary>Finds the peer's main.py and a python that imports torch and numpy; a reason when either is missing.</summary>
    private static (Setup? Setup, string? Skip) Locate(BenchmarkContext context, int threads)
    {
        string peers = Path.GetFullPath(context.Arg("--peers") ?? Path.Combine(context.SharedDatasets, "..", "peers"));
        string main = File.Exists(Path.Combine(peers, "main.py")) ? Path.Combine(peers, "main.py") : Path.Combine(peers, "sasrec-pytorch", "main.py");
        if (!File.Exists(main)) return (null, $"the peer (sasrec-pytorch/main.py) was not found under {peers} (pass --peers DIR)");
        string python = context.Arg("--peer-python") ?? (File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
        var probe = new ProcessStartInfo(python) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-c", "import numpy, torch; print(torch.__version__, torch.get_num_threads())" }) probe.ArgumentList.Add(a);
        SetThreads(probe, threads);
        var result = ChildProcess.Run(probe, TimeSpan.FromSeconds(180), echo: null);
        if (result.StartError != null) return (null, $"python ({python}) could not be started: {result.StartError} (pass --peer-python PATH)");
        if (result.TimedOut) return (null, $"importing torch with {python} did not finish within 180 s");
        string[] fields = result.Stdout.LastOrDefault()?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? Array.Empty<string>();
        if (result.ExitCode != 0 || fields.Length != 2 || !int.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int torchThreads))
            return (null, $"{python} cannot import torch and numpy ({result.StderrTail.LastOrDefault() ?? $"exit code {result.ExitCode}"})");
        return (new Setup(python, main, fields[0], torchThreads), null);
    }

    private static void SetThreads(ProcessStartInfo psi, int threads)
    {
        string t = threads.ToString(CultureInfo.InvariantCulture);
        psi.Environment["OMP_NUM_THREADS"] = t;
        psi.Environment["MKL_NUM_THREADS"] = t;
    }

    /// <summary>
    /// The peer's split of the same file, built from the suite's leave-one-out split: the validation and test events of
    /// users with fewer than 4 events go back to training. Also: our training sequences per epoch (users with at least
    /// two training events) and the peer's batches per epoch (users / batch, rounded up).
    /// </summary>
    private static (IDataView Train, IDataView Validation, IDataView Test, int TrainSequences, int PeerBatches) PeerSplit(
        MLContext ml, RecommendationSplit split, ITransformer keys, int maxLength)
    {
        List<Interaction> Read(IDataView view) => ml.Data.CreateEnumerable<Interaction>(view, reuseRowObject: false).ToList();
        var train = Read(split.Train);
        var validation = Read(split.Validation ?? throw new InvalidOperationException("The SASRec suite's split has no validation part."));
        var test = Read(split.Test);
        var events = train.Concat(validation).Concat(test).GroupBy(r => r.UserId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        bool Short(Interaction r) => events[r.UserId] < 4;
        train.AddRange(validation.Where(Short));
        train.AddRange(test.Where(Short));
        validation.RemoveAll(Short);
        test.RemoveAll(Short);
        int sequences = train.GroupBy(r => r.UserId, StringComparer.Ordinal).Count(g => g.Count() >= 2);
        int peerBatches = (events.Count - 1) / BatchSize + 1; // the peer's num_batch: user ids 1..N, N = the number of users here
        Console.WriteLine($"Peer split: {train.Count:N0} training events, {validation.Count:N0} validation and {test.Count:N0} test users (users with < 4 events all in training); {sequences:N0} training sequences (L {maxLength})");
        IDataView Keyed(List<Interaction> rows) => keys.Transform(ml.Data.LoadFromEnumerable(rows));
        return (Keyed(train), Keyed(validation), Keyed(test), sequences, peerBatches);
    }

    private static OurRun TrainOurs(MLContext ml, IDataView train, IDataView validation, IDataView test, TopKEvaluationOptions sampledOptions,
        int seed, int epochs)
    {
        // The suite's BCE row's options, with a fixed number of epochs and no validation (no early stopping: the
        // last epoch's weights, as the peer keeps them).
        var o = new SasRecTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Loss = SequentialLoss.BinaryCrossEntropy, MaxLength = MaxLength, HiddenSize = Hidden,
            NumberOfBlocks = Blocks, NumberOfHeads = Heads, DropoutRate = Dropout, LearningRate = LearningRate, BatchSize = BatchSize,
            NumberOfEpochs = epochs, NegativesPerPositive = 100, ValidationNegativesPerPositive = 100, Seed = seed,
        };
        var cpu = new OtherProcessesCpu();
        var watch = Stopwatch.StartNew();
        using var model = ml.DeepRec().Trainers.SasRec(o).Fit(train);
        using var scorer = (IDisposable)model.CreateScorer(train, validation); // test input: training + validation items, as the peer's
        var sampled = ml.DeepRec().Evaluation.EvaluateTopK((IItemScorer)scorer, test, train, sampledOptions);
        return new OurRun(model.TrainingReport.Epochs.Select(e => e.TrainSeconds).ToList(), sampled, watch.Elapsed.TotalSeconds, cpu.Cores);
    }

    [GeneratedRegex(@"epoch (\d+) done at ([0-9.]+) s")]
    private static partial Regex EpochLine();

    [GeneratedRegex(@"valid \(NDCG@10: ([0-9.]+), HR@10: ([0-9.]+)\), test \(NDCG@10: ([0-9.]+), HR@10: ([0-9.]+)\)")]
    private static partial Regex MetricsLine();

    [GeneratedRegex(@"\.{4,}")]
    private static partial Regex ProgressDots();

    /// <summary>Runs main.py in a temporary work folder (deleted afterwards) and parses what it prints.</summary>
    private static PeerRun RunPeer(Setup setup, string data, int epochs, int workers, int threads, int timeoutSeconds)
    {
        var inv = CultureInfo.InvariantCulture;
        var cpu = new OtherProcessesCpu(childrenAreOwn: true);
        var watch = Stopwatch.StartNew();
        var work = Directory.CreateTempSubdirectory("deeprec-peer-");
        try
        {
            Directory.CreateDirectory(Path.Combine(work.FullName, "data"));
            File.CreateSymbolicLink(Path.Combine(work.FullName, "data", Dataset + ".txt"), Path.GetFullPath(data));
            var psi = new ProcessStartInfo(setup.Python) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = work.FullName };
            foreach (string a in new[]
            {
                setup.MainPy, "--dataset", Dataset, "--train_dir", "run", "--maxlen", S(MaxLength), "--hidden_units", S(Hidden),
                "--num_blocks", S(Blocks), "--num_heads", S(Heads), "--dropout_rate", S(Dropout), "--batch_size", S(BatchSize),
                "--lr", S(LearningRate), "--num_epochs", S(epochs), "--device", "cpu",
            })
                psi.ArgumentList.Add(a);
            SetThreads(psi, threads);
            psi.Environment["PEER_WORKDIR"] = work.FullName;
            psi.Environment["PEER_EVAL"] = "1";
            psi.Environment["PEER_SAMPLER_WORKERS"] = S(workers);
            psi.Environment["PYTHONUNBUFFERED"] = "1";         // lines arrive as printed (progress, and what a timeout leaves)
            psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";  // nothing written beside the peer's code
            Console.WriteLine($"  [peer] {setup.Python} {string.Join(' ', psi.ArgumentList)} (OMP_NUM_THREADS={threads}, PEER_SAMPLER_WORKERS={workers}, PEER_EVAL=1, in {work.FullName})");
            var result = ChildProcess.Run(psi, TimeSpan.FromSeconds(timeoutSeconds), line => Console.WriteLine($"  [peer] {ProgressDots().Replace(line, "… ")}"), ownProcessGroup: true);

            // "epoch N done at S s": S counts from the start of training (evaluation runs only after the last epoch).
            var done = new SortedDictionary<int, double>();
            double? testHr = null, testNdcg = null, validHr = null, validNdcg = null;
            foreach (string line in result.Stdout)
            {
                foreach (Match m in EpochLine().Matches(line))
                    done[int.Parse(m.Groups[1].Value, inv)] = double.Parse(m.Groups[2].Value, inv);
                if (MetricsLine().Match(line) is { Success: true } metrics)
                {
                    validNdcg = double.Parse(metrics.Groups[1].Value, inv);
                    validHr = double.Parse(metrics.Groups[2].Value, inv);
                    testNdcg = double.Parse(metrics.Groups[3].Value, inv);
                    testHr = double.Parse(metrics.Groups[4].Value, inv);
                }
            }
            var seconds = new List<double>();
            double previous = 0;
            for (int e = 1; done.TryGetValue(e, out double at); e++) { seconds.Add(at - previous); previous = at; }

            string? failure = null;
            var errors = result.StderrTail.Where(l => l.Trim().Length > 0).TakeLast(3).Select(l => l.Trim()).ToList();
            string stderr = errors.Count > 0 ? $"; last error output: {string.Join(" / ", errors)}" : "";
            if (result.StartError != null) failure = $"could not start {setup.Python}: {result.StartError}";
            else if (result.TimedOut) failure = $"timed out after {timeoutSeconds} s (--peer-timeout) and was stopped, after {seconds.Count} of {epochs} epochs";
            else if (result.ExitCode != 0) failure = $"exit code {result.ExitCode} after {seconds.Count} of {epochs} epochs{stderr}";
            else if (seconds.Count != epochs) failure = $"printed {seconds.Count} epoch lines for {epochs} epochs (has main.py changed?)";
            else if (testHr == null) failure = "printed no final metrics line (\"… test (NDCG@10: …, HR@10: …)\"; has main.py changed?)";
            return new PeerRun(seconds, testHr, testNdcg, validHr, validNdcg, watch.Elapsed.TotalSeconds, failure, cpu.Cores);
        }
        finally
        {
            try { work.Delete(recursive: true); } // the link goes, not the data it points to
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Console.Error.WriteLine($"Could not delete the peer's work folder {work.FullName}: {e.Message}"); }
        }

        static string S(double v) => v.ToString(CultureInfo.InvariantCulture);
    }

    private static string Epochs(int n) => n == 1 ? "1 epoch" : $"{n} epochs";

    /// <summary>Mean of the epochs after the first (the first includes warm-up), or the first when there is only one.</summary>
    private static double? Steady(IReadOnlyList<double> seconds) => seconds.Count switch
    {
        0 => null,
        1 => seconds[0],
        _ => seconds.Skip(1).Average(),
    };

    private static string Table(Setup setup, OurRun ours, PeerRun peer, int epochs, int workers, int threads, int trainSequences, int peerBatches, int timeout)
    {
        var inv = CultureInfo.InvariantCulture;
        static string F(double? v, string format) => v is double x ? x.ToString(format, CultureInfo.InvariantCulture) : "–";
        static string Load(double? cores) => cores is double c ? c.ToString("F2", CultureInfo.InvariantCulture) + (c > OtherProcessesCpu.DisturbedAbove ? " (disturbed)" : "") : "–";
        string steadyName = epochs > 1 ? $"s/epoch (mean of epochs 2–{epochs})" : "s/epoch (epoch 1)";
        double? oursSteady = Steady(ours.EpochSeconds), peerSteady = Steady(peer.EpochSeconds);
        int ourBatches = (trainSequences - 1) / BatchSize + 1;

        var sb = new StringBuilder(Heading());
        sb.AppendLine(string.Create(inv, $"Our BCE SASRec trained again for {Epochs(epochs)} (not the tuned row above) and the widely used PyTorch port of SASRec ([pmixer/SASRec.pytorch](https://github.com/pmixer/SASRec.pytorch), from `../shared/peers/sasrec-pytorch`), one after the other in this run on this machine, on the same `Video.txt` with the same split, both with the paper's settings: L {MaxLength}, d {Hidden}, {Blocks} blocks, {Heads} head, dropout {Dropout}, BCE with one sampled negative per position, Adam lr {LearningRate}, batch {BatchSize}, {Epochs(epochs)}, no early stopping (the last epoch's weights)."));
        sb.AppendLine();
        sb.AppendLine($"| Implementation | Threads | {steadyName} | epoch 1 s | HR@10 sampled | NDCG@10 sampled | users evaluated | wall s (load, train, evaluate) | other processes, cores |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        sb.AppendLine(string.Create(inv, $"| MLNet.DeepRec SASRec (TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(3)}, libtorch {TorchSharp.torch.__version__}) | {threads} libtorch threads; batches built in-process | {F(oursSteady, "F1")} | {F(ours.EpochSeconds.FirstOrDefault(), "F1")} | {ours.Sampled.HitRate:F4} | {ours.Sampled.Ndcg:F4} | {ours.Sampled.CaseCount:N0} (all with a test item) | {ours.WallSeconds:F0} | {Load(ours.OtherCores)} |"));
        sb.AppendLine(string.Create(inv, $"| pmixer/SASRec.pytorch (PyTorch {setup.TorchVersion}, CPU) | OMP_NUM_THREADS={threads} (torch reports {setup.TorchThreads}); {workers} sampler processes (PEER_SAMPLER_WORKERS{(workers == DefaultSamplerWorkers ? ", upstream's default" : "")}) | {F(peerSteady, "F1")} | {F(peer.EpochSeconds.Count > 0 ? peer.EpochSeconds[0] : null, "F1")} | {F(peer.TestHr, "F4")} | {F(peer.TestNdcg, "F4")} | ≤ 10,000 random users with a test item | {peer.WallSeconds:F0} | {Load(peer.OtherCores)} |"));
        sb.AppendLine();
        if (peer.Failure != null) sb.AppendLine($"**The peer did not complete**: {peer.Failure}. Its figures above are what it printed before that (– where nothing).");
        if (oursSteady is double o && peerSteady is double p && p > 0)
            sb.AppendLine(string.Create(inv, $"Ratio of seconds per epoch, ours / peer: **{o / p:F2}** ({(o <= p ? $"ours {p / o:F1}× faster" : $"ours {o / p:F1}× slower")}) at {threads} threads each."));
        if (ours.OtherCores > OtherProcessesCpu.DisturbedAbove || peer.OtherCores > OtherProcessesCpu.DisturbedAbove)
            sb.AppendLine("**Disturbed**: other processes competed for the CPU while these ran (last column), so both timings are slower than on an idle machine and the ratio compares two stretches of time under load that was not the same; rerun on an idle machine for a representative ratio.");
        if (peer.ValidHr is double vh && peer.ValidNdcg is double vn)
            sb.AppendLine(string.Create(inv, $"The peer's validation figures (its own report): HR@10 {vh:F4}, NDCG@10 {vn:F4}."));
        sb.AppendLine();
        sb.AppendLine(string.Create(inv, $"- Split: the peer's `data_partition`, which our leave-one-out split matches for users with 4 or more events (last event test, the one before validation, the rest training); users with fewer than 4 events keep all of them for training and have no test item (our suite's own rows hold out test and validation items from 2 and 3 events). Test input: training + validation items as history, in both."));
        sb.AppendLine(string.Create(inv, $"- Epoch: {ourBatches:N0} batches of {BatchSize} for ours (a permutation of the {trainSequences:N0} users with 2 or more training events, negatives drawn on the batch's tensors), {peerBatches:N0} for the peer (its {workers} sampler processes each shuffle all user ids; a user with fewer than 2 training events is replaced by a random one). Seconds per epoch are training only: ours its trainer's per-epoch training time, the peer's from its `epoch N done at S s` lines (the time between them; its sampler processes run beside the {threads} training threads). The first epoch includes warm-up."));
        sb.AppendLine(string.Create(inv, $"- Sampled protocol: both rank the test item among 100 sampled items the user has not interacted with in training (101 candidates). Ours: every test user ({ours.Sampled.CaseCount:N0}), 100 distinct negatives that exclude the test item, seed fixed, ties counted against the model (the suite's sampled rows' protocol). The peer (PEER_EVAL=1, the paper's code): at most 10,000 random user ids of all users, those with a test item, 100 negatives drawn with replacement (the test item itself not excluded), rank by sort; unseeded, so its figures vary from run to run by about ±0.01 (95%, at 10,000 users)."));
        sb.AppendLine("- Not matched (not options of ours, or the peer's defaults kept): blocks are pre-norm in ours (as in the paper) and post-norm in the peer's default (no `--norm_first`); Adam β₂ is 0.999 in ours and 0.98 in the peer; our item table gets row-wise (lazy) Adam updates under `EmbeddingUpdates = Auto`, the peer's dense ones. The peer initialises matrices Glorot-normal, ours Glorot-uniform (TorchSharp 0.107's `xavier_normal_` calls the uniform initialiser; found 2026-12-05, results unchanged since).");
        sb.AppendLine(string.Create(inv, $"- Other processes: CPU time of processes other than this benchmark and its children (the peer and its sampler processes count as ours), in cores on average over each run. The peer's timeout was {timeout} s (`--peer-timeout`)."));
        sb.AppendLine($"- {HowTo()}");
        return sb.ToString();
    }
}

/// <summary>
/// A child process with its output read line by line: waits up to a timeout, then stops it, and always waits for it.
/// Stopping: SIGINT to the process (Python then stops its own children: multiprocessing terminates daemonic ones at
/// exit), and after a grace period SIGKILL to its process group (or, without one, its process tree). Also stops it when
/// this process gets SIGINT (Ctrl+C), SIGTERM, SIGQUIT or SIGHUP meanwhile.
/// </summary>
/// <remarks>
/// With <c>ownProcessGroup</c> on Linux the child starts through <c>setsid</c> (which execs it in a new session, same
/// pid), so that grandchildren it leaves behind when it dies abruptly (killed, crashed) can still be found and killed
/// as its process group; until they are gone they would hold its output pipes open. The child itself is always waited
/// for (no zombie); grandchildren killed after its death are reaped by init.
/// </remarks>
internal static class ChildProcess
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(15);
    private const string Setsid = "/usr/bin/setsid";
    private const int SigInt = 2, SigKill = 9;
    private const int KeptErrorLines = 20;

    /// <summary>What a child process did.</summary>
    /// <param name="StartError">Why it could not be started, or null.</param>
    /// <param name="ExitCode">Its exit code (null when it did not start or could not be stopped).</param>
    /// <param name="TimedOut">Whether it was stopped at the timeout.</param>
    /// <param name="Stdout">Every line of its standard output.</param>
    /// <param name="StderrTail">The last lines of its standard error.</param>
    public sealed record Result(string? StartError, int? ExitCode, bool TimedOut, IReadOnlyList<string> Stdout, IReadOnlyList<string> StderrTail);

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>Runs <paramref name="psi"/> (its output redirected) to its end or to <paramref name="timeout"/>; every
    /// line of both streams goes to <paramref name="echo"/> as it arrives.</summary>
    public static Result Run(ProcessStartInfo psi, TimeSpan timeout, Action<string>? echo, bool ownProcessGroup = false)
    {
        bool viaSetsid = ownProcessGroup && OperatingSystem.IsLinux() && File.Exists(Setsid);
        if (viaSetsid)
        {
            psi.ArgumentList.Insert(0, psi.FileName);
            psi.FileName = Setsid;
        }
        var stdout = new List<string>();
        var stderr = new Queue<string>();
        var gate = new object();
        using var stdoutEnd = new ManualResetEventSlim();
        using var stderrEnd = new ManualResetEventSlim();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not string line) { stdoutEnd.Set(); return; }
            lock (gate) { stdout.Add(line); echo?.Invoke(line); }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not string line) { stderrEnd.Set(); return; }
            lock (gate)
            {
                stderr.Enqueue(line);
                if (stderr.Count > KeptErrorLines) stderr.Dequeue();
                echo?.Invoke(line);
            }
        };
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is Win32Exception or InvalidOperationException or PlatformNotSupportedException)
        {
            return new Result(e.Message, null, false, Array.Empty<string>(), Array.Empty<string>());
        }
        // setsid execs the child in a new session and process group with its own pid (it forks only when it already
        // leads a group, which a child of ours never does).
        int? group = viaSetsid ? process.Id : null;
        // Ctrl+C, kill, a closed terminal: the child is stopped before this process ends (the signal's default action
        // follows). SIGINT does not reach it otherwise: it runs in its own session.
        var registrations = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGQUIT, PosixSignal.SIGHUP }
            .Select(signal => PosixSignalRegistration.Create(signal, _ => Stop(process, group))).ToList();
        bool timedOut = false;
        try
        {
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            if (!process.WaitForExit(timeout))
            {
                timedOut = true;
                Stop(process, group);
            }
        }
        finally
        {
            Stop(process, group); // nothing when it has exited; after an exception (none expected) it must not stay
            foreach (var registration in registrations) registration.Dispose();
        }
        // The end of both streams: every line has been handled. A grandchild that outlived the child holds them open:
        // its group is killed then, and the wait stays bounded.
        bool ended = WaitHandle.WaitAll(new[] { stdoutEnd.WaitHandle, stderrEnd.WaitHandle }, Grace);
        if (!ended && group is int g)
        {
            _ = SendSignal(-g, SigKill);
            ended = WaitHandle.WaitAll(new[] { stdoutEnd.WaitHandle, stderrEnd.WaitHandle }, Grace);
        }
        if (!ended) Console.Error.WriteLine($"The output of {psi.FileName} (pid {process.Id}) did not end within {Grace.TotalSeconds:F0} s of its exit: a process it started may still be running.");
        int? exitCode = process.HasExited ? process.ExitCode : null;
        lock (gate) return new Result(null, exitCode, timedOut, stdout.ToList(), stderr.ToList());
    }

    /// <summary>Whether the process leads its own process group (started through setsid), from /proc/PID/stat.</summary>
    private static bool LeadsOwnGroup(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name (which may hold spaces): state, ppid, pgrp.
            string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(rest[2], CultureInfo.InvariantCulture) == pid;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return false;
        }
    }

    /// <summary>SIGINT, a grace period, then SIGKILL to the process group (or the process tree); waits for it (reaped,
    /// no zombie). Idempotent.</summary>
    private static void Stop(Process process, int? group)
    {
        try
        {
            if (process.HasExited) return;
            if ((OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) && SendSignal(process.Id, SigInt) == 0 && process.WaitForExit(Grace))
                return;
            if (group is int g && LeadsOwnGroup(g)) _ = SendSignal(-g, SigKill);
            else process.Kill(entireProcessTree: true);
            process.WaitForExit(Grace);
        }
        catch (Exception e) when (e is InvalidOperationException or Win32Exception or NotSupportedException)
        {
            // It exited meanwhile (or was never started): nothing to stop.
        }
    }
}
