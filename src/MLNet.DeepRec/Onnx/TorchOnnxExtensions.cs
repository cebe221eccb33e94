using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Onnx;

/// <summary>Writing TorchSharp weights and layers into an <see cref="OnnxGraphBuilder"/>: shared by every model's export.</summary>
internal static class TorchOnnxExtensions
{
    /// <summary>Adds a tensor's values (as float32, copied to the CPU) as an initializer named <paramref name="name"/>.</summary>
    public static string AddWeights(this OnnxGraphBuilder graph, string name, Tensor tensor)
    {
        using var c = tensor.detach().to(float32).cpu().contiguous();
        return graph.AddInitializer(name, c.data<float>().ToArray(), c.shape);
    }

    /// <summary>y = x Wᵀ + b for a TorchSharp <see cref="Linear"/> layer (Wᵀ stored pre-transposed).</summary>
    public static string Linear(this OnnxGraphBuilder graph, string prefix, Linear layer, string x)
    {
        using var wt = layer.weight!.t();
        string y = graph.MatMul(x, graph.AddWeights(prefix + ".weight_t", wt));
        return layer.bias is null ? y : graph.Add(y, graph.AddWeights(prefix + ".bias", layer.bias));
    }
}
