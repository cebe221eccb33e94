using Microsoft.ML;

namespace MLNet.DeepRec.Serving;

/// <summary>Serving helpers for models saved with <c>mlContext.Model.Save</c>.</summary>
public static class DeepRecServing
{
    /// <summary>
    /// Registers this assembly's score mappings with <paramref name="mlContext"/>'s component catalog. Call it once on
    /// the <see cref="MLContext"/> that loads a saved DeepRec model (<c>mlContext.Model.Load</c>), before loading:
    /// the saved model ends with a custom mapping (the ONNX outputs are 1-element vectors; the mapping makes them the
    /// scalar <c>Score</c>/<c>Probability</c>/<c>PredictedLabel</c> columns), and ML.NET only finds custom mappings in
    /// registered assemblies. Loading needs this assembly and ONNX Runtime, not TorchSharp or libtorch.
    /// </summary>
    public static void RegisterForLoading(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        mlContext.ComponentCatalog.RegisterAssembly(typeof(DeepRecTransformerBase).Assembly);
    }
}
