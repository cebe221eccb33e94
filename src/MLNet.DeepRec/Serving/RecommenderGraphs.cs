using System.Globalization;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Serving;

/// <summary>
/// The all-items scoring graphs that a saved model carries for <see cref="DeepRecRecommender"/>: every trained item's
/// logit for a batch of users (collaborative models) or of histories (sequential models), in one graph that is cheap to run.
/// </summary>
/// <remarks>
/// Collaborative graphs take <c>user_rows</c> (int64 [U], embedding rows; 0 = the average user) and output
/// <c>scores</c> (float [U, I], item rows 1..I); each model writes its scores (<see cref="CollaborativeModule.ExportAllItemsOnnx"/>).
/// Dot products are one MatMul against a pre-transposed item table (GMF's output weights folded into it); an MLP tower's
/// first layer is split into a per-user part [U, h] and a per-item part [I, h] (computed once, at export) added by
/// broadcasting, so only the later, narrower layers run per (user, item) pair.
/// A sequential model's graph takes <c>sequence</c> (int64 [U, L], item keys right-aligned, 0 = padding or unknown) and outputs
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
        string scores = module.ExportAllItemsOnnx(g, UserRowsInput);
        g.Identity(scores, ScoresOutput);
        g.AddOutput(ScoresOutput, OnnxElementType.Float, -1, items);
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = module.Kind,
            ["deeprec.graph"] = "all_items",
            ["deeprec.item_count"] = items.ToString(CultureInfo.InvariantCulture),
        });
    }

    /// <summary>The all-items graph of a sequential model: hidden state of each sequence times the item table.</summary>
    public static byte[] Sequential(SequentialModule module)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = new OnnxGraphBuilder(module.Kind + "_all_items");
        g.AddInput(SequenceInput, OnnxElementType.Int64, -1, module.MaxLength);
        string hidden = module.ExportOnnx(g, SequenceInput, out string table);
        g.Identity(g.Gemm(hidden, table, transB: true), ScoresOutput);
        g.AddOutput(ScoresOutput, OnnxElementType.Float, -1, module.ItemCount + 1L);
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = module.Kind,
            ["deeprec.graph"] = "all_items",
            ["deeprec.item_count"] = module.ItemCount.ToString(CultureInfo.InvariantCulture),
            ["deeprec.max_length"] = module.MaxLength.ToString(CultureInfo.InvariantCulture),
        });
    }
}
