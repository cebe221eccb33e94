// <doc:serving-recommend>
using Microsoft.ML;
using MLNet.DeepRec.Serving;
// </doc:serving-recommend>
// <doc:serving-batch-transform>
using Microsoft.ML.Data;
// </doc:serving-batch-transform>
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Tests.DocSamples.Serving.Service;

/// <summary>docs/serving.md: batched Transform of a loaded model, and top-K from the zip without libtorch.</summary>
internal static class RecommenderSample
{
    public static float[] ScoreInBatches()
    {
        // <doc:serving-batch-transform>
        var mlContext = new MLContext();
        ITransformer model = DeepRecServing.LoadModel(mlContext, "neumf.zip");

        IDataView pairs = mlContext.Data.LoadFromEnumerable(new[]
        {
            new Pair { UserId = "196", ItemId = "242" },
            new Pair { UserId = "186", ItemId = "302" },
            new Pair { UserId = "unknown-user", ItemId = "377" },
        });
        // One ONNX Runtime call per batch of rows (up to 4,096), not one per row; same scores as a PredictionEngine.
        float[] scores = model.Transform(pairs).GetColumn<float>("Score").ToArray();
        // </doc:serving-batch-transform>
        (model as IDisposable)?.Dispose();
        return scores;
    }

    public static IReadOnlyList<IReadOnlyList<Recommendation>> Recommend()
    {
        // <doc:serving-recommend>
        var mlContext = new MLContext();
        // ONNX Runtime only: reads the all-items graph, ids and seen items that DeepRecServing.SaveModel stored.
        using DeepRecRecommender recommender = DeepRecServing.LoadRecommender(mlContext, "neumf.zip");

        foreach (var r in recommender.Recommend("196", k: 10))       // training items left out (excludeSeen: true)
            Console.WriteLine($"{r.ItemId}\t{r.Score:F3}");

        // Many users in one call, scored in batches; an unknown user gets the average user's list.
        var lists = recommender.Recommend(new[] { "196", "186", "unknown-user" }, k: 10);
        // </doc:serving-recommend>
        return lists;
    }
}
