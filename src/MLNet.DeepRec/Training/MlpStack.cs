using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// The feed-forward block every deep component shares (NFM's hidden layers, the deep parts of DeepFM, DCN-V2 and
/// Wide&amp;Deep): per width, Linear → [BatchNorm1d] → ReLU → dropout. Exported by
/// <see cref="Onnx.TorchOnnxExtensions.Sequential"/>.
/// </summary>
internal static class MlpStack
{
    /// <summary>
    /// Builds the stack from <paramref name="inputWidth"/> through <paramref name="widths"/>, with Glorot-uniform
    /// weights and zero biases (the NCF/NFM reference code's: with libtorch's default init narrow ReLU stacks often die
    /// while the loss first falls to the label prior). No widths gives an empty stack (the identity).
    /// </summary>
    public static Sequential Create(int inputWidth, IReadOnlyList<int> widths, bool batchNorm, double dropoutRate)
    {
        var layers = new List<nn.Module<Tensor, Tensor>>();
        int width = inputWidth;
        foreach (int size in widths)
        {
            layers.Add(GlorotLinear(width, size));
            if (batchNorm) layers.Add(nn.BatchNorm1d(size));
            layers.Add(nn.ReLU());
            layers.Add(new FastDropout(dropoutRate)); // also at rate 0: layer indices (state-dict names) do not depend on the rate
            width = size;
        }
        return nn.Sequential(layers);
    }

    /// <summary>Width of the output of <see cref="Create"/>.</summary>
    public static int OutputWidth(int inputWidth, IReadOnlyList<int> widths) => widths.Count == 0 ? inputWidth : widths[^1];

    /// <summary>A Linear layer with Glorot-uniform weights and zero bias.</summary>
    public static Linear GlorotLinear(int inputWidth, int outputWidth, bool hasBias = true)
    {
        var linear = nn.Linear(inputWidth, outputWidth, hasBias);
        using (no_grad())
        {
            nn.init.xavier_uniform_(linear.weight!);
            if (linear.bias is not null) nn.init.zeros_(linear.bias);
        }
        return linear;
    }
}
