using TorchSharp.Modules;
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
        using var scale = layer.weight! / (layer.running_var! + layer.eps).sqrt();
        using var shift = layer.bias! - layer.running_mean! * scale;
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
