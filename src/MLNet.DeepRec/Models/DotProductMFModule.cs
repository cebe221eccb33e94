using MLNet.DeepRec.Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Dot-product matrix factorization with biases: logit = p_u · q_i + b_u + b_i + b. The strong baseline of
/// Rendle et al. 2020 ("Neural Collaborative Filtering vs. Matrix Factorization Revisited").
/// </summary>
internal sealed class DotProductMFModule : CollaborativeModule
{
    public DotProductMFModule(int userCount, int itemCount, int factors) : base("MF", userCount, itemCount)
    {
        Factors = factors;
        UserEmbedding = KeyEmbedding(userCount, factors, 0.1);
        ItemEmbedding = KeyEmbedding(itemCount, factors, 0.1);
        UserBias = KeyEmbedding(userCount, 1, 0.0);
        ItemBias = KeyEmbedding(itemCount, 1, 0.0);
        GlobalBias = nn.Parameter(zeros(1));
        RegisterComponents();
    }

    public int Factors { get; }
    public Embedding UserEmbedding { get; }
    public Embedding ItemEmbedding { get; }
    public Embedding UserBias { get; }
    public Embedding ItemBias { get; }
    public TorchSharp.Modules.Parameter GlobalBias { get; }

    public override Tensor forward(Tensor users, Tensor items) =>
        (UserEmbedding.call(users) * ItemEmbedding.call(items)).sum(1)
        + UserBias.call(users).squeeze(-1) + ItemBias.call(items).squeeze(-1) + GlobalBias;

    public override string ExportOnnx(OnnxGraphBuilder g, string users, string items)
    {
        string dot = g.ReduceSum(g.Mul(g.Gather(Weights(g, "mf.user_embedding", UserEmbedding.weight!), users),
                                       g.Gather(Weights(g, "mf.item_embedding", ItemEmbedding.weight!), items)), new long[] { 1 }, keepDims: false);
        string bu = g.Reshape(g.Gather(Weights(g, "mf.user_bias", UserBias.weight!), users), new long[] { -1 });
        string bi = g.Reshape(g.Gather(Weights(g, "mf.item_bias", ItemBias.weight!), items), new long[] { -1 });
        return g.Add(g.Add(g.Add(dot, bu), bi), Weights(g, "mf.global_bias", GlobalBias));
    }

    /// <summary>One matrix product instead of b × ItemCount pair lookups.</summary>
    public override Tensor ScoreAllItems(Tensor users)
    {
        var q = ItemEmbedding.weight!.narrow(0, 1, ItemCount);
        var bi = ItemBias.weight!.narrow(0, 1, ItemCount).squeeze(-1);
        return UserEmbedding.call(users).matmul(q.t()) + bi.unsqueeze(0) + UserBias.call(users) + GlobalBias;
    }
}
