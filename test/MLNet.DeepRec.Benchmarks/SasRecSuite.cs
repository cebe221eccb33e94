using System.Diagnostics;
using System.Text;
using Microsoft.ML;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// Amazon Games (the SASRec paper's <c>Video.txt</c>), leave-one-out with validation: popularity, MF, SASRec with
/// each loss and GRU4Rec; HR@10/NDCG@10 under the paper's sampled protocol (100 negatives) and under full ranking; s/epoch,
/// tokens/s and peak memory per model.
/// </summary>
internal sealed class SasRecSuite : IBenchmarkSuite
{
    public string Name => "sasrec";

    private sealed record Row(string Model, string Settings, TopKMetrics Sampled, TopKMetrics Full, int Epochs, int? BestEpoch,
        double? SecondsPerEpoch, double? TokensPerSecond, double PeakMb, double TotalSeconds);

    public string PlotPrefix => "sequential";

    public int PlannedSteps(bool quick) => 7 + Gru4RecRows.Length;

    public SuiteResult? Run(BenchmarkContext context)
    {
        if (context.AmazonGamesFile() is not string data) return null;
        bool quick = context.Quick;
        if (SasRecRows.FromArgs(context) is not SasRecRows selection) return null;
        var suiteCpu = new OtherProcessesCpu(childrenAreOwn: true); // the peer runs as our child process
        const int seed = 2026;
        var ml = new MLContext(seed);
        context.EchoTrainingProgress(ml);
        var total = Stopwatch.StartNew();
        var all = ml.DeepRec().Data.LoadUserItemSequences(data);
        var split = ml.DeepRec().Data.LeaveOneOutSplit(all, holdOutValidation: true);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(all);
        var train = keys.Transform(split.Train);
        var validation = keys.Transform(split.Validation!);
        var test = keys.Transform(split.Test);
        Console.WriteLine($"Loaded and split in {total.Elapsed.TotalSeconds:F1} s");
        var sampledOptions = new TopKEvaluationOptions { K = 10, Protocol = RankingProtocol.Sampled, NegativesPerPositive = 100, Seed = seed, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", UserBatchSize = 1024 };
        var fullOptions = new TopKEvaluationOptions { K = 10, Protocol = RankingProtocol.FullRanking, Seed = seed, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", UserBatchSize = 256 };

        var rows = new List<Row>();
        var curves = new List<TrainingCurve>();
        context.Progress.Step("Popularity");
        using (var peak = new PeakMemory())
        {
            var pop = ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey");
            rows.Add(new Row("Popularity", "training frequency", ml.DeepRec().Evaluation.EvaluateTopK(pop, test, train, sampledOptions),
                ml.DeepRec().Evaluation.EvaluateTopK(pop, test, train, fullOptions), 0, null, null, null, peak.PeakMb, 0));
            Print(rows[^1]);
        }

        if (selection.Has("mf"))
        {
            var o = new BiasedMatrixFactorizationTrainer.Options
            {
                UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 64, NegativesPerPositive = 4, LearningRate = 0.002,
                BatchSize = 1024, NumberOfEpochs = quick ? 2 : 30, EarlyStoppingPatience = 3, ValidationNegativesPerPositive = 100, Seed = seed,
            };
            context.Progress.Step("MF");
            using var peak = new PeakMemory();
            var watch = Stopwatch.StartNew();
            using var mf = ml.DeepRec().Trainers.MatrixFactorization(o).Fit(train, validation);
            double seconds = watch.Elapsed.TotalSeconds;
            var report = mf.TrainingReport;
            curves.Add(TrainingCurve.From("MF", report));
            rows.Add(new Row("MF (ours)", $"64 factors, BCE, 4 neg., Adam lr 0.002, batch 1024, ≤ {o.NumberOfEpochs} epochs, patience 3",
                ml.DeepRec().Evaluation.EvaluateTopK(mf, test, train, sampledOptions), ml.DeepRec().Evaluation.EvaluateTopK(mf, test, train, fullOptions),
                report.Epochs.Count, report.BestEpoch, Steady(report, e => e.TrainSeconds), null, peak.PeakMb, seconds));
            Print(rows[^1]);
        }

        // GRU4Rec rows, before SASRec's (tuned on the validation split; --gru4rec-set "Property=Value;…" overrides their options).
        var gruOverrides = TrainerOptionOverrides.Parse(context.Arg("--gru4rec-set") is string set ? "GRU4Rec:" + set : null);
        foreach (var (loss, name, epochs) in Gru4RecRows.Where(_ => selection.Has(SasRecRows.Gru4Rec)))
        {
            var o = new Gru4RecTrainer.Options
            {
                UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Loss = loss, MaxLength = 20, HiddenSize = 100, DropoutRate = 0.2,
                LearningRate = 0.002, BatchSize = 128, NumberOfEpochs = quick ? 1 : epochs, NegativesPerPositive = 100, EarlyStoppingPatience = 3,
                ValidationNegativesPerPositive = 100, Seed = seed,
            };
            gruOverrides.Apply("GRU4Rec", o);
            context.Progress.Step(name);
            using var peak = new PeakMemory();
            var watch = Stopwatch.StartNew();
            using var model = ml.DeepRec().Trainers.Gru4Rec(o).Fit(train, validation);
            double seconds = watch.Elapsed.TotalSeconds;
            var report = model.TrainingReport;
            curves.Add(TrainingCurve.From(name, report));
            using var scorer = (IDisposable)model.CreateScorer(train, validation); // the same test input as SASRec
            double? secondsPerEpoch = Steady(report, e => e.TrainSeconds);
            rows.Add(new Row(name, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"L {o.MaxLength}, hidden {o.HiddenSize}, {o.NumberOfLayers} layer, dropout {o.DropoutRate}, {o.NegativesPerPositive} neg., Adam lr {o.LearningRate}, batch {o.BatchSize}, ≤ {o.NumberOfEpochs} epochs, patience 3"),
                ml.DeepRec().Evaluation.EvaluateTopK((IItemScorer)scorer, test, train, sampledOptions), ml.DeepRec().Evaluation.EvaluateTopK((IItemScorer)scorer, test, train, fullOptions),
                report.Epochs.Count, report.BestEpoch, secondsPerEpoch, model.TrainingTokensPerEpoch / secondsPerEpoch, peak.PeakMb, seconds));
            Print(rows[^1]);
        }

        var configs = new (SequentialLoss Loss, string Name, int Epochs, double LearningRate)[]
        {
            (SequentialLoss.BinaryCrossEntropy, "SASRec, BCE 1 negative (paper)", quick ? 2 : 20, 0.001),
            (SequentialLoss.SampledSoftmax, "SASRec, sampled softmax 100 neg.", quick ? 2 : 30, 0.001),
            (SequentialLoss.CrossEntropy, "SASRec, full cross-entropy", quick ? 1 : 5, 0.001),
        };
        if (context.Arg("--sasrec-epochs") is string scale)
            configs = configs.Select(c => (c.Loss, c.Name, int.Parse(scale, System.Globalization.CultureInfo.InvariantCulture), c.LearningRate)).ToArray();
        foreach (var (loss, name, epochs, lr) in configs.Where(c => selection.Has(SasRecRows.KeyOf(c.Loss))))
        {
            var o = new SasRecTrainer.Options
            {
                UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Loss = loss, MaxLength = 50, HiddenSize = 50, NumberOfBlocks = 2,
                NumberOfHeads = 1, DropoutRate = 0.5, LearningRate = lr, BatchSize = 128, NumberOfEpochs = epochs, NegativesPerPositive = 100,
                EarlyStoppingPatience = 3, ValidationNegativesPerPositive = 100, Seed = seed,
            };
            context.Progress.Step(name);
            using var peak = new PeakMemory();
            var watch = Stopwatch.StartNew();
            using var model = ml.DeepRec().Trainers.SasRec(o).Fit(train, validation);
            double seconds = watch.Elapsed.TotalSeconds;
            var report = model.TrainingReport;
            curves.Add(TrainingCurve.From(name, report));
            using var scorer = (IDisposable)model.CreateScorer(train, validation); // paper's test input: history includes the validation item
            var sampled = ml.DeepRec().Evaluation.EvaluateTopK((IItemScorer)scorer, test, train, sampledOptions);
            var full = ml.DeepRec().Evaluation.EvaluateTopK((IItemScorer)scorer, test, train, fullOptions);
            double? secondsPerEpoch = Steady(report, e => e.TrainSeconds);
            rows.Add(new Row(name, $"L 50, d 50, 2 blocks, 1 head, dropout 0.5, Adam lr {lr}, batch 128, ≤ {epochs} epochs, patience 3",
                sampled, full, report.Epochs.Count, report.BestEpoch, secondsPerEpoch, model.TrainingTokensPerEpoch / secondsPerEpoch, peak.PeakMb, seconds));
            Print(rows[^1]);
        }
        string? peer = selection.Has(SasRecPeer.Row) ? SasRecPeer.Run(context, ml, data, split, keys, sampledOptions, seed) : null;
        return SasRecPeer.Attach(Build(data, quick, rows, curves), peer, suiteCpu);
    }

    private static readonly (SequentialLoss Loss, string Name, int Epochs)[] Gru4RecRows =
    [
        (SequentialLoss.SampledSoftmax, "GRU4Rec, sampled softmax 100 neg.", 30),
    ];

    private static double? Steady(Training.TrainingReport report, Func<Training.EpochReport, double> f)
    {
        var epochs = report.Epochs.Count > 1 ? report.Epochs.Skip(1).ToList() : report.Epochs.ToList();
        return epochs.Count == 0 ? null : epochs.Average(f);
    }

    private static void Print(Row r) =>
        Console.WriteLine($"{r.Model}: {r.Sampled} | {r.Full} | epochs {r.Epochs} (best {r.BestEpoch}), {r.SecondsPerEpoch:F2} s/epoch, {r.TokensPerSecond:N0} tokens/s, peak {r.PeakMb:N0} MB, {r.TotalSeconds:F0} s");

    private static SuiteResult Build(string data, bool quick, List<Row> rows, List<TrainingCurve> curves)
    {
        static string F(double? v, string format) => v is double x ? x.ToString(format, System.Globalization.CultureInfo.InvariantCulture) : "–";
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"- Data: `{Path.GetFileName(data)}` (Amazon Games as in the SASRec paper; {rows[0].Sampled.UserCount:N0} test users, {rows[0].Sampled.ItemCount:N0} items). Split: leave-one-out, the last item of each user is the test item, the one before the validation item (the paper's protocol). SASRec and GRU4Rec score the test item with the user's training + validation items as history; early stopping on validation NDCG@10 (sampled, 100 negatives), best epoch's weights kept. libtorch threads {TorchSharp.torch.get_num_threads()}.");
        if (quick) sb.AppendLine("- Quick mode: 1–2 epochs per model, a smoke run; the full run's epoch budgets are 30 (MF), 20 (BCE), 30 (sampled softmax), 5 (full cross-entropy), 30 (GRU4Rec).");
        sb.AppendLine();
        sb.AppendLine("| Model | Settings | HR@10 sampled (100 neg.) | NDCG@10 sampled (100 neg.) | HR@10 full ranking | NDCG@10 full ranking | epochs run (best) | s/epoch | tokens/s | peak RSS MB | train s |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        sb.AppendLine("| *Published*: SASRec (Kang & McAuley 2018) | 200 epochs, BCE, TensorFlow | 0.7410 | 0.5360 | – | – | – | – | – | – | – |");
        foreach (var r in rows)
            sb.AppendLine(string.Create(inv, $"| {r.Model} | {r.Settings} | {r.Sampled.HitRate:F4} | {r.Sampled.Ndcg:F4} | {r.Full.HitRate:F4} | {r.Full.Ndcg:F4} | {(r.Epochs == 0 ? "–" : $"{r.Epochs} ({r.BestEpoch})")} | {F(r.SecondsPerEpoch, "F1")} | {F(r.TokensPerSecond, "N0")} | {r.PeakMb:N0} | {r.TotalSeconds:F0} |"));
        var bce = rows.FirstOrDefault(r => r.Model.Contains("BCE", StringComparison.Ordinal));
        var best = rows.Where(r => r.Model.StartsWith("SASRec", StringComparison.Ordinal)).OrderByDescending(r => r.Full.Ndcg).FirstOrDefault();
        sb.AppendLine();
        if (bce != null && best != null && bce.Full.Ndcg > 0)
            sb.AppendLine(string.Create(inv, $"Full ranking: the best loss ({best.Model}) reaches NDCG@10 {best.Full.Ndcg:F4} against {bce.Full.Ndcg:F4} for the paper's BCE, {100 * (best.Full.Ndcg / bce.Full.Ndcg - 1):F0}% relative."));
        var gru = rows.Where(r => r.Model.StartsWith("GRU4Rec", StringComparison.Ordinal)).OrderByDescending(r => r.Full.Ndcg).FirstOrDefault();
        var mf = rows.FirstOrDefault(r => r.Model.StartsWith("MF", StringComparison.Ordinal));
        if (gru != null && mf != null && mf.Full.Ndcg > 0 && rows[0].Full.Ndcg > 0)
            sb.AppendLine(string.Create(inv, $"GRU4Rec ({gru.Model}): full-ranking NDCG@10 {gru.Full.Ndcg:F4}, {100 * (gru.Full.Ndcg / mf.Full.Ndcg - 1):F0}% above MF ({mf.Full.Ndcg:F4}) and {100 * (gru.Full.Ndcg / rows[0].Full.Ndcg - 1):F0}% above popularity ({rows[0].Full.Ndcg:F4}); {(best == null || best.Full.Ndcg == 0 ? "" : $"{100 * (gru.Full.Ndcg / best.Full.Ndcg - 1):+0;-0}% against the best SASRec row")}."));
        sb.AppendLine();
        sb.AppendLine("Sampled: the test item ranked among 100 random items the user has not interacted with in training (the SASRec paper's protocol). Full ranking: among all items minus the user's training items. Ties count against the model. s/epoch: mean training time of the epochs after the first (validation excluded). Tokens: non-padding target positions per epoch. Peak RSS: the process's largest resident set sampled every 50 ms during that model's training and evaluation (the data and earlier models included).");

        var quality = rows.Where(r => r.Epochs > 0).Select(r => new QualityPoint(r.Model, r.TotalSeconds, r.Sampled.Ndcg)).ToList();
        var summary = rows.Where(r => r.Model.StartsWith("SASRec", StringComparison.Ordinal) || r.Model.StartsWith("GRU4Rec", StringComparison.Ordinal) || r.Model.StartsWith("Popularity", StringComparison.Ordinal)).Select(r => new SummaryRow(
            "Amazon Games, leave-one-out", r.Model, "HR@10 / NDCG@10, sampled 100 neg.", string.Create(inv, $"{r.Sampled.HitRate:F4} / {r.Sampled.Ndcg:F4}"),
            r.Model.StartsWith("SASRec", StringComparison.Ordinal) ? "0.7410 / 0.5360 (BCE, 200 epochs)" : "–",
            r.SecondsPerEpoch is double s ? string.Create(inv, $"{s:F1} s/epoch, {r.TokensPerSecond:N0} tokens/s; peak {r.PeakMb:N0} MB") : "–")).ToList();
        return new SuiteResult("Amazon Games: SASRec next-item recommendation", sb.ToString(), curves, quality, "NDCG@10 (sampled, 100 neg.)", summary);
    }
}
