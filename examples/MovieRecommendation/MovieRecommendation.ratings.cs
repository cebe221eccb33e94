// Rating prediction, as in ML.NET's movie-recommendation tutorial: the model predicts the star rating a user would give
// a movie (Loss = SquaredError, Score = predicted rating) and is evaluated with mlContext.Regression.Evaluate.
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;

namespace MovieRecommendation;

public static class RatingPrediction
{
    /// <summary>Input of the rating model: the ids before MapValueToKey.</summary>
    public sealed class MovieRating
    {
        [ColumnName("UserId")] public string UserId { get; set; } = "";
        [ColumnName("ItemId")] public string ItemId { get; set; } = "";
    }

    /// <summary>Output: the predicted rating.</summary>
    public sealed class MovieRatingPrediction
    {
        [ColumnName("Score")] public float Score { get; set; }
    }

    /// <summary>MF with per-occurrence L2 and Adagrad, the settings of the ML-100K ratings benchmark (docs/benchmarks.md).</summary>
    public static IEstimator<ITransformer> MatrixFactorization(MLContext mlContext, int epochs, int seed) =>
        mlContext.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = "UserKey",
            ItemIdColumnName = "ItemKey",
            LabelColumnName = "Label",
            Loss = CollaborativeLoss.SquaredError,
            Factors = 128,
            EmbeddingRegularization = 0.1,
            Optimizer = DeepRecOptimizer.Adagrad,
            LearningRate = 0.05,
            BatchSize = 512,
            NumberOfEpochs = epochs,
            Seed = seed,
        });

    /// <summary>
    /// NeuMF predicting ratings. Its MLP tower overfits ratings within a few epochs (on ML-100K, RMSE 0.93 after 5 epochs
    /// but 1.09 after 20), so it trains for at most 5.
    /// </summary>
    public static IEstimator<ITransformer> NeuMF(MLContext mlContext, int epochs, int seed) =>
        mlContext.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey",
            ItemIdColumnName = "ItemKey",
            LabelColumnName = "Label",
            Loss = CollaborativeLoss.SquaredError,
            Factors = 64,
            MlpLayers = [128, 64, 32],
            EmbeddingRegularization = 0.05,
            LearningRate = 0.001,
            BatchSize = 512,
            NumberOfEpochs = Math.Min(epochs, 5),
            Seed = seed,
        });

    /// <summary>Trains MF and NeuMF on 80% of the ratings, evaluates both on the other 20%, and predicts one rating.</summary>
    public static void Run(MLContext mlContext, IDataView ratings, string dataName, int epochs, int seed)
    {
        var split = mlContext.Data.TrainTestSplit(ratings, testFraction: 0.2, seed: seed);
        Console.WriteLine($"Data: {dataName}");
        Console.WriteLine("Task: rating prediction (Loss = SquaredError, Score = predicted rating), random 80/20 split, mlContext.Regression.Evaluate");
        Console.WriteLine();
        double mean = split.TrainSet.GetColumn<float>("Label").Average(r => (double)r);
        double meanRmse = Math.Sqrt(split.TestSet.GetColumn<float>("Label").Average(r => (r - mean) * (r - mean)));

        var results = new List<(string Name, RegressionMetrics Metrics, double Seconds)>();
        ITransformer? best = null;
        foreach (var (name, trainer) in new[] { ("MF", MatrixFactorization(mlContext, epochs, seed)), ("NeuMF", NeuMF(mlContext, epochs, seed)) })
        {
            Console.WriteLine($"Training {name} on ratings…");
            var watch = Stopwatch.StartNew();
            // The same shape as ML.NET's tutorial: map ids to keys, then the trainer, in one pipeline.
            var pipeline = mlContext.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
                .Append(mlContext.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
                .Append(trainer);
            var model = pipeline.Fit(split.TrainSet);
            var metrics = mlContext.Regression.Evaluate(model.Transform(split.TestSet), labelColumnName: "Label");
            results.Add((name, metrics, watch.Elapsed.TotalSeconds));
            best ??= model;
        }

        Console.WriteLine();
        Console.WriteLine($"Test metrics, {split.TestSet.GetColumn<float>("Label").Count()} ratings:");
        Console.WriteLine($"  {"Model",-11} {"RMSE",7} {"MAE",7} {"R²",7} {"train s",8}");
        foreach (var r in results)
            Console.WriteLine($"  {r.Name,-11} {r.Metrics.RootMeanSquaredError,7:F4} {r.Metrics.MeanAbsoluteError,7:F4} {r.Metrics.RSquared,7:F4} {r.Seconds,8:F1}");
        Console.WriteLine($"  {"Mean rating",-11} {meanRmse,7:F4}");

        var engine = mlContext.Model.CreatePredictionEngine<MovieRating, MovieRatingPrediction>(best!);
        var someone = split.TestSet.GetColumn<string>("UserId").First();
        var movie = split.TestSet.GetColumn<string>("ItemId").First();
        Console.WriteLine();
        Console.WriteLine($"MF predicts user {someone} would rate movie {movie} {engine.Predict(new MovieRating { UserId = someone, ItemId = movie }).Score:F2} stars.");
    }
}
