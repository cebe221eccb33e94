using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace MLNet.DeepRec.IO;

/// <summary>
/// Temporary files that only this process can read and that do not outlive it. ONNX Runtime (through ML.NET's
/// <c>OnnxTransformer</c>) loads a model from a file, and ML.NET reads that file again whenever the model is saved, so a
/// transformer's ONNX file has to exist for the transformer's lifetime.
/// </summary>
/// <remarks>
/// Every file lives in one folder per process and temp root, <c>&lt;root&gt;/mlnet-deeprec-&lt;pid&gt;-&lt;random&gt;</c>, created
/// with mode 0700 (files 0600) on Unix, so other users can neither list nor read the model. A file is deleted when its
/// owner is disposed; the whole folder is deleted when the process exits normally (<see cref="AppDomain.ProcessExit"/>,
/// which .NET also raises on SIGTERM); and the folders of processes that died without exiting (killed, crashed) are
/// deleted by the next process that creates one under the same root.
/// </remarks>
internal static class PrivateTempFiles
{
    private const string FolderPrefix = "mlnet-deeprec-";
    private static readonly ConcurrentDictionary<string, string> s_processFolders = new(StringComparer.Ordinal);
    private static int s_exitHookInstalled;

    /// <summary>Writes <paramref name="bytes"/> to a new private file under <paramref name="tempRoot"/>; returns its path.</summary>
    /// <param name="tempRoot">The temp root (an <c>MLContext.TempFilePath</c>); null or empty for the system's.</param>
    /// <param name="bytes">The content.</param>
    /// <param name="extension">File extension, with its dot.</param>
    public static string Write(string? tempRoot, ReadOnlySpan<byte> bytes, string extension)
    {
        string folder = ProcessFolder(tempRoot);
        string path = Path.Combine(folder, Guid.NewGuid().ToString("N") + extension);
        try
        {
            using var file = new FileStream(path, PrivateFileOptions(FileMode.CreateNew));
            file.Write(bytes);
        }
        catch
        {
            TryDelete(path);
            throw;
        }
        return path;
    }

    /// <summary>Creates a new, empty private folder under the process folder (for a component that writes its own temp
    /// files, such as ML.NET's model loader); delete it with <see cref="TryDeleteFolder"/>.</summary>
    /// <param name="tempRoot">The temp root; null or empty for the system's.</param>
    public static string CreateFolder(string? tempRoot)
    {
        string path = Path.Combine(ProcessFolder(tempRoot), Guid.NewGuid().ToString("N"));
        CreatePrivateDirectory(path);
        return path;
    }

    /// <summary>Deletes a file written by <see cref="Write"/>; never throws (what cannot be deleted now goes at exit).</summary>
    public static void TryDelete(string? path)
    {
        if (string.IsNullOrEmpty(path)) return;
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>Deletes a folder and everything in it; never throws.</summary>
    public static void TryDeleteFolder(string? path)
    {
        if (string.IsNullOrEmpty(path)) return;
        try { Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The process folders created so far (for tests).</summary>
    internal static IReadOnlyCollection<string> ProcessFolders => s_processFolders.Values.ToArray();

    private static FileStreamOptions PrivateFileOptions(FileMode mode)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        return options;
    }

    private static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
            Directory.CreateDirectory(path);
        else
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static string ProcessFolder(string? tempRoot)
    {
        string root = Path.GetFullPath(string.IsNullOrEmpty(tempRoot) ? Path.GetTempPath() : tempRoot);
        return s_processFolders.GetOrAdd(root, static r =>
        {
            Directory.CreateDirectory(r);
            DeleteFoldersOfDeadProcesses(r);
            string folder = Path.Combine(r, $"{FolderPrefix}{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}");
            CreatePrivateDirectory(folder);
            if (Interlocked.Exchange(ref s_exitHookInstalled, 1) == 0)
                AppDomain.CurrentDomain.ProcessExit += (_, _) =>
                {
                    foreach (string f in s_processFolders.Values) TryDeleteFolder(f);
                };
            return folder;
        });
    }

    // A folder whose process no longer runs was left by a process that was killed or crashed.
    private static void DeleteFoldersOfDeadProcesses(string root)
    {
        IEnumerable<string> folders;
        try { folders = Directory.EnumerateDirectories(root, FolderPrefix + "*").ToArray(); }
        catch (IOException) { return; }
        catch (UnauthorizedAccessException) { return; }
        foreach (string folder in folders)
        {
            string name = Path.GetFileName(folder);
            int dash = name.IndexOf('-', FolderPrefix.Length);
            if (dash < 0 || !int.TryParse(name.AsSpan(FolderPrefix.Length, dash - FolderPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                continue;
            if (pid != Environment.ProcessId && !IsRunning(pid))
                TryDeleteFolder(folder);
        }
    }

    private static bool IsRunning(int pid)
    {
        if (OperatingSystem.IsLinux())
            return Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}");
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
