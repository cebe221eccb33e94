// Model Builder-style consumption code: the input/output classes and a Predict helper over the saved model.
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Serving;

namespace NextItemRecommendation;

public static partial class NextItemRecommender
{
    /// <summary>A user's live history, in original item ids, and optionally a candidate next item to score.</summary>
    public sealed class ModelInput
    {
        /// <summary>The items the user consumed, oldest first (any length; unknown ids are ignored).</summary>
        [ColumnName("History")] public string[] History { get; set; } = [];
        /// <summary>A candidate next item whose score you want; leave empty when you only need the top-K list.</summary>
        [ColumnName("ItemId")] public string ItemId { get; set; } = "";
    }

    /// <summary>The model's answer for a history.</summary>
    public sealed class ModelOutput
    {
        /// <summary>The K most likely next items, best first (items of the history left out).</summary>
        [ColumnName("TopKItemIds")] public string[] TopKItemIds { get; set; } = [];
        /// <summary>Their scores (logits).</summary>
        [ColumnName("TopKScores")] public float[] TopKScores { get; set; } = [];
        /// <summary>Score (logit) of <see cref="ModelInput.ItemId"/> being the next item.</summary>
        [ColumnName("Score")] public float Score { get; set; }
    }

    /// <summary>Where the example saves the trained model.</summary>
    public static string MLNetModelPath { get; set; } = Path.Combine(AppContext.BaseDirectory, "NextItemRecommendation.zip");

    private static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, true);

    /// <summary>Scores one history with the saved model (loaded once; scored by ONNX Runtime, no libtorch involved).</summary>
    public static ModelOutput Predict(ModelInput input) => PredictEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        // The saved chain contains DeepRec custom mappings; registering the assembly makes them loadable.
        DeepRecServing.RegisterForLoading(mlContext);
        ITransformer model = mlContext.Model.Load(MLNetModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
    }
}
