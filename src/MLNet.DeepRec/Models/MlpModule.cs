using MLNet.DeepRec.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// NCF's Multi-Layer Perceptron (He et al. 2017, §3.3): logit = hᵀ MLP([p_u; q_i]). The first layer width is twice the
/// embedding size; ReLU between layers (the paper's tower, e.g. 64 → 32 → 16 → 8).
/// </summary>
internal sealed class MlpModule : CollaborativeModule
{
    public MlpModule(int userCount, int itemCount, IReadOnlyList<int> layers) : base("MLP", userCount, itemCount)
    {
        Layers = layers.ToArray();
        int embedding = Layers[0] / 2;
        UserEmbedding = KeyEmbedding(userCount, embedding);
        ItemEmbedding = KeyEmbedding(itemCount, embedding);
        var tower = new List<nn.Module<Tensor, Tensor>>();
        for (int l = 1; l < Layers.Length; l++)
        {
            tower.Add(nn.Linear(Layers[l - 1], Layers[l]));
            tower.Add(nn.ReLU());
        }
        Tower = nn.Sequential(tower);
        Output = nn.Linear(Layers[^1], 1);
        RegisterComponents();
    }

    public int[] Layers { get; }
    public Embedding UserEmbedding { get; }
    public Embedding ItemEmbedding { get; }
    public Sequential Tower { get; }
    public Linear Output { get; }

    /// <summary>The last hidden layer of the tower, NeuMF's MLP branch.</summary>
    public Tensor Hidden(Tensor users, Tensor items) =>
        Tower.call(cat(new[] { UserEmbedding.call(users), ItemEmbedding.call(items) }, 1));

    public override Tensor forward(Tensor users, Tensor items) => Output.call(Hidden(users, items)).squeeze(-1);

    /// <summary>ONNX of <see cref="Hidden"/>: [N, last layer].</summary>
    public string HiddenOnnx(OnnxGraphBuilder g, string users, string items, string prefix)
    {
        string x = g.Concat(1,
            g.Gather(Weights(g, prefix + "user_embedding", UserEmbedding.weight!), users),
            g.Gather(Weights(g, prefix + "item_embedding", ItemEmbedding.weight!), items));
        int layer = 0;
        foreach (var linear in TowerLinears())
            x = g.Relu(LinearOnnx(g, $"{prefix}tower.{layer++}", linear, x));
        return x;
    }

    public override string ExportOnnx(OnnxGraphBuilder g, string users, string items) =>
        g.Reshape(LinearOnnx(g, "mlp.output", Output, HiddenOnnx(g, users, items, "mlp.")), new long[] { -1 });

    /// <summary>The Linear layers of the tower in order.</summary>
    public IEnumerable<Linear> TowerLinears() => Tower.children().OfType<Linear>();
}
