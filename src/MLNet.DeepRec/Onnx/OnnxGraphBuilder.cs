using System.Globalization;
using System.Reflection;

namespace MLNet.DeepRec.Onnx;

/// <summary>
/// Builds an ONNX model (IR version 8, default-domain opset 17) node by node and serializes it to <c>ModelProto</c>
/// bytes with our own protobuf writer. Names are checked as the graph grows: every node input must already exist
/// (graph input, initializer or earlier node output), and names are unique.
/// </summary>
/// <remarks>
/// Symbolic dimensions: a <c>-1</c> in <c>dims</c> becomes <c>dim_param</c> <c>"batch"</c> at position 0 (shared by
/// all inputs and outputs, so ONNX Runtime knows they agree) and <c>"{tensor}_d{i}"</c> elsewhere (unique per tensor,
/// so unrelated variable axes are never claimed equal).
/// <para>
/// Memory: initializer bytes are not copied into intermediate buffers. Array initializers are converted once to their
/// little-endian bytes; tensor weights (<see cref="TorchOnnxExtensions.AddWeights"/>) are read from the tensor's own
/// memory when <see cref="Build"/> runs. <see cref="Build"/> then allocates the model bytes once, so exporting weights
/// of S bytes needs about S bytes more. <see cref="Dispose"/> releases the tensors held for that (otherwise their
/// finalizers do).
/// </para>
/// </remarks>
internal sealed class OnnxGraphBuilder : IDisposable
{
    /// <summary>ONNX IR version written (IR 8 = ONNX 1.10+).</summary>
    public const long IrVersion = 8;

    /// <summary>Default-domain opset written (17: LayerNormalization).</summary>
    public const long OpsetVersion = 17;

    /// <summary>The ONNX-ML domain (LabelEncoder) and the opset of it written when a graph uses it (2: int64 → int64).</summary>
    public const string MlDomain = "ai.onnx.ml";

    /// <summary>Opset of <see cref="MlDomain"/> imported by graphs that use it.</summary>
    public const long MlOpsetVersion = 2;

    /// <summary>Producer name written into every model.</summary>
    public const string ProducerName = "MLNet.DeepRec";

    private readonly string _graphName;
    private readonly List<ProtoWriter> _nodes = [];
    private readonly List<ProtoWriter> _initializers = [];
    private readonly List<ProtoWriter> _inputs = [];
    private readonly List<ProtoWriter> _outputs = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);
    private readonly List<IDisposable> _ownedPayloads = [];
    private int _counter;
    private bool _usesMlDomain;
    private bool _disposed;

    /// <summary>Model arrays returned by <see cref="Build"/> that no one has taken yet (see <see cref="TakeBuiltModel"/>).</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<byte[], object> BuiltModels = new();
    private static readonly object BuiltMark = new();

    /// <summary>Starts an empty graph called <paramref name="graphName"/>.</summary>
    public OnnxGraphBuilder(string graphName)
    {
        ArgumentException.ThrowIfNullOrEmpty(graphName);
        _graphName = graphName;
    }

    /// <summary>Number of nodes added so far.</summary>
    public int NodeCount => _nodes.Count;

    /// <summary>Declares a graph input. A positive dim is fixed, -1 is symbolic. Returns <paramref name="name"/>.</summary>
    public string AddInput(string name, OnnxElementType type, params long[] dims)
    {
        Claim(name);
        _inputs.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Declares a graph output; <paramref name="name"/> must be produced by a node, an input or an initializer.</summary>
    public void AddOutput(string name, OnnxElementType type, params long[] dims)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_names.Contains(name))
            throw new InvalidOperationException($"Graph output '{name}' is not produced by any node, input or initializer.");
        _outputs.Add(ValueInfo(name, type, dims));
    }

    /// <summary>Adds a float initializer (stored as little-endian <c>raw_data</c>). Returns its name.</summary>
    public string AddInitializer(string name, float[] data, params long[] dims) =>
        AddTensor(name, OnnxElementType.Float, data.Length, dims, ProtoPayload.Wrap(ProtoWriter.LittleEndian(data)));

    /// <summary>Adds an int64 initializer. Returns its name.</summary>
    public string AddInitializer(string name, long[] data, params long[] dims) =>
        AddTensor(name, OnnxElementType.Int64, data.Length, dims, ProtoPayload.Wrap(ProtoWriter.LittleEndian(data)));

    /// <summary>Adds an int32 initializer. Returns its name.</summary>
    public string AddInitializer(string name, int[] data, params long[] dims) =>
        AddTensor(name, OnnxElementType.Int32, data.Length, dims, ProtoPayload.Wrap(ProtoWriter.LittleEndian(data)));

    /// <summary>
    /// Adds an initializer of <paramref name="count"/> values whose little-endian <c>raw_data</c> (count × element size
    /// bytes) <paramref name="rawData"/> supplies when the model is built. A payload that is <see cref="IDisposable"/>
    /// belongs to this builder from now on (released by <see cref="Dispose"/>, also when this call throws). Returns the name.
    /// </summary>
    internal string AddInitializer(string name, OnnxElementType type, long count, long[] dims, ProtoPayload rawData)
    {
        ArgumentNullException.ThrowIfNull(rawData);
        if (rawData is IDisposable owned)
        {
            if (_disposed)
            {
                owned.Dispose();
                ObjectDisposedException.ThrowIf(true, this);
            }
            _ownedPayloads.Add(owned);
        }
        return AddTensor(name, type, count, dims, rawData);
    }

    /// <summary>Adds a node with one output; returns the output name (generated unless <paramref name="outputName"/> is given).</summary>
    public string Node(string opType, string[] inputs, OnnxAttribute[]? attributes = null, string? outputName = null) =>
        NodeMulti(opType, inputs, 1, attributes, outputName is null ? null : [outputName])[0];

    /// <summary>Adds a node with <paramref name="outputCount"/> outputs; returns their names.</summary>
    public string[] NodeMulti(string opType, string[] inputs, int outputCount, OnnxAttribute[]? attributes = null, string[]? outputNames = null) =>
        NodeInDomain("", opType, inputs, outputCount, attributes, outputNames);

    /// <summary>
    /// Maps int64 keys through a table (ONNX-ML <c>LabelEncoder</c>): <paramref name="keys"/>[j] → <paramref name="values"/>[j],
    /// any other value → <paramref name="defaultValue"/>. A hash table in the runtime, sized by the table, not by the
    /// key range.
    /// </summary>
    public string LabelEncoder(string input, long[] keys, long[] values, long defaultValue)
    {
        if (keys.Length != values.Length || keys.Length == 0) throw new ArgumentException("LabelEncoder needs as many values as keys, at least one.");
        return NodeInDomain(MlDomain, "LabelEncoder", [input], 1,
            [OnnxAttribute.Ints("keys_int64s", keys), OnnxAttribute.Ints("values_int64s", values), OnnxAttribute.Int("default_int64", defaultValue)], null)[0];
    }

    private string[] NodeInDomain(string domain, string opType, string[] inputs, int outputCount, OnnxAttribute[]? attributes, string[]? outputNames)
    {
        ArgumentException.ThrowIfNullOrEmpty(opType);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputCount, 1);
        if (outputNames is not null && outputNames.Length != outputCount)
            throw new ArgumentException($"{outputNames.Length} output names given for {outputCount} outputs.", nameof(outputNames));
        foreach (string input in inputs)
        {
            // An empty name is ONNX's "optional input not given".
            if (input is null || (input.Length > 0 && !_names.Contains(input)))
                throw new InvalidOperationException($"Input '{input}' of {opType} is not a graph input, initializer or earlier node output.");
        }

        int id = _counter++;
        var outputs = new string[outputCount];
        for (int i = 0; i < outputCount; i++)
        {
            outputs[i] = outputNames?[i] ?? Unique($"{opType}_{id}" + (outputCount > 1 ? $"_out{i}" : ""));
            Claim(outputs[i]);
        }

        // NodeProto: input=1, output=2, name=3, op_type=4, attribute=5.
        var node = new ProtoWriter();
        foreach (string input in inputs)
            node.String(1, input);
        foreach (string output in outputs)
            node.String(2, output);
        node.String(3, $"{opType}_{id}");
        node.String(4, opType);
        foreach (OnnxAttribute attribute in attributes ?? [])
            node.Message(5, attribute.Serialize());
        if (domain.Length > 0)
        {
            node.String(7, domain); // NodeProto.domain
            _usesMlDomain |= domain == MlDomain;
        }
        _nodes.Add(node);
        return outputs;
    }

    // ---- constants ----

    /// <summary>An int64 constant (initializer, shared by equal requests) of shape <paramref name="dims"/>.</summary>
    public string ConstInt64(long[] values, params long[] dims)
    {
        string key = "i64|" + string.Join(',', values) + "|" + string.Join(',', dims);
        if (!_constants.TryGetValue(key, out string? name))
        {
            name = AddInitializer(Unique("const_i64"), values, dims);
            _constants[key] = name;
        }
        return name;
    }

    /// <summary>A 1-D int64 constant (shapes, axes, starts/ends).</summary>
    public string ConstInt64Vector(params long[] values) => ConstInt64(values, values.Length);

    /// <summary>A rank-0 float constant.</summary>
    public string ConstFloat(float value)
    {
        string key = "f32|" + value.ToString("R", CultureInfo.InvariantCulture);
        if (!_constants.TryGetValue(key, out string? name))
        {
            name = AddInitializer(Unique("const_f32"), [value]);
            _constants[key] = name;
        }
        return name;
    }

    // ---- convenience wrappers (opset 17 semantics) ----

    public string Gather(string data, string indices, long axis = 0) => Node("Gather", [data, indices], [OnnxAttribute.Int("axis", axis)]);
    public string MatMul(string a, string b) => Node("MatMul", [a, b]);

    public string Gemm(string a, string b, string? c = null, bool transB = false, float alpha = 1f, float beta = 1f)
    {
        var attributes = new List<OnnxAttribute> { OnnxAttribute.Float("alpha", alpha), OnnxAttribute.Float("beta", beta) };
        if (transB)
            attributes.Add(OnnxAttribute.Int("transB", 1));
        return Node("Gemm", c is null ? [a, b] : [a, b, c], [.. attributes]);
    }

    public string Add(string a, string b) => Node("Add", [a, b]);
    public string Sub(string a, string b) => Node("Sub", [a, b]);
    public string Mul(string a, string b) => Node("Mul", [a, b]);
    public string Div(string a, string b) => Node("Div", [a, b]);
    public string Relu(string x) => Node("Relu", [x]);
    public string Sigmoid(string x) => Node("Sigmoid", [x]);
    public string Tanh(string x) => Node("Tanh", [x]);
    public string Exp(string x) => Node("Exp", [x]);
    public string Neg(string x) => Node("Neg", [x]);
    public string Identity(string x, string? outputName = null) => Node("Identity", [x], outputName: outputName);
    public string Concat(long axis, params string[] inputs) => Node("Concat", inputs, [OnnxAttribute.Int("axis", axis)]);
    public string Cast(string input, OnnxElementType to) => Node("Cast", [input], [OnnxAttribute.Int("to", (long)to)]);

    /// <summary>ReduceSum (opset 13+: axes is an int64 input).</summary>
    public string ReduceSum(string input, long[] axes, bool keepDims) =>
        Node("ReduceSum", [input, ConstInt64Vector(axes)], [OnnxAttribute.Int("keepdims", keepDims ? 1 : 0)]);

    /// <summary>ReduceMean (opset 17 still takes axes as an attribute; the input form starts at opset 18).</summary>
    public string ReduceMean(string input, long[] axes, bool keepDims) =>
        Node("ReduceMean", [input], [OnnxAttribute.Ints("axes", axes), OnnxAttribute.Int("keepdims", keepDims ? 1 : 0)]);

    public string Reshape(string input, long[] shape) => Node("Reshape", [input, ConstInt64Vector(shape)]);
    public string Unsqueeze(string input, long[] axes) => Node("Unsqueeze", [input, ConstInt64Vector(axes)]);
    public string Squeeze(string input, long[] axes) => Node("Squeeze", [input, ConstInt64Vector(axes)]);
    public string Softmax(string input, long axis = -1) => Node("Softmax", [input], [OnnxAttribute.Int("axis", axis)]);
    public string Transpose(string input, long[] perm) => Node("Transpose", [input], [OnnxAttribute.Ints("perm", perm)]);

    /// <summary>TopK along <paramref name="axis"/>; returns (values, int64 indices), sorted.</summary>
    public (string Values, string Indices) TopK(string input, long k, long axis = -1, bool largest = true)
    {
        string[] outputs = NodeMulti("TopK", [input, ConstInt64Vector(k)], 2,
            [OnnxAttribute.Int("axis", axis), OnnxAttribute.Int("largest", largest ? 1 : 0), OnnxAttribute.Int("sorted", 1)]);
        return (outputs[0], outputs[1]);
    }

    public string Where(string condition, string x, string y) => Node("Where", [condition, x, y]);
    public string Equal(string a, string b) => Node("Equal", [a, b]);
    public string Greater(string a, string b) => Node("Greater", [a, b]);
    public string Less(string a, string b) => Node("Less", [a, b]);
    public string Not(string x) => Node("Not", [x]);
    public string And(string a, string b) => Node("And", [a, b]);

    /// <summary>Slice (opset 10+: starts/ends/axes/steps are int64 inputs).</summary>
    public string Slice(string input, long[] starts, long[] ends, long[]? axes = null, long[]? steps = null)
    {
        var inputs = new List<string> { input, ConstInt64Vector(starts), ConstInt64Vector(ends) };
        if (axes is not null || steps is not null)
            inputs.Add(axes is null ? "" : ConstInt64Vector(axes));
        if (steps is not null)
            inputs.Add(ConstInt64Vector(steps));
        return Node("Slice", [.. inputs]);
    }

    /// <summary>LayerNormalization (opset 17) over the axes from <paramref name="axis"/> to the last.</summary>
    public string LayerNormalization(string x, string scale, string bias, long axis = -1, float epsilon = 1e-5f) =>
        Node("LayerNormalization", [x, scale, bias], [OnnxAttribute.Int("axis", axis), OnnxAttribute.Float("epsilon", epsilon)]);

    // ---- serialization ----

    /// <summary>Serializes the model: <c>ModelProto</c> bytes with producer "MLNet.DeepRec" and the assembly version.</summary>
    /// <remarks>
    /// The model bytes are written straight into the returned array, which is new and belongs to the caller; a
    /// <see cref="Serving.DeepRecTransformerBase"/> given it takes it without a copy (<see cref="TakeBuiltModel"/>), so
    /// it must not be changed afterwards. Can be called more than once, until <see cref="Dispose"/>.
    /// </remarks>
    public byte[] Build(IReadOnlyDictionary<string, string>? metadata = null, string? docString = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_outputs.Count == 0)
            throw new InvalidOperationException("The graph has no output.");

        // GraphProto: node=1, name=2, initializer=5, doc_string=10, input=11, output=12.
        var graph = new ProtoWriter();
        foreach (ProtoWriter node in _nodes)
            graph.Message(1, node);
        graph.String(2, _graphName);
        foreach (ProtoWriter initializer in _initializers)
            graph.Message(5, initializer);
        foreach (ProtoWriter input in _inputs)
            graph.Message(11, input);
        foreach (ProtoWriter output in _outputs)
            graph.Message(12, output);

        // ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7, opset_import=8, metadata_props=14.
        var model = new ProtoWriter();
        model.Int64(1, IrVersion);
        model.String(2, ProducerName);
        model.String(3, ProducerVersionString);
        if (!string.IsNullOrEmpty(docString))
            model.String(6, docString);
        model.Message(7, graph);
        var opset = new ProtoWriter(); // OperatorSetIdProto: domain=1 (empty = default), version=2.
        opset.Int64(2, OpsetVersion);
        model.Message(8, opset);
        if (_usesMlDomain)
        {
            var ml = new ProtoWriter();
            ml.String(1, MlDomain);
            ml.Int64(2, MlOpsetVersion);
            model.Message(8, ml);
        }
        foreach (KeyValuePair<string, string> entry in metadata ?? new Dictionary<string, string>())
        {
            var kv = new ProtoWriter(); // StringStringEntryProto: key=1, value=2.
            kv.String(1, entry.Key);
            kv.String(2, entry.Value);
            model.Message(14, kv);
        }
        byte[] bytes = model.ToArray();
        BuiltModels.AddOrUpdate(bytes, BuiltMark);
        return bytes;
    }

    /// <summary>
    /// True, once, for an array that <see cref="Build"/> returned: no one else has held it, so the caller may keep it
    /// without a defensive copy (the library's own model arrays are never changed after <see cref="Build"/>). False for
    /// any other array, and for a built one that was already taken.
    /// </summary>
    internal static bool TakeBuiltModel(byte[] model) => model is not null && BuiltModels.Remove(model);

    /// <summary>Releases the tensors held for initializers (<see cref="TorchOnnxExtensions.AddWeights"/>); <see cref="Build"/> then throws.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (IDisposable payload in _ownedPayloads)
            payload.Dispose();
        _ownedPayloads.Clear();
    }

    internal static string ProducerVersionString =>
        typeof(OnnxGraphBuilder).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(OnnxGraphBuilder).Assembly.GetName().Version?.ToString()
        ?? "0.0.0";

    private string AddTensor(string name, OnnxElementType type, long count, long[] dims, ProtoPayload raw)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(dims);
        long expected = 1;
        foreach (long d in dims)
        {
            if (d < 0)
                throw new ArgumentException($"Initializer '{name}' has a negative dimension.", nameof(dims));
            expected *= d;
        }
        if (expected != count)
            throw new ArgumentException($"Initializer '{name}' has {count} values but dims [{string.Join(',', dims)}] need {expected}.", nameof(dims));
        long elementSize = type switch
        {
            OnnxElementType.Int64 => sizeof(long),
            OnnxElementType.Bool => sizeof(bool),
            _ => sizeof(float), // Float, Int32, UInt32
        };
        if (raw.Length != count * elementSize)
            throw new ArgumentException($"Initializer '{name}' has {count} {type} values, which take {count * elementSize} bytes, but its data has {raw.Length}.", nameof(raw));
        Claim(name);

        // TensorProto: dims=1, data_type=2, name=8, raw_data=9.
        var tensor = new ProtoWriter();
        tensor.PackedInt64(1, dims);
        tensor.Int32(2, (int)type);
        tensor.String(8, name);
        tensor.Payload(9, raw);
        _initializers.Add(tensor);
        return name;
    }

    private static ProtoWriter ValueInfo(string name, OnnxElementType type, long[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        // TensorShapeProto.Dimension: dim_value=1, dim_param=2.
        var shape = new ProtoWriter();
        for (int i = 0; i < dims.Length; i++)
        {
            var dim = new ProtoWriter();
            if (dims[i] > 0)
                dim.Int64(1, dims[i]);
            else if (dims[i] == -1)
                dim.String(2, i == 0 ? "batch" : $"{name}_d{i}");
            else
                throw new ArgumentException($"Dimension {i} of '{name}' is {dims[i]}: use a positive size or -1.", nameof(dims));
            shape.Message(1, dim);
        }

        // TypeProto.Tensor: elem_type=1, shape=2; TypeProto: tensor_type=1; ValueInfoProto: name=1, type=2.
        var tensorType = new ProtoWriter();
        tensorType.Int32(1, (int)type);
        tensorType.Message(2, shape);
        var typeProto = new ProtoWriter();
        typeProto.Message(1, tensorType);
        var valueInfo = new ProtoWriter();
        valueInfo.String(1, name);
        valueInfo.Message(2, typeProto);
        return valueInfo;
    }

    private void Claim(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_names.Add(name))
            throw new ArgumentException($"The name '{name}' is already used in graph '{_graphName}'.", nameof(name));
    }

    private string Unique(string stem)
    {
        string name = stem;
        for (int i = 1; _names.Contains(name); i++)
            name = $"{stem}_{i}";
        return name;
    }
}
