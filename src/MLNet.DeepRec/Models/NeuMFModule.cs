using MLNet.DeepRec.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Neural Matrix Factorization (He et al. 2017, §3.4): a GMF branch and an MLP branch with separate embeddings, fused
/// by one output layer: logit = hᵀ[p_u ⊙ q_i ; MLP([p'_u; q'_i])].
/// </summary>
internal sealed class NeuMFModule : CollaborativeModule
{
    public NeuMFModule(int userCount, int itemCount, int factors, IReadOnlyList<int> mlpLayers) : base(CollaborativeModels.NeuMF.Name, userCount, itemCount)
    {
        gmf = new GmfModule(userCount, itemCount, factors, withOutputLayer: false);
        mlp = new MlpModule(userCount, itemCount, mlpLayers, withOutputLayer: false);
        output = nn.Linear(factors + mlpLayers[^1], 1);
        RegisterComponents();
    }

    private readonly GmfModule gmf;
    public GmfModule Gmf => gmf;
    private readonly MlpModule mlp;
    public MlpModule Mlp => mlp;
    private readonly Linear output;
    public Linear Output => output;

    public override Tensor forward(Tensor users, Tensor items) =>
        Output.call(cat(new[] { Gmf.Interaction(users, items), Mlp.Hidden(users, items) }, 1)).squeeze(-1);

    public override string ExportOnnx(OnnxGraphBuilder g, string users, string items)
    {
        string fused = g.Concat(1, Gmf.InteractionOnnx(g, users, items, "neumf.gmf."), Mlp.HiddenOnnx(g, users, items, "neumf.mlp."));
        return g.Reshape(LinearOnnx(g, "neumf.output", Output, fused), new long[] { -1 });
    }

    /// <summary>The GMF branch as one MatMul and the MLP branch's tower per pair, each with its part of the output layer.</summary>
    public override string ExportAllItemsOnnx(OnnxGraphBuilder g, string users)
    {
        long f = Gmf.Factors;
        Tensor w = Output.weight!; // [1, f + h]
        string gmf = Gmf.AllItemsDotOnnx(g, users, w.narrow(1, 0, f), "neumf.gmf.");
        string hidden = Mlp.AllItemsHiddenOnnx(g, users, "neumf.mlp.");
        string mlp = g.Reshape(g.MatMul(hidden, g.AddWeights("neumf.output_mlp_t", w.narrow(1, f, w.shape[1] - f).t())), [-1, ItemCount]);
        return g.Add(g.Add(gmf, mlp), g.AddWeights("neumf.output_bias", Output.bias!));
    }

    /// <summary>
    /// NCF §3.4.1 pre-training: copy the embeddings and tower of trained GMF and MLP models and build the output layer
    /// as [α·h_GMF ; (1−α)·h_MLP], with bias α·b_GMF + (1−α)·b_MLP.
    /// </summary>
    public void InitializeFrom(GmfModule gmf, MlpModule mlp, double alpha)
    {
        using var _ = no_grad();
        Gmf.UserEmbedding.Weight.copy_(gmf.UserEmbedding.Weight);
        Gmf.ItemEmbedding.Weight.copy_(gmf.ItemEmbedding.Weight);
        Mlp.UserEmbedding.Weight.copy_(mlp.UserEmbedding.Weight);
        Mlp.ItemEmbedding.Weight.copy_(mlp.ItemEmbedding.Weight);
        foreach (var (target, source) in Mlp.TowerLinears().Zip(mlp.TowerLinears()))
        {
            target.weight!.copy_(source.weight!);
            target.bias!.copy_(source.bias!);
        }
        Output.weight!.copy_(cat(new[] { gmf.Output.weight! * alpha, mlp.Output.weight! * (1 - alpha) }, 1));
        Output.bias!.copy_(gmf.Output.bias! * alpha + mlp.Output.bias! * (1 - alpha));
    }

    public override void InitializeOutputBias(double logit)
    {
        using (no_grad()) output.bias!.fill_(logit);
    }

    public override IReadOnlyDictionary<string, int[]> HyperParameters =>
        new Dictionary<string, int[]> { [CollaborativeModels.Factors.Name] = [Gmf.Factors], [CollaborativeModels.Layers.Name] = Mlp.Layers.ToArray() };
}
