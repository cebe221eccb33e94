using System.Runtime.InteropServices;

namespace MLNet.DeepRec;

/// <summary>
/// Checks that the two native runtimes the library needs can be loaded, before any work that would be lost without
/// them. The MLNet.DeepRec package carries no native binaries (the application picks CPU or CUDA builds, see the README's
/// Install section), so a missing package would otherwise surface only when it is first used: ONNX Runtime at the very
/// end of <c>Fit</c>, after every epoch has run.
/// </summary>
internal static class NativeRuntimes
{
    // Successful checks are remembered: a native library that loaded once stays loaded for the life of the process.
    private static volatile bool s_torchChecked;
    private static volatile bool s_onnxRuntimeChecked;

    /// <summary>What <c>Fit</c> needs: libtorch to train and ONNX Runtime to build the returned transformer.</summary>
    /// <exception cref="DllNotFoundException">One of them cannot be loaded; the message names the package to add.</exception>
    public static void EnsureForTraining()
    {
        EnsureLibTorch();
        EnsureOnnxRuntime();
    }

    /// <summary>libtorch (TorchSharp's native backend).</summary>
    /// <exception cref="DllNotFoundException">It cannot be loaded.</exception>
    public static void EnsureLibTorch()
    {
        if (s_torchChecked) return;
        Exception? cause = null;
        try
        {
            // Loads libLibTorchSharp and libtorch for the CPU (which a CUDA build also contains).
            TorchSharp.torch.InitializeDeviceType(TorchSharp.DeviceType.CPU);
        }
        catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException or BadImageFormatException)
        {
            cause = e;
        }
        if (cause != null)
            throw new DllNotFoundException(
                $"libtorch, the native library MLNet.DeepRec trains with, could not be loaded. Add the package {LibTorchPackage()} " +
                "(version 2.10.0, the one TorchSharp 0.107 is built for) to the application project, or TorchSharp-cpu 0.107.0 for all " +
                "platforms. Scoring a saved model does not need it. On Debian 12 or Ubuntu 22.04, also see docs/troubleshooting.md#native-library-fix. " +
                $"TorchSharp said: {FirstLine(cause.Message)}", cause);
        s_torchChecked = true;
    }

    /// <summary>ONNX Runtime's native library (CPU or GPU build).</summary>
    /// <exception cref="DllNotFoundException">It cannot be loaded.</exception>
    public static void EnsureOnnxRuntime()
    {
        if (s_onnxRuntimeChecked) return;
        // The same lookup as ONNX Runtime's own [DllImport("onnxruntime")]: the application's deps.json native assets,
        // then the system's search path. Loading the library does not create ONNX Runtime's environment, so ML.NET still
        // creates it with its own threading options later.
        if (!NativeLibrary.TryLoad("onnxruntime", typeof(Microsoft.ML.OnnxRuntime.OrtEnv).Assembly, null, out _))
            throw new DllNotFoundException(
                "ONNX Runtime's native library (onnxruntime) could not be loaded; MLNet.DeepRec scores every model with it, including " +
                "the one Fit returns, so nothing was trained. Add the package Microsoft.ML.OnnxRuntime 1.31.1 to the application " +
                "project (or Microsoft.ML.OnnxRuntime.Gpu 1.31.0 to score on an NVIDIA GPU with CUDA 13).");
        s_onnxRuntimeChecked = true;
    }

    private static string LibTorchPackage()
    {
        string arch = RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();
        if (OperatingSystem.IsLinux()) return $"libtorch-cpu-linux-{arch}";
        if (OperatingSystem.IsWindows()) return $"libtorch-cpu-win-{arch}";
        if (OperatingSystem.IsMacOS()) return $"libtorch-cpu-osx-{arch}";
        return "TorchSharp-cpu";
    }

    private static string FirstLine(string message)
    {
        int end = message.IndexOf('\n');
        return (end < 0 ? message : message[..end]).Trim();
    }
}
