using TorchSharp.Modules;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Onnx;

/// <summary>Writing TorchSharp weights and layers into an <see cref="OnnxGraphBuilder"/>: shared by every model's export.</summary>
internal static class TorchOnnxExtensions
{
    /// <summary>
    /// Adds a tensor's values (as float32) as an initializer named <paramref name="name"/>.
    /// </summary>
    /// <remarks>
    /// No copy is taken here: a contiguous float32 CPU tensor (an embedding table, say) is read from its own memory when
    /// <see cref="OnnxGraphBuilder.Build"/> runs, straight into the model bytes, so its values must not be changed in
    /// place in between. Any other tensor (another dtype, another device, a transposed or sliced view) is converted
    /// once to a contiguous float32 CPU tensor that the builder holds until it is disposed. On a big-endian machine
    /// (not a target of the library) the values are copied to a little-endian array instead.
    /// </remarks>
    public static string AddWeights(this OnnxGraphBuilder graph, string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(tensor);
        long[] shape;
        Tensor data;
        using (NewDisposeScope())
        {
            // Each step makes a new handle (sharing memory when there is nothing to convert); the scope frees all but
            // the last, which the builder owns from here on.
            data = tensor.detach().to(float32).cpu().contiguous().DetachFromDisposeScope();
            shape = data.shape;
        }
        if (!BitConverter.IsLittleEndian)
        {
            using (data)
                return graph.AddInitializer(name, data.data<float>().ToArray(), shape);
        }
        return graph.AddInitializer(name, OnnxElementType.Float, data.numel(), shape, new TensorPayload(data));
    }

    /// <summary>y = x Wᵀ + b for a TorchSharp <see cref="Linear"/> layer (Wᵀ stored pre-transposed).</summary>
    public static string Linear(this OnnxGraphBuilder graph, string prefix, Linear layer, string x)
    {
        using var wt = layer.weight!.t();
        string y = graph.MatMul(x, graph.AddWeights(prefix + ".weight_t", wt));
        return layer.bias is null ? y : graph.Add(y, graph.AddWeights(prefix + ".bias", layer.bias));
    }

    /// <summary>Batch norm in inference mode (running statistics), folded into x·scale + shift.</summary>
    public static string BatchNorm(this OnnxGraphBuilder graph, string prefix, BatchNorm1d layer, string x)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
        var scale = layer.weight!.div(layer.running_var!.add(LiveScalars.Of(layer.eps), LiveScalars.One).sqrt());
        var shift = layer.bias!.sub(layer.running_mean!.mul(scale));
        return graph.Add(graph.Mul(x, graph.AddWeights(prefix + ".scale", scale)), graph.AddWeights(prefix + ".shift", shift));
    }

    /// <summary>
    /// Layer normalisation over the last axis with the layer's scale and shift (ONNX LayerNormalization), given the
    /// layer's ε, which TorchSharp's <see cref="LayerNorm"/> module does not expose.
    /// </summary>
    public static string LayerNorm(this OnnxGraphBuilder graph, string prefix, LayerNorm layer, string x, double epsilon) =>
        graph.LayerNormalization(x, graph.AddWeights(prefix + ".weight", layer.weight!), graph.AddWeights(prefix + ".bias", layer.bias!), -1, (float)epsilon);

    /// <summary>
    /// A feed-forward stack in inference mode: <see cref="Linear"/>, <see cref="BatchNorm1d"/>, <see cref="ReLU"/> and
    /// dropout (<see cref="Models.FastDropout"/> or TorchSharp's, the identity at inference) in the stack's order, as
    /// <see cref="Models.MlpStack.Create"/> builds them. Any other layer throws: a model must not export a graph that
    /// silently skips part of its network.
    /// </summary>
    public static string Sequential(this OnnxGraphBuilder graph, string prefix, Sequential stack, string x)
    {
        int index = 0;
        foreach (var layer in stack.children())
        {
            string name = $"{prefix}.{index++}";
            x = layer switch
            {
                Linear linear => graph.Linear(name, linear, x),
                BatchNorm1d norm => graph.BatchNorm(name, norm, x),
                ReLU => graph.Relu(x),
                Models.FastDropout or Dropout => x,
                _ => throw new NotSupportedException($"No ONNX exporter for layer {layer.GetType().Name} in '{prefix}'."),
            };
        }
        return x;
    }

    /// <summary>
    /// An <see cref="Training.EmbeddingTable"/>: its weights as an initializer named <paramref name="name"/>, and the rows of
    /// <paramref name="keys"/> (int64, any shape → [..., d], ONNX Gather, as <c>table.call(keys)</c>), or the whole table
    /// when <paramref name="keys"/> is null (as <see cref="Training.EmbeddingTable.AllRows"/>).
    /// </summary>
    public static string Embedding(this OnnxGraphBuilder graph, string name, Training.EmbeddingTable table, string? keys = null)
    {
        string weights = graph.AddWeights(name, table.Weight);
        return keys is null ? weights : graph.Gather(weights, keys);
    }

    /// <summary>
    /// The additive attention bias [N, 1, L, L] of causal self-attention over left-padded sequences: <paramref name="maskValue"/>
    /// (a large finite negative) where a query would look at a later position or a key is padding, 0 elsewhere.
    /// <paramref name="valid"/> is float [N, L], 1 at positions that hold an item.
    /// </summary>
    public static string CausalAttentionBias(this OnnxGraphBuilder graph, string name, string valid, long l, float maskValue)
    {
        var causal = new float[l * l];
        for (long i = 0; i < l; i++) for (long j = i + 1; j < l; j++) causal[i * l + j] = maskValue;
        string causalBias = graph.AddInitializer(name, causal, 1, 1, l, l);
        // (1 − valid) · maskValue = valid · (−maskValue) + maskValue.
        string padding = graph.Add(graph.Mul(valid, graph.ConstFloat(-maskValue)), graph.ConstFloat(maskValue));
        return graph.Add(causalBias, graph.Reshape(padding, new long[] { -1, 1, 1, l }));
    }

    /// <summary>
    /// Multi-head self-attention in inference mode over x [N, L, d]: softmax(Q Kᵀ / √(d/h) + bias) V per head, heads
    /// concatenated, then the output projection; <paramref name="bias"/> is additive, broadcastable to [N, h, L, L]
    /// (e.g. <see cref="CausalAttentionBias"/>). The layers are TorchSharp <see cref="Linear"/>s of d → d.
    /// </summary>
    public static string MultiHeadSelfAttention(this OnnxGraphBuilder graph, string prefix, Linear query, Linear key, Linear value, Linear output,
        int heads, string x, string bias, long l, long d)
    {
        long dh = d / heads;
        string Split(string t, long[] perm) => graph.Transpose(graph.Reshape(t, new long[] { -1, l, heads, dh }), perm);
        string q = Split(graph.Linear(prefix + ".query", query, x), new long[] { 0, 2, 1, 3 });  // [N, h, L, dh]
        string k = Split(graph.Linear(prefix + ".key", key, x), new long[] { 0, 2, 3, 1 });      // [N, h, dh, L]
        string v = Split(graph.Linear(prefix + ".value", value, x), new long[] { 0, 2, 1, 3 });  // [N, h, L, dh]
        string scores = graph.Add(graph.Mul(graph.MatMul(q, k), graph.ConstFloat((float)(1.0 / Math.Sqrt(dh)))), bias);
        string context = graph.Reshape(graph.Transpose(graph.MatMul(graph.Softmax(scores, -1), v), new long[] { 0, 2, 1, 3 }), new long[] { -1, l, d });
        return graph.Linear(prefix + ".output", output, context);
    }

    /// <summary>The point-wise feed-forward network of a Transformer block in inference mode: Linear → ReLU → Linear.</summary>
    public static string FeedForward(this OnnxGraphBuilder graph, string prefix, Linear inner, Linear outer, string x) =>
        graph.Linear(prefix + "_out", outer, graph.Relu(graph.Linear(prefix + "_in", inner, x)));

    /// <summary>
    /// A single-layer, unidirectional TorchSharp <see cref="GRU"/> with biases as an ONNX GRU node over time-major
    /// x [L, N, in] from a zero initial state; returns Y [L, 1, N, H] (every step) and Y_h [1, N, H] (the last step).
    /// TorchSharp's gate blocks (r, z, n) are reordered to ONNX's (z, r, h), the two biases concatenated (Wb, Rb), and
    /// linear_before_reset = 1 applies the reset gate after the recurrent product, as PyTorch's formula does.
    /// </summary>
    public static (string Y, string LastState) Gru(this OnnxGraphBuilder graph, string prefix, GRU gru, string x)
    {
        var p = gru.named_parameters().ToDictionary(t => t.name, t => t.parameter);
        string[] names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"];
        if (p.Count != names.Length || !names.All(p.ContainsKey))
            throw new NotSupportedException($"The ONNX exporter takes a single-layer, unidirectional GRU with biases; '{prefix}' has parameters [{string.Join(", ", p.Keys)}].");
        long h = p["weight_hh_l0"].shape[1];
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor Gates(Tensor t) => cat(new[] { t.narrow(0, h, h), t.narrow(0, 0, h), t.narrow(0, 2 * h, h) }, 0).unsqueeze(0);
        string w = graph.AddWeights(prefix + ".W", Gates(p["weight_ih_l0"]));
        string r = graph.AddWeights(prefix + ".R", Gates(p["weight_hh_l0"]));
        string b = graph.AddWeights(prefix + ".B", cat(new[] { Gates(p["bias_ih_l0"]), Gates(p["bias_hh_l0"]) }, 1));
        var outputs = graph.NodeMulti("GRU", [x, w, r, b], 2, [OnnxAttribute.Int("hidden_size", h), OnnxAttribute.Int("linear_before_reset", 1)]);
        return (outputs[0], outputs[1]);
    }

    /// <summary>The bytes of a contiguous CPU tensor (native byte order, little-endian on every supported machine), read when serialized.</summary>
    private sealed class TensorPayload(Tensor tensor) : ProtoPayload, IDisposable
    {
        private readonly long _length = tensor.numel() * tensor.ElementSize;

        public override long Length => _length;

        public override void CopyTo(Span<byte> destination)
        {
            ObjectDisposedException.ThrowIf(tensor.IsInvalid, this);
            tensor.bytes.CopyTo(destination);
        }

        public void Dispose() => tensor.Dispose();
    }
}
