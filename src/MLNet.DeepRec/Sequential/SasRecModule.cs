using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// SASRec (Kang &amp; McAuley 2018): item embeddings (scaled by √d) plus learned position embeddings, N causal
/// self-attention blocks and a final layer norm; the hidden state at position t predicts item t + 1 by a dot product
/// with the same item embedding table. Sequences are [B, L] int64 item keys, left-padded with 0, the most recent item
/// at position L − 1.
/// </summary>
/// <remarks>
/// Each block is pre-norm with residuals, as in the paper: x ← x + Dropout(Attention(LN(x))), x ← x + Dropout(FFN(LN(x))),
/// then padded positions are zeroed (the paper's timeline mask). Attention masks future positions and padded keys with
/// a large finite negative (−1e9) rather than −∞, so a fully padded row (empty history) stays finite: its hidden state is
/// the final layer norm's bias, a learned "no history" query. Embedding row 0 (padding) never reaches the blocks
/// (masked); after training it holds the mean item embedding so that an unknown candidate item scores as an average item.
/// <para>Both tables are <see cref="EmbeddingTable"/>s (roles Item and Position), so the item table can be trained with
/// row-wise updates: training code reads item rows only through <see cref="ItemTable"/> lookups (or
/// <see cref="EmbeddingTable.AllRows"/> for a full softmax), never through <see cref="ItemWeights"/>.</para>
/// </remarks>
internal sealed class SasRecModule : nn.Module<Tensor, Tensor>
{
    internal const float MaskValue = -1e9f;
    internal const double LayerNormEpsilon = 1e-8;

    public SasRecModule(int itemCount, int maxLength, int hiddenSize, int blocks, int heads, int feedForwardSize, double dropout)
        : base("SASRec")
    {
        ItemCount = itemCount; MaxLength = maxLength; HiddenSize = hiddenSize; Heads = heads;
        // N(0, 1) first, as nn.Embedding initialised itself before these tables replaced it: the Glorot init below
        // overwrites it, but drawing it keeps the random stream, so a seed gives the same weights as before.
        item_embedding = new EmbeddingTable("item_embedding", itemCount + 1L, hiddenSize, EmbeddingRole.Item).Initialize(1.0);
        position_embedding = new EmbeddingTable("position_embedding", maxLength, hiddenSize, EmbeddingRole.Position).Initialize(1.0);
        embedding_dropout = new FastDropout(dropout);
        layers = new ModuleList<SasRecBlock>();
        for (int b = 0; b < blocks; b++) layers.Add(new SasRecBlock($"block{b}", hiddenSize, heads, feedForwardSize, dropout));
        final_norm = nn.LayerNorm(hiddenSize, LayerNormEpsilon);
        RegisterComponents();
        using (no_grad())
        {
            // Glorot-normal matrices, as in the widely used PyTorch port of the paper's code; biases zero.
            foreach (var (name, p) in named_parameters())
            {
                if (p.dim() == 2) nn.init.xavier_normal_(p);
                else if (name.EndsWith("bias", StringComparison.Ordinal)) p.zero_();
            }
        }
    }

    public int ItemCount { get; }
    public int MaxLength { get; }
    public int HiddenSize { get; }
    public int Heads { get; }

    private readonly EmbeddingTable item_embedding;
    private readonly EmbeddingTable position_embedding;
    private readonly FastDropout embedding_dropout;
    private readonly ModuleList<SasRecBlock> layers;
    private readonly LayerNorm final_norm;

    /// <summary>The shared item embedding table [ItemCount + 1, d] (row 0 = padding / unknown): training reads its rows
    /// through <see cref="EmbeddingTable.forward"/> lookups or <see cref="EmbeddingTable.AllRows"/>.</summary>
    public EmbeddingTable ItemTable => item_embedding;

    /// <summary>The item table's weights [ItemCount + 1, d], for scoring and export (eval mode, no gradients).</summary>
    public Tensor ItemWeights => item_embedding.Weight;

    /// <summary>Hidden states for every position: int64 [B, L] → float [B, L, d].</summary>
    public override Tensor forward(Tensor sequences)
    {
        long b = sequences.shape[0], l = sequences.shape[1];
        if (l != MaxLength) throw new ArgumentException($"Sequences must have length {MaxLength}, not {l}.", nameof(sequences));
        // Table lookups before the scope: under row-wise updates a table keeps the rows looked up in a training step for
        // the optimizer, so they must outlive this method.
        var items = item_embedding.call(sequences);
        var positions = position_embedding.AllRows();
        using var scope = NewDisposeScope();
        var valid = sequences.gt(LiveScalars.Zero);
        var timeline = valid.unsqueeze(-1).to(float32);
        var x = items.mul(LiveScalars.Of(Math.Sqrt(HiddenSize))).Plus(positions.unsqueeze(0));
        x = embedding_dropout.call(x) * timeline;
        // Causal [L, L] plus key padding [B, 1, 1, L] → [B, 1, L, L].
        var causal = ones(l, l, dtype: @bool, device: sequences.device).triu(1).to(float32).mul(LiveScalars.Of(MaskValue));
        var padding = valid.logical_not().to(float32).mul(LiveScalars.Of(MaskValue)).view(b, 1, 1, l);
        var bias = causal.view(1, 1, l, l).Plus(padding);
        foreach (var block in layers) x = block.call(x, bias, timeline);
        return final_norm.call(x).MoveToOuterDisposeScope();
    }

    /// <summary>The hidden state of the last position: int64 [B, L] → [B, d].</summary>
    public Tensor LastHidden(Tensor sequences) => forward(sequences).select(1, MaxLength - 1);

    /// <summary>Row 0 (padding and unknown items) ← mean of the trained item rows.</summary>
    public void SetUnknownItemToMean()
    {
        using var _ = no_grad();
        var w = item_embedding.Weight;
        w[0].copy_(w.narrow(0, 1, ItemCount).mean(new long[] { 0 }));
    }

    /// <summary>
    /// Writes the encoder: <paramref name="sequences"/> names int64 [N, L] keys already mapped to 0..ItemCount; returns
    /// the name of the float [N, d] last hidden state. Mirrors <see cref="forward"/> in eval mode.
    /// </summary>
    public string ExportOnnx(OnnxGraphBuilder g, string sequences, out string itemTable)
    {
        long l = MaxLength, d = HiddenSize;
        itemTable = Weights(g, "sasrec.item_embedding", item_embedding.Weight);
        string valid = g.Cast(g.Greater(sequences, g.ConstInt64(new long[] { 0 })), OnnxElementType.Float); // [N, L]
        string timeline = g.Unsqueeze(valid, new long[] { 2 });                                                // [N, L, 1]
        string x = g.Mul(g.Gather(itemTable, sequences), g.ConstFloat((float)Math.Sqrt(HiddenSize)));
        x = g.Add(x, Weights(g, "sasrec.position_embedding", position_embedding.Weight));
        x = g.Mul(x, timeline);
        var causal = new float[l * l];
        for (int i = 0; i < l; i++) for (int j = i + 1; j < l; j++) causal[i * l + j] = MaskValue;
        string causalBias = g.AddInitializer("sasrec.causal_bias", causal, 1, 1, l, l);
        // (1 − valid) · MaskValue = valid · (−MaskValue) + MaskValue.
        string padding = g.Add(g.Mul(valid, g.ConstFloat(-MaskValue)), g.ConstFloat(MaskValue));
        string bias = g.Add(causalBias, g.Reshape(padding, new long[] { -1, 1, 1, l }));
        int n = 0;
        foreach (var block in layers) x = block.ExportOnnx(g, $"sasrec.block{n++}", x, bias, timeline, l, d);
        x = g.LayerNorm("sasrec.final_norm", final_norm, x, LayerNormEpsilon);
        return g.Reshape(g.Slice(x, new long[] { l - 1 }, new long[] { l }, new long[] { 1 }), new long[] { -1, d });
    }

    internal static string Weights(OnnxGraphBuilder g, string name, Tensor t) => g.AddWeights(name, t);
}

/// <summary>One pre-norm causal self-attention block with a point-wise feed-forward network.</summary>
internal sealed class SasRecBlock : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly int _heads;

    public SasRecBlock(string name, int hidden, int heads, int feedForward, double dropout) : base(name)
    {
        _heads = heads;
        attention_norm = nn.LayerNorm(hidden, SasRecModule.LayerNormEpsilon);
        query = nn.Linear(hidden, hidden);
        key = nn.Linear(hidden, hidden);
        value = nn.Linear(hidden, hidden);
        output = nn.Linear(hidden, hidden);
        feed_forward_norm = nn.LayerNorm(hidden, SasRecModule.LayerNormEpsilon);
        feed_forward_in = nn.Linear(hidden, feedForward);
        feed_forward_out = nn.Linear(feedForward, hidden);
        attention_dropout = new FastDropout(dropout);
        dropout_layer = new FastDropout(dropout);
        RegisterComponents();
    }

    private readonly LayerNorm attention_norm;
    private readonly Linear query, key, value, output;
    private readonly LayerNorm feed_forward_norm;
    private readonly Linear feed_forward_in, feed_forward_out;
    private readonly FastDropout attention_dropout, dropout_layer;

    /// <summary>x [B, L, d], additive attention bias [B, 1, L, L], timeline mask [B, L, 1] → [B, L, d].</summary>
    public override Tensor forward(Tensor x, Tensor bias, Tensor timeline)
    {
        long b = x.shape[0], l = x.shape[1], d = x.shape[2], dh = d / _heads;
        var y = attention_norm.call(x);
        var q = query.call(y).view(b, l, _heads, dh).transpose(1, 2);
        var k = key.call(y).view(b, l, _heads, dh).transpose(1, 2);
        var v = value.call(y).view(b, l, _heads, dh).transpose(1, 2);
        var scores = q.matmul(k.transpose(2, 3)).mul(LiveScalars.Of(1.0 / Math.Sqrt(dh))).Plus(bias);
        var attention = attention_dropout.call(nn.functional.softmax(scores, -1));
        var context = attention.matmul(v).transpose(1, 2).reshape(b, l, d);
        x = x.Plus(dropout_layer.call(output.call(context)));
        var f = feed_forward_out.call(dropout_layer.call(nn.functional.relu(feed_forward_in.call(feed_forward_norm.call(x)))));
        x = x.Plus(dropout_layer.call(f));
        return x * timeline;
    }

    public string ExportOnnx(OnnxGraphBuilder g, string prefix, string x, string bias, string timeline, long l, long d)
    {
        long dh = d / _heads;
        string Linear(string name, Linear layer, string input) => g.Linear($"{prefix}.{name}", layer, input);
        string Heads(string t) => g.Transpose(g.Reshape(t, new long[] { -1, l, _heads, dh }), new long[] { 0, 2, 1, 3 });

        string y = g.LayerNorm($"{prefix}.attention_norm", attention_norm, x, SasRecModule.LayerNormEpsilon);
        string q = Heads(Linear("query", query, y));
        string k = g.Transpose(g.Reshape(Linear("key", key, y), new long[] { -1, l, _heads, dh }), new long[] { 0, 2, 3, 1 });
        string v = Heads(Linear("value", value, y));
        string scores = g.Add(g.Mul(g.MatMul(q, k), g.ConstFloat((float)(1.0 / Math.Sqrt(dh)))), bias);
        string context = g.Reshape(g.Transpose(g.MatMul(g.Softmax(scores, -1), v), new long[] { 0, 2, 1, 3 }), new long[] { -1, l, d });
        x = g.Add(x, Linear("output", output, context));
        string f = g.LayerNorm($"{prefix}.feed_forward_norm", feed_forward_norm, x, SasRecModule.LayerNormEpsilon);
        f = Linear("feed_forward_out", feed_forward_out, g.Relu(Linear("feed_forward_in", feed_forward_in, f)));
        return g.Mul(g.Add(x, f), timeline);
    }
}
