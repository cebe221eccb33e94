using Microsoft.ML;

namespace MLNet.DeepRec.Serving;

/// <summary>Serving helpers for models saved with <c>mlContext.Model.Save</c>.</summary>
public static class DeepRecServing
{
    /// <summary>
    /// Registers this assembly's score mappings with <paramref name="mlContext"/>'s component catalog, the documented
    /// ML.NET way to make custom mappings loadable. Call it on the <see cref="MLContext"/> that loads a saved DeepRec
    /// model (<c>mlContext.Model.Load</c>), before loading: the saved model ends with a custom mapping (the ONNX
    /// outputs are 1-element vectors; the mapping makes them the scalar <c>Score</c>/<c>Probability</c>/<c>PredictedLabel</c>
    /// columns). With ML.NET 5.0.1 a cold process was also observed to load without it, provided MLNet.DeepRec.dll is
    /// deployed; calling it is harmless and idempotent. Scoring a loaded model needs this assembly, Microsoft.ML,
    /// Microsoft.ML.OnnxTransformer and ONNX Runtime, not TorchSharp or libtorch.
    /// </summary>
    /// <param name="mlContext">The context that will load the model.</param>
    public static void RegisterForLoading(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        mlContext.ComponentCatalog.RegisterAssembly(typeof(DeepRecTransformerBase).Assembly);
    }
}
