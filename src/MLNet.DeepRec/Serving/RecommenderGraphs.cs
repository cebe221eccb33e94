using System.Globalization;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Serving;

/// <summary>
/// The all-items scoring graphs that a saved model carries for <see cref="DeepRecRecommender"/>: every trained item's
/// logit for a batch of users (collaborative models) or of histories (SASRec), in one graph that is cheap to run.
/// </summary>
/// <remarks>
/// Collaborative graphs take <c>user_rows</c> (int64 [U], embedding rows; 0 = the average user) and output
/// <c>scores</c> (float [U, I], item rows 1..I). Dot products are one MatMul against a pre-transposed item table (GMF's
/// output weights folded into it); an MLP tower's first layer is split into a per-user part [U, h] and a per-item part
/// [I, h] (computed once, at export) added by broadcasting, so only the later, narrower layers run per (user, item) pair.
/// The SASRec graph takes <c>sequence</c> (int64 [U, L], item keys right-aligned, 0 = padding or unknown) and outputs
/// <c>scores</c> (float [U, I + 1], column = item key; column 0 is meaningless).
/// </remarks>
internal static class RecommenderGraphs
{
    public const string UserRowsInput = "user_rows";
    public const string SequenceInput = "sequence";
    public const string ScoresOutput = "scores";

    /// <summary>The all-items graph of a collaborative network.</summary>
    public static byte[] Collaborative(CollaborativeModule module)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = new OnnxGraphBuilder(module.Kind + "_all_items");
        g.AddInput(UserRowsInput, OnnxElementType.Int64, -1);
        long items = module.ItemCount;
        string users = UserRowsInput;
        string scores = module switch
        {
            DotProductMFModule mf => g.Add(g.Add(
                g.MatMul(g.Gather(g.AddWeights("mf.user_embedding", mf.UserEmbedding.Weight), users), g.AddWeights("mf.item_embedding_t", ItemRows(mf.ItemEmbedding.Weight, items).t())),
                g.AddWeights("mf.item_bias_row", ItemRows(mf.ItemBias.Weight, items).t())),
                g.Add(g.Gather(g.AddWeights("mf.user_bias", mf.UserBias.Weight), users), g.AddWeights("mf.global_bias", mf.GlobalBias))),
            GmfModule gmf => g.Add(GmfDot(g, gmf, users, gmf.Output.weight!, items, "gmf."), g.AddWeights("gmf.output_bias", gmf.Output.bias!)),
            MlpModule mlp => g.Add(g.Reshape(g.MatMul(MlpHidden(g, mlp, users, items, "mlp."), g.AddWeights("mlp.output_t", mlp.Output.weight!.t())), [-1, items]),
                g.AddWeights("mlp.output_bias", mlp.Output.bias!)),
            NeuMFModule neumf => NeuMF(g, neumf, users, items),
            _ => throw new NotSupportedException($"No all-items graph for {module.Kind}."),
        };
        g.Identity(scores, ScoresOutput);
        g.AddOutput(ScoresOutput, OnnxElementType.Float, -1, items);
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = module.Kind,
            ["deeprec.graph"] = "all_items",
            ["deeprec.item_count"] = items.ToString(CultureInfo.InvariantCulture),
        });
    }

    /// <summary>The all-items graph of SASRec: hidden state of each sequence times the item table.</summary>
    public static byte[] SasRec(SasRecModule module)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = new OnnxGraphBuilder("SASRec_all_items");
        g.AddInput(SequenceInput, OnnxElementType.Int64, -1, module.MaxLength);
        string hidden = module.ExportOnnx(g, SequenceInput, out string table);
        g.Identity(g.Gemm(hidden, table, transB: true), ScoresOutput);
        g.AddOutput(ScoresOutput, OnnxElementType.Float, -1, module.ItemCount + 1L);
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = "SASRec",
            ["deeprec.graph"] = "all_items",
            ["deeprec.item_count"] = module.ItemCount.ToString(CultureInfo.InvariantCulture),
            ["deeprec.max_length"] = module.MaxLength.ToString(CultureInfo.InvariantCulture),
        });
    }

    private static Tensor ItemRows(Tensor table, long items) => table.narrow(0, 1, items);

    /// <summary>Σ_f p_uf · w_f · q_if for every (user, item): [U, f] × ([I, f] ⊙ w)ᵀ.</summary>
    private static string GmfDot(OnnxGraphBuilder g, GmfModule gmf, string users, Tensor weight, long items, string prefix) =>
        g.MatMul(g.Gather(g.AddWeights(prefix + "user_embedding", gmf.UserEmbedding.Weight), users),
                 g.AddWeights(prefix + "item_embedding_weighted_t", (ItemRows(gmf.ItemEmbedding.Weight, items) * weight.view(1, -1)).t()));

    /// <summary>The tower's last hidden layer for every (user, item) pair, flattened to [U·I, h].</summary>
    private static string MlpHidden(OnnxGraphBuilder g, MlpModule mlp, string users, long items, string prefix)
    {
        var linears = mlp.TowerLinears().ToArray();
        if (linears.Length == 0)
            throw new NotSupportedException("An MLP without hidden layers has no all-items graph.");
        long e = mlp.Layers[0] / 2;
        var first = linears[0];
        Tensor wUser = first.weight!.narrow(1, 0, e), wItem = first.weight!.narrow(1, e, e);
        string perUser = g.MatMul(g.Gather(g.AddWeights(prefix + "user_embedding", mlp.UserEmbedding.Weight), users), g.AddWeights(prefix + "tower.0.user_weight_t", wUser.t())); // [U, h]
        Tensor perItem = ItemRows(mlp.ItemEmbedding.Weight, items).matmul(wItem.t()).Plus(first.bias!);                                                                       // [I, h]
        string x = g.Relu(g.Add(g.Unsqueeze(perUser, [1]), g.AddWeights(prefix + "tower.0.per_item", perItem)));                                                        // [U, I, h]
        x = g.Reshape(x, [-1, first.weight!.shape[0]]);
        for (int l = 1; l < linears.Length; l++)
            x = g.Relu(g.Linear($"{prefix}tower.{l}", linears[l], x));
        return x;
    }

    private static string NeuMF(OnnxGraphBuilder g, NeuMFModule neumf, string users, long items)
    {
        long f = neumf.Gmf.Factors;
        Tensor w = neumf.Output.weight!; // [1, f + h]
        string gmf = GmfDot(g, neumf.Gmf, users, w.narrow(1, 0, f), items, "neumf.gmf.");
        string hidden = MlpHidden(g, neumf.Mlp, users, items, "neumf.mlp.");
        string mlp = g.Reshape(g.MatMul(hidden, g.AddWeights("neumf.output_mlp_t", w.narrow(1, f, w.shape[1] - f).t())), [-1, items]);
        return g.Add(g.Add(gmf, mlp), g.AddWeights("neumf.output_bias", neumf.Output.bias!));
    }
}
