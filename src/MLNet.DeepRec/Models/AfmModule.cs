using MLNet.DeepRec.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Attentional Factorization Machine (Xiao et al. 2017): ŷ = w₀ + Σ wᵢxᵢ + pᵀ Σᵢ&lt;ⱼ aᵢⱼ (vᵢ ∘ vⱼ) xᵢxⱼ, where the
/// attention aᵢⱼ = softmax over pairs of hᵀ ReLU(W (vᵢ ∘ vⱼ)xᵢxⱼ + b) (attention network with its own size t).
/// Following the paper, only pairs of non-zero features take part: pairs with xᵢxⱼ = 0 (unknown keys, padding slots)
/// are masked out of the softmax. Dropout on the attention weights and on the pooled vector; L2 (λ‖W‖²) on the
/// attention network's weight matrix as an extra loss term.
/// </summary>
internal sealed class AfmModule : FieldFeatureModule
{
    private const float MaskedScore = -1e9f;

    public AfmModule(int featureCount, int slotCount, int factors, int attentionSize, double attentionDropout, double dropout, double attentionL2)
        : base("AFM", featureCount, slotCount, factors)
    {
        if (slotCount < 2) throw new ArgumentException("AFM needs at least two feature slots (pairs of features) per row.");
        AttentionSize = attentionSize;
        AttentionL2 = attentionL2;
        var rows = new List<long>(); var cols = new List<long>();
        for (int i = 0; i < slotCount; i++)
            for (int j = i + 1; j < slotCount; j++) { rows.Add(i); cols.Add(j); }
        PairRows = rows.ToArray(); PairColumns = cols.ToArray();
        attention = nn.Linear(factors, attentionSize);
        attention_h = nn.Linear(attentionSize, 1, hasBias: false);
        projection = nn.Linear(factors, 1, hasBias: false);
        using (no_grad())
        {
            nn.init.xavier_uniform_(attention.weight!);
            nn.init.zeros_(attention.bias!);
            nn.init.xavier_uniform_(attention_h.weight!);
            nn.init.ones_(projection.weight!); // starts as FM (p = 1, uniform attention up to scale)
        }
        attention_dropout = new FastDropout(attentionDropout);
        pooled_dropout = new FastDropout(dropout);
        RegisterComponents();
    }

    public int AttentionSize { get; }
    public double AttentionL2 { get; }
    public long[] PairRows { get; }
    public long[] PairColumns { get; }
    public int PairCount => PairRows.Length;
    private readonly Linear attention;
    private readonly Linear attention_h;
    private readonly Linear projection;
    private readonly FastDropout attention_dropout;
    private readonly FastDropout pooled_dropout;

    /// <summary>Pairwise products (vᵢ∘vⱼ)xᵢxⱼ [N,P,k] and attention weights [N,P] (no dropout applied).</summary>
    private (Tensor Pairs, Tensor Weights) Attend(Tensor scaled, Tensor? values)
    {
        // Pairs (i, j > i) in row-major order, built from slices: the backward of narrow/cat is cheap, unlike that of
        // index_select along dimension 1 (a serial index_add on the CPU, observed ~10x slower here).
        var pairs = PairProducts(scaled);
        var scores = attention_h.call(nn.functional.relu(attention.call(pairs))).squeeze(-1);
        // values null: every value is 1, so every pair is active and nothing is masked.
        if (values is null) return (pairs, nn.functional.softmax(scores, 1));
        using Scalar zero = 0f, masked = MaskedScore;
        var weights = nn.functional.softmax(scores.masked_fill(PairProducts(values).eq(zero), masked), 1);
        return (pairs, weights);
    }

    /// <summary>x[:, i] * x[:, j] for every i &lt; j, in <see cref="PairRows"/> order, along dimension 1.</summary>
    private Tensor PairProducts(Tensor x)
    {
        var parts = new Tensor[SlotCount - 1];
        for (int i = 0; i < SlotCount - 1; i++)
            parts[i] = x.narrow(1, i, 1) * x.narrow(1, i + 1, SlotCount - i - 1);
        return parts.Length == 1 ? parts[0] : cat(parts, 1);
    }

    protected override Tensor Interaction(Tensor scaled, Tensor? values)
    {
        var (pairs, weights) = Attend(scaled, values);
        weights = attention_dropout.call(weights);
        var pooled = (weights.unsqueeze(-1) * pairs).sum(1);
        return projection.call(pooled_dropout.call(pooled)).squeeze(-1);
    }

    public override Tensor? RegularizationLoss()
    {
        if (AttentionL2 <= 0) return null;
        using Scalar lambda = AttentionL2;
        return attention.weight!.square().sum().mul(lambda);
    }

    protected override long ActivationsPerRow => (long)PairCount * Math.Max(Factors, AttentionSize);

    /// <summary>
    /// For explanations (eval mode, no grad): attention weight aᵢⱼ [N,P] and each pair's contribution to the score,
    /// aᵢⱼ pᵀ(vᵢ∘vⱼ)xᵢxⱼ [N,P] (the contributions sum to the interaction part of the score).
    /// </summary>
    public (Tensor Weights, Tensor Contributions) Explain(Tensor indices, Tensor values)
    {
        var scaled = FeatureEmbedding.call(indices) * values.unsqueeze(-1);
        var (pairs, weights) = Attend(scaled, values);
        var perPair = projection.call(pairs).squeeze(-1);
        return (weights, weights * perPair);
    }

    protected override string InteractionOnnx(OnnxGraphBuilder g, string scaled, string values)
    {
        string rows = g.ConstInt64(PairRows, PairRows.Length);
        string cols = g.ConstInt64(PairColumns, PairColumns.Length);
        string pairs = g.Mul(g.Gather(scaled, rows, axis: 1), g.Gather(scaled, cols, axis: 1)); // [N,P,k]
        string hiddenAtt = g.Relu(LinearOnnx(g, "attention", attention, pairs)); // [N,P,t]
        string scores = g.Squeeze(LinearOnnx(g, "attention_h", attention_h, hiddenAtt), new long[] { 2 }); // [N,P]
        string pairValues = g.Mul(g.Gather(values, rows, axis: 1), g.Gather(values, cols, axis: 1));
        string inactive = g.Equal(pairValues, g.ConstFloat(0f));
        string masked = g.Where(inactive, g.ConstFloat(MaskedScore), scores);
        string weights = g.Softmax(masked, axis: 1);
        string pooled = g.ReduceSum(g.Mul(g.Unsqueeze(weights, new long[] { 2 }), pairs), new long[] { 1 }, keepDims: false); // [N,k]
        return g.Reshape(LinearOnnx(g, "projection", projection, pooled), new long[] { -1 });
    }
}
