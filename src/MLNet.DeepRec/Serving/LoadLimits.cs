namespace MLNet.DeepRec.Serving;

/// <summary>
/// Bounds on what a file read from disk may declare (checkpoints, model zips, ONNX graphs), checked before anything
/// of that size is allocated: an untrusted file is rejected with an <see cref="InvalidDataException"/> that names the
/// field, instead of running the process out of memory (issue #12). Far above anything this library trains.
/// </summary>
internal static class LoadLimits
{
    /// <summary>Rows of a user or item table (besides the unknown row 0).</summary>
    public const int MaxTableRows = 1 << 30;

    /// <summary>Embedding width (factors) and the width of any hidden layer.</summary>
    public const int MaxWidth = 1 << 16;

    /// <summary>Entries of a layer list (the MLP tower).</summary>
    public const int MaxLayers = 64;

    /// <summary>A checkpoint's manifest (JSON, key vocabularies included).</summary>
    public const long MaxManifestBytes = 1L << 31;

    /// <summary>Entries of a model zip.</summary>
    public const int MaxZipEntries = 100_000;

    /// <summary>Nodes, and separately initializers, of an ONNX graph.</summary>
    public const int MaxOnnxNodes = 1_000_000;

    /// <summary>Rank of an ONNX initializer or declared graph value.</summary>
    public const int MaxOnnxRank = 8;

    /// <summary>
    /// Values a constant that the graph computes from other constants (or an Expand to a constant shape) may hold
    /// when the model's own initializers hold fewer: a graph may not compute anything larger than its weights, or
    /// than this (4 MB of floats) for a tiny model.
    /// </summary>
    public const long MinComputedConstantElements = 1L << 20;

    /// <summary>
    /// Memory a load may plan to use: what the runtime reports as available to this process (physical memory, or a
    /// container or <c>GCHeapHardLimit</c> limit when one is set). TorchSharp and ONNX Runtime allocate natively,
    /// outside that limit, so estimates count their buffers too.
    /// </summary>
    public static long MemoryBudgetBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>Throws when <paramref name="bytes"/> exceed <see cref="MemoryBudgetBytes"/>.</summary>
    /// <param name="bytes">The estimate.</param>
    /// <param name="what">The file, for the message.</param>
    /// <param name="because">The fields the estimate follows from, for the message (e.g. "UserCount = 50000000, factors = 64").</param>
    public static void CheckMemory(long bytes, string what, string because)
    {
        long budget = MemoryBudgetBytes;
        if (bytes < 0 || bytes > budget)
            throw new InvalidDataException($"{what} would need about {Megabytes(bytes)} MB to load ({because}), more than the {Megabytes(budget)} MB available to this process.");
    }

    private static string Megabytes(long bytes) => bytes < 0 ? "more than 8 EB" : (bytes / (1024.0 * 1024.0)).ToString("N0", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Checks <paramref name="value"/> is within <paramref name="min"/>..<paramref name="max"/>; the message names the field.</summary>
    public static void CheckRange(long value, long min, long max, string what, string field)
    {
        if (value < min || value > max)
            throw new InvalidDataException($"{what}: {field} = {value} is outside the supported range {min}..{max}.");
    }
}

/// <summary>
/// A read-only view of a stream that fails with <see cref="InvalidDataException"/> once more than a set number of
/// bytes come out of it: a compressed zip entry can expand far beyond what its header says.
/// </summary>
internal sealed class BoundedReadStream(Stream inner, long limit, string what) : Stream
{
    private long _read;

    /// <summary>Bytes read so far.</summary>
    public long BytesRead => _read;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        _read += n;
        if (_read > limit) throw new InvalidDataException($"{what} holds more than {limit:N0} bytes.");
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _read; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
