using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Runtime;

namespace MLNet.DeepRec.Serving;

/// <summary>
/// Decides where ONNX Runtime scores, before ML.NET builds a session: <see cref="MLContext.GpuDeviceId"/> asks for a CUDA
/// device, and <see cref="MLContext.FallbackToCpu"/> says what to do when ONNX Runtime cannot use one.
/// </summary>
/// <remarks>
/// ML.NET falls back to the CPU silently when the CUDA provider fails to load (e.g. Microsoft.ML.OnnxRuntime.Gpu without
/// CUDA 13 on the machine), and not at all when the ONNX Runtime package is the CPU build (no CUDA entry point). Asking
/// ONNX Runtime for the CUDA provider once, up front, gives both cases one behaviour: a warning through the context's
/// log naming the cause and CPU scoring, or an <see cref="InvalidOperationException"/> when falling back is not allowed.
/// </remarks>
internal static class OnnxRuntimeDevice
{
    // The answer does not change within a process (libraries and devices stay as they are), so it is asked once per device.
    private static readonly ConcurrentDictionary<int, string?> s_cudaUnavailable = new();

    /// <summary>Why ONNX Runtime cannot create its CUDA provider for <paramref name="deviceId"/>, or null when it can.</summary>
    public static string? CudaUnavailableReason(int deviceId) => s_cudaUnavailable.GetOrAdd(deviceId, static id =>
    {
        try
        {
            using SessionOptions options = SessionOptions.MakeSessionOptionWithCudaProvider(id);
            return null;
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            string message = e.Message.ReplaceLineEndings(" ").Trim();
            return e is EntryPointNotFoundException
                ? $"the ONNX Runtime package is the CPU build (Microsoft.ML.OnnxRuntime), which has no CUDA provider ({e.GetType().Name})"
                : $"ONNX Runtime's CUDA provider cannot be loaded: {message}";
        }
    });

    /// <summary>
    /// The context whose GPU settings the ONNX scorer should get: <paramref name="mlContext"/> itself when it asks for no
    /// GPU or ONNX Runtime can use the one asked for; otherwise, with <see cref="MLContext.FallbackToCpu"/>, a context that
    /// asks for none (after a warning), and without it, an exception.
    /// </summary>
    /// <param name="mlContext">The user's context.</param>
    /// <param name="what">What is being built or loaded, for the messages.</param>
    /// <exception cref="InvalidOperationException">A GPU was asked for, ONNX Runtime cannot use it, and falling back is not allowed.</exception>
    public static MLContext ScoringContext(MLContext mlContext, string what)
    {
        if (mlContext.GpuDeviceId is not int gpu) return mlContext;
        string? reason = CudaUnavailableReason(gpu);
        if (reason == null) return mlContext;
        if (!mlContext.FallbackToCpu)
            throw new InvalidOperationException(
                $"{what}: MLContext.GpuDeviceId = {gpu}, but {reason}. Reference Microsoft.ML.OnnxRuntime.Gpu 1.31.0 instead of " +
                "Microsoft.ML.OnnxRuntime and install CUDA 13 and cuDNN 9, or set MLContext.FallbackToCpu = true to score on the CPU.");
        var host = ((IHostEnvironment)mlContext).Register("DeepRecServing");
        using (var ch = host.Start("ONNX Runtime"))
            ch.Warning(MessageSensitivity.None, "{0}",
                $"{what}: MLContext.GpuDeviceId = {gpu} but {reason}; scoring on the CPU because MLContext.FallbackToCpu is true. " +
                "Reference Microsoft.ML.OnnxRuntime.Gpu 1.31.0 (CUDA 13, cuDNN 9) to score on a GPU.");
        // ML.NET substitutes the context's own GpuDeviceId for a null argument, and gives a loaded OnnxTransformer the
        // loading context's, so CPU scoring needs a context that asks for no GPU. It keeps the caller's temp folder.
        return new MLContext { TempFilePath = mlContext.TempFilePath };
    }
}
