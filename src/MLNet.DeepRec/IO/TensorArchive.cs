using System.Runtime.InteropServices;
using System.Text;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Our own little binary format for named float32 tensors (checkpoint weights and optimizer moments): a magic
/// string, a count, then per tensor its name, rank, dims and little-endian values. Everything is validated while
/// reading, so a truncated or corrupted file gives an <see cref="InvalidDataException"/>, never a native crash.
/// </summary>
/// <remarks>
/// Reading is two passes over the stream so that nothing is allocated from a number the file merely claims:
/// <see cref="ReadHeaders"/> walks names and shapes and skips the values through a small buffer (a shape whose
/// values are not actually there ends as "truncated"); the caller checks the shapes against what it expects and
/// estimates the memory; <see cref="ReadInto"/> then copies the values in bounded chunks into tensors it allocated.
/// </remarks>
internal static class TensorArchive
{
    private const string Magic = "DEEPREC-TENSORS-1";
    private const long MaxElements = 1L << 31;
    private const int MaxTensors = 100_000, MaxRank = 8;
    /// <summary>Values are copied through a buffer of this many floats (4 MB), whatever the tensor's size.</summary>
    private const int ChunkElements = 1 << 20;

    /// <summary>Name and shape of one stored tensor.</summary>
    public sealed record Header(string Name, long[] Shape)
    {
        /// <summary>Number of values (the product of the shape).</summary>
        public long Elements => Shape.Aggregate(1L, (a, d) => a * d);

        /// <summary>The shape as [a,b,c], for messages.</summary>
        public string ShapeText => $"[{string.Join(",", Shape)}]";
    }

    public static void Write(Stream stream, IEnumerable<(string Name, Tensor Tensor)> tensors)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        var list = tensors.ToList();
        w.Write(Magic);
        w.Write(list.Count);
        foreach (var (name, tensor) in list)
        {
            using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
            var t = tensor.detach().to(float32).cpu().contiguous();
            w.Write(name);
            w.Write(t.shape.Length);
            foreach (long d in t.shape) w.Write(d);
            var values = t.data<float>().ToArray();
            var bytes = new byte[values.Length * sizeof(float)];
            Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
            w.Write(bytes);
        }
    }

    /// <summary>
    /// The names and shapes of the stored tensors, in order; the values are read and dropped, so a tensor whose values
    /// are missing makes this throw. Allocates only the headers.
    /// </summary>
    public static List<Header> ReadHeaders(Stream stream, string what)
    {
        var headers = new List<Header>();
        var buffer = new byte[64 * 1024];
        Walk(stream, what, (header, r) =>
        {
            headers.Add(header);
            for (long left = header.Elements * sizeof(float); left > 0;)
            {
                int read = r.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (read == 0) throw new InvalidDataException($"{what} is truncated (in tensor '{header.Name}').");
                left -= read;
            }
        });
        return headers;
    }

    /// <summary>
    /// Copies the stored values into the tensors <paramref name="target"/> returns for each header (float32, on the
    /// CPU, of the stored number of values); a null target skips the tensor. Run <see cref="ReadHeaders"/> and check
    /// the shapes first: this pass trusts them.
    /// </summary>
    public static void ReadInto(Stream stream, string what, Func<Header, Tensor?> target)
    {
        var chunk = new float[ChunkElements];
        Walk(stream, what, (header, r) =>
        {
            Tensor? destination = target(header);
            if (destination is not null && destination.numel() != header.Elements)
                throw new InvalidDataException($"{what}: tensor '{header.Name}' has {header.Elements} values, its destination {destination.numel()}.");
            using var flat = destination?.view(-1);
            for (long done = 0; done < header.Elements;)
            {
                int n = (int)Math.Min(ChunkElements, header.Elements - done);
                r.BaseStream.ReadExactly(MemoryMarshal.AsBytes(chunk.AsSpan(0, n)));
                if (flat is not null)
                {
                    // Little-endian floats, as Write stores them (like the previous Buffer.BlockCopy reader).
                    using var all = tensor(chunk);
                    using var source = all.narrow(0, 0, n);
                    using var slice = flat.narrow(0, done, n);
                    slice.copy_(source);
                }
                done += n;
            }
        });
    }

    /// <summary>Reads the magic, the count and each header, validated, and hands each header to <paramref name="values"/>,
    /// which must consume exactly that tensor's value bytes.</summary>
    private static void Walk(Stream stream, string what, Action<Header, BinaryReader> values)
    {
        try
        {
            using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
            if (r.ReadString() != Magic) throw new InvalidDataException($"{what} is not a MLNet.DeepRec tensor archive (or has an unsupported version).");
            int count = r.ReadInt32();
            if (count < 0 || count > MaxTensors) throw new InvalidDataException($"{what} declares {count} tensors (at most {MaxTensors}).");
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (int n = 0; n < count; n++)
            {
                string name = r.ReadString();
                if (!names.Add(name)) throw new InvalidDataException($"{what}: tensor '{name}' appears twice.");
                int rank = r.ReadInt32();
                if (rank < 0 || rank > MaxRank) throw new InvalidDataException($"{what}: tensor '{name}' has rank {rank} (at most {MaxRank}).");
                var shape = new long[rank];
                long elements = 1;
                for (int d = 0; d < rank; d++)
                {
                    shape[d] = r.ReadInt64();
                    if (shape[d] < 0) throw new InvalidDataException($"{what}: tensor '{name}' has a negative dimension ({shape[d]}).");
                    if (shape[d] > MaxElements || (elements *= shape[d]) > MaxElements)
                        throw new InvalidDataException($"{what}: tensor '{name}' is implausibly large (more than {MaxElements} values).");
                }
                values(new Header(name, shape), r);
            }
        }
        catch (EndOfStreamException e) { throw new InvalidDataException($"{what} is truncated.", e); }
        catch (FormatException e) { throw new InvalidDataException($"{what} is corrupted (a tensor name's length: {e.Message})", e); }
    }
}
