using Microsoft.ML;
using Microsoft.ML.Data;

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

    /// <summary>
    /// Loads a model saved with <c>mlContext.Model.Save</c>, the way a scoring service should: registers the DeepRec
    /// score mappings with <paramref name="mlContext"/> (<see cref="RegisterForLoading"/>), opens the file read-only
    /// (it is never modified), and turns any failure to read it — a truncated or corrupted zip, a damaged ONNX model
    /// inside it, a component this process cannot load — into an <see cref="InvalidDataException"/> whose message names
    /// the file and keeps ML.NET's or ONNX Runtime's explanation (the original exception is the inner exception).
    /// </summary>
    /// <remarks>
    /// The file is treated as untrusted. Before ML.NET sees it, the zip is read through once (every entry must
    /// decompress to its declared size) and every ONNX model in it must be one this library could have written: only
    /// the operators MLNet.DeepRec's exporters emit, initializers whose data matches their dims, no constant computed
    /// larger than the model's own weights, and a size whose load fits in the memory available to the process. Other
    /// ONNX models are rejected (load them with <c>mlContext.Model.Load</c>); a zip without ONNX models (ML.NET's own
    /// transformers) is passed on as it is. When a load fails, the <c>ml_dotnet_*</c> folder and the ONNX copy that
    /// ML.NET may leave in <see cref="MLContext.TempFilePath"/> for this file are deleted.
    /// </remarks>
    /// <param name="mlContext">The context to load into; its <see cref="MLContext.GpuDeviceId"/> and
    /// <see cref="MLContext.FallbackToCpu"/> choose the ONNX Runtime device.</param>
    /// <param name="path">The model zip.</param>
    /// <param name="inputSchema">The schema the model was saved with (the columns the model expects).</param>
    /// <returns>The loaded model (for a DeepRec model, a <see cref="TransformerChain{TLastTransformer}"/> scored by ONNX Runtime).</returns>
    /// <remarks>
    /// When <see cref="MLContext.GpuDeviceId"/> is set but ONNX Runtime has no CUDA support (the CPU package
    /// Microsoft.ML.OnnxRuntime), ML.NET's load fails with <see cref="EntryPointNotFoundException"/> even when
    /// <see cref="MLContext.FallbackToCpu"/> is true. This method honours <see cref="MLContext.FallbackToCpu"/>: it logs a
    /// warning through <paramref name="mlContext"/> and loads the model for the CPU; without it, it throws
    /// <see cref="InvalidOperationException"/> explaining both ways out.
    /// </remarks>
    /// <exception cref="FileNotFoundException"><paramref name="path"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a loadable ML.NET model.</exception>
    /// <exception cref="InvalidOperationException">A GPU was asked for, ONNX Runtime cannot use one, and
    /// <see cref="MLContext.FallbackToCpu"/> is false.</exception>
    public static ITransformer LoadModel(MLContext mlContext, string path, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
            throw new FileNotFoundException($"The model file '{fullPath}' does not exist.", fullPath);
        RegisterForLoading(mlContext);
        long length = new FileInfo(fullPath).Length;
        ModelZipInspector.Contents? contents = null;
        IReadOnlySet<string>? tempBefore = null;
        string tempPath = mlContext.TempFilePath;
        try
        {
            // Everything that can be checked without ML.NET is checked first, so that a rejected file never reaches
            // ML.NET's loaders or ONNX Runtime (and leaves nothing in the temporary folder).
            contents = ModelZipInspector.Check(fullPath);
            tempBefore = ModelZipInspector.Snapshot(tempPath);
            using var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read);
            return mlContext.Model.Load(stream, out inputSchema);
        }
        catch (Exception e) when (e is not (OperationCanceledException or OutOfMemoryException or UnauthorizedAccessException))
        {
            // ML.NET extracts entries to an ml_dotnet_* folder and gives ONNX Runtime a copy of the ONNX bytes in a
            // temporary file, and a failing load can leave both behind.
            if (contents is not null && tempBefore is not null)
                ModelZipInspector.RemoveLeftovers(tempPath, tempBefore, contents);
            // ML.NET creates components by reflection: the cause sits under one or more TargetInvocationExceptions.
            Exception cause = e;
            while (cause is System.Reflection.TargetInvocationException { InnerException: { } innerCause })
                cause = innerCause;
            if (mlContext.GpuDeviceId is int gpu && cause is EntryPointNotFoundException or DllNotFoundException)
            {
                // The CPU build of ONNX Runtime has no CUDA entry point, and ML.NET's own fallback does not catch that.
                if (!mlContext.FallbackToCpu)
                    throw new InvalidOperationException(
                        $"Loading '{fullPath}': MLContext.GpuDeviceId = {gpu}, but ONNX Runtime cannot use CUDA here ({cause.GetType().Name}: " +
                        $"{cause.Message}). Reference Microsoft.ML.OnnxRuntime.Gpu (with its CUDA and cuDNN) instead of Microsoft.ML.OnnxRuntime, " +
                        "or set MLContext.FallbackToCpu = true to score on the CPU.", e);
                var host = ((Microsoft.ML.Runtime.IHostEnvironment)mlContext).Register("DeepRecServing");
                using (var ch = host.Start("LoadModel"))
                    ch.Warning(Microsoft.ML.Runtime.MessageSensitivity.None, "{0}",
                        $"MLContext.GpuDeviceId = {gpu} but ONNX Runtime cannot use CUDA here ({cause.GetType().Name}); loading '{fullPath}' " +
                        "for the CPU because MLContext.FallbackToCpu is true. Reference Microsoft.ML.OnnxRuntime.Gpu to score on a GPU.");
                // ML.NET gives a loaded OnnxTransformer the loading context's GpuDeviceId, so the CPU copy is loaded
                // through a context that asks for no GPU.
                return LoadModel(new MLContext(), fullPath, out inputSchema);
            }
            throw new InvalidDataException(
                $"'{fullPath}' ({length:N0} bytes) could not be loaded as an ML.NET model: the file is truncated, corrupted, " +
                $"not a model zip, or needs a component this process cannot load. {cause.GetType().Name}: {cause.Message}", e);
        }
    }

    /// <summary>Loads a model saved with <c>mlContext.Model.Save</c>; see <see cref="LoadModel(MLContext, string, out DataViewSchema)"/>.</summary>
    /// <param name="mlContext">The context to load into.</param>
    /// <param name="path">The model zip.</param>
    /// <returns>The loaded model.</returns>
    /// <exception cref="FileNotFoundException"><paramref name="path"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a loadable ML.NET model.</exception>
    public static ITransformer LoadModel(MLContext mlContext, string path) => LoadModel(mlContext, path, out _);
}
