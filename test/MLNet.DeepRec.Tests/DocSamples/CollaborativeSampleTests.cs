// <doc:collaborative-minimal>
using Microsoft.ML;
using MLNet.DeepRec;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
// </doc:collaborative-minimal>
// <doc:collaborative-pretraining>
using MLNet.DeepRec.Training;   // DeepRecOptimizer
// </doc:collaborative-pretraining>
using Microsoft.ML.Data;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.DocSamples.Collaborative;

/// <summary>The samples of docs/models/collaborative.md, run as written on small synthetic data.</summary>
[NonParallelizable]
public class CollaborativeSampleTests
{
    [Test]
    public void MinimalPipelineTrainsEvaluatesSavesAndReloadsAndRecommends()
    {
        using var directory = new SampleDirectory();
        // <doc:collaborative-minimal>
        var ml = new MLContext(seed: 0);
        IDataView interactions = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 300, ItemCount = 200, InteractionsPerUser = 20, Seed = 1 });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(interactions, holdOutValidation: true);

        // One key mapping, fitted on all interactions, shared by every split.
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
            .Fit(interactions);
        IDataView train = keys.Transform(split.Train);
        IDataView validation = keys.Transform(split.Validation!);
        IDataView test = keys.Transform(split.Test);

        // Train; validation NDCG@10 after each epoch drives early stopping, and the best epoch's weights are kept.
        CollaborativeFilteringTransformer model = ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey",
            ItemIdColumnName = "ItemKey",
            NumberOfEpochs = 20,
            EarlyStoppingPatience = 3,
            Seed = 1,
        }).Fit(train, validation);

        // Evaluate under the sampled protocol (the held-out item among 99 sampled unseen items), next to popularity.
        var options = new TopKEvaluationOptions { K = 10, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        TopKMetrics metrics = ml.DeepRec().Evaluation.EvaluateTopK(model, test, train, options);
        PopularityScorer popularity = ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey");
        TopKMetrics baseline = ml.DeepRec().Evaluation.EvaluateTopK(popularity, test, train, options);
        Console.WriteLine($"{model.ModelName}: {metrics}");
        Console.WriteLine($"Popularity: {baseline}");

        // Save the key mapping and the model as one chain, so that the saved model takes raw ids.
        ml.Model.Save(keys.Append(model), split.Train.Schema, "model.zip");

        // Later, in a service: load (ONNX Runtime scores it; libtorch is not needed) and score a pair.
        var serving = new MLContext();
        ITransformer loaded = DeepRecServing.LoadModel(serving, "model.zip");
        var engine = serving.Model.CreatePredictionEngine<UserItem, ItemScore>(loaded);
        ItemScore score = engine.Predict(new UserItem { UserId = "u0", ItemId = "i7" });
        Console.WriteLine($"u0, i7: Score {score.Score:F3}, Probability {score.Probability:F3}");
        // </doc:collaborative-minimal>

        Assert.That(model.ModelName, Is.EqualTo("NeuMF"));
        Assert.That(model.TrainingReport.BestEpoch, Is.Not.Null, "validation data drives the best epoch");
        Assert.That(metrics.HitRate, Is.GreaterThan(baseline.HitRate + 0.1), "NeuMF must beat popularity on planted data");
        float inMemory = InMemoryScore(ml, keys.Append(model), "u0", "i7");
        Assert.That(score.Score, Is.EqualTo(inMemory).Within(1e-5f), "reloaded score equals the in-memory one");

        // <doc:collaborative-recommend>
        IReadOnlyList<Recommendation> top = model.Recommend("u0", k: 10);                  // by original user id
        IReadOnlyList<Recommendation> byKey = model.Recommend(5u, k: 10, excludeSeen: false);
        var batch = model.Recommend(new uint[] { 1, 2, 3 }, k: 10);                         // one list per user
        var restricted = model.Recommend(7u, k: 3, candidateItems: new uint[] { 3, 9, 27, 81 });
        // </doc:collaborative-recommend>
        // <doc:collaborative-embeddings>
        CollaborativeModelParameters parameters = model.Model;
        EmbeddingMatrix users = parameters.GetUserEmbeddings();     // row k = user key k; row 0 = the unknown-user vector
        EmbeddingMatrix items = parameters.GetItemEmbeddings();
        ReadOnlySpan<float> someone = users.GetVector(model.Vocabulary.UserKey("u0"));
        Console.WriteLine($"{users.KeyCount} users × {users.Dimension}, {items.KeyCount} items × {items.Dimension}; u0 starts {someone[0]:F3}");
        foreach (EmbeddingMatrix table in parameters.GetEmbeddingTables())   // every table under its network name
            Console.WriteLine($"{table.Name}: {table.KeyCount + 1} rows × {table.Dimension}");
        float[]? userBiases = parameters.GetUserBiases();           // MF only; null for GMF, MLP and NeuMF
        // </doc:collaborative-embeddings>
        Assert.That(users.KeyCount, Is.EqualTo(model.UserCount));
        Assert.That(userBiases, Is.Null);


        Assert.That(top, Has.Count.EqualTo(10));
        Assert.That(top.Select(r => r.Score), Is.Ordered.Descending);
        Assert.That(top.All(r => r.ItemId != null), Is.True);
        Assert.That(byKey, Has.Count.EqualTo(10));
        Assert.That(batch, Has.Count.EqualTo(3));
        Assert.That(batch[0].Select(r => r.ItemKey), Is.EqualTo(model.Recommend(1u, 10).Select(r => r.ItemKey)));
        Assert.That(restricted.Select(r => r.ItemKey), Is.SubsetOf(new uint[] { 3, 9, 27, 81 }));
        model.Dispose();
    }

    private static float InMemoryScore(MLContext ml, ITransformer chain, string user, string item) =>
        ml.Model.CreatePredictionEngine<UserItem, ItemScore>(chain).Predict(new UserItem { UserId = user, ItemId = item }).Score;

    private static (MLContext Ml, IDataView Interactions, ITransformer Keys, IDataView Train, IDataView Validation, IDataView Test) SmallData()
    {
        var ml = new MLContext(seed: 0);
        var interactions = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 150, ItemCount = 200, InteractionsPerUser = 15, Seed = 2 });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(interactions, holdOutValidation: true);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(interactions);
        return (ml, interactions, keys, keys.Transform(split.Train), keys.Transform(split.Validation!), keys.Transform(split.Test));
    }

    // Every collaborative model trains, evaluates, saves and reloads the way the minimal pipeline shows.
    [Test]
    public void EachOfTheFourTrainersTrainsEvaluatesSavesAndReloads()
    {
        using var directory = new SampleDirectory();
        var (ml, interactions, keys, train, validation, test) = SmallData();
        // <doc:collaborative-trainers>
        var trainers = ml.DeepRec().Trainers;
        var gmf = trainers.Gmf(new GmfTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 16, EarlyStoppingPatience = 3,
        });
        var mlp = trainers.Mlp(new MlpTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", MlpLayers = new[] { 64, 32, 16 },
            LearningRate = 0.005, EarlyStoppingPatience = 3,
        });
        var neumf = trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 16, MlpLayers = new[] { 64, 32, 16 },
            LearningRate = 0.005, EarlyStoppingPatience = 3,
        });
        var mf = trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 32, Loss = CollaborativeLoss.Bpr,
            EarlyStoppingPatience = 3,
        });

        // The simple overloads read key columns named "UserId" and "ItemId" and keep the other options at their defaults.
        var simple = trainers.MatrixFactorization(factors: 32, numberOfEpochs: 20);
        // </doc:collaborative-trainers>

        var options = new TopKEvaluationOptions { K = 10, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        var baseline = ml.DeepRec().Evaluation.EvaluateTopK(ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey"), test, train, options);
        var fitted = new List<CollaborativeFilteringTransformer>
        {
            gmf.Fit(train, validation), mlp.Fit(train, validation), neumf.Fit(train, validation), mf.Fit(train, validation),
        };
        foreach (var model in fitted)
        {
            var metrics = ml.DeepRec().Evaluation.EvaluateTopK(model, test, train, options);
            TestContext.Out.WriteLine($"{model.ModelName}: {metrics} (best epoch {model.TrainingReport.BestEpoch})");
            Assert.That(metrics.HitRate, Is.GreaterThan(baseline.HitRate), $"{model.ModelName} beats popularity");
            string path = $"{model.ModelName}.zip";
            ml.Model.Save(keys.Append(model), interactions.Schema, path);
            var serving = new MLContext();
            var loaded = DeepRecServing.LoadModel(serving, path);
            var engine = serving.Model.CreatePredictionEngine<UserItem, ItemScore>(loaded);
            foreach (var (u, i) in new[] { ("u0", "i7"), ("u3", "i1"), ("unknown", "i2") })
                Assert.That(engine.Predict(new UserItem { UserId = u, ItemId = i }).Score,
                    Is.EqualTo(InMemoryScore(ml, keys.Append(model), u, i)).Within(1e-5f), $"{model.ModelName} ({u}, {i})");
            model.Dispose();
        }
        Assert.That(fitted.Select(m => m.ModelName), Is.EqualTo(new[] { "GMF", "MLP", "NeuMF", "MF" }));
        Assert.That(simple, Is.InstanceOf<BiasedMatrixFactorizationTrainer>());
    }

    [Test]
    public void PretrainedNeuMFStartsFromGmfAndMlp()
    {
        var (ml, _, _, train, validation, test) = SmallData();
        // <doc:collaborative-pretraining>
        var gmf = ml.DeepRec().Trainers.Gmf(new GmfTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 8, EarlyStoppingPatience = 3, Seed = 1,
        }).Fit(train, validation);
        var mlp = ml.DeepRec().Trainers.Mlp(new MlpTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", MlpLayers = new[] { 64, 32, 16, 8 },
            EarlyStoppingPatience = 3, Seed = 1,
        }).Fit(train, validation);

        var neumf = ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey",
            Factors = 8, MlpLayers = new[] { 64, 32, 16, 8 },        // must match the pre-trained models
            PretrainedGmf = gmf, PretrainedMlp = mlp, PretrainAlpha = 0.5,
            Optimizer = DeepRecOptimizer.Sgd,                          // the paper fine-tunes with plain SGD
            NumberOfEpochs = 5, Seed = 1,
        }).Fit(train, validation);
        // </doc:collaborative-pretraining>

        var options = new TopKEvaluationOptions { K = 10, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        var baseline = ml.DeepRec().Evaluation.EvaluateTopK(ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey"), test, train, options);
        var metrics = ml.DeepRec().Evaluation.EvaluateTopK(neumf, test, train, options);
        TestContext.Out.WriteLine($"pre-trained NeuMF: {metrics}; popularity: {baseline}");
        Assert.That(neumf.ModelName, Is.EqualTo("NeuMF"));
        Assert.That(metrics.HitRate, Is.GreaterThan(baseline.HitRate), "starts from two trained models");
        var bad = new NeuMFTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", PretrainedGmf = gmf };
        Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.NeuMF(bad).Fit(train), "only one pre-trained model");
        gmf.Dispose(); mlp.Dispose(); neumf.Dispose();
    }

    [Test]
    public void CheckpointRestoresAndFineTunes()
    {
        using var directory = new SampleDirectory();
        var ml = new MLContext(seed: 0);
        var allInteractions = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 150, ItemCount = 100, InteractionsPerUser = 15, Seed = 3 });
        var split = ml.DeepRec().Data.LeaveOneOutSplit(allInteractions);
        IDataView newInteractions = split.Test; // the rows that "arrived" after the first training
        var firstKeys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(split.Train);
        var model = ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
            { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 2, Seed = 1 }).Fit(firstKeys.Transform(split.Train));
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };

        // <doc:collaborative-checkpoint>
        model.SaveCheckpoint("neumf.ckpt");                        // written to a temporary file, then moved into place

        // Later, possibly in another process:
        var restored = CollaborativeFilteringTransformer.LoadCheckpoint(ml, "neumf.ckpt");

        // Fine-tune on new interactions: refit the key mapping on old and new ids, train on the new rows only.
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
            .Fit(allInteractions);
        var tuned = ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey",     // Factors and MlpLayers as in the checkpoint
            InitialModel = restored, NumberOfEpochs = 2,
        }).Fit(keys.Transform(newInteractions));
        // </doc:collaborative-checkpoint>

        var users = new[] { 1, 2, 3 };
        var items = new[] { 1, 2, 3, 4, 5, 6 };
        Assert.That(restored.ScoreCandidates(users, items, 2), Is.EqualTo(model.ScoreCandidates(users, items, 2)), "the checkpoint restores the weights");
        Assert.That(tuned.ModelName, Is.EqualTo("NeuMF"));
        Assert.That(tuned.TrainingReport.Epochs, Has.Count.EqualTo(2));
        Assert.That(tuned.Recommend("u0", 5), Has.Count.EqualTo(5));
        TestContext.Out.WriteLine(string.Join("\n", log.Where(m => m.Contains("Warm", StringComparison.OrdinalIgnoreCase) || m.Contains("Adam", StringComparison.Ordinal))));
        model.Dispose(); restored.Dispose(); tuned.Dispose();
    }

    [Test]
    public void RatingsSampleCrossValidatesWithMlNetsRegressionMetrics()
    {
        // <doc:collaborative-ratings>
        var ml = new MLContext(seed: 0);
        // Synthetic 1–5 ratings with planted taste; LoadMovieLens("u.data") gives the same columns (UserId, ItemId, Label).
        IDataView ratings = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new SyntheticInteractionOptions { UserCount = 300, ItemCount = 200, InteractionsPerUser = 30, Seed = 1, Ratings = true });
        var pipeline = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
            .Append(ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
            {
                UserIdColumnName = "UserKey",
                ItemIdColumnName = "ItemKey",
                LabelColumnName = "Label",
                Loss = CollaborativeLoss.SquaredError,
                Factors = 64,
                EmbeddingRegularization = 0.1,
                LearningRate = 0.002,
                BatchSize = 512,
                NumberOfEpochs = 25,
            }));

        // ML.NET's own cross-validation and regression metrics.
        var folds = ml.Regression.CrossValidate(ratings, pipeline, numberOfFolds: 5, labelColumnName: "Label");
        Console.WriteLine($"RMSE {folds.Average(f => f.Metrics.RootMeanSquaredError):F4}, MAE {folds.Average(f => f.Metrics.MeanAbsoluteError):F4}");
        // </doc:collaborative-ratings>
        var labels = ratings.GetColumn<float>("Label").ToArray();
        double mean = labels.Average(), sd = Math.Sqrt(labels.Average(l => (l - mean) * (l - mean)));
        Assert.That(labels, Has.All.InRange(1f, 5f));
        Assert.That(folds.Average(f => f.Metrics.RootMeanSquaredError), Is.LessThan(sd - 0.1), "beats the mean-rating predictor");
    }

    [Test]
    public void LightGcnTrainsOnTheGraphAndIsServedAsADotProduct()
    {
        using var directory = new SampleDirectory();
        var (ml, interactions, keys, train, validation, test) = SmallData();
        // <doc:collaborative-lightgcn>
        var lightGcn = ml.DeepRec().Trainers.LightGcn(new LightGcnTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey",
            Factors = 64, NumberOfLayers = 3,                    // the paper's defaults
            LearningRate = 0.01, BatchSize = 256,                // small data: larger steps, more of them per epoch
            NumberOfEpochs = 40, EarlyStoppingPatience = 5,
        }).Fit(train, validation);

        // The LightGCN paper's metrics: Recall@20 and NDCG@20, ranking every item the user has not seen.
        var full = new TopKEvaluationOptions { K = 20, Protocol = RankingProtocol.FullRanking, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" };
        TopKMetrics metrics = ml.DeepRec().Evaluation.EvaluateTopK(lightGcn, test, train, full);
        Console.WriteLine($"LightGCN: Recall@20 {metrics.Recall:F4}, NDCG@20 {metrics.Ndcg:F4}");

        // Saved and served like MF: the model holds the propagated embeddings, not the graph.
        ml.Model.Save(keys.Append(lightGcn), interactions.Schema, "lightgcn.zip");
        var serving = new MLContext();
        ITransformer loaded = DeepRecServing.LoadModel(serving, "lightgcn.zip");
        // </doc:collaborative-lightgcn>

        var popularity = ml.DeepRec().Evaluation.EvaluateTopK(ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey"), test, train, full);
        TestContext.Out.WriteLine($"LightGCN: {metrics} (best epoch {lightGcn.TrainingReport.BestEpoch}); popularity: {popularity}");
        Assert.That(lightGcn.ModelName, Is.EqualTo("LightGCN"));
        Assert.That(lightGcn.TrainingReport.BestEpoch, Is.Not.Null);
        Assert.That(metrics.Recall, Is.GreaterThan(popularity.Recall * 1.3), "LightGCN beats popularity under full ranking");
        var engine = serving.Model.CreatePredictionEngine<UserItem, ItemScore>(loaded);
        foreach (var (u, i) in new[] { ("u0", "i7"), ("u3", "i1"), ("unknown", "i2"), ("u5", "unknown") })
            Assert.That(engine.Predict(new UserItem { UserId = u, ItemId = i }).Score,
                Is.EqualTo(InMemoryScore(ml, keys.Append(lightGcn), u, i)).Within(1e-5f), $"({u}, {i})");
        lightGcn.Dispose();
    }
}

// <doc:collaborative-minimal>
public sealed class UserItem { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; }
public sealed class ItemScore { public float Score { get; set; } public float Probability { get; set; } }
// </doc:collaborative-minimal>
