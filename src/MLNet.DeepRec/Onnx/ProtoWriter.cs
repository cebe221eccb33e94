using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace MLNet.DeepRec.Onnx;

/// <summary>
/// Bytes that a <see cref="ProtoWriter"/> copies into the serialized message only when the message is serialized
/// (<see cref="ProtoWriter.ToArray"/>), so that a large payload such as a weight tensor goes from where it lives
/// straight into the final buffer instead of through intermediate copies.
/// </summary>
internal abstract class ProtoPayload
{
    /// <summary>Number of bytes <see cref="CopyTo"/> writes; must not change once the payload is added to a writer.</summary>
    public abstract long Length { get; }

    /// <summary>Writes exactly <see cref="Length"/> bytes to <paramref name="destination"/> (which has that length).</summary>
    public abstract void CopyTo(Span<byte> destination);

    /// <summary>A payload over <paramref name="bytes"/>, referenced, not copied: the array must not change afterwards.</summary>
    public static ProtoPayload Wrap(byte[] bytes) => new ArrayPayload(bytes ?? throw new ArgumentNullException(nameof(bytes)));

    private sealed class ArrayPayload(byte[] bytes) : ProtoPayload
    {
        public override long Length => bytes.Length;
        public override void CopyTo(Span<byte> destination) => bytes.CopyTo(destination);
    }
}

/// <summary>
/// A tiny protobuf message writer: each call appends one field (tag + payload) in the standard wire format (the same
/// bytes as Google.Protobuf's <c>CodedOutputStream</c>).
/// </summary>
/// <remarks>
/// <para>
/// Sized for models whose weights are hundreds of megabytes. Scalar fields, strings and packed values go to a small
/// inline buffer; an embedded message (<see cref="Message"/>) or a <see cref="ProtoPayload"/> is kept by reference
/// together with its length, which is known up front, so nothing is copied until <see cref="ToArray"/> allocates the
/// final array once and writes every part into it. Serializing a message whose payloads hold S bytes therefore needs
/// S bytes more, not the several copies (and buffer doublings) of writing each sub-message into its own stream.
/// </para>
/// <para>
/// A writer is sealed once it is embedded in another or serialized: its length is then part of its parents, so
/// further writes throw. A sealed writer may be embedded any number of times. Protobuf caps a message at 2 GB.
/// </para>
/// </remarks>
internal sealed class ProtoWriter
{
    private const int WireVarint = 0, WireFixed32 = 5, WireLengthDelimited = 2;

    private byte[] _inline = [];
    private int _inlineLength;
    private List<Part>? _parts;
    private long _partsLength;
    private bool _sealed;

    /// <summary>An embedded message or payload, placed after the first <see cref="InlineOffset"/> inline bytes.</summary>
    private readonly record struct Part(int InlineOffset, ProtoWriter? Message, ProtoPayload? Payload, long Length);

    /// <summary>Serialized size in bytes.</summary>
    public long Length => _inlineLength + _partsLength;

    public void Int64(int field, long value)
    {
        Tag(field, WireVarint);
        Varint((ulong)value);
    }

    public void Int32(int field, int value)
    {
        Tag(field, WireVarint);
        Varint((ulong)(long)value); // negative values are sign-extended to ten bytes, as protobuf's int32 requires
    }

    public void Float(int field, float value)
    {
        Tag(field, WireFixed32);
        BinaryPrimitives.WriteSingleLittleEndian(Reserve(sizeof(float)), value);
    }

    public void String(int field, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        int size = Encoding.UTF8.GetByteCount(value);
        Tag(field, WireLengthDelimited);
        Varint((uint)size);
        Encoding.UTF8.GetBytes(value, Reserve(size));
    }

    /// <summary>Writes a bytes field; the bytes are copied (for large data use <see cref="Payload"/>).</summary>
    public void Bytes(int field, byte[] value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Tag(field, WireLengthDelimited);
        Varint((uint)value.Length);
        value.CopyTo(Reserve(value.Length));
    }

    /// <summary>Embeds <paramref name="message"/> by reference; it is sealed from now on.</summary>
    public void Message(int field, ProtoWriter message)
    {
        ArgumentNullException.ThrowIfNull(message);
        ThrowIfSealed();
        // A writer only ever holds sealed writers, which cannot change: together with this check, no cycles.
        if (ReferenceEquals(message, this))
            throw new InvalidOperationException("A protobuf message cannot contain itself.");
        message._sealed = true;
        AddPart(field, new Part(0, message, null, message.Length));
    }

    /// <summary>Writes a bytes field whose content <paramref name="payload"/> supplies when the message is serialized.</summary>
    public void Payload(int field, ProtoPayload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        AddPart(field, new Part(0, null, payload, payload.Length));
    }

    /// <summary>Writes a repeated int64 field in packed encoding (accepted by every proto2/proto3 parser).</summary>
    public void PackedInt64(int field, IReadOnlyList<long> values)
    {
        if (values.Count == 0)
            return;
        long size = 0;
        foreach (long v in values)
            size += VarintSize((ulong)v);
        Tag(field, WireLengthDelimited);
        Varint(checked((uint)size));
        EnsureCapacity(size);
        foreach (long v in values)
            Varint((ulong)v);
    }

    /// <summary>Writes a repeated float field in packed encoding.</summary>
    public void PackedFloat(int field, IReadOnlyList<float> values)
    {
        if (values.Count == 0)
            return;
        int size = checked(values.Count * sizeof(float));
        Tag(field, WireLengthDelimited);
        Varint((uint)size);
        Span<byte> span = Reserve(size);
        for (int i = 0; i < values.Count; i++)
            BinaryPrimitives.WriteSingleLittleEndian(span[(i * sizeof(float))..], values[i]);
    }

    /// <summary>Serializes the message into one new array (the only full-size allocation); seals the writer.</summary>
    public byte[] ToArray()
    {
        _sealed = true;
        long length = Length;
        if (length > Array.MaxLength)
            throw new InvalidOperationException($"The protobuf message is {length} bytes; protobuf and .NET arrays stop at 2 GB.");
        byte[] result = GC.AllocateUninitializedArray<byte>((int)length);
        int written = WriteTo(result);
        if (written != result.Length)
            throw new InvalidOperationException($"Protobuf serialization wrote {written} bytes instead of {result.Length}.");
        return result;
    }

    /// <summary>Little-endian bytes of <paramref name="data"/> (ONNX <c>raw_data</c> layout).</summary>
    public static byte[] LittleEndian(float[] data)
    {
        var bytes = new byte[checked(data.Length * sizeof(float))];
        if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        else
            for (int i = 0; i < data.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), data[i]);
        return bytes;
    }

    /// <inheritdoc cref="LittleEndian(float[])"/>
    public static byte[] LittleEndian(long[] data)
    {
        var bytes = new byte[checked(data.Length * sizeof(long))];
        if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        else
            for (int i = 0; i < data.Length; i++)
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * sizeof(long)), data[i]);
        return bytes;
    }

    /// <inheritdoc cref="LittleEndian(float[])"/>
    public static byte[] LittleEndian(int[] data)
    {
        var bytes = new byte[checked(data.Length * sizeof(int))];
        if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        else
            for (int i = 0; i < data.Length; i++)
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * sizeof(int)), data[i]);
        return bytes;
    }

    private void AddPart(int field, Part part)
    {
        if (part.Length > int.MaxValue)
            throw new InvalidOperationException($"A protobuf field of {part.Length} bytes is over the 2 GB limit.");
        Tag(field, WireLengthDelimited);
        Varint((uint)part.Length);
        (_parts ??= []).Add(part with { InlineOffset = _inlineLength });
        _partsLength += part.Length;
    }

    private int WriteTo(Span<byte> destination)
    {
        int position = 0, inlineStart = 0;
        if (_parts is not null)
        {
            foreach (Part part in _parts)
            {
                _inline.AsSpan(inlineStart, part.InlineOffset - inlineStart).CopyTo(destination[position..]);
                position += part.InlineOffset - inlineStart;
                inlineStart = part.InlineOffset;
                Span<byte> target = destination.Slice(position, (int)part.Length);
                if (part.Message is not null)
                {
                    int written = part.Message.WriteTo(target);
                    if (written != part.Length)
                        throw new InvalidOperationException($"An embedded protobuf message wrote {written} bytes instead of {part.Length}.");
                }
                else if (part.Length > 0)
                    part.Payload!.CopyTo(target);
                position += (int)part.Length;
            }
        }
        _inline.AsSpan(inlineStart, _inlineLength - inlineStart).CopyTo(destination[position..]);
        return position + _inlineLength - inlineStart;
    }

    private void Tag(int field, int wireType)
    {
        if (field is < 1 or > (1 << 29) - 1)
            throw new ArgumentOutOfRangeException(nameof(field), field, "Protobuf field numbers are 1 to 2^29 - 1.");
        Varint((uint)((field << 3) | wireType));
    }

    private void Varint(ulong value)
    {
        Span<byte> span = Reserve(VarintSize(value));
        int i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[i] = (byte)value;
    }

    private static int VarintSize(ulong value) => value == 0 ? 1 : (64 - System.Numerics.BitOperations.LeadingZeroCount(value) + 6) / 7;

    private Span<byte> Reserve(int count)
    {
        EnsureCapacity(count);
        Span<byte> span = _inline.AsSpan(_inlineLength, count);
        _inlineLength += count;
        return span;
    }

    private void ThrowIfSealed()
    {
        if (_sealed)
            throw new InvalidOperationException("This protobuf message was already embedded in another or serialized; it can no longer change.");
    }

    private void EnsureCapacity(long count)
    {
        ThrowIfSealed();
        long needed = _inlineLength + count;
        if (needed <= _inline.Length)
            return;
        if (needed > Array.MaxLength)
            throw new InvalidOperationException("A protobuf message cannot exceed 2 GB.");
        long capacity = Math.Max(needed, Math.Min(Math.Max(16L, 2L * _inline.Length), Array.MaxLength));
        Array.Resize(ref _inline, (int)capacity);
    }
}
