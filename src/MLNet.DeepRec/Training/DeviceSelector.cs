using Microsoft.ML;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace MLNet.DeepRec.Training;

/// <summary>
/// Chooses the libtorch device the ML.NET way: <see cref="MLContext.GpuDeviceId"/> asks for CUDA device N;
/// when CUDA is unavailable, <see cref="MLContext.FallbackToCpu"/> decides between CPU (with a warning) and an error.
/// </summary>
internal static class DeviceSelector
{
    public static torch.Device Select(MLContext mlContext, IChannel channel)
    {
        int? gpu = mlContext.GpuDeviceId;
        if (gpu == null) return torch.CPU;
        if (gpu < 0) throw new ArgumentOutOfRangeException(nameof(mlContext), gpu, "MLContext.GpuDeviceId must be >= 0.");
        bool cuda = torch.cuda.is_available();
        if (cuda && gpu.Value < torch.cuda.device_count())
            return torch.device(DeviceType.CUDA, gpu.Value);
        string why = cuda ? $"CUDA device {gpu} does not exist ({torch.cuda.device_count()} found)"
                          : "CUDA is not available (this process uses libtorch's CPU build, or no GPU is present)";
        if (mlContext.FallbackToCpu)
        {
            channel.Warning(MessageSensitivity.None, "{0}", $"MLContext.GpuDeviceId = {gpu} but {why}; training on the CPU because MLContext.FallbackToCpu is true.");
            return torch.CPU;
        }
        throw new InvalidOperationException($"MLContext.GpuDeviceId = {gpu} but {why}. Set MLContext.FallbackToCpu = true to train on the CPU instead, or reference a CUDA build of libtorch.");
    }
}
