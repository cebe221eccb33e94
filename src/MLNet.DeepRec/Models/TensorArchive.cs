using System.Text;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Our own little binary format for named float32 tensors (checkpoint weights and optimizer moments): a magic
/// string, a count, then per tensor its name, rank, dims and little-endian values. Everything is validated while
/// reading, so a truncated or corrupted file gives an <see cref="InvalidDataException"/>, never a native crash.
/// </summary>
internal static class TensorArchive
{
    private const string Magic = "DEEPREC-TENSORS-1";
    private const long MaxElements = 1L << 31;

    public static void Write(Stream stream, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        var list = tensors.ToList();
        w.Write(Magic);
        w.Write(list.Count);
        foreach (var (name, tensor) in list)
        {
            using var t = tensor.detach().to(float32).cpu().contiguous();
            w.Write(name);
            w.Write(t.shape.Length);
            foreach (long d in t.shape) w.Write(d);
            var values = t.data<float>().ToArray();
            var bytes = new byte[values.Length * sizeof(float)];
            Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
            w.Write(bytes);
        }
    }

    public static Dictionary<string, (long[] Shape, float[] Values)> Read(Stream stream, string what)
    {
        try
        {
            using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
            if (r.ReadString() != Magic) throw new InvalidDataException($"{what} is not a MLNet.DeepRec tensor archive (or has an unsupported version).");
            int count = r.ReadInt32();
            if (count < 0 || count > 100_000) throw new InvalidDataException($"{what} declares {count} tensors.");
            var result = new Dictionary<string, (long[], float[])>(count);
            for (int n = 0; n < count; n++)
            {
                string name = r.ReadString();
                int rank = r.ReadInt32();
                if (rank < 0 || rank > 8) throw new InvalidDataException($"{what}: tensor '{name}' has rank {rank}.");
                var shape = new long[rank];
                long elements = 1;
                for (int d = 0; d < rank; d++)
                {
                    shape[d] = r.ReadInt64();
                    if (shape[d] < 0) throw new InvalidDataException($"{what}: tensor '{name}' has a negative dimension.");
                    elements *= shape[d];
                    if (elements > MaxElements) throw new InvalidDataException($"{what}: tensor '{name}' is implausibly large.");
                }
                var bytes = r.ReadBytes(checked((int)(elements * sizeof(float))));
                if (bytes.Length != elements * sizeof(float)) throw new InvalidDataException($"{what} is truncated (in tensor '{name}').");
                var values = new float[elements];
                Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
                if (!result.TryAdd(name, (shape, values))) throw new InvalidDataException($"{what}: tensor '{name}' appears twice.");
            }
            return result;
        }
        catch (EndOfStreamException e) { throw new InvalidDataException($"{what} is truncated.", e); }
        catch (OverflowException e) { throw new InvalidDataException($"{what} is corrupted.", e); }
    }
}
