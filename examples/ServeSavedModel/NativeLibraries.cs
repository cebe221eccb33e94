namespace ServeSavedModel;

/// <summary>Which native libraries the current process has mapped (Linux: <c>/proc/self/maps</c>).</summary>
internal static class NativeLibraries
{
    /// <summary>Paths of the files mapped into this process, distinct; empty where /proc is not available.</summary>
    public static IReadOnlyList<string> Mapped()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps))
            return [];
        var paths = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(maps))
        {
            // address perms offset dev inode [path]: the path starts at the first '/' after the inode.
            int slash = line.IndexOf('/');
            if (slash >= 0)
                paths.Add(line[slash..].Trim());
        }
        return [.. paths];
    }

    /// <summary>A native shared library (not a managed .dll or a data file).</summary>
    public static bool IsNative(string path) => Path.GetFileName(path).Contains(".so", StringComparison.Ordinal);

    /// <summary>libtorch's natives (libtorch.so, libtorch_cpu.so, libc10.so, …) or TorchSharp's libLibTorchSharp.so.</summary>
    public static bool IsTorch(string path)
    {
        string name = Path.GetFileName(path);
        return IsNative(path) && (name.StartsWith("libtorch", StringComparison.Ordinal) || name.StartsWith("libc10", StringComparison.Ordinal)
            || name.Contains("LibTorchSharp", StringComparison.Ordinal));
    }

    /// <summary>Torch natives and ONNX Runtime's, the ones worth printing.</summary>
    public static bool IsOfInterest(string path) =>
        IsTorch(path) || (IsNative(path) && Path.GetFileName(path).Contains("onnxruntime", StringComparison.Ordinal));
}
