using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>ML-100K, leave-one-out: popularity, MF, GMF, MLP, NeuMF; quality under both protocols and training throughput.</summary>
internal sealed class Ml100kSuite : IBenchmarkSuite
{
    public string Name => "ml-100k";

    public string? Run(BenchmarkContext context)
    {
        string data = context.Arg("--ml100k") ?? Path.Combine(context.SharedDatasets, "ml-100k", "u.data");
        bool quick = context.Quick;
        if (!File.Exists(data))
        {
            Console.Error.WriteLine($"ML-100K not found at {Path.GetFullPath(data)}; pass --ml100k path/to/u.data. Skipping.");
            return null;
        }
        const int seed = 2026;
        var ml = new MLContext(seed);
        BenchmarkContext.EchoTrainingProgress(ml);
        var all = ml.DeepRec().Data.LoadMovieLens(data);
        var split = ml.DeepRec().Data.LeaveOneOutSplit(all, holdOutValidation: true);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(all);
        var train = keys.Transform(split.Train);
        var test = keys.Transform(split.Test);
        var valid = keys.Transform(split.Validation!);
        var evalOptions = new TopKEvaluationOptions { K = 10, Protocol = RankingProtocol.Sampled, NegativeCount = 99, Seed = seed, UserColumn = "UserKey", ItemColumn = "ItemKey" };
        var fullOptions = new TopKEvaluationOptions { K = 10, Protocol = RankingProtocol.FullRanking, Seed = seed, UserColumn = "UserKey", ItemColumn = "ItemKey" };

        var rows = new List<ResultRow>();
        var pop = ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey");
        var popSampled = ml.DeepRec().Evaluation.EvaluateTopK(pop, test, train, evalOptions);
        var popFull = ml.DeepRec().Evaluation.EvaluateTopK(pop, test, train, fullOptions);
        rows.Add(new ResultRow("Popularity", "training frequency", popSampled, popFull, null, null, 0));
        Console.WriteLine($"Popularity: {popSampled}");

        int epochScale = quick ? 4 : 1;
        T Common<T>(T o, int epochs) where T : CollaborativeTrainerOptions
        {
            o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.Seed = seed; o.BatchSize = 256;
            o.NegativesPerPositive = 4; o.NumberOfEpochs = Math.Max(1, epochs / epochScale);
            o.EarlyStoppingPatience = 4;
            return o;
        }
        CollaborativeFilteringTransformer? gmfModel = null, mlpModel = null;
        var trained = new List<CollaborativeFilteringTransformer>();
        var configs = new (string Name, string Settings, Func<CollaborativeFilteringTransformer> Fit)[]
        {
            ("MF", "32 factors, BCE, Adam lr 0.001", () => ml.DeepRec().Trainers.MatrixFactorization(Common(new MatrixFactorizationTrainer.Options { Factors = 32 }, 30)).Fit(train, valid)),
            ("GMF", "16 factors, Adam lr 0.001", () => gmfModel = ml.DeepRec().Trainers.Gmf(Common(new GmfTrainer.Options { Factors = 16 }, 30)).Fit(train, valid)),
            ("MLP", "64-32-16, Adam lr 0.001", () => mlpModel = ml.DeepRec().Trainers.Mlp(Common(new MlpTrainer.Options { Layers = new[] { 64, 32, 16 } }, 30)).Fit(train, valid)),
            ("NeuMF", "GMF 16 + MLP 64-32-16, Adam lr 0.001, L2 1e-6", () => ml.DeepRec().Trainers.NeuMF(Common(new NeuMFTrainer.Options { Factors = 16, MlpLayers = new[] { 64, 32, 16 }, L2Regularization = 1e-6 }, 30)).Fit(train, valid)),
            ("NeuMF (pre-trained)", "from the GMF and MLP above, α 0.5, SGD lr 0.01", () => ml.DeepRec().Trainers.NeuMF(Common(new NeuMFTrainer.Options { Factors = 16, MlpLayers = new[] { 64, 32, 16 }, PretrainedGmf = gmfModel, PretrainedMlp = mlpModel, Optimizer = MLNet.DeepRec.Training.DeepRecOptimizer.Sgd, LearningRate = 0.01 }, 30)).Fit(train, valid)),
        };
        var throughput = new List<ThroughputRow>();
        foreach (var (name, settings, fit) in configs)
        {
            var watch = Stopwatch.StartNew();
            var model = fit();
            trained.Add(model);
            double seconds = watch.Elapsed.TotalSeconds;
            var sampled = ml.DeepRec().Evaluation.EvaluateTopK(model, test, train, evalOptions);
            var full = ml.DeepRec().Evaluation.EvaluateTopK(model, test, train, fullOptions);
            var epochs = model.TrainingReport.Epochs;
            // Steady state: skip the first epoch (JIT and allocator warm-up).
            var steady = epochs.Count > 1 ? epochs.Skip(1).ToList() : epochs.ToList();
            double secondsPerEpoch = steady.Average(e => e.TrainSeconds);
            // Median epoch: robust to a noisy neighbour, like the minimal loop's median of three.
            double samplesPerSecond = steady.Select(e => e.SamplesPerSecond).OrderBy(x => x).ElementAt(steady.Count / 2);
            rows.Add(new ResultRow(name, $"{settings}; best epoch {model.TrainingReport.BestEpoch} of {epochs.Count}", sampled, full, secondsPerEpoch, samplesPerSecond, seconds));
            Console.WriteLine($"{name}: {sampled} | {full} | {secondsPerEpoch:F2} s/epoch, {samplesPerSecond:N0} samples/s, {seconds:F1} s total");

            long samples = (long)(epochs[0].SamplesPerSecond * epochs[0].TrainSeconds);
            double minimal = MinimalLoop.SamplesPerSecond(model.Module, samples, 256, seed);
            double minimalFused = MinimalLoop.SamplesPerSecond(model.Module, samples, 256, seed, fusedAdam: true);
            throughput.Add(new ThroughputRow(name, 256, samplesPerSecond, minimal, minimalFused));
            Console.WriteLine($"  minimal loop, same model and batch: TorchSharp Adam {minimal:N0}, fused Adam {minimalFused:N0} samples/s → ratio {samplesPerSecond / minimalFused:F2} (pipeline cost), {samplesPerSecond / minimal:F2} (vs plain TorchSharp)");
        }
        // Batch size effect on NeuMF (two epochs each, the second timed).
        foreach (int batch in new[] { 256, 1024 })
        {
            var o = Common(new NeuMFTrainer.Options { Factors = 16, MlpLayers = new[] { 64, 32, 16 } }, 4); o.NumberOfEpochs = 4; o.BatchSize = batch;
            using var m = ml.DeepRec().Trainers.NeuMF(o).Fit(train);
            // Pure training throughput (no validation data): the median of epochs 2–4.
            var e = m.TrainingReport.Epochs.Skip(1).OrderBy(x => x.SamplesPerSecond).ElementAt(1);
            long samples = (long)(e.SamplesPerSecond * e.TrainSeconds);
            double minimal = MinimalLoop.SamplesPerSecond(m.Module, samples, batch, seed);
            double minimalFused = MinimalLoop.SamplesPerSecond(m.Module, samples, batch, seed, fusedAdam: true);
            throughput.Add(new ThroughputRow("NeuMF", batch, e.SamplesPerSecond, minimal, minimalFused));
            Console.WriteLine($"NeuMF batch {batch}: {e.SamplesPerSecond:N0} samples/s (minimal loop {minimal:N0})");
        }
        foreach (var model in trained) model.Dispose();
        double peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0;

        return Report.Build(data, quick, rows, throughput, peakMb, context.CommandLine);

    }
}


internal sealed record ResultRow(string Model, string Settings, TopKMetrics Sampled, TopKMetrics Full, double? SecondsPerEpoch, double? SamplesPerSecond, double TotalSeconds);
internal sealed record ThroughputRow(string Model, int BatchSize, double OursSamplesPerSecond, double MinimalSamplesPerSecond, double MinimalFusedSamplesPerSecond);

internal static class Report
    {
        public static string Build(string data, bool quick, List<ResultRow> rows, List<ThroughputRow> throughput, double peakMb, string arguments)
        {
            var sb = new StringBuilder();
            sb.AppendLine("<!-- begin ml-100k (generated by test/MLNet.DeepRec.Benchmarks; do not edit by hand) -->");
            sb.AppendLine("## ML-100K: NCF family and MF (issue: foundation)");
            sb.AppendLine();
            sb.AppendLine($"- Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC. Machine: {Environment.ProcessorCount} cores, {RuntimeInformationText()}, {(double)GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1L << 30):F0} GiB visible; libtorch {TorchSharp.torch.__version__} CPU, {TorchSharp.torch.get_num_threads()} threads.");
            sb.AppendLine($"- Data: `{Path.GetFileName(data)}` (MovieLens 100K, all ratings as implicit interactions). Split: leave-one-out, latest interaction per user (ties by row order) = test, second latest = validation; each model trains up to 30 epochs with early stopping on validation NDCG@10 (sampled, 99 negatives; patience 4) and keeps its best epoch. Fixed seed 2026.");
            sb.AppendLine($"- Command: `dotnet run --project test/MLNet.DeepRec.Benchmarks -c Release -- {arguments}`{(quick ? " (quick mode: epochs divided by 4)" : "")}");
            sb.AppendLine();
            sb.AppendLine("### Quality (test users: " + rows[0].Sampled.CaseCount + ")");
            sb.AppendLine();
            sb.AppendLine("| Model | Settings | HR@10 sampled (99 neg.) | NDCG@10 sampled (99 neg.) | HR@10 full ranking | NDCG@10 full ranking | s/epoch | samples/s | train s |");
            sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
            foreach (var r in rows)
                sb.AppendLine($"| {r.Model} | {r.Settings} | {r.Sampled.HitRate:F4} | {r.Sampled.Ndcg:F4} | {r.Full.HitRate:F4} | {r.Full.Ndcg:F4} | {(r.SecondsPerEpoch is double s ? s.ToString("F2") : "–")} | {(r.SamplesPerSecond is double p ? p.ToString("N0") : "–")} | {r.TotalSeconds:F1} |");
            sb.AppendLine();
            sb.AppendLine("Sampled: the held-out item ranked among 99 items the user never interacted with (NCF paper protocol). Full ranking: among all items minus the user's training items. Ties count against the model.");
            sb.AppendLine();
            sb.AppendLine("### Training throughput: our pipeline vs a minimal TorchSharp loop");
            sb.AppendLine();
            sb.AppendLine("The minimal loop trains the same module at the same batch size over tensors built once up front (no IDataView, no negative sampling, no shuffling), once with TorchSharp's `optim.Adam` (what a hand-written script uses) and once with our fused flat-buffer Adam (the optimizer our pipeline uses). Ours/fused is therefore the cost of the pipeline itself; ours/TorchSharp is the net speed-up over a plain script. Our figure is the median epoch after the first, per-epoch negative sampling and shuffling included; the minimal loops' is the median of three timed epochs.");
            sb.AppendLine();
            sb.AppendLine("| Model | Batch | Ours (samples/s) | Minimal loop, fused Adam | Minimal loop, TorchSharp Adam | Ours / fused minimal | Ours / TorchSharp minimal |");
            sb.AppendLine("|---|---|---|---|---|---|---|");
            foreach (var t in throughput)
                sb.AppendLine($"| {t.Model} | {t.BatchSize} | {t.OursSamplesPerSecond:N0} | {t.MinimalFusedSamplesPerSecond:N0} | {t.MinimalSamplesPerSecond:N0} | {t.OursSamplesPerSecond / t.MinimalFusedSamplesPerSecond:F2} | {t.OursSamplesPerSecond / t.MinimalSamplesPerSecond:F2} |");
            sb.AppendLine();
            sb.AppendLine($"Peak working set of the whole benchmark process: {peakMb:N0} MB.");
            sb.AppendLine("<!-- end ml-100k -->");
            return sb.ToString();
        }

        private static string RuntimeInformationText() =>
            $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}";

        public static void ReplaceSection(string path, string name, string section)
        {
            string begin = $"<!-- begin {name}", end = $"<!-- end {name} -->";
            string text = File.Exists(path) ? File.ReadAllText(path) : "# Benchmarks\n\nEvery figure here is produced by a benchmark program in this repository; rerun the command shown in each section.\n\n";
            int b = text.IndexOf(begin, StringComparison.Ordinal), e = text.IndexOf(end, StringComparison.Ordinal);
            text = b >= 0 && e > b ? text[..b] + section.TrimEnd() + text[(e + end.Length)..] : text.TrimEnd() + "\n\n" + section;
            File.WriteAllText(path, text.TrimEnd() + "\n");
        }
    }
