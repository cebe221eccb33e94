using System.IO.Compression;
using MLNet.DeepRec.Onnx;

namespace MLNet.DeepRec.Serving;

/// <summary>
/// Checks a model zip written by <c>mlContext.Model.Save</c> before ML.NET or ONNX Runtime reads it: the archive
/// must open, every entry must decompress to exactly its declared size (this also verifies the CRC-32s), and every ONNX
/// model that ML.NET's <c>OnnxTransformer</c> stored must pass <see cref="OnnxModelInspector.Read"/> (the
/// <see cref="OnnxGraphPolicy"/>). A zip holding only ML.NET's own transformers has no ONNX entry and passes as it is.
/// </summary>
internal static class ModelZipInspector
{
    /// <summary>
    /// The binary stream in which ML.NET's <c>OnnxTransformer</c> saves its model, in the transformer's directory of the
    /// zip (e.g. <c>TransformerChain/Transform_001/OnnxModel</c>): an int32 length, then that many ModelProto bytes
    /// (<c>ctx.SaveBinaryStream("OnnxModel", w => w.WriteByteArray(bytes))</c>).
    /// </summary>
    internal const string OnnxEntryName = "OnnxModel";

    /// <summary>Throws <see cref="InvalidDataException"/> naming the entry and field when the file must not be loaded.</summary>
    public static void Check(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        ZipArchive zip;
        try { zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true); }
        catch (InvalidDataException e) { throw new InvalidDataException($"not a readable zip archive ({e.Message})", e); }
        using (zip)
        {
            if (zip.Entries.Count > LoadLimits.MaxZipEntries)
                throw new InvalidDataException($"the zip has {zip.Entries.Count} entries, more than {LoadLimits.MaxZipEntries}.");
            long total = 0, onnxTotal = 0;
            var buffer = new byte[81920];
            foreach (var entry in zip.Entries)
            {
                string name = Normalize(entry.FullName);
                // ML.NET reads an entry into one array or MemoryStream: at most int.MaxValue bytes.
                if (entry.Length > int.MaxValue)
                    throw new InvalidDataException($"zip entry '{entry.FullName}' declares {entry.Length:N0} bytes, more than ML.NET reads.");
                total += entry.Length;
                using var stream = new BoundedReadStream(entry.Open(), entry.Length, $"zip entry '{entry.FullName}'");
                if (string.Equals(Path.GetFileName(name), OnnxEntryName, StringComparison.OrdinalIgnoreCase))
                {
                    byte[] model = ReadOnnx(stream, entry);
                    onnxTotal += model.Length;
                    try { OnnxModelInspector.Read(model); }
                    catch (InvalidDataException e) { throw new InvalidDataException($"zip entry '{entry.FullName}': {e.Message}", e); }
                }
                else if (name == RecommenderStore.OnnxEntry || name == RecommenderStore.DataEntry)
                {
                    // The recommender entries of DeepRecServing.SaveModel (ML.NET never reads them): checked as strictly.
                    byte[] bytes = ReadEntry(stream, entry);
                    try
                    {
                        if (name == RecommenderStore.OnnxEntry) { OnnxModelInspector.Read(bytes); onnxTotal += bytes.Length; }
                        else RecommenderStore.Parse(bytes);
                    }
                    catch (InvalidDataException e) { throw new InvalidDataException($"zip entry '{entry.FullName}': {e.Message}", e); }
                }
                while (stream.Read(buffer) > 0) { }
                if (stream.BytesRead != entry.Length)
                    throw new InvalidDataException($"zip entry '{entry.FullName}' holds {stream.BytesRead:N0} of its declared {entry.Length:N0} bytes.");
            }
            // ML.NET keeps small entries in memory and the ONNX model three times over (its array, ONNX Runtime's
            // session, the temporary file it reads back).
            LoadLimits.CheckMemory(total + 3 * onnxTotal, "the model", $"{zip.Entries.Count} entries of {total:N0} bytes, {onnxTotal:N0} of them ONNX");
        }
    }

    /// <summary>All bytes of an entry, read as they arrive (never more than it declares, which is at most int.MaxValue).</summary>
    internal static byte[] ReadEntry(Stream stream, ZipArchiveEntry entry)
    {
        LoadLimits.CheckMemory(entry.Length, $"zip entry '{entry.FullName}'", $"{entry.Length:N0} bytes");
        var bytes = new byte[entry.Length];
        try { stream.ReadExactly(bytes); }
        catch (EndOfStreamException e) { throw new InvalidDataException($"zip entry '{entry.FullName}' is truncated.", e); }
        return bytes;
    }

    /// <summary>Entry names as ML.NET looks them up, with '/' separators.</summary>
    internal static string Normalize(string entryName) => entryName.Replace('\\', '/');

    /// <summary>The ONNX bytes of an <see cref="OnnxEntryName"/> entry, read as they arrive (never more than the entry holds).</summary>
    private static byte[] ReadOnnx(Stream stream, ZipArchiveEntry entry)
    {
        Span<byte> prefix = stackalloc byte[4];
        try { stream.ReadExactly(prefix); }
        catch (EndOfStreamException e) { throw new InvalidDataException($"zip entry '{entry.FullName}' is truncated (no ONNX length prefix).", e); }
        int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(prefix);
        if (length <= 0 || length > entry.Length - 4)
            throw new InvalidDataException($"zip entry '{entry.FullName}': the ONNX model's length prefix says {length:N0} bytes, the entry holds {entry.Length - 4:N0}.");
        var model = new MemoryStream((int)Math.Min(length, 1 << 20));
        var buffer = new byte[81920];
        while (model.Length < length)
        {
            int read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, length - model.Length));
            if (read == 0) throw new InvalidDataException($"zip entry '{entry.FullName}' is truncated ({model.Length:N0} of {length:N0} ONNX bytes).");
            model.Write(buffer, 0, read);
        }
        return model.Capacity == length ? model.GetBuffer() : model.ToArray();
    }
}
