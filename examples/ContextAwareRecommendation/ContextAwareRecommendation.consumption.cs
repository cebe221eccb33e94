// Model Builder-style consumption code: the input/output classes and a Predict helper over the saved model.
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Serving;

namespace ContextAwareRecommendation;

public static partial class ContextAwareRecommender
{
    /// <summary>One row of the app-usage CSV: did the user open the app in this context? The LoadColumn indices are the
    /// CSV's column positions (header <c>Used,User,App,DayTime,Weekday,Weather</c>).</summary>
    public sealed class ModelInput
    {
        [LoadColumn(0), ColumnName("Used")] public bool Used { get; set; }
        [LoadColumn(1), ColumnName("User")] public string User { get; set; } = "";
        [LoadColumn(2), ColumnName("App")] public string App { get; set; } = "";
        [LoadColumn(3), ColumnName("DayTime")] public string DayTime { get; set; } = "";
        [LoadColumn(4), ColumnName("Weekday")] public string Weekday { get; set; } = "";
        [LoadColumn(5), ColumnName("Weather")] public string Weather { get; set; } = "";
    }

    /// <summary>The model's answer for a row (the columns of ML.NET's binary classifiers).</summary>
    public sealed class ModelOutput
    {
        /// <summary>Probability &gt; 0.5.</summary>
        [ColumnName("PredictedLabel")] public bool PredictedLabel { get; set; }
        /// <summary>The logit; higher means more likely to be used.</summary>
        [ColumnName("Score")] public float Score { get; set; }
        /// <summary>σ(Score): the estimated probability that the user opens the app in this context.</summary>
        [ColumnName("Probability")] public float Probability { get; set; }
    }

    /// <summary>Where the example saves the trained model.</summary>
    public static string MLNetModelPath { get; set; } = Path.Combine(AppContext.BaseDirectory, "ContextAwareRecommendation.zip");

    private static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, true);

    /// <summary>Scores one row with the saved model (loaded once; scored by ONNX Runtime, no libtorch involved).</summary>
    public static ModelOutput Predict(ModelInput input) => PredictEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        // The saved chain ends with a DeepRec custom mapping; registering the assembly makes it loadable.
        DeepRecServing.RegisterForLoading(mlContext);
        ITransformer model = mlContext.Model.Load(MLNetModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
    }
}
