using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;

namespace MLNet.DeepRec.Onnx;

/// <summary>
/// A tiny protobuf message writer over <see cref="CodedOutputStream"/>: each call writes one field (tag + payload).
/// Sub-messages are written into their own <see cref="ProtoWriter"/> and embedded as length-delimited bytes.
/// </summary>
internal sealed class ProtoWriter
{
    private readonly MemoryStream _buffer = new();
    private readonly CodedOutputStream _out;

    public ProtoWriter() => _out = new CodedOutputStream(_buffer, leaveOpen: true);

    public void Int64(int field, long value)
    {
        _out.WriteTag(field, WireFormat.WireType.Varint);
        _out.WriteInt64(value);
    }

    public void Int32(int field, int value)
    {
        _out.WriteTag(field, WireFormat.WireType.Varint);
        _out.WriteInt32(value);
    }

    public void Float(int field, float value)
    {
        _out.WriteTag(field, WireFormat.WireType.Fixed32);
        _out.WriteFloat(value);
    }

    public void String(int field, string value)
    {
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteString(value);
    }

    public void Bytes(int field, byte[] value)
    {
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteBytes(UnsafeByteOperations.UnsafeWrap(value));
    }

    public void Message(int field, ProtoWriter message) => Bytes(field, message.ToArray());

    /// <summary>Writes a repeated int64 field in packed encoding (accepted by every proto2/proto3 parser).</summary>
    public void PackedInt64(int field, IReadOnlyList<long> values)
    {
        if (values.Count == 0)
            return;
        int size = 0;
        foreach (long v in values)
            size += CodedOutputStream.ComputeInt64Size(v);
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteLength(size);
        foreach (long v in values)
            _out.WriteInt64(v);
    }

    /// <summary>Writes a repeated float field in packed encoding.</summary>
    public void PackedFloat(int field, IReadOnlyList<float> values)
    {
        if (values.Count == 0)
            return;
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteLength(values.Count * sizeof(float));
        foreach (float v in values)
            _out.WriteFloat(v);
    }

    public byte[] ToArray()
    {
        _out.Flush();
        return _buffer.ToArray();
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
}
