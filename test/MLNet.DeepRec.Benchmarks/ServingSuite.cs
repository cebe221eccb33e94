using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// ML-100K serving: single-row PredictionEngine latency (in-memory transformer and saved-then-loaded zip), batch
/// throughput of ML.NET Transform (ONNX Runtime) vs TorchSharp batched scoring of the same pairs, and full-catalogue
/// top-10 for every user. Models are trained briefly: quality is not the point here.
/// </summary>
internal sealed class ServingSuite : IBenchmarkSuite
{
    public string Name => "serving";

    /// <summary>Raw (pre-MapValueToKey) ids, as a scoring service receives them.</summary>
    public sealed class Pair
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float Score { get; set; }
        public float Probability { get; set; }
    }

    private sealed record Latency(string Model, string Path, double P50, double P90, double P99, double Mean, int Calls, double[] RoundP50s);
    private sealed record Throughput(string Model, string Pairs, int Rows, string Path, double RowsPerSecond);
    private sealed record TopK(string Model, string Path, int Users, double[] Seconds);

    public string PlotPrefix => "serving";

    public int PlannedSteps(bool quick) => 2;

    public SuiteResult? Run(BenchmarkContext context)
    {
        string data = context.Arg("--ml100k") ?? Path.Combine(context.SharedDatasets, "ml-100k", "u.data");
        if (!File.Exists(data))
        {
            Console.Error.WriteLine($"ML-100K not found at {Path.GetFullPath(data)}; pass --ml100k path/to/u.data. Skipping.");
            return null;
        }
        bool quick = context.Quick;
        const int seed = 2026;
        int calls = quick ? 5_000 : 20_000;
        const int rounds = 3;

        var ml = new MLContext(seed);
        IDataView all = ml.DeepRec().Data.LoadMovieLens(data);
        var split = ml.DeepRec().Data.LeaveOneOutSplit(all);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(all);
        IDataView train = keys.Transform(split.Train);
        IDataView test = keys.Transform(split.Test);
        string dir = Path.Combine(Path.GetTempPath(), "deeprec-serving-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);

        int epochs = quick ? 1 : 3;
        T Common<T>(T o) where T : CollaborativeTrainerOptions
        {
            o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.Seed = seed; o.BatchSize = 1024;
            o.NegativesPerPositive = 4; o.NumberOfEpochs = epochs;
            return o;
        }
        var configs = new (string Name, string Settings, Func<CollaborativeFilteringTransformer> Fit)[]
        {
            ("NeuMF", $"GMF 8 + MLP 64-32-16-8, {epochs} epochs", () => ml.DeepRec().Trainers.NeuMF(Common(new NeuMFTrainer.Options())).Fit(train)),
            ("MF", $"32 factors, {epochs} epochs", () => ml.DeepRec().Trainers.MatrixFactorization(Common(new BiasedMatrixFactorizationTrainer.Options { Factors = 32 })).Fit(train)),
        };

        uint[] testUsers = test.GetColumn<uint>("UserKey").ToArray();
        uint[] testItems = test.GetColumn<uint>("ItemKey").ToArray();
        var latencies = new List<Latency>();
        var throughputs = new List<Throughput>();
        var topks = new List<TopK>();
        var settings = new List<string>();
        try
        {
            foreach (var (name, description, fit) in configs)
            {
                context.Progress.Step(name);
                Console.WriteLine($"Training {name} ({description})…");
                using CollaborativeFilteringTransformer model = fit();
                settings.Add($"{name}: {description}, batch 1024, 4 negatives");
                var chain = new TransformerChain<ITransformer>(keys, model);
                string zip = Path.Combine(dir, name + ".zip");
                DeepRecServing.SaveModel(ml, chain, all.Schema, zip); // with the recommender entries (top-K below)
                var serving = new MLContext();
                ITransformer loaded = DeepRecServing.LoadModel(serving, zip);
                // The same zip through plain ML.NET: its OnnxTransformer scores one row per ONNX Runtime call.
                var plainContext = new MLContext();
                DeepRecServing.RegisterForLoading(plainContext);
                ITransformer rowByRow = plainContext.Model.Load(zip, out _);

                // Single-row latency, raw ids in (MapValueToKey + ONNX Runtime + score mapping per call).
                Pair[] pairs = testUsers.Select((u, n) => new Pair { UserId = model.Vocabulary.UserId(u)!, ItemId = model.Vocabulary.ItemId(testItems[n])! }).ToArray();
                // ML.NET's PredictionEngine disposes its transformer with itself unless told otherwise; the models are used again below.
                var keepModel = new PredictionEngineOptions { OwnsTransformer = false };
                using (var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(chain, keepModel))
                    latencies.Add(MeasureLatency(name, "in-memory transformer (keys + model)", engine, pairs, calls, rounds));
                using (var engine = serving.Model.CreatePredictionEngine<Pair, Prediction>(loaded, keepModel))
                    latencies.Add(MeasureLatency(name, "loaded zip", engine, pairs, calls, rounds));
                foreach (var l in latencies.TakeLast(2))
                    Console.WriteLine($"  latency {l.Path}: p50 {l.P50:F1} µs, p99 {l.P99:F1} µs (round p50s {string.Join(" / ", l.RoundP50s.Select(p => p.ToString("F1", CultureInfo.InvariantCulture)))})");

                // Batch throughput on the same pairs: the 943 test pairs, and the test pairs with 99 random items per user.
                var rng = new Random(seed);
                int width = 100;
                var candidateItems = new uint[testUsers.Length * width];
                for (int u = 0; u < testUsers.Length; u++)
                {
                    candidateItems[u * width] = testItems[u];
                    for (int j = 1; j < width; j++) candidateItems[u * width + j] = (uint)rng.Next(1, model.ItemCount + 1);
                }
                uint[] candidateUsers = testUsers.SelectMany(u => Enumerable.Repeat(u, width)).ToArray();
                foreach (var (label, users, items, perUser) in new[]
                {
                    ("test set (1 pair per user)", testUsers, testItems, 1),
                    ($"test pair + 99 random items per user", candidateUsers, candidateItems, width),
                })
                {
                    IDataView raw = RawView(model, users, items);
                    IDataView keyed = ml.Data.Cache(keys.Transform(raw));
                    _ = keyed.GetColumn<uint>("UserKey").Count(); // fill the cache outside the timing
                    double ortModel = RowsPerSecond(() => Consume(model.Transform(keyed)), users.Length);
                    double ortZip = RowsPerSecond(() => Consume(loaded.Transform(raw)), users.Length);
                    double rowModel = RowsPerSecond(() => Consume(model.InnerChain.Transform(keyed)), users.Length);
                    double rowZip = RowsPerSecond(() => Consume(rowByRow.Transform(raw)), users.Length);
                    int[] userKeys = testUsers.Select(u => (int)u).ToArray(); // ScoreCandidates: one user per group of perUser items
                    int[] itemKeys = items.Select(i => (int)i).ToArray();
                    double torch = RowsPerSecond(() => model.ScoreCandidates(userKeys, itemKeys, perUser), users.Length);
                    throughputs.Add(new Throughput(name, label, users.Length, "`Transform`, batched ONNX Runtime (in-memory transformer, key columns in)", ortModel));
                    throughputs.Add(new Throughput(name, label, users.Length, "`Transform`, batched ONNX Runtime (zip loaded with `DeepRecServing.LoadModel`, raw ids in)", ortZip));
                    throughputs.Add(new Throughput(name, label, users.Length, "ML.NET OnnxTransformer, one row per call (the transformer's `InnerChain`, key columns in)", rowModel));
                    throughputs.Add(new Throughput(name, label, users.Length, "ML.NET OnnxTransformer, one row per call (zip loaded with plain `mlContext.Model.Load`, raw ids in)", rowZip));
                    throughputs.Add(new Throughput(name, label, users.Length, "TorchSharp `ScoreCandidates` (batched)", torch));
                    Console.WriteLine($"  {label}: batched in-memory {ortModel:N0} rows/s, batched zip {ortZip:N0} rows/s, row-by-row in-memory {rowModel:N0}, row-by-row zip {rowZip:N0}, TorchSharp {torch:N0} rows/s");
                }

                // Full-catalogue top-10 for every user, seen items excluded, TorchSharp batched.
                uint[] everyUser = Enumerable.Range(1, model.UserCount).Select(u => (uint)u).ToArray();
                _ = model.Recommend(everyUser, 10); // warm-up
                var seconds = new double[rounds];
                for (int r = 0; r < rounds; r++)
                {
                    var watch = Stopwatch.StartNew();
                    var lists = model.Recommend(everyUser, 10);
                    seconds[r] = watch.Elapsed.TotalSeconds;
                    if (lists.Count != everyUser.Length || lists.Any(l => l.Count != 10)) throw new InvalidOperationException("Recommend returned short lists.");
                }
                topks.Add(new TopK(name, "in-memory transformer, TorchSharp (`model.Recommend(allUserKeys, 10)`)", everyUser.Length, seconds));
                Console.WriteLine($"  top-10 for {everyUser.Length} users: {string.Join(", ", seconds.Select(s => $"{s:F3} s"))}");

                // The same from the zip, ONNX Runtime only: DeepRecServing.LoadRecommender, original user ids in.
                using (DeepRecRecommender recommender = DeepRecServing.LoadRecommender(new MLContext(), zip))
                {
                    string[] everyUserId = everyUser.Select(u => model.Vocabulary.UserId(u)!).ToArray();
                    _ = recommender.Recommend(everyUserId, 10); // warm-up
                    var zipSeconds = new double[rounds];
                    for (int r = 0; r < rounds; r++)
                    {
                        var watch = Stopwatch.StartNew();
                        var lists = recommender.Recommend(everyUserId, 10);
                        zipSeconds[r] = watch.Elapsed.TotalSeconds;
                        if (lists.Count != everyUser.Length || lists.Any(l => l.Count != 10)) throw new InvalidOperationException("The loaded recommender returned short lists.");
                    }
                    topks.Add(new TopK(name, "loaded zip, ONNX Runtime (`DeepRecServing.LoadRecommender(…).Recommend(allUserIds, 10)`)", everyUser.Length, zipSeconds));
                    Console.WriteLine($"  top-10 for {everyUser.Length} users from the zip: {string.Join(", ", zipSeconds.Select(s => $"{s:F3} s"))}");
                }
                (rowByRow as IDisposable)?.Dispose();
                (loaded as IDisposable)?.Dispose();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        return Build(data, quick, settings, latencies, throughputs, topks, calls, rounds);
    }

    private static readonly TimeSpan WarmUpTime = TimeSpan.FromSeconds(2);

    private static Latency MeasureLatency(string model, string path, PredictionEngine<Pair, Prediction> engine, Pair[] pairs, int calls, int rounds)
    {
        var output = new Prediction();
        // Warm-up for two seconds, not a call count: .NET's tiered JIT with dynamic PGO recompiles hot methods in steps
        // (tier 0, instrumented, tier 1), each after a delay, and 2,000 calls (about 40 ms) left NeuMF's first two rounds
        // at tier 0 (p50 19 µs against 14.5 µs in the third). A service measures in steady state.
        var warmUp = Stopwatch.StartNew();
        for (int n = 0; warmUp.Elapsed < WarmUpTime; n++) engine.Predict(pairs[n % pairs.Length], ref output);
        var all = new List<double>(calls * rounds);
        var roundP50 = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            var micros = new double[calls];
            for (int n = 0; n < calls; n++)
            {
                long start = Stopwatch.GetTimestamp();
                engine.Predict(pairs[n % pairs.Length], ref output);
                micros[n] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }
            if (!float.IsFinite(output.Score)) throw new InvalidOperationException("Non-finite score.");
            Array.Sort(micros);
            roundP50[r] = Percentile(micros, 0.5);
            all.AddRange(micros);
        }
        double[] sorted = [.. all.Order()];
        return new Latency(model, path, Percentile(sorted, 0.5), Percentile(sorted, 0.9), Percentile(sorted, 0.99), sorted.Average(), sorted.Length, roundP50);
    }

    private static double Percentile(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Floor(q * sorted.Length))];

    /// <summary>Best of several timed repetitions (at least 3, and at least about a second in all), after one warm-up.</summary>
    private static double RowsPerSecond(Action action, int rows)
    {
        action();
        double best = double.MaxValue, total = 0;
        for (int r = 0; r < 3 || (total < 1.0 && r < 50); r++)
        {
            var watch = Stopwatch.StartNew();
            action();
            double s = watch.Elapsed.TotalSeconds;
            best = Math.Min(best, s);
            total += s;
        }
        return rows / best;
    }

    private static void Consume(IDataView scored)
    {
        float sum = 0;
        foreach (float s in scored.GetColumn<float>("Score")) sum += s;
        if (float.IsNaN(sum)) throw new InvalidOperationException("NaN score.");
    }

    private static IDataView RawView(CollaborativeFilteringTransformer model, uint[] users, uint[] items) =>
        new ColumnarDataView([
            ("UserId", users.Select(u => model.Vocabulary.UserId(u)!.AsMemory()).ToArray()),
            ("ItemId", items.Select(i => model.Vocabulary.ItemId(i)!.AsMemory()).ToArray()),
        ]);

    private static SuiteResult Build(string data, bool quick, List<string> settings, List<Latency> latencies, List<Throughput> throughputs, List<TopK> topks,
        int calls, int rounds)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine($"- Scoring: ONNX Runtime (CPU) through Microsoft.ML.OnnxTransformer; TorchSharp rows with libtorch {TorchSharp.torch.__version__} CPU, {TorchSharp.torch.get_num_threads()} threads.");
        sb.AppendLine($"- Data: `{Path.GetFileName(data)}` (MovieLens 100K), leave-one-out split (latest interaction per user held out). Models trained briefly; quality is not measured here. {string.Join("; ", settings)}.");
        if (quick) sb.AppendLine("- Quick mode: 1 training epoch, 5,000 calls per round.");
        sb.AppendLine();
        sb.AppendLine("### Single-row latency (`PredictionEngine.Predict`, raw user/item ids in)");
        sb.AppendLine();
        sb.AppendLine($"Each call maps the two ids to keys (`MapValueToKey`), runs the ONNX graph in ONNX Runtime and the score mapping. Two seconds of warm-up calls (tiered JIT reaches steady state), then {rounds} rounds of {calls:N0} calls over the 943 test pairs, each call timed alone. Target: p50 < 100 µs for NeuMF.");
        sb.AppendLine();
        sb.AppendLine("| Model | Through | p50 (µs) | p90 (µs) | p99 (µs) | mean (µs) | calls | p50 of each round (µs) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var l in latencies)
            sb.AppendLine(string.Create(inv, $"| {l.Model} | {l.Path} | {l.P50:F1} | {l.P90:F1} | {l.P99:F1} | {l.Mean:F1} | {l.Calls:N0} | {string.Join(" / ", l.RoundP50s.Select(p => p.ToString("F1", inv)))} |"));
        sb.AppendLine();
        sb.AppendLine("### Batch throughput on the same pairs");
        sb.AppendLine();
        sb.AppendLine("`Transform` over a data view, reading every `Score`: batched (the DeepRec transformers and `DeepRecServing.LoadModel` run ONNX Runtime once per batch of up to 4,096 rows), ML.NET's OnnxTransformer one row per call (the inner chain, or the zip loaded with plain `mlContext.Model.Load`), and the TorchSharp network scoring the same pairs in one batched call (`ScoreCandidates`). Best of at least 3 timed repetitions after a warm-up. Targets for the batched rows on 94,300 pairs: ≥ 2M rows/s (NeuMF), ≥ 4M rows/s (MF).");
        sb.AppendLine();
        sb.AppendLine("| Model | Pairs | Rows | Path | rows/s |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var t in throughputs)
            sb.AppendLine(string.Create(inv, $"| {t.Model} | {t.Pairs} | {t.Rows:N0} | {t.Path} | {t.RowsPerSecond:N0} |"));
        sb.AppendLine();
        sb.AppendLine("### Full-catalogue top-10 for every user");
        sb.AppendLine();
        sb.AppendLine("Every item scored for every user, training items excluded, top-10. In memory: `model.Recommend(allUserKeys, 10)` (TorchSharp, 256 users per batch, `topk`). From the zip: `DeepRecServing.LoadRecommender(mlContext, zip).Recommend(allUserIds, 10)` (ONNX Runtime only: the saved all-items graph in chunks of users, seen items masked and a running top-10 in C#). One warm-up call, then timed calls. Targets: < 2 s in memory, ≤ 0.5 s from the zip (NeuMF), for the 943 ML-100K users.");
        sb.AppendLine();
        sb.AppendLine("| Model | Through | Users | Items scored per user | Seconds (each timed call) | Best |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var k in topks)
            sb.AppendLine(string.Create(inv, $"| {k.Model} | {k.Path} | {k.Users:N0} | all | {string.Join(" / ", k.Seconds.Select(s => s.ToString("F3", inv)))} | {k.Seconds.Min():F3} |"));
        var summary = new List<SummaryRow>();
        foreach (var l in latencies.Where(l => l.Path == "loaded zip"))
        {
            var k = topks.LastOrDefault(t => t.Model == l.Model);
            summary.Add(new SummaryRow("ML-100K serving", l.Model, "PredictionEngine p50 / p99 latency, loaded zip, raw ids in", string.Create(inv, $"{l.P50:F1} µs / {l.P99:F1} µs"), "–",
                k == null ? "–" : string.Create(inv, $"top-10 over all items for all {k.Users:N0} users from the loaded zip: {k.Seconds.Min():F3} s")));
            var batched = throughputs.FirstOrDefault(t => t.Model == l.Model && t.Rows > 10_000 && t.Path.Contains("LoadModel", StringComparison.Ordinal));
            if (batched != null)
                summary.Add(new SummaryRow("ML-100K serving", l.Model, $"batched `Transform` throughput, loaded zip, raw ids in ({batched.Rows:N0} pairs)", string.Create(inv, $"{batched.RowsPerSecond:N0} rows/s"), "–", "–"));
        }
        return new SuiteResult("Serving: latency, batch throughput and top-K on ML-100K", sb.ToString(), Array.Empty<TrainingCurve>(), Array.Empty<QualityPoint>(), "", summary);
    }
}
