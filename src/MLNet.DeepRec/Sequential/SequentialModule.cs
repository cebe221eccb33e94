using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// The contract of a sequential (next-item) model: a history window of item keys, int64 [B, L] left-padded with 0 and
/// the most recent item at position L − 1, is encoded into a hidden state at every position, float [B, L, d]; the state
/// at position t scores item i as h_t · E[i], with E the model's own item embedding table (the output layer is the input
/// embedding table, shared). Training (<see cref="Trainers.SequentialObjective"/>), scoring (<see cref="SequentialScorer"/>),
/// the ONNX graph and the saved recommender only use this contract.
/// </summary>
/// <remarks>
/// A subclass builds its item table (<see cref="EmbeddingTable"/> of role Item, ItemCount + 1 rows, row 0 = padding and
/// unknown items), reads item rows in <c>forward</c> only through <see cref="ItemTable"/> lookups (so row-wise updates
/// see them), keeps padding and unknown items (key 0) from reaching its state in a way that depends on row 0 (after
/// training row 0 holds the mean item, see <see cref="SetUnknownItemToMean"/>), and writes the same computation as ONNX
/// nodes in <see cref="ExportHiddenOnnx"/>.
/// </remarks>
internal abstract class SequentialModule : nn.Module<Tensor, Tensor>
{
    /// <param name="kind">The model's name in files and logs (an entry of <see cref="SequentialModels.All"/>).</param>
    /// <param name="itemCount">Trained item keys 1..itemCount.</param>
    /// <param name="maxLength">Window length L.</param>
    protected SequentialModule(string kind, int itemCount, int maxLength) : base(kind)
    {
        Kind = kind; ItemCount = itemCount; MaxLength = maxLength;
    }

    /// <summary>The model's name in files and logs ("SASRec", "GRU4Rec").</summary>
    public string Kind { get; }

    /// <summary>Number of trained item keys.</summary>
    public int ItemCount { get; }

    /// <summary>Window length L.</summary>
    public int MaxLength { get; }

    /// <summary>The shared item embedding table [ItemCount + 1, d] (row 0 = padding / unknown): training reads its rows
    /// through <see cref="EmbeddingTable.forward"/> lookups or <see cref="EmbeddingTable.AllRows"/>.</summary>
    public abstract EmbeddingTable ItemTable { get; }

    /// <summary>The item table's weights [ItemCount + 1, d], for scoring and export (eval mode, no gradients).</summary>
    public Tensor ItemWeights => ItemTable.Weight;

    /// <summary>Prefix of the model's ONNX initializer names ("sasrec", "gru4rec").</summary>
    protected string OnnxPrefix => Kind.ToLowerInvariant();

    /// <summary>Throws unless <paramref name="sequences"/> is [B, <see cref="MaxLength"/>].</summary>
    protected void CheckWindow(Tensor sequences)
    {
        long l = sequences.shape[1];
        if (l != MaxLength) throw new ArgumentException($"Sequences must have length {MaxLength}, not {l}.", nameof(sequences));
    }

    /// <summary>The hidden state of the last position: int64 [B, L] → [B, d].</summary>
    public virtual Tensor LastHidden(Tensor sequences) => forward(sequences).select(1, MaxLength - 1);

    /// <summary>Row 0 (padding and unknown items) ← mean of the trained item rows.</summary>
    public void SetUnknownItemToMean()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
        var w = ItemTable.Weight;
        w[0].copy_(w.narrow(0, 1, ItemCount).mean(new long[] { 0 }));
    }

    /// <summary>
    /// Writes the encoder: <paramref name="sequences"/> names int64 [N, L] keys already mapped to 0..ItemCount; returns
    /// the name of the float [N, d] last hidden state and, in <paramref name="itemTable"/>, the item table's initializer
    /// [ItemCount + 1, d]. Mirrors <see cref="LastHidden"/> in eval mode.
    /// </summary>
    public string ExportOnnx(OnnxGraphBuilder g, string sequences, out string itemTable)
    {
        itemTable = g.AddWeights(OnnxPrefix + ".item_embedding", ItemWeights);
        return ExportHiddenOnnx(g, sequences, itemTable);
    }

    /// <summary>The model's part of <see cref="ExportOnnx"/>: int64 [N, L] keys and the item table's initializer →
    /// float [N, d] last hidden state.</summary>
    protected abstract string ExportHiddenOnnx(OnnxGraphBuilder g, string sequences, string itemTable);

    /// <summary>Float [N, L] with 1 at the positions that hold an item and 0 at padding and unknown items (key 0).</summary>
    protected static string ValidOnnx(OnnxGraphBuilder g, string sequences) =>
        g.Cast(g.Greater(sequences, g.ConstInt64(new long[] { 0 })), OnnxElementType.Float);
}

/// <summary>
/// The sequential kinds the library writes into model files ("deeprec.model_kind" and the saved recommender's kind):
/// serving code asks here, never compares a model name.
/// </summary>
internal static class SequentialModels
{
    /// <summary>Kind of SASRec.</summary>
    public const string SasRec = "SASRec";

    /// <summary>Kind of GRU4Rec.</summary>
    public const string Gru4Rec = "GRU4Rec";

    /// <summary>Every sequential kind (never remove one: files that name it must still load).</summary>
    public static readonly IReadOnlyList<string> All = [SasRec, Gru4Rec];

    /// <summary>Whether <paramref name="kind"/> is a sequential model's.</summary>
    public static bool IsSequential(string? kind) => kind is not null && All.Contains(kind);
}
