using MLNet.DeepRec.Serving;

namespace MLNet.DeepRec.Onnx;

/// <summary>One node of a parsed graph: what <see cref="OnnxGraphPolicy"/> needs of it.</summary>
internal sealed record OnnxNodeInfo(string Name, string OpType, string Domain, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs,
    IReadOnlyDictionary<string, long> IntAttributes, bool HasGraphAttribute);

/// <summary>One initializer of a parsed graph: element type, dims, and the values of a small int64 one (a shape).</summary>
internal sealed record OnnxInitializerInfo(string Name, int DataType, long[] Dims, long Elements, long[]? Int64Values);

/// <summary>
/// What an ONNX graph that MLNet.DeepRec loads may contain: the operators this library's exporters emit through
/// <see cref="OnnxGraphBuilder"/> (and nothing that makes ONNX Runtime read other files or run subgraphs), and no
/// computation on constants — at session creation (constant folding) or per call — that produces more values than the
/// model's own weights. A 7 KB graph with a <c>ConstantOfShape</c> of 2^30 floats otherwise loads and then spends
/// 4 GB and seconds on every prediction. Checked on the parsed protobuf, before ONNX Runtime sees the bytes.
/// </summary>
internal static class OnnxGraphPolicy
{
    /// <summary>
    /// Default-domain operators written by this library (every <c>OnnxGraphBuilder.Node</c>/<c>NodeMulti</c> op type and
    /// convenience wrapper in src/; <c>OnnxGraphPolicyTests</c> checks the exported models against it). Deliberately
    /// absent: Constant, ConstantOfShape, Tile, Range, Resize, Pad, If, Loop, Scan — shape-producing or control-flow
    /// operators whose output size a small file can make arbitrary.
    /// </summary>
    internal static readonly IReadOnlySet<string> DefaultDomainOperators = new HashSet<string>(StringComparer.Ordinal)
    {
        "Abs", "Add", "And", "Cast", "Clip", "Concat", "Div", "Equal", "Exp", "Expand", "Gather", "GatherElements", "Gemm",
        "Greater", "GRU", "Identity", "IsNaN", "LayerNormalization", "Less", "MatMul", "Mul", "Neg", "Not", "ReduceMax", "ReduceMean",
        "ReduceSum", "Relu", "Reshape", "ScatterElements", "Shape", "Sigmoid", "Slice", "Softmax", "Squeeze", "Sub",
        "Tanh", "TopK", "Transpose", "Unsqueeze", "Where",
    };

    /// <summary>ONNX-ML operators written by this library (<see cref="OnnxGraphBuilder.LabelEncoder"/>).</summary>
    internal static readonly IReadOnlySet<string> MlDomainOperators = new HashSet<string>(StringComparer.Ordinal) { "LabelEncoder" };

    /// <summary>Operator domains a graph may import and use.</summary>
    internal static readonly IReadOnlySet<string> Domains = new HashSet<string>(StringComparer.Ordinal) { "", "ai.onnx", OnnxGraphBuilder.MlDomain };

    private static readonly HashSet<string> Broadcasting = new(StringComparer.Ordinal) { "Add", "Sub", "Mul", "Div", "Equal", "Greater", "Less", "And", "Where" };
    private static readonly HashSet<string> ShapePreserving = new(StringComparer.Ordinal)
        { "Abs", "Cast", "Clip", "Exp", "Identity", "IsNaN", "LayerNormalization", "Neg", "Not", "Relu", "Sigmoid", "Softmax", "Tanh" };

    /// <summary>What is known of a value computed from constants only: its exact shape when the operator makes that
    /// easy, and always an upper bound on its number of values.</summary>
    private sealed record Constant(long[]? Shape, long Elements, long[]? Int64Values);

    /// <summary>Throws <see cref="InvalidDataException"/>, naming the node or initializer, when the graph breaks the policy.</summary>
    public static void Check(IReadOnlyList<OnnxNodeInfo> nodes, IReadOnlyList<OnnxInitializerInfo> initializers)
    {
        var constants = new Dictionary<string, Constant>(StringComparer.Ordinal);
        long weights = 0;
        foreach (var init in initializers)
        {
            weights = Saturating((Int128)weights + init.Elements);
            constants[init.Name] = new Constant(init.Dims, init.Elements, init.Int64Values);
        }
        long limit = Math.Max(LoadLimits.MinComputedConstantElements, weights);

        foreach (var node in nodes)
        {
            string where = $"The ONNX graph's node '{node.Name}' ({node.OpType})";
            var allowed = node.Domain switch
            {
                "" or "ai.onnx" => DefaultDomainOperators,
                OnnxGraphBuilder.MlDomain => MlDomainOperators,
                _ => throw new InvalidDataException($"{where} is in the operator domain '{node.Domain}'; MLNet.DeepRec writes only the default and '{OnnxGraphBuilder.MlDomain}' domains."),
            };
            if (!allowed.Contains(node.OpType))
                throw new InvalidDataException($"{where}: op_type '{node.OpType}' is not an operator MLNet.DeepRec writes, so this graph was not exported by it (allowed: {string.Join(", ", allowed.Order(StringComparer.Ordinal))}).");
            if (node.HasGraphAttribute)
                throw new InvalidDataException($"{where} has a subgraph attribute, which MLNet.DeepRec never writes.");

            if (node.OpType == "Expand" && node.Inputs.Count > 1 && constants.TryGetValue(node.Inputs[1], out var target))
            {
                // The target shape of an Expand on per-row data: the only shape this library writes as a constant.
                if (target.Int64Values is not long[] shape)
                    throw new InvalidDataException($"{where} expands to a shape computed from constants; MLNet.DeepRec writes it as an int64 initializer or takes it from a Shape.");
                long size = shape.Aggregate(1L, (a, d) => Saturating((Int128)a * Math.Max(d, 1)));
                if (shape.Any(d => d < 0) || size > limit)
                    throw new InvalidDataException($"{where} expands to the constant shape [{string.Join(",", shape)}] ({size} values per row), beyond the model's own size ({limit} values).");
            }

            var inputs = node.Inputs.Where(i => i.Length > 0).ToList();
            if (inputs.Count == 0 || !inputs.All(constants.ContainsKey))
                continue;
            var computed = Fold(node, inputs.Select(i => constants[i]).ToList(), where);
            if (computed.Elements > limit)
                throw new InvalidDataException($"{where} computes a constant of {computed.Elements} values from constants, beyond the model's own size ({limit} values).");
            foreach (string output in node.Outputs.Where(o => o.Length > 0))
                constants[output] = computed;
        }
    }

    /// <summary>The size of a node's output when every input is a constant (ONNX Runtime folds these at load time).</summary>
    private static Constant Fold(OnnxNodeInfo node, List<Constant> inputs, string where)
    {
        long product = inputs.Aggregate(1L, (a, c) => Saturating((Int128)a * Math.Max(c.Elements, 1)));
        long sum = inputs.Aggregate(0L, (a, c) => Saturating((Int128)a + c.Elements));
        bool exact = inputs.All(c => c.Shape is not null);
        switch (node.OpType)
        {
            case var op when Broadcasting.Contains(op):
                if (!exact) return new Constant(null, product, null);
                var shape = inputs.Select(c => c.Shape!).Aggregate((a, b) => Broadcast(a, b, where));
                return new Constant(shape, Elements(shape), null);
            case var op when ShapePreserving.Contains(op):
                return inputs[0] with { Int64Values = null };
            case "Expand":
                if (inputs.Count == 2 && exact && inputs[1].Int64Values is long[] to)
                {
                    var expanded = Broadcast(inputs[0].Shape!, to, where);
                    return new Constant(expanded, Elements(expanded), null);
                }
                return new Constant(null, product, null);
            case "MatMul" or "Gemm" when exact && inputs[0].Shape!.Length == 2 && inputs[1].Shape!.Length == 2:
            {
                bool transA = node.IntAttributes.GetValueOrDefault("transA") != 0 && node.OpType == "Gemm";
                bool transB = node.IntAttributes.GetValueOrDefault("transB") != 0 && node.OpType == "Gemm";
                long rows = inputs[0].Shape![transA ? 1 : 0], columns = inputs[1].Shape![transB ? 0 : 1];
                long[] result = [rows, columns];
                return new Constant(result, Elements(result), null);
            }
            case "MatMul" or "Gemm":
                return new Constant(null, product, null);
            case "Gather":
                // indices × the rest of a row of data: at most their product.
                return new Constant(null, product, null);
            default:
                // Concat, Reshape, Slice, Transpose, Squeeze, Unsqueeze, Reduce*, TopK, Shape, GatherElements,
                // ScatterElements, LabelEncoder: no output larger than all the inputs together.
                return new Constant(null, sum, null);
        }
    }

    private static long[] Broadcast(long[] a, long[] b, string where)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            long x = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            long y = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (x != y && x != 1 && y != 1)
                throw new InvalidDataException($"{where} combines constants of shapes [{string.Join(",", a)}] and [{string.Join(",", b)}], which do not broadcast.");
            result[i] = Math.Max(x, y);
        }
        return result;
    }

    private static long Elements(long[] shape) => shape.Aggregate(1L, (a, d) => Saturating((Int128)a * Math.Max(d, 0)));

    /// <summary>Products and sums of file-given sizes, clamped instead of wrapping around.</summary>
    private static long Saturating(Int128 value) => value > long.MaxValue ? long.MaxValue : (long)value;
}
