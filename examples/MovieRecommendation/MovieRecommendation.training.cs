// Model Builder-style training code: builds the ML.NET pipeline, trains, evaluates.
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;

namespace MovieRecommendation;

public static partial class MovieRecommender
{
    /// <summary>The pipeline: map raw ids to keys, then the recommender.</summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext mlContext, IEstimator<ITransformer> trainer) =>
        mlContext.Transforms.Conversion.MapValueToKey(outputColumnName: "UserKey", inputColumnName: "UserId")
            .Append(mlContext.Transforms.Conversion.MapValueToKey(outputColumnName: "ItemKey", inputColumnName: "ItemId"))
            .Append(trainer);

    /// <summary>NeuMF with the NCF paper's settings, scaled to the data size.</summary>
    public static NeuMFTrainer NeuMF(MLContext mlContext, int epochs, int seed) => mlContext.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
    {
        UserIdColumnName = "UserKey",
        ItemIdColumnName = "ItemKey",
        Factors = 16,
        MlpLayers = new[] { 64, 32, 16 },
        NegativesPerPositive = 4,
        NumberOfEpochs = epochs,
        BatchSize = 256,
        LearningRate = 0.001,
        EarlyStoppingPatience = 3,
        Seed = seed,
    });

    /// <summary>The dot-product MF baseline.</summary>
    public static BiasedMatrixFactorizationTrainer MatrixFactorization(MLContext mlContext, int epochs, int seed) =>
        mlContext.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = "UserKey",
            ItemIdColumnName = "ItemKey",
            Factors = 32,
            NegativesPerPositive = 4,
            NumberOfEpochs = epochs,
            BatchSize = 256,
            LearningRate = 0.002,
            L2Regularization = 1e-6,
            EarlyStoppingPatience = 3,
            Seed = seed,
        });

    /// <summary>
    /// Fits the id → key mapping on all interactions (so the splits share one key space), trains the recommender on the
    /// training split with early stopping on the validation split's NDCG@10, and returns the whole chain
    /// (MapValueToKey → MapValueToKey → model), ready for <c>mlContext.Model.Save</c>.
    /// </summary>
    public static (ITransformer KeyMapping, TransformerChain<CollaborativeFilteringTransformer> Model) Train<TOptions>(MLContext mlContext, IDataView allInteractions,
        IDataView train, IDataView validation, CollaborativeTrainerBase<TOptions> trainer)
        where TOptions : CollaborativeTrainerOptions
    {
        var keyMapping = mlContext.Transforms.Conversion.MapValueToKey(outputColumnName: "UserKey", inputColumnName: "UserId")
            .Append(mlContext.Transforms.Conversion.MapValueToKey(outputColumnName: "ItemKey", inputColumnName: "ItemId"))
            .Fit(allInteractions);
        var model = trainer.Fit(keyMapping.Transform(train), keyMapping.Transform(validation));
        return (keyMapping, keyMapping.Append(model));
    }

    /// <summary>HR@10, NDCG@10, … on the test split: the held-out item among 99 sampled unseen items.</summary>
    public static TopKMetrics Evaluate(MLContext mlContext, ITransformer keyMapping, IItemScorer scorer, IDataView train, IDataView test) =>
        mlContext.DeepRec().Evaluation.EvaluateTopK(scorer, keyMapping.Transform(test), keyMapping.Transform(train),
            new TopKEvaluationOptions { K = 10, Protocol = RankingProtocol.Sampled, NegativesPerPositive = 99, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" });
}
