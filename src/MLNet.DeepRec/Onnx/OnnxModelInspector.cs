using Google.Protobuf;
using MLNet.DeepRec.Serving;

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
    /// <summary>
    /// Parses <paramref name="bytes"/> and checks the graph against <see cref="OnnxGraphPolicy"/> (the operators this
    /// library writes, consistent initializers, no oversized computed constants) and the memory ONNX Runtime would need;
    /// throws <see cref="InvalidDataException"/>, naming the field, when they are not a usable MLNet.DeepRec ONNX model.
    /// </summary>
    public static OnnxModelSummary Read(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length == 0)
            throw new InvalidDataException("The ONNX model is empty (0 bytes).");
        // These bytes, and ONNX Runtime's session holding the initializers once more: about twice the file.
        LoadLimits.CheckMemory(2L * bytes.Length, "The ONNX model", $"{bytes.Length:N0} bytes");
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
                    if (!OnnxGraphPolicy.Domains.Contains(domain))
                        throw new InvalidDataException($"The ONNX model imports the operator domain '{domain}' (ModelProto.opset_import); MLNet.DeepRec writes only the default and '{OnnxGraphBuilder.MlDomain}' domains.");
                    if (domain is "" or "ai.onnx")
                        opset = version;
                    break;
                }
                case 25:
                    throw new InvalidDataException("The ONNX model defines functions (ModelProto.functions), which MLNet.DeepRec never writes.");
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
        OnnxGraphPolicy.Check(graph.Nodes, graph.Initializers);
        return new OnnxModelSummary(irVersion, producer, producerVersion, opset, graph.Inputs, graph.Outputs, metadata,
            graph.Nodes.Count, graph.Initializers.Count);
    }

    private sealed record GraphSummary(List<OnnxValueSummary> Inputs, List<OnnxValueSummary> Outputs, List<OnnxNodeInfo> Nodes, List<OnnxInitializerInfo> Initializers);

    private static GraphSummary ReadGraph(ByteString bytes)
    {
        var inputs = new List<OnnxValueSummary>();
        var outputs = new List<OnnxValueSummary>();
        var initializers = new List<OnnxInitializerInfo>();
        var initializerNames = new HashSet<string>(StringComparer.Ordinal);
        var nodes = new List<OnnxNodeInfo>();
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1:
                    Expect(tag, WireFormat.WireType.LengthDelimited, "GraphProto.node");
                    if (nodes.Count == LoadLimits.MaxOnnxNodes)
                        throw new InvalidDataException($"The ONNX graph has more than {LoadLimits.MaxOnnxNodes} nodes (GraphProto.node).");
                    nodes.Add(ReadNode(input.ReadBytes(), nodes.Count));
                    break;
                case 5:
                {
                    Expect(tag, WireFormat.WireType.LengthDelimited, "GraphProto.initializer");
                    if (initializers.Count == LoadLimits.MaxOnnxNodes)
                        throw new InvalidDataException($"The ONNX graph has more than {LoadLimits.MaxOnnxNodes} initializers (GraphProto.initializer).");
                    var initializer = ReadInitializer(input.ReadBytes());
                    if (!initializerNames.Add(initializer.Name))
                        throw new InvalidDataException($"The ONNX graph has two initializers named '{initializer.Name}'.");
                    initializers.Add(initializer);
                    break;
                }
                case 11: Expect(tag, WireFormat.WireType.LengthDelimited, "GraphProto.input"); inputs.Add(ReadValueInfo(input.ReadBytes())); break;
                case 12: Expect(tag, WireFormat.WireType.LengthDelimited, "GraphProto.output"); outputs.Add(ReadValueInfo(input.ReadBytes())); break;
                case 15: throw new InvalidDataException("The ONNX graph has sparse initializers (GraphProto.sparse_initializer), which MLNet.DeepRec never writes.");
                default: input.SkipLastField(); break;
            }
        }
        // Before IR 4 initializers were listed among the inputs too; they are not inputs a caller feeds.
        inputs.RemoveAll(v => initializerNames.Contains(v.Name));
        return new GraphSummary(inputs, outputs, nodes, initializers);
    }

    private static OnnxNodeInfo ReadNode(ByteString bytes, int index)
    {
        var input = bytes.CreateCodedInput();
        string op = "", name = "", domain = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var ints = new Dictionary<string, long>(StringComparer.Ordinal);
        bool graphAttribute = false;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: Expect(tag, WireFormat.WireType.LengthDelimited, "NodeProto.input"); inputs.Add(input.ReadString()); break;
                case 2: Expect(tag, WireFormat.WireType.LengthDelimited, "NodeProto.output"); outputs.Add(input.ReadString()); break;
                case 3: Expect(tag, WireFormat.WireType.LengthDelimited, "NodeProto.name"); name = input.ReadString(); break;
                case 4: Expect(tag, WireFormat.WireType.LengthDelimited, "NodeProto.op_type"); op = input.ReadString(); break;
                case 5: Expect(tag, WireFormat.WireType.LengthDelimited, "NodeProto.attribute"); graphAttribute |= ReadAttribute(input.ReadBytes(), ints); break;
                case 7: Expect(tag, WireFormat.WireType.LengthDelimited, "NodeProto.domain"); domain = input.ReadString(); break;
                default: input.SkipLastField(); break;
            }
        }
        if (op.Length == 0)
            throw new InvalidDataException("An ONNX node has no op_type.");
        return new OnnxNodeInfo(name.Length > 0 ? name : $"#{index}", op, domain, inputs, outputs, ints, graphAttribute);
    }

    /// <summary>Records an int attribute (name → value) and says whether the attribute holds a subgraph.</summary>
    private static bool ReadAttribute(ByteString bytes, Dictionary<string, long> ints)
    {
        var input = bytes.CreateCodedInput();
        string name = "";
        long? value = null;
        bool graph = false;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: Expect(tag, WireFormat.WireType.LengthDelimited, "AttributeProto.name"); name = input.ReadString(); break;
                case 3: Expect(tag, WireFormat.WireType.Varint, "AttributeProto.i"); value = input.ReadInt64(); break;
                case 6 or 11: graph = true; input.SkipLastField(); break; // g, graphs
                default: input.SkipLastField(); break;
            }
        }
        if (value is long v) ints[name] = v;
        return graph;
    }

    /// <summary>
    /// Name, type and dims of an initializer, after checking that its data holds exactly the values its dims declare
    /// and lives in the file (no external data): ONNX Runtime allocates by the dims.
    /// </summary>
    private static OnnxInitializerInfo ReadInitializer(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string name = "";
        int dataType = 0;
        var dims = new List<long>();
        long typedValues = 0;
        ByteString? raw = null;
        List<long>? int64s = null;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            int field = WireFormat.GetTagFieldNumber(tag);
            var wire = WireFormat.GetTagWireType(tag);
            switch (field)
            {
                case 1: ReadInt64s(input, wire, dims, "TensorProto.dims"); break;
                case 2: Expect(tag, WireFormat.WireType.Varint, "TensorProto.data_type"); dataType = input.ReadInt32(); break;
                case 8: Expect(tag, WireFormat.WireType.LengthDelimited, "TensorProto.name"); name = input.ReadString(); break;
                case 9: Expect(tag, WireFormat.WireType.LengthDelimited, "TensorProto.raw_data"); raw = input.ReadBytes(); break;
                case 4: typedValues += CountValues(input, wire, 4); break;  // float_data (fixed32)
                case 5 or 11: typedValues += CountValues(input, wire, 0); break; // int32_data, uint64_data (varints)
                case 10: typedValues += CountValues(input, wire, 8); break; // double_data (fixed64)
                case 7:
                    int64s ??= [];
                    ReadInt64s(input, wire, int64s, "TensorProto.int64_data");
                    break;
                case 3 or 6 or 13:
                    throw new InvalidDataException($"ONNX initializer '{name}' has a TensorProto field ({field switch { 3 => "segment", 6 => "string_data", _ => "external_data" }}) that MLNet.DeepRec never writes.");
                case 14:
                    Expect(tag, WireFormat.WireType.Varint, "TensorProto.data_location");
                    if (input.ReadInt32() != 0)
                        throw new InvalidDataException($"ONNX initializer '{name}' keeps its data outside the model (TensorProto.data_location = EXTERNAL).");
                    break;
                default: input.SkipLastField(); break;
            }
        }
        string what = $"ONNX initializer '{name}'";
        if (dims.Count > LoadLimits.MaxOnnxRank)
            throw new InvalidDataException($"{what} has rank {dims.Count} (TensorProto.dims), more than {LoadLimits.MaxOnnxRank}.");
        long elements = 1;
        foreach (long d in dims)
        {
            if (d < 0)
                throw new InvalidDataException($"{what} has a negative dimension {d} (TensorProto.dims [{string.Join(",", dims)}]).");
            elements = d == 0 ? 0 : elements > long.MaxValue / d ? long.MaxValue : elements * d;
        }
        int size = dataType switch
        {
            1 or 6 or 12 => 4,        // float, int32, uint32
            2 or 3 or 9 => 1,         // uint8, int8, bool
            4 or 5 or 10 or 16 => 2,  // uint16, int16, float16, bfloat16
            7 or 11 or 13 => 8,       // int64, double, uint64
            _ => throw new InvalidDataException($"{what} has element type {dataType} (TensorProto.data_type), which MLNet.DeepRec never writes."),
        };
        long stored = raw is not null ? raw.Length / (long)size : typedValues + (int64s?.Count ?? 0);
        if (raw is not null && (raw.Length % size != 0 || typedValues + (int64s?.Count ?? 0) > 0) || stored != elements)
            throw new InvalidDataException($"{what} declares dims [{string.Join(",", dims)}] ({elements} values of {size} bytes) but its data holds " +
                $"{(raw is not null ? $"{raw.Length} bytes of raw_data" : $"{stored} values")}.");
        long[]? values = null;
        if (dataType == 7 && elements <= 64)
            values = raw is not null
                ? Enumerable.Range(0, (int)elements).Select(i => System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(raw.Span.Slice(i * 8, 8))).ToArray()
                : int64s?.ToArray() ?? [];
        return new OnnxInitializerInfo(name, dataType, dims.ToArray(), elements, values);
    }

    /// <summary>A repeated int64 field, packed or not.</summary>
    private static void ReadInt64s(CodedInputStream input, WireFormat.WireType wire, List<long> values, string field)
    {
        if (wire == WireFormat.WireType.Varint)
        {
            values.Add(input.ReadInt64());
            return;
        }
        if (wire != WireFormat.WireType.LengthDelimited)
            throw new InvalidDataException($"The ONNX model is corrupt: field {field} has wire type {wire}.");
        var packed = input.ReadBytes().CreateCodedInput();
        while (!packed.IsAtEnd) values.Add(packed.ReadInt64());
    }

    /// <summary>Number of values in one occurrence of a repeated numeric field: packed (fixed-size or varints) or one value.</summary>
    private static long CountValues(CodedInputStream input, WireFormat.WireType wire, int fixedSize)
    {
        if (wire != WireFormat.WireType.LengthDelimited)
        {
            input.SkipLastField();
            return 1;
        }
        var packed = input.ReadBytes();
        if (fixedSize > 0) return packed.Length / fixedSize;
        long count = 0;
        foreach (byte b in packed.Span) if (b < 0x80) count++;
        return count;
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
        if (dims is not null)
        {
            // ML.NET makes each input and output a vector column of the non-batch dims: an int-sized length.
            if (dims.Count > LoadLimits.MaxOnnxRank)
                throw new InvalidDataException($"ONNX graph value '{name}' has rank {dims.Count} (ValueInfoProto.type), more than {LoadLimits.MaxOnnxRank}.");
            long row = 1;
            foreach (long d in dims.Skip(1).Where(d => d > 0))
                if ((row *= Math.Min(d, int.MaxValue + 1L)) > int.MaxValue)
                    throw new InvalidDataException($"ONNX graph value '{name}' declares the shape [{string.Join(",", dims)}] (ValueInfoProto.type), more than {int.MaxValue} values per row.");
        }
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
