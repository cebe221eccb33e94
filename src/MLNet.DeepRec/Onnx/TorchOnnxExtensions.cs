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
