using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// LightGCN beside MF trained with BPR (with item bias, and the LightGCN paper's MF without biases) under the LightGCN
/// paper's metrics, full-ranking Recall@20 and NDCG@20: the comparison of the ml-100k suite, also run on Amazon Games
/// by the games-graph suite. Every model trains with each seed; the report gives the first seed's rows and the means.
/// </summary>
internal static class GraphComparison
{
    /// <summary>Epoch budget (each run stops early after 10 epochs without improvement).</summary>
    public const int Epochs = 400;

    /// <summary>A row of the comparison: its name, its own options (the shared settings are applied after), and how its
    /// settings column describes it.</summary>
    public sealed record Model(string Name, Func<CollaborativeTrainerOptions> Options, Func<CollaborativeTrainerOptions, string> Describe);

    /// <summary>The validation that picks each run's best epoch: protocol and K.</summary>
    public sealed record Validation(RankingProtocol Protocol, int K);

    /// <summary>Trains and evaluates every model with every seed; <paramref name="runs"/> filters rows by name
    /// (--…-models), <paramref name="overrides"/> applies --…-set.</summary>
    public static List<GraphRow> Run(BenchmarkContext context, MLContext ml, IDataView train, IDataView valid, IDataView test, IReadOnlyList<Model> models,
        IReadOnlyList<int> seeds, Func<string, bool> runs, TrainerOptionOverrides overrides, Validation? validation, int epochs, int evaluationSeed)
    {
        var sampled = new TopKEvaluationOptions { K = 10, Protocol = RankingProtocol.Sampled, NegativesPerPositive = 99, Seed = evaluationSeed, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        var at20 = new TopKEvaluationOptions { K = 20, Protocol = RankingProtocol.FullRanking, Seed = evaluationSeed, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        var rows = new List<GraphRow>();
        foreach (int seed in seeds)
        foreach (var model in models.Where(m => runs(m.Name)))
        {
            context.Progress.Step(seeds.Count == 1 ? model.Name : $"{model.Name} (seed {seed})");
            var o = model.Options();
            o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.Seed = seed; o.Loss = CollaborativeLoss.Bpr; o.NegativesPerPositive = 1;
            o.NumberOfEpochs = epochs; o.EarlyStoppingPatience = 10;
            if (validation is not null) (o.ValidationProtocol, o.ValidationK) = (validation.Protocol, validation.K);
            overrides.Apply(model.Name, o);
            var watch = Stopwatch.StartNew();
            using var fitted = o switch
            {
                LightGcnTrainer.Options l => ml.DeepRec().Trainers.LightGcn(l).Fit(train, valid),
                BiasedMatrixFactorizationTrainer.Options m => ml.DeepRec().Trainers.MatrixFactorization(m).Fit(train, valid),
                _ => throw new NotSupportedException($"No trainer for {o.GetType().Name} in the graph comparison."),
            };
            double seconds = watch.Elapsed.TotalSeconds;
            var sampled10 = ml.DeepRec().Evaluation.EvaluateTopK(fitted, test, train, sampled);
            var full20 = ml.DeepRec().Evaluation.EvaluateTopK(fitted, test, train, at20);
            var validation20 = ml.DeepRec().Evaluation.EvaluateTopK(fitted, valid, train, at20);
            var report = fitted.TrainingReport;
            double secondsPerEpoch = (report.Epochs.Count > 1 ? report.Epochs.Skip(1) : report.Epochs).Average(e => e.TrainSeconds);
            string settings = model.Describe(o);
            rows.Add(new GraphRow(model.Name, seed, $"{settings}; best epoch {report.BestEpoch} of {report.Epochs.Count}", full20, sampled10, validation20, secondsPerEpoch, seconds));
            Console.WriteLine($"{model.Name} (seed {seed}; {settings}): test {full20} | {sampled10} | validation Recall@20 {validation20.Recall:F4} | {secondsPerEpoch:F2} s/epoch, {seconds:F1} s total, best epoch {report.BestEpoch} of {report.Epochs.Count}");
        }
        return rows;
    }

    /// <summary>"64 factors, …, batch B, Adam lr L, λ R, 1 negative per positive".</summary>
    public static string Settings(CollaborativeTrainerOptions o, string extra) => string.Create(CultureInfo.InvariantCulture,
        $"{extra}, batch {o.BatchSize}, Adam lr {o.LearningRate}, λ {o.EmbeddingRegularization}, {o.NegativesPerPositive} {(o.NegativesPerPositive == 1 ? "negative" : "negatives")} per positive");

    /// <summary>The report: the first seed's table, the per-seed means, and LightGCN's lead over each MF row.</summary>
    public static void Append(StringBuilder sb, string heading, string description, List<GraphRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        int firstSeed = rows[0].Seed;
        var seeds = rows.Select(g => g.Seed).Distinct().ToList();
        sb.AppendLine($"### {heading}");
        sb.AppendLine();
        sb.AppendLine($"{description} The table shows seed {firstSeed}; {(seeds.Count > 1 ? $"the means below cover seeds {string.Join(", ", seeds)} (initialisation, negatives and shuffling; the split stays)." : "one seed only.")}");
        sb.AppendLine();
        sb.AppendLine("| Model | Settings | Recall@20 full | NDCG@20 full | HR@10 sampled (99 neg.) | NDCG@10 sampled | s/epoch | train s | validation Recall@20 full |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var g in rows.Where(g => g.Seed == firstSeed))
            sb.AppendLine(string.Create(inv, $"| {g.Model} | {g.Settings} | {g.Full20.Recall:F4} | {g.Full20.Ndcg:F4} | {g.Sampled10.HitRate:F4} | {g.Sampled10.Ndcg:F4} | {g.SecondsPerEpoch:F2} | {g.TotalSeconds:F1} | {g.Validation20.Recall:F4} |"));
        sb.AppendLine();
        static (double Mean, double Sd) Stats(IEnumerable<double> values)
        {
            var v = values.ToList();
            double mean = v.Average();
            return (mean, v.Count > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1)) : 0);
        }
        if (seeds.Count > 1)
        {
            sb.AppendLine("| Model | Seeds | Recall@20 full, mean (sd) | NDCG@20 full, mean (sd) | Recall@20 per seed |");
            sb.AppendLine("|---|---|---|---|---|");
            foreach (var model in rows.Select(g => g.Model).Distinct())
            {
                var mine = rows.Where(g => g.Model == model).ToList();
                var (r, rs) = Stats(mine.Select(g => g.Full20.Recall));
                var (n, ns) = Stats(mine.Select(g => g.Full20.Ndcg));
                sb.AppendLine(string.Create(inv, $"| {model} | {mine.Count} | {r:F4} ({rs:F4}) | {n:F4} ({ns:F4}) | {string.Join(", ", mine.Select(g => g.Full20.Recall.ToString("F4", inv)))} |"));
            }
            sb.AppendLine();
        }
        var gcn = rows.Where(g => g.Model == "LightGCN").ToList();
        foreach (var (baseline, why) in new[] { ("MF-BPR", " (target: Recall@20 at least +5%)"), ("MF-BPR (no biases)", " (the LightGCN paper's MF, i.e. LightGCN with K = 0: what the graph adds)") })
        {
            var mf = rows.Where(g => g.Model == baseline).ToList();
            if (mf.Count == 0 || gcn.Count == 0) continue;
            double Lead(Func<GraphRow, double> metric) => 100 * (gcn.Average(metric) / mf.Average(metric) - 1);
            var mf1 = mf.First(g => g.Seed == firstSeed);
            var gcn1 = gcn.First(g => g.Seed == firstSeed);
            sb.AppendLine(string.Create(inv, $"LightGCN against {baseline}{(seeds.Count > 1 ? $", mean over {seeds.Count} seeds" : "")}: Recall@20 {Lead(g => g.Full20.Recall):+0.0;-0.0}% relative, NDCG@20 {Lead(g => g.Full20.Ndcg):+0.0;-0.0}%{why}{(seeds.Count > 1 ? string.Create(inv, $"; seed {firstSeed} alone: {100 * (gcn1.Full20.Recall / mf1.Full20.Recall - 1):+0.0;-0.0}% and {100 * (gcn1.Full20.Ndcg / mf1.Full20.Ndcg - 1):+0.0;-0.0}%") : "")}. {mf1.Full20.CaseCount:N0} test cases."));
            sb.AppendLine();
        }
        if (gcn.Count > 0) sb.AppendLine("Every LightGCN step propagates the whole graph (on the CPU a compressed-row product in C#, forward and backward), hence its cost per epoch.");
        sb.AppendLine();
    }

    /// <summary>Summary-table rows for the first seed.</summary>
    public static IEnumerable<SummaryRow> Summary(List<GraphRow> rows, string dataset) =>
        rows.Where(g => g.Seed == rows[0].Seed).Select(g => new SummaryRow(dataset, g.Model, "Recall@20 / NDCG@20, full ranking",
            string.Create(CultureInfo.InvariantCulture, $"{g.Full20.Recall:F4} / {g.Full20.Ndcg:F4}"), "–",
            string.Create(CultureInfo.InvariantCulture, $"{g.SecondsPerEpoch:F2} s/epoch; trained in {g.TotalSeconds:F0} s")));
}

internal sealed record GraphRow(string Model, int Seed, string Settings, TopKMetrics Full20, TopKMetrics Sampled10, TopKMetrics Validation20, double SecondsPerEpoch, double TotalSeconds);
