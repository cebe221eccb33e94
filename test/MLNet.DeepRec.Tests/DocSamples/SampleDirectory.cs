namespace MLNet.DeepRec.Tests.DocSamples;

/// <summary>
/// Runs a doc sample in a fresh temporary folder: the samples read and write files by plain relative names
/// ("u.data", "neumf.zip"), as an application would in its own folder. Restores the working directory and deletes the
/// folder on dispose. Tests that use it must not run in parallel with each other (the working directory is process-wide).
/// </summary>
internal sealed class SampleDirectory : IDisposable
{
    private readonly string _previous;

    public SampleDirectory()
    {
        FullPath = Path.Combine(Path.GetTempPath(), $"deeprec-docsample-{Guid.NewGuid():N}");
        Directory.CreateDirectory(FullPath);
        _previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = FullPath;
    }

    public string FullPath { get; }

    public void Dispose()
    {
        Environment.CurrentDirectory = _previous;
        try { Directory.Delete(FullPath, recursive: true); }
        catch (IOException) { /* a file still mapped by a native library; the temp folder is cleaned up eventually */ }
        catch (UnauthorizedAccessException) { }
    }
}
