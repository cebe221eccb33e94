using Google.Protobuf;

namespace MLNet.DeepRec.Onnx;

/// <summary>Name, element type and shape of a graph input or output (-1 for a symbolic or unknown dimension).</summary>
internal sealed record OnnxValueSummary(string Name, OnnxElementType ElementType, IReadOnlyList<long> Dims)
{
    /// <summary>False when the value carries no shape at all (rank unknown).</summary>
    public bool HasShape { get; init; } = true;
}

/// <summary>What <see cref="OnnxModelInspector.Read"/> found in a <c>ModelProto</c>.</summary>
internal sealed record OnnxModelSummary(
    long IrVersion,
    string ProducerName,
    string ProducerVersion,
    long OpsetVersion,
    IReadOnlyList<OnnxValueSummary> Inputs,
    IReadOnlyList<OnnxValueSummary> Outputs,
    IReadOnlyDictionary<string, string> Metadata,
    int NodeCount,
    int InitializerCount)
{
    /// <summary>Graph input names, in declaration order (initializers excluded when the writer did not list them).</summary>
    public IReadOnlyList<string> InputNames => Inputs.Select(v => v.Name).ToArray();

    /// <summary>Graph output names, in declaration order.</summary>
    public IReadOnlyList<string> OutputNames => Outputs.Select(v => v.Name).ToArray();
}

/// <summary>
/// Reads back the essentials of ONNX <c>ModelProto</c> bytes with <see cref="CodedInputStream"/>, so that a bad file is
/// rejected with a clear message before ONNX Runtime sees it.
/// </summary>
internal static class OnnxModelInspector
{
    /// <summary>Parses <paramref name="bytes"/>; throws <see cref="InvalidDataException"/> when they are not a usable ONNX model.</summary>
    public static OnnxModelSummary Read(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length == 0)
            throw new InvalidDataException("The ONNX model is empty (0 bytes).");
        try
        {
            return ReadModel(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"The ONNX model ({bytes.Length} bytes) is truncated or corrupt: {e.Message}", e);
        }
    }

    private static OnnxModelSummary ReadModel(byte[] bytes)
    {
        long irVersion = 0, opset = -1;
        string producer = "", producerVersion = "";
        GraphSummary? graph = null;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);

        var input = new CodedInputStream(bytes);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: Expect(tag, WireFormat.WireType.Varint, "ModelProto.ir_version"); irVersion = input.ReadInt64(); break;
                case 2: Expect(tag, WireFormat.WireType.LengthDelimited, "ModelProto.producer_name"); producer = input.ReadString(); break;
                case 3: Expect(tag, WireFormat.WireType.LengthDelimited, "ModelProto.producer_version"); producerVersion = input.ReadString(); break;
                case 7:
                    Expect(tag, WireFormat.WireType.LengthDelimited, "ModelProto.graph");
                    if (graph is not null)
                        throw new InvalidDataException("The ONNX model holds more than one graph field.");
                    graph = ReadGraph(input.ReadBytes());
                    break;
                case 8:
                {
                    Expect(tag, WireFormat.WireType.LengthDelimited, "ModelProto.opset_import");
                    (string domain, long version) = ReadOpset(input.ReadBytes());
                    if (domain is "" or "ai.onnx")
                        opset = version;
                    break;
                }
                case 14:
                {
                    Expect(tag, WireFormat.WireType.LengthDelimited, "ModelProto.metadata_props");
                    (string key, string value) = ReadEntry(input.ReadBytes());
                    metadata[key] = value;
                    break;
                }
                default: input.SkipLastField(); break;
            }
        }

        if (irVersion <= 0)
            throw new InvalidDataException("The ONNX model has no ir_version: the bytes are not an ONNX ModelProto.");
        if (graph is null)
            throw new InvalidDataException("The ONNX model has no graph.");
        if (opset < 0)
            throw new InvalidDataException("The ONNX model imports no default-domain opset.");
        if (graph.Outputs.Count == 0)
            throw new InvalidDataException("The ONNX graph declares no output.");
        return new OnnxModelSummary(irVersion, producer, producerVersion, opset, graph.Inputs, graph.Outputs, metadata,
            graph.NodeCount, graph.InitializerNames.Count);
    }

    private sealed record GraphSummary(List<OnnxValueSummary> Inputs, List<OnnxValueSummary> Outputs, int NodeCount, HashSet<string> InitializerNames);

    private static GraphSummary ReadGraph(ByteString bytes)
    {
        var inputs = new List<OnnxValueSummary>();
        var outputs = new List<OnnxValueSummary>();
        var initializers = new HashSet<string>(StringComparer.Ordinal);
        int nodes = 0;
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: Expect(tag, WireFormat.WireType.LengthDelimited, "GraphProto.node"); ValidateNode(input.ReadBytes()); nodes++; break;
                case 5: Expect(tag, WireFormat.WireType.LengthDelimited, "GraphProto.initializer"); initializers.Add(ReadTensorName(input.ReadBytes())); break;
                case 11: Expect(tag, WireFormat.WireType.LengthDelimited, "GraphProto.input"); inputs.Add(ReadValueInfo(input.ReadBytes())); break;
                case 12: Expect(tag, WireFormat.WireType.LengthDelimited, "GraphProto.output"); outputs.Add(ReadValueInfo(input.ReadBytes())); break;
                default: input.SkipLastField(); break;
            }
        }
        // Before IR 4 initializers were listed among the inputs too; they are not inputs a caller feeds.
        inputs.RemoveAll(v => initializers.Contains(v.Name));
        return new GraphSummary(inputs, outputs, nodes, initializers);
    }

    private static void ValidateNode(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        bool hasOp = false;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 4)
            {
                Expect(tag, WireFormat.WireType.LengthDelimited, "NodeProto.op_type");
                hasOp = input.ReadString().Length > 0;
            }
            else
                input.SkipLastField();
        }
        if (!hasOp)
            throw new InvalidDataException("An ONNX node has no op_type.");
    }

    private static string ReadTensorName(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string name = "";
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 8)
            {
                Expect(tag, WireFormat.WireType.LengthDelimited, "TensorProto.name");
                name = input.ReadString();
            }
            else
                input.SkipLastField();
        }
        return name;
    }

    private static OnnxValueSummary ReadValueInfo(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string name = "";
        int elemType = 0;
        List<long>? dims = null;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: Expect(tag, WireFormat.WireType.LengthDelimited, "ValueInfoProto.name"); name = input.ReadString(); break;
                case 2: Expect(tag, WireFormat.WireType.LengthDelimited, "ValueInfoProto.type"); ReadType(input.ReadBytes(), ref elemType, ref dims); break;
                default: input.SkipLastField(); break;
            }
        }
        if (name.Length == 0)
            throw new InvalidDataException("An ONNX graph input or output has no name.");
        return new OnnxValueSummary(name, (OnnxElementType)elemType, (IReadOnlyList<long>?)dims ?? []) { HasShape = dims is not null };
    }

    private static void ReadType(ByteString bytes, ref int elemType, ref List<long>? dims)
    {
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) != 1) // tensor_type; sequences and maps are not ours
            {
                input.SkipLastField();
                continue;
            }
            Expect(tag, WireFormat.WireType.LengthDelimited, "TypeProto.tensor_type");
            var tensor = input.ReadBytes().CreateCodedInput();
            uint t;
            while ((t = tensor.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(t))
                {
                    case 1: Expect(t, WireFormat.WireType.Varint, "TypeProto.Tensor.elem_type"); elemType = tensor.ReadInt32(); break;
                    case 2: Expect(t, WireFormat.WireType.LengthDelimited, "TypeProto.Tensor.shape"); dims = ReadShape(tensor.ReadBytes()); break;
                    default: tensor.SkipLastField(); break;
                }
            }
        }
    }

    private static List<long> ReadShape(ByteString bytes)
    {
        var dims = new List<long>();
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) != 1)
            {
                input.SkipLastField();
                continue;
            }
            Expect(tag, WireFormat.WireType.LengthDelimited, "TensorShapeProto.dim");
            var dim = input.ReadBytes().CreateCodedInput();
            long value = -1;
            uint t;
            while ((t = dim.ReadTag()) != 0)
            {
                if (WireFormat.GetTagFieldNumber(t) == 1)
                {
                    Expect(t, WireFormat.WireType.Varint, "Dimension.dim_value");
                    value = dim.ReadInt64();
                }
                else
                    dim.SkipLastField();
            }
            dims.Add(value > 0 ? value : -1);
        }
        return dims;
    }

    private static (string Domain, long Version) ReadOpset(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string domain = "";
        long version = 0;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: Expect(tag, WireFormat.WireType.LengthDelimited, "OperatorSetIdProto.domain"); domain = input.ReadString(); break;
                case 2: Expect(tag, WireFormat.WireType.Varint, "OperatorSetIdProto.version"); version = input.ReadInt64(); break;
                default: input.SkipLastField(); break;
            }
        }
        return (domain, version);
    }

    private static (string Key, string Value) ReadEntry(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string key = "", value = "";
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: Expect(tag, WireFormat.WireType.LengthDelimited, "StringStringEntryProto.key"); key = input.ReadString(); break;
                case 2: Expect(tag, WireFormat.WireType.LengthDelimited, "StringStringEntryProto.value"); value = input.ReadString(); break;
                default: input.SkipLastField(); break;
            }
        }
        return (key, value);
    }

    private static void Expect(uint tag, WireFormat.WireType expected, string field)
    {
        if (WireFormat.GetTagWireType(tag) != expected)
            throw new InvalidDataException($"The ONNX model is corrupt: field {field} has wire type {WireFormat.GetTagWireType(tag)}, expected {expected}.");
    }
}
