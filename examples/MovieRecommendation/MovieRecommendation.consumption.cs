// Model Builder-style consumption code: the input/output classes and a Predict helper over a saved model.
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Serving;

namespace MovieRecommendation;

public static partial class MovieRecommender
{
    /// <summary>One (user, movie) pair to score.</summary>
    public sealed class ModelInput
    {
        [ColumnName("UserId")] public string UserId { get; set; } = "";
        [ColumnName("ItemId")] public string ItemId { get; set; } = "";
    }

    /// <summary>The model's answer for a pair.</summary>
    public sealed class ModelOutput
    {
        /// <summary>Ranking score (a logit; higher means a better recommendation).</summary>
        [ColumnName("Score")] public float Score { get; set; }
        /// <summary>σ(Score): the model's estimate that the user interacts with the movie.</summary>
        [ColumnName("Probability")] public float Probability { get; set; }
    }

    /// <summary>Where the example saves the trained model.</summary>
    public static string MLNetModelPath { get; set; } = Path.Combine(AppContext.BaseDirectory, "MovieRecommendation.zip");

    private static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, true);

    /// <summary>Scores one pair with the saved model (loaded once, scored by ONNX Runtime).</summary>
    public static ModelOutput Predict(ModelInput input) => PredictEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        DeepRecServing.RegisterForLoading(mlContext);
        ITransformer model = mlContext.Model.Load(MLNetModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
    }
}
