using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Models;

/// <summary>Explicit ratings (Loss = SquaredError) for MF, GMF, MLP and NeuMF, used the way ML.NET's own regression trainers are.</summary>
public class RatingsTests
{
    public sealed class RatingRow
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
        public float Label { get; set; }
    }

    /// <summary>
    /// Planted ratings: 3.5 + b_u + b_i + p_u·q_i + noise (σ 0.3), 400 users × 40 of 300 items, 4 latent factors. The
    /// interaction term (σ ≈ 0.5) is what only a collaborative model can recover: a biases-only predictor cannot.
    /// </summary>
    internal static (IDataView Train, IDataView Test, List<RatingRow> TrainRows, List<RatingRow> TestRows) Planted(MLContext ml, int seed = 11)
    {
        var random = new Random(seed);
        double Normal(double sd) => sd * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        const int users = 400, items = 300, factors = 4;
        var p = new double[users, factors]; var q = new double[items, factors];
        var bu = new double[users]; var bi = new double[items];
        for (int u = 0; u < users; u++) { bu[u] = Normal(0.4); for (int f = 0; f < factors; f++) p[u, f] = Normal(0.5); }
        for (int i = 0; i < items; i++) { bi[i] = Normal(0.4); for (int f = 0; f < factors; f++) q[i, f] = Normal(0.5); }
        var train = new List<RatingRow>(); var test = new List<RatingRow>();
        for (int u = 0; u < users; u++)
        {
            foreach (int i in Enumerable.Range(0, items).OrderBy(_ => random.Next()).Take(40))
            {
                double dot = 0;
                for (int f = 0; f < factors; f++) dot += p[u, f] * q[i, f];
                var row = new RatingRow { UserId = $"u{u}", ItemId = $"i{i}", Label = (float)(3.5 + bu[u] + bi[i] + dot + Normal(0.3)) };
                (random.NextDouble() < 0.8 ? train : test).Add(row);
            }
        }
        return (ml.Data.LoadFromEnumerable(train), ml.Data.LoadFromEnumerable(test), train, test);
    }

    /// <summary>RMSE of the best biases-only predictor fitted on the training rows (mean + regularised user and item offsets).</summary>
    private static double BiasBaselineRmse(List<RatingRow> train, List<RatingRow> test)
    {
        double mean = train.Average(r => r.Label);
        var bi = train.GroupBy(r => r.ItemId).ToDictionary(g => g.Key, g => g.Sum(r => r.Label - mean) / (g.Count() + 5));
        var bu = train.GroupBy(r => r.UserId).ToDictionary(g => g.Key, g => g.Sum(r => r.Label - mean - bi[r.ItemId]) / (g.Count() + 5));
        return Math.Sqrt(test.Average(r =>
        {
            double e = r.Label - (mean + bu.GetValueOrDefault(r.UserId) + bi.GetValueOrDefault(r.ItemId));
            return e * e;
        }));
    }

    private static IEstimator<ITransformer> Keys(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"));

    private static T Ratings<T>(T o, int epochs = 20) where T : CollaborativeTrainerOptions
    {
        o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.LabelColumnName = "Label";
        o.Loss = CollaborativeLoss.SquaredError; o.NumberOfEpochs = epochs; o.Seed = 5; o.BatchSize = 128;
        return o;
    }

    internal static IEstimator<ITransformer> Trainer(MLContext ml, string model) => model switch
    {
        "MF" => ml.DeepRec().Trainers.MatrixFactorization(Ratings(new BiasedMatrixFactorizationTrainer.Options { Factors = 16, LearningRate = 0.005, EmbeddingRegularization = 0.02 })),
        "GMF" => ml.DeepRec().Trainers.Gmf(Ratings(new GmfTrainer.Options { Factors = 16, LearningRate = 0.005, EmbeddingRegularization = 0.02 })),
        "MLP" => ml.DeepRec().Trainers.Mlp(Ratings(new MlpTrainer.Options { MlpLayers = [32, 16], LearningRate = 0.005, EmbeddingRegularization = 0.005 }, 30)),
        _ => ml.DeepRec().Trainers.NeuMF(Ratings(new NeuMFTrainer.Options { Factors = 16, MlpLayers = [32, 16], LearningRate = 0.005, EmbeddingRegularization = 0.01 })),
    };

    // Every model predicts ratings through a plain ML.NET pipeline, is scored by Regression.Evaluate, and recovers the
    // planted interaction term: a clear margin below the biases-only predictor. MLP is the weakest at learning a dot
    // product from concatenated embeddings (Rendle et al. 2020), so its margin is smaller.
    [TestCase("MF", 0.12)]
    [TestCase("GMF", 0.12)]
    [TestCase("MLP", 0.03)]
    [TestCase("NeuMF", 0.10)]
    public void EveryModelPredictsRatingsBetterThanTheBiasesOnlyBaseline(string model, double margin)
    {
        var ml = new MLContext(3);
        var (train, test, trainRows, testRows) = Planted(ml);
        var fitted = Keys(ml).Append(Trainer(ml, model)).Fit(train);
        var scored = fitted.Transform(test);
        Assert.That(scored.Schema.GetColumnOrNull("Probability"), Is.Null, "a rating model has no Probability");
        Assert.That(scored.Schema.GetColumnOrNull("PredictedLabel"), Is.Null, "a rating model has no PredictedLabel");
        var metrics = ml.Regression.Evaluate(scored, labelColumnName: "Label");
        double baseline = BiasBaselineRmse(trainRows, testRows);
        double meanOnly = Math.Sqrt(testRows.Average(r => Math.Pow(r.Label - trainRows.Average(t => t.Label), 2)));
        TestContext.Out.WriteLine($"{model}: RMSE {metrics.RootMeanSquaredError:F4}, MAE {metrics.MeanAbsoluteError:F4}; biases only {baseline:F4}, mean only {meanOnly:F4}");
        Assert.That(metrics.RootMeanSquaredError, Is.LessThan(baseline - margin));
        // Score is the rating itself, on the label's scale (a logit would average near 0).
        var scores = scored.GetColumn<float>("Score").ToArray();
        Assert.That(scores.Average(), Is.EqualTo(testRows.Average(r => r.Label)).Within(0.15));
        (fitted as IDisposable)?.Dispose();
    }

    [Test]
    public void RegressionCrossValidateReportsRatingScaleRmse()
    {
        var ml = new MLContext(3);
        var (train, _, trainRows, _) = Planted(ml);
        var folds = ml.Regression.CrossValidate(train, Keys(ml).Append(Trainer(ml, "MF")), numberOfFolds: 3, labelColumnName: "Label", seed: 1);
        var rmse = folds.Select(f => f.Metrics.RootMeanSquaredError).ToArray();
        TestContext.Out.WriteLine($"fold RMSE: {string.Join(", ", rmse.Select(r => r.ToString("F4")))}");
        double sd = Math.Sqrt(trainRows.Average(r => Math.Pow(r.Label - trainRows.Average(t => t.Label), 2)));
        // The issue's symptom was an RMSE of ~4.5 from logits; ratings-scale predictions are far below the label's spread.
        Assert.That(rmse, Has.All.LessThan(sd * 0.75));
        foreach (var f in folds) (f.Model as IDisposable)?.Dispose();
    }

    [Test]
    public void RatingModelsSurviveACheckpointAndExplainWrongCombinations()
    {
        var ml = new MLContext(3);
        var (train, test, _, _) = Planted(ml);
        var keys = Keys(ml).Fit(train);
        using var model = (CollaborativeFilteringTransformer)Trainer(ml, "MF").Fit(keys.Transform(train));
        Assert.That(model.ScoreKind, Is.EqualTo(DeepRecScoreKind.Regression));
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"ratings-{Guid.NewGuid():N}.ckpt");
        try
        {
            model.SaveCheckpoint(path);
            using var loaded = CollaborativeFilteringTransformer.LoadCheckpoint(ml, path);
            Assert.That(loaded.ScoreKind, Is.EqualTo(DeepRecScoreKind.Regression));
            var a = model.Transform(keys.Transform(test)).GetColumn<float>("Score").ToArray();
            var b = loaded.Transform(keys.Transform(test)).GetColumn<float>("Score").ToArray();
            Assert.That(b, Is.EqualTo(a).Within(1e-5));

            // Continuing a rating model as an implicit-feedback one is a named error, not a silent mix of objectives.
            var implicitTrainer = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
            { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 16, InitialModel = loaded, NumberOfEpochs = 1 });
            var e = Assert.Throws<ArgumentException>(() => implicitTrainer.Fit(keys.Transform(train)));
            Assert.That(e!.Message, Does.Contain("InitialModel").And.Contain("ratings"));
        }
        finally { File.Delete(path); }

        Assert.That(Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { Loss = CollaborativeLoss.SquaredError }))!.Message,
            Does.Contain("LabelColumnName"));
        Assert.That(Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
            { Loss = CollaborativeLoss.SquaredError, LabelColumnName = "Label", RatingThreshold = 4 }))!.Message, Does.Contain("RatingThreshold"));
        // Ratings are validated by −RMSE: a ranking protocol for them is a mistake, not silently ignored.
        Assert.That(Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
            { Loss = CollaborativeLoss.SquaredError, LabelColumnName = "Label", ValidationProtocol = RankingProtocol.FullRanking }))!.ParamName, Is.EqualTo("ValidationProtocol"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { EmbeddingRegularization = -1 }))!.ParamName,
            Is.EqualTo("EmbeddingRegularization"));
        // Ratings given to an implicit-feedback model: the message points to both ways out.
        var wrong = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", LabelColumnName = "Label", NumberOfEpochs = 1 });
        Assert.That(Assert.Throws<InvalidOperationException>(() => wrong.Fit(keys.Transform(train)))!.Message, Does.Contain("SquaredError").And.Contain("RatingThreshold"));
    }
}
