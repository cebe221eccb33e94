// Benchmark program (not a unit test): every figure and plot in docs/benchmarks.md comes from here.
//   dotnet run --project test/MLNet.DeepRec.Benchmarks -c Release -- [--quick] [--suite NAME[,NAME]] [--threads N]
//       [--output PATH] [--shared DIR]
// With every suite (the default) it writes the whole report; with --suite it replaces only those sections. Full runs
// write docs/benchmarks.md by default, quick runs artifacts/benchmarks-quick/benchmarks.md (so a smoke run never
// overwrites the reference figures); --output overrides. Plots go to a folder named after the report, beside it.
// The scale suite runs each measurement as a child process of this program (--scale-run JSON), for its own peak memory.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MLNet.DeepRec;
using MLNet.DeepRec.Benchmarks;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine("""
        MLNet.DeepRec benchmarks: regenerates docs/benchmarks.md (tables and PNG plots).
          --quick           few epochs per model: a smoke run of the whole report (minutes, not the reference figures)
          --suite a,b       only these suites (ml-100k, ml-100k-ratings, serving, frappe, sasrec, games-graph, scale); their sections are replaced in the report
                            scale: MF/NeuMF cost against size on synthetic data (1M-20M interactions, 10K-1M items,
                            top-10 over 1M items), each run in its own child process for its peak memory; needs no
                            dataset; tens of minutes (--quick: 1/10 sizes, a few minutes)
          --threads N       libtorch intra-op threads (default: libtorch's choice; frappe uses 1 unless given)
          --output PATH     report file (default: docs/benchmarks.md, or artifacts/benchmarks-quick/benchmarks.md with --quick)
          --shared DIR      folder with ml-100k/, frappe/, sasrec/ (default: ../shared/datasets beside the repository)
          --ml100k FILE, --frappe DIR, --games FILE   override one dataset's location
          --ml100k-models A,B   ml-100k rows to run (e.g. MF-BPR,LightGCN); default all
          --ml100k-set "Row:Prop=Value;…|Row2:…"   override trainer options of the LightGCN / MF-BPR rows (tuning)
          --ml100k-graph-split random|loo   split of the LightGCN / MF-BPR comparison (default random 70/10/20 per user)
          --ml100k-graph-seeds a,b   seeds of that comparison, means reported (default 2026,1,2,3; --quick 2026)
          --games-graph-models A,B   games-graph rows to run (MF-BPR, LightGCN); default all
          --games-graph-set "Row:Prop=Value;…|Row2:…"   override trainer options of games-graph rows (tuning)
          --games-graph-seeds a,b   seeds of the games-graph comparison, means reported (default 2026)
          --frappe-models A,B   frappe rows to run (FM (NFM-0), NFM, AFM, DeepFM, DCN-V2, Wide&Deep, the -256 rows, FFM); default all
          --frappe-set "Row:Prop=Value;Prop=Value|Row2:…"   override trainer options of frappe rows (tuning)
          --frappe-tasks regression|binary   frappe tasks to run (default both)
          --frappe-minimal-loop off   skip the minimal-loop speed comparison
          --frappe-deepfm-from FM   start DeepFM from the FM row's embeddings (tuning)
          --sasrec-rows a,b   sasrec rows to run (mf, bce, sampled-softmax, cross-entropy, gru4rec, peer); default all; Popularity always runs
                            peer: our BCE SASRec and the PyTorch port pmixer/SASRec.pytorch trained for the same few epochs,
                            one after the other, on the same split and settings; seconds per epoch, their ratio and sampled
                            HR@10/NDCG@10 of both. Runs when ../shared/peers/sasrec-pytorch and a python with torch are
                            present (Debian: apt-get install -y python3-torch), else says why and skips
          --peers DIR         folder with sasrec-pytorch/ (default: peers/ beside the --shared datasets folder)
          --peer-python PATH  python with torch and numpy (default /usr/bin/python3, else python3 on PATH)
          --peer-epochs N     epochs of the peer comparison, ours and the peer's (default 3; --quick 1)
          --peer-sampler-workers N   the peer's batch sampler processes (PEER_SAMPLER_WORKERS; default 3, upstream's)
          --peer-timeout S    seconds before the peer is stopped (default 900 + 600 per epoch)
          --gru4rec-set "Prop=Value;Prop=Value"   override trainer options of the sasrec suite's GRU4Rec rows (tuning)
        """);
    return 0;
}
// A child process of the scale suite: one measurement, reported on one JSON line (see ScaleSuite.RunChild).
if (ArgValue("--scale-run") is string scaleRun) return ScaleSuite.RunChild(scaleRun, ArgValue("--threads"));
var suites = new IBenchmarkSuite[] { new Ml100kSuite(), new RatingsSuite(), new ServingSuite(), new FrappeSuite(), new SasRecSuite(), new GamesGraphSuite(), new ScaleSuite() };
var wanted = ArgValue("--suite")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
if (wanted != null && wanted.Except(suites.Select(s => s.Name)).FirstOrDefault() is string unknown)
{
    Console.Error.WriteLine($"Unknown suite '{unknown}'. Available: {string.Join(", ", suites.Select(s => s.Name))}.");
    return 2;
}
var selected = suites.Where(s => wanted == null || wanted.Contains(s.Name)).ToList();
var progress = new BenchmarkProgress(Console.Out, selected.Count, interactive: !Console.IsOutputRedirected);
var context = new BenchmarkContext(args, progress);
if (ArgValue("--threads") is string threads) TorchSharp.torch.set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));
if (args.Contains("--overhead"))
{
    // Our pipeline and the minimal loops back to back on the same synthetic data size, for profiling the overhead.
    var ml = new Microsoft.ML.MLContext(1);
    var syn = ml.DeepRec().Data.GenerateSyntheticInteractions(new MLNet.DeepRec.Data.SyntheticInteractionOptions { UserCount = 943, ItemCount = 1682, InteractionsPerUser = 100, Seed = 1 });
    var keyed = ml.Transforms.Conversion.MapValueToKey("UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemId")).Fit(syn).Transform(syn);
    for (int rep = 0; rep < 2; rep++)
    {
        using var gmf = ml.DeepRec().Trainers.Gmf(new MLNet.DeepRec.Trainers.GmfTrainer.Options { NumberOfEpochs = 3 }).Fit(keyed);
        foreach (var e in gmf.TrainingReport.Epochs) Console.WriteLine($"GMF epoch {e.Epoch}: {e.TrainSeconds:F3} s (data {e.DataSeconds:F3} s), {e.SamplesPerSecond:N0} samples/s");
        long n = (long)(gmf.TrainingReport.Epochs[0].SamplesPerSecond * gmf.TrainingReport.Epochs[0].TrainSeconds);
        Console.WriteLine($"minimal fused: {MinimalLoop.SamplesPerSecond("GMF", 943, 1682, n, 256, 1, fusedAdam: true):N0}");
    }
    return 0;
}
if (args.Contains("--minimal-only"))
{
    foreach (var m in new[] { "MF", "GMF", "MLP", "NeuMF" })
        foreach (int batch in new[] { 256, 1024 })
            Console.WriteLine($"{m} batch {batch}: TorchSharp Adam {MinimalLoop.SamplesPerSecond(m, 943, 1682, 400_000, batch, 1):N0} samples/s, fused flat Adam {MinimalLoop.SamplesPerSecond(m, 943, 1682, 400_000, batch, 1, fusedAdam: true):N0} samples/s");
    return 0;
}


string output = Path.GetFullPath(ArgValue("--output") ?? Path.Combine(context.RepositoryRoot, context.Quick ? "artifacts/benchmarks-quick/benchmarks.md" : "docs/benchmarks.md"));
string plotFolder = Path.Combine(Path.GetDirectoryName(output)!, Path.GetFileNameWithoutExtension(output));
Directory.CreateDirectory(Path.GetDirectoryName(output)!);
// A whole report replaces every plot: charts of a model or suite that no longer exists must not linger beside it.
if (wanted == null && Directory.Exists(plotFolder))
    foreach (string stale in Directory.GetFiles(plotFolder, "*.png")) File.Delete(stale);
Console.SetOut(progress);
var wholeRunCpu = new OtherProcessesCpu();
var total = Stopwatch.StartNew();
var results = new List<(string Name, SuiteResult? Result)>();
foreach (var suite in selected)
{
    Console.WriteLine($"=== {suite.Name} ===");
    progress.BeginSuite(suite.Name, suite.PlannedSteps(context.Quick));
    var watch = Stopwatch.StartNew();
    var suiteCpu = new OtherProcessesCpu();
    SuiteResult? result;
    using (var peak = new PeakMemory())
    {
        result = suite.Run(context);
        if (result != null)
        {
            result.PeakMb = peak.PeakMb;
            result.Seconds = watch.Elapsed.TotalSeconds;
            // A suite that runs its work in child processes measures the disturbance there (children count as "other processes" here).
            if (result.Disturbance.Length == 0) result.Disturbance = suiteCpu.Describe();
            result.RunLine = $"Ran {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC: `{ReportWriter.Command} {string.Join(" ", args)}`.";
        }
    }
    progress.EndSuite();
    if (result != null)
    {
        foreach (var (caption, file) in Plots.Render(suite.PlotPrefix, suite.Name, result, plotFolder))
            result.Plots.Add((caption, $"{Path.GetFileName(plotFolder)}/{file}"));
        Console.WriteLine(ReportWriter.Section(suite.Name, result));
    }
    results.Add((suite.Name, result));
}
progress.Finish();
string header = ReportWriter.Header(string.Join(" ", args), context.Quick, results, total.Elapsed.TotalSeconds, wholeRunCpu.Describe());
ReportWriter.Write(output, header, results, wholeReport: wanted == null);
Console.WriteLine($"Wrote {output} ({results.Count(r => r.Result != null)} of {results.Count} suites; plots in {plotFolder}) in {total.Elapsed.TotalMinutes:F1} min.");
return 0;

string? ArgValue(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
