namespace MLNet.DeepRec.Tests;

/// <summary>
/// A uniquely named folder under the system temp directory, deleted with everything in it on <see cref="Dispose"/>, so
/// a fixture leaves nothing behind in temp.
/// </summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder(string prefix)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), prefix + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    /// <summary>The folder's full path.</summary>
    public string Path { get; }

    /// <summary>A path for <paramref name="fileName"/> inside the folder.</summary>
    public string File(string fileName) => System.IO.Path.Combine(Path, fileName);

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
