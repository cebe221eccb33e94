using System.Text;
using Google.Protobuf;
using Microsoft.ML;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Tests.Serving;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Onnx;

/// <summary>
/// The protobuf writer and the model export for large weights: byte-for-byte the same serialization as the simple
/// stream-per-message writer they replaced (kept below as the reference), with the weights copied once, not several times.
/// </summary>
[TestFixture]
public class LargeModelExportTests
{
    // ---- the writer against the reference ----

    [Test]
    public void ProtoWriter_RandomNestedMessages_MatchReferenceWriterBytes()
    {
        var rng = new Random(12345);
        for (int round = 0; round < 200; round++)
        {
            var (actual, expected) = RandomMessage(rng, depth: 0);
            byte[] bytes = actual.ToArray();
            Assert.That(bytes, Is.EqualTo(expected.ToArray()), $"round {round}");
            Assert.That(actual.Length, Is.EqualTo(bytes.Length));
        }
    }

    [Test]
    public void ProtoWriter_MultiMegabytePayloadNestedThreeDeep_MatchesReferenceWriterBytes()
    {
        // 3 MiB needs a 4-byte length varint at every level; the same child embedded twice is written twice.
        var payload = new byte[3 * 1024 * 1024 + 17];
        new Random(3).NextBytes(payload);
        var (leaf, leafRef) = (new ProtoWriter(), new ReferenceProtoWriter());
        leaf.String(8, "weights"); leafRef.String(8, "weights");
        leaf.Payload(9, ProtoPayload.Wrap(payload)); leafRef.Bytes(9, payload);
        leaf.Int32(2, 1); leafRef.Int32(2, 1);
        var (mid, midRef) = (new ProtoWriter(), new ReferenceProtoWriter());
        mid.Message(5, leaf); midRef.Message(5, leafRef);
        mid.String(2, "graph"); midRef.String(2, "graph");
        mid.Message(5, leaf); midRef.Message(5, leafRef);
        var (top, topRef) = (new ProtoWriter(), new ReferenceProtoWriter());
        top.Int64(1, 8); topRef.Int64(1, 8);
        top.Message(7, mid); topRef.Message(7, midRef);

        byte[] bytes = top.ToArray();
        Assert.That(bytes, Is.EqualTo(topRef.ToArray()));
        Assert.That(bytes.Length, Is.GreaterThan(2 * payload.Length));
    }

    [Test]
    public void ProtoWriter_EmbeddedWriter_IsSealed()
    {
        var child = new ProtoWriter();
        child.Int64(1, 1);
        var parent = new ProtoWriter();
        parent.Message(1, child);
        Assert.Throws<InvalidOperationException>(() => child.Int64(2, 2));
        Assert.Throws<InvalidOperationException>(() => parent.Message(2, parent)); // a message cannot contain itself
        parent.Message(2, child); // a sealed writer can be embedded again
        Assert.That(parent.ToArray(), Is.EqualTo(new byte[] { 0x0A, 2, 0x08, 1, 0x12, 2, 0x08, 1 }));
        Assert.Throws<InvalidOperationException>(() => parent.Int64(3, 3));
    }

    // ---- the whole model against the reference ----

    [Test]
    public void Build_GraphWithInitializersAttributesAndMlDomain_MatchesReferenceSerialization()
    {
        using var emb = randn(50, 3, generator: new TorchSharp.torch.Generator(7));
        using var dbl = randn(3, 4, dtype: float64, generator: new TorchSharp.torch.Generator(8));
        using var bias = zeros(4).requires_grad_(true);
        var spec = new GraphSpec("reference");
        var g = new OnnxGraphBuilder("reference");

        string x = g.AddInput("x", OnnxElementType.Float, -1, 3);
        spec.Inputs.Add(("x", OnnxElementType.Float, [-1, 3]));
        string ids = g.AddInput("ids", OnnxElementType.Int64, -1, 2);
        spec.Inputs.Add(("ids", OnnxElementType.Int64, [-1, 2]));

        spec.Initializers.Add(("emb", OnnxElementType.Float, [50, 3], LittleEndianOf(emb.data<float>().ToArray())));
        string embName = g.AddWeights("emb", emb);
        using (var wt = dbl.t())
        {
            spec.Initializers.Add(("w_t", OnnxElementType.Float, [4, 3], LittleEndianOf(wt.to(float32).contiguous().data<float>().ToArray())));
            g.AddWeights("w_t", wt);
        }
        spec.Initializers.Add(("bias", OnnxElementType.Float, [4], LittleEndianOf(new float[4])));
        g.AddWeights("bias", bias);
        float[] f = [1.5f, float.NaN, -0f, float.PositiveInfinity];
        spec.Initializers.Add(("f", OnnxElementType.Float, [2, 2], LittleEndianOf(f)));
        g.AddInitializer("f", f, 2, 2);
        long[] l = [-1, long.MaxValue, 0];
        spec.Initializers.Add(("l", OnnxElementType.Int64, [3], LittleEndianOf(l)));
        g.AddInitializer("l", l, 3);
        int[] i32 = [-5, int.MinValue];
        spec.Initializers.Add(("i", OnnxElementType.Int32, [2], LittleEndianOf(i32)));
        g.AddInitializer("i", i32, 2);
        spec.Initializers.Add(("scalar", OnnxElementType.Float, [], LittleEndianOf(new[] { 0.5f })));
        g.AddInitializer("scalar", [0.5f]);

        long[] keys = [3, 9, 1L << 40], values = [1, 2, 3];
        string mapped = g.LabelEncoder(ids, keys, values, 0);
        spec.Nodes.Add(new("LabelEncoder", [ids], [mapped], "ai.onnx.ml",
            [OnnxAttribute.Ints("keys_int64s", keys), OnnxAttribute.Ints("values_int64s", values), OnnxAttribute.Int("default_int64", 0)]));
        string gathered = g.Gather(embName, mapped);
        spec.Nodes.Add(new("Gather", [embName, mapped], [gathered], "", [OnnxAttribute.Int("axis", 0)]));
        string mean = g.ReduceMean(gathered, [1], keepDims: false);
        spec.Nodes.Add(new("ReduceMean", [gathered], [mean], "", [OnnxAttribute.Ints("axes", [1]), OnnxAttribute.Int("keepdims", 0)]));
        string gemm = g.Gemm(mean, "w_t", "bias", transB: true, alpha: 0.5f);
        spec.Nodes.Add(new("Gemm", [mean, "w_t", "bias"], [gemm], "",
            [OnnxAttribute.Float("alpha", 0.5f), OnnxAttribute.Float("beta", 1f), OnnxAttribute.Int("transB", 1)]));
        OnnxAttribute[] odd = [OnnxAttribute.Floats("scales", [0.25f, -2f]), OnnxAttribute.String("mode", "nearest ü"), OnnxAttribute.Int("neg", -7)];
        string[] two = g.NodeMulti("Custom", [x, "", "f"], 2, odd, ["first", "second"]);
        spec.Nodes.Add(new("Custom", [x, "", "f"], two, "", odd));
        string score = g.Node("Add", [gemm, "first"], outputName: "Score");
        spec.Nodes.Add(new("Add", [gemm, "first"], [score], "", []));

        g.AddOutput("Score", OnnxElementType.Float, -1, -1);
        spec.Outputs.Add(("Score", OnnxElementType.Float, [-1, -1]));
        g.AddOutput("second", OnnxElementType.Bool, -1, 4, 1);
        spec.Outputs.Add(("second", OnnxElementType.Bool, [-1, 4, 1]));

        var metadata = new Dictionary<string, string> { ["deeprec.model_kind"] = "Test", ["ключ"] = "значение ∑" };
        byte[] expected = spec.Serialize(metadata, "doc string");

        byte[] built = g.Build(metadata, "doc string");
        Assert.That(built, Is.EqualTo(expected));
        Assert.That(g.Build(metadata, "doc string"), Is.EqualTo(expected), "Build is repeatable");
        Assert.That(g.Build(), Is.EqualTo(spec.Serialize(null, null)));
        g.Dispose();
    }

    // ---- memory ----

    [Test]
    public void Build_LargeWeight_IsCopiedOnceIntoTheModelBytes()
    {
        const int rows = 16_384, dim = 256; // 16 MiB of float32
        const long weightBytes = (long)rows * dim * sizeof(float);
        using var table = rand(rows, dim, generator: new TorchSharp.torch.Generator(1));
        using var g = new OnnxGraphBuilder("big");
        string ids = g.AddInput("ids", OnnxElementType.Int64, -1);

        long start = GC.GetAllocatedBytesForCurrentThread();
        string weights = g.AddWeights("table", table);
        long afterAdd = GC.GetAllocatedBytesForCurrentThread();
        g.AddOutput(g.Gather(weights, ids), OnnxElementType.Float, -1, dim);
        byte[] model = g.Build();
        long afterBuild = GC.GetAllocatedBytesForCurrentThread();

        Assert.That(model.Length, Is.GreaterThan(weightBytes));
        Assert.That(afterAdd - start, Is.LessThan(64 * 1024), "AddWeights must not copy the tensor to managed memory");
        Assert.That(afterBuild - afterAdd, Is.LessThan(weightBytes + 1024 * 1024), "Build must allocate the model bytes once");

        var output = OrtTestRunner.Run(model, ("ids", new long[] { 0, rows - 1, 12_345 }, [3]))["Gather_0"];
        float[] all = table.data<float>().ToArray();
        float[] expected = [.. all.AsSpan(0, dim), .. all.AsSpan((rows - 1) * dim, dim), .. all.AsSpan(12_345 * dim, dim)];
        Assert.That(output.Floats, Is.EqualTo(expected));
    }

    [Test]
    public void AddWeights_ContiguousFloatCpuTensorIsReadAtBuild_ConvertedTensorsAtAdd()
    {
        using var direct = ones(4);
        using var wide = ones(4, dtype: float64);
        using var g = new OnnxGraphBuilder("aliasing");
        g.AddWeights("direct", direct);
        g.AddWeights("wide", wide);
        g.AddOutput("direct", OnnxElementType.Float, 4);
        g.AddOutput("wide", OnnxElementType.Float, 4);
        using (no_grad())
        {
            direct.fill_(2); // no copy was taken: the model gets the values the tensor has when Build runs
            wide.fill_(2);   // converted to float32 when added: that copy is what the model gets
        }
        var outputs = OrtTestRunner.Run(g.Build());
        Assert.That(outputs["direct"].Floats, Is.EqualTo(new[] { 2f, 2f, 2f, 2f }));
        Assert.That(outputs["wide"].Floats, Is.EqualTo(new[] { 1f, 1f, 1f, 1f }));
    }

    [Test]
    public void Dispose_ReleasesHeldTensors_ThenBuildThrows()
    {
        using var t = ones(3);
        var g = new OnnxGraphBuilder("disposed");
        g.AddWeights("t", t);
        g.AddOutput("t", OnnxElementType.Float, 3);
        Assert.That(g.Build(), Is.Not.Empty);
        g.Dispose();
        Assert.Throws<ObjectDisposedException>(() => g.Build());
        Assert.Throws<ObjectDisposedException>(() => g.AddWeights("u", t));
        Assert.That(t.data<float>().ToArray(), Is.EqualTo(new[] { 1f, 1f, 1f }), "the caller's tensor is untouched");
    }

    [Test]
    public void TransformerBase_TakesBuiltModelWithoutCopy_CopiesCallerArrays()
    {
        float[] users = [.. Enumerable.Range(0, 3 * DotProductTestTransformer.Dim).Select(v => v * 0.1f)];
        float[] items = [.. Enumerable.Range(0, 4 * DotProductTestTransformer.Dim).Select(v => 1 - v * 0.05f)];
        byte[] built = DotProductTestTransformer.BuildGraph(users, items, DeepRecScoreKind.Regression);
        byte[] original = (byte[])built.Clone();
        Assert.That(OnnxGraphBuilder.TakeBuiltModel(original), Is.False, "a copy was not built");

        var ml = new MLContext(1);
        using (var taken = new BytesTransformer(ml, built))
        {
            Assert.That(OnnxGraphBuilder.TakeBuiltModel(built), Is.False, "the transformer took it");
            Assert.That(taken.OnnxModel, Is.EqualTo(original));
        }

        byte[] callers = (byte[])original.Clone();
        using var copied = new BytesTransformer(ml, callers);
        Array.Clear(callers);
        Assert.That(copied.OnnxModel, Is.EqualTo(original), "a caller's array is copied");
        string path = Path.Combine(Path.GetTempPath(), $"deeprec-large-{Guid.NewGuid():N}.onnx");
        try
        {
            copied.ExportOnnx(path);
            Assert.That(File.ReadAllBytes(path), Is.EqualTo(original));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class BytesTransformer(MLContext ml, byte[] model)
        : DeepRecTransformerBase(ml, model, new Dictionary<string, string> { ["UserId"] = "UserId", ["ItemId"] = "ItemId" },
            DeepRecScoreKind.Regression, null);

    // ---- random messages for the writer comparison ----

    private static (ProtoWriter Actual, ReferenceProtoWriter Expected) RandomMessage(Random rng, int depth)
    {
        var actual = new ProtoWriter();
        var expected = new ReferenceProtoWriter();
        int count = rng.Next(0, depth == 0 ? 25 : 10);
        for (int n = 0; n < count; n++)
        {
            int field = rng.Next(10) == 0 ? rng.Next(1, (1 << 29) - 1) : rng.Next(1, 20);
            switch (rng.Next(depth < 3 ? 10 : 8))
            {
                case 0:
                {
                    long v = RandomLong(rng);
                    actual.Int64(field, v); expected.Int64(field, v);
                    break;
                }
                case 1:
                {
                    int v = (int)RandomLong(rng);
                    actual.Int32(field, v); expected.Int32(field, v);
                    break;
                }
                case 2:
                {
                    float v = rng.Next(6) switch { 0 => float.NaN, 1 => -0f, 2 => float.NegativeInfinity, _ => (float)(rng.NextDouble() * 2e6 - 1e6) };
                    actual.Float(field, v); expected.Float(field, v);
                    break;
                }
                case 3:
                {
                    string v = RandomString(rng);
                    actual.String(field, v); expected.String(field, v);
                    break;
                }
                case 4:
                {
                    var v = new byte[rng.Next(0, 300)];
                    rng.NextBytes(v);
                    actual.Bytes(field, v); expected.Bytes(field, v);
                    break;
                }
                case 5:
                {
                    long[] v = [.. Enumerable.Range(0, rng.Next(0, 20)).Select(_ => RandomLong(rng))];
                    actual.PackedInt64(field, v); expected.PackedInt64(field, v);
                    break;
                }
                case 6:
                {
                    float[] v = [.. Enumerable.Range(0, rng.Next(0, 20)).Select(_ => (float)rng.NextDouble())];
                    actual.PackedFloat(field, v); expected.PackedFloat(field, v);
                    break;
                }
                case 7:
                {
                    var v = new byte[rng.Next(20) == 0 ? 70_000 : rng.Next(0, 5000)];
                    rng.NextBytes(v);
                    actual.Payload(field, ProtoPayload.Wrap(v)); expected.Bytes(field, v);
                    break;
                }
                default:
                {
                    var (child, childRef) = RandomMessage(rng, depth + 1);
                    actual.Message(field, child); expected.Message(field, childRef);
                    if (rng.Next(4) == 0)
                    {
                        actual.Message(field + 1, child); expected.Message(field + 1, childRef);
                    }
                    break;
                }
            }
        }
        return (actual, expected);
    }

    private static long RandomLong(Random rng) => rng.Next(6) switch
    {
        0 => 0,
        1 => long.MinValue,
        2 => long.MaxValue,
        3 => -rng.NextInt64(1, 1000),
        4 => rng.NextInt64(),
        _ => rng.NextInt64(0, 1L << (rng.Next(1, 63))),
    };

    private static string RandomString(Random rng)
    {
        string[] pieces = ["", "a", "Gather_12", "ü", "∑", "日本", "\U0001F600", "\uD800", "x\uDC00y", "\0"];
        var sb = new StringBuilder();
        int n = rng.Next(0, 6);
        for (int i = 0; i < n; i++)
            sb.Append(pieces[rng.Next(pieces.Length)]);
        if (rng.Next(10) == 0)
            sb.Append('z', rng.Next(100, 300)); // two-byte length
        return sb.ToString();
    }

    private static byte[] LittleEndianOf<T>(T[] values) where T : unmanaged
    {
        Assume.That(BitConverter.IsLittleEndian, Is.True);
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
    }

    /// <summary>
    /// The ModelProto layout of <see cref="OnnxGraphBuilder.Build"/>, written field by field with
    /// <see cref="ReferenceProtoWriter"/> from a plain description of the graph.
    /// </summary>
    private sealed class GraphSpec(string name)
    {
        public sealed record NodeSpec(string OpType, string[] Inputs, string[] Outputs, string Domain, OnnxAttribute[] Attributes);

        public List<(string Name, OnnxElementType Type, long[] Dims)> Inputs { get; } = [];
        public List<(string Name, OnnxElementType Type, long[] Dims)> Outputs { get; } = [];
        public List<(string Name, OnnxElementType Type, long[] Dims, byte[] Raw)> Initializers { get; } = [];
        public List<NodeSpec> Nodes { get; } = [];

        public byte[] Serialize(IReadOnlyDictionary<string, string>? metadata, string? doc)
        {
            var graph = new ReferenceProtoWriter();
            for (int id = 0; id < Nodes.Count; id++)
            {
                NodeSpec n = Nodes[id];
                var node = new ReferenceProtoWriter();
                foreach (string input in n.Inputs) node.String(1, input);
                foreach (string output in n.Outputs) node.String(2, output);
                node.String(3, $"{n.OpType}_{id}");
                node.String(4, n.OpType);
                foreach (OnnxAttribute a in n.Attributes) node.Message(5, Attribute(a));
                if (n.Domain.Length > 0) node.String(7, n.Domain);
                graph.Message(1, node);
            }
            graph.String(2, name);
            foreach (var (tensorName, type, dims, raw) in Initializers)
            {
                var tensor = new ReferenceProtoWriter();
                tensor.PackedInt64(1, dims);
                tensor.Int32(2, (int)type);
                tensor.String(8, tensorName);
                tensor.Bytes(9, raw);
                graph.Message(5, tensor);
            }
            foreach (var v in Inputs) graph.Message(11, ValueInfo(v.Name, v.Type, v.Dims));
            foreach (var v in Outputs) graph.Message(12, ValueInfo(v.Name, v.Type, v.Dims));

            var model = new ReferenceProtoWriter();
            model.Int64(1, OnnxGraphBuilder.IrVersion);
            model.String(2, OnnxGraphBuilder.ProducerName);
            model.String(3, OnnxGraphBuilder.ProducerVersionString);
            if (!string.IsNullOrEmpty(doc)) model.String(6, doc);
            model.Message(7, graph);
            var opset = new ReferenceProtoWriter();
            opset.Int64(2, OnnxGraphBuilder.OpsetVersion);
            model.Message(8, opset);
            if (Nodes.Any(n => n.Domain == OnnxGraphBuilder.MlDomain))
            {
                var ml = new ReferenceProtoWriter();
                ml.String(1, OnnxGraphBuilder.MlDomain);
                ml.Int64(2, OnnxGraphBuilder.MlOpsetVersion);
                model.Message(8, ml);
            }
            foreach (var entry in metadata ?? new Dictionary<string, string>())
            {
                var kv = new ReferenceProtoWriter();
                kv.String(1, entry.Key);
                kv.String(2, entry.Value);
                model.Message(14, kv);
            }
            return model.ToArray();
        }

        private static ReferenceProtoWriter Attribute(OnnxAttribute a)
        {
            var w = new ReferenceProtoWriter();
            w.String(1, a.Name);
            switch (a.Type)
            {
                case OnnxAttribute.TypeFloat: w.Float(2, a.FloatValue); break;
                case OnnxAttribute.TypeInt: w.Int64(3, a.IntValue); break;
                case OnnxAttribute.TypeString: w.Bytes(4, Encoding.UTF8.GetBytes(a.StringValue!)); break;
                case OnnxAttribute.TypeFloats: w.PackedFloat(7, a.FloatValues!); break;
                case OnnxAttribute.TypeInts: w.PackedInt64(8, a.IntValues!); break;
            }
            w.Int32(20, a.Type);
            return w;
        }

        private static ReferenceProtoWriter ValueInfo(string name, OnnxElementType type, long[] dims)
        {
            var shape = new ReferenceProtoWriter();
            for (int i = 0; i < dims.Length; i++)
            {
                var dim = new ReferenceProtoWriter();
                if (dims[i] > 0) dim.Int64(1, dims[i]);
                else dim.String(2, i == 0 ? "batch" : $"{name}_d{i}");
                shape.Message(1, dim);
            }
            var tensorType = new ReferenceProtoWriter();
            tensorType.Int32(1, (int)type);
            tensorType.Message(2, shape);
            var typeProto = new ReferenceProtoWriter();
            typeProto.Message(1, tensorType);
            var valueInfo = new ReferenceProtoWriter();
            valueInfo.String(1, name);
            valueInfo.Message(2, typeProto);
            return valueInfo;
        }
    }

    /// <summary>
    /// The writer <see cref="ProtoWriter"/> replaced, kept as the reference serialization: every message is a
    /// Google.Protobuf <see cref="CodedOutputStream"/> over its own stream, embedded as a copy of its bytes.
    /// </summary>
    private sealed class ReferenceProtoWriter
    {
        private readonly MemoryStream _buffer = new();
        private readonly CodedOutputStream _out;

        public ReferenceProtoWriter() => _out = new CodedOutputStream(_buffer, leaveOpen: true);

        public void Int64(int field, long value) { _out.WriteTag(field, WireFormat.WireType.Varint); _out.WriteInt64(value); }
        public void Int32(int field, int value) { _out.WriteTag(field, WireFormat.WireType.Varint); _out.WriteInt32(value); }
        public void Float(int field, float value) { _out.WriteTag(field, WireFormat.WireType.Fixed32); _out.WriteFloat(value); }
        public void String(int field, string value) { _out.WriteTag(field, WireFormat.WireType.LengthDelimited); _out.WriteString(value); }

        public void Bytes(int field, byte[] value)
        {
            _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
            _out.WriteBytes(UnsafeByteOperations.UnsafeWrap(value));
        }

        public void Message(int field, ReferenceProtoWriter message) => Bytes(field, message.ToArray());

        public void PackedInt64(int field, IReadOnlyList<long> values)
        {
            if (values.Count == 0) return;
            int size = values.Sum(CodedOutputStream.ComputeInt64Size);
            _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
            _out.WriteLength(size);
            foreach (long v in values) _out.WriteInt64(v);
        }

        public void PackedFloat(int field, IReadOnlyList<float> values)
        {
            if (values.Count == 0) return;
            _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
            _out.WriteLength(values.Count * sizeof(float));
            foreach (float v in values) _out.WriteFloat(v);
        }

        public byte[] ToArray()
        {
            _out.Flush();
            return _buffer.ToArray();
        }
    }
}
