using MLNet.DeepRec.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Neural Factorization Machine (He &amp; Chua 2017): ŷ = w₀ + Σ wᵢxᵢ + hᵀ MLP(BI(x)), where the bi-interaction pooling
/// BI(x) = ½[(Σ xᵢvᵢ)² − Σ (xᵢvᵢ)²] (element-wise) is FM's pairwise term before summation. Optional batch norm and
/// dropout on BI(x), then hidden layers Linear → [batch norm] → ReLU → dropout. With no hidden layers this is NFM-0, which
/// is FM (hᵀBI(x) = Σᵢ&lt;ⱼ ⟨vᵢ, vⱼ ∘ h⟩xᵢxⱼ, the FM term with h absorbed into the factors).
/// </summary>
internal sealed class NfmModule : FieldFeatureModule
{
    public NfmModule(int featureCount, int slotCount, int factors, IReadOnlyList<int> hiddenLayers, bool batchNorm, double biDropout, double hiddenDropout)
        : base("NFM", featureCount, slotCount, factors)
    {
        HiddenLayers = hiddenLayers.ToArray();
        BatchNorm = batchNorm;
        bi_norm = nn.BatchNorm1d(factors);
        bi_dropout = new FastDropout(biDropout);
        var stack = new List<nn.Module<Tensor, Tensor>>();
        int width = factors;
        foreach (int size in HiddenLayers)
        {
            var linear = nn.Linear(width, size);
            using (no_grad())
            {
                nn.init.xavier_uniform_(linear.weight!);
                nn.init.zeros_(linear.bias!);
            }
            stack.Add(linear);
            if (batchNorm) stack.Add(nn.BatchNorm1d(size));
            stack.Add(nn.ReLU());
            stack.Add(new FastDropout(hiddenDropout));
            width = size;
        }
        hidden = nn.Sequential(stack);
        prediction = nn.Linear(width, 1, hasBias: false);
        using (no_grad())
        {
            if (HiddenLayers.Length == 0) nn.init.ones_(prediction.weight!); // NFM-0 starts as FM exactly (h = 1)
            else nn.init.xavier_uniform_(prediction.weight!);
        }
        RegisterComponents();
    }

    public int[] HiddenLayers { get; }
    public bool BatchNorm { get; }
    private readonly BatchNorm1d bi_norm;
    private readonly FastDropout bi_dropout;
    private readonly Sequential hidden;
    private readonly Linear prediction;

    protected override Tensor Interaction(Tensor scaled, Tensor? values)
    {
        var sum = scaled.sum(1);
        using Scalar half = 0.5;
        var bi = (sum * sum - (scaled * scaled).sum(1)).mul_(half);
        if (BatchNorm) bi = bi_norm.call(bi);
        bi = bi_dropout.call(bi);
        return prediction.call(hidden.call(bi)).squeeze(-1);
    }

    protected override string InteractionOnnx(OnnxGraphBuilder g, string scaled, string values)
    {
        string sum = g.ReduceSum(scaled, new long[] { 1 }, keepDims: false);
        string squares = g.ReduceSum(g.Mul(scaled, scaled), new long[] { 1 }, keepDims: false);
        string x = g.Mul(g.Sub(g.Mul(sum, sum), squares), g.ConstFloat(0.5f));
        if (BatchNorm) x = BatchNormOnnx(g, "bi_norm", bi_norm, x);
        int layer = 0;
        foreach (var m in hidden.children())
        {
            switch (m)
            {
                case Linear linear: x = LinearOnnx(g, $"hidden.{layer}", linear, x); break;
                case BatchNorm1d bn: x = BatchNormOnnx(g, $"hidden.{layer}.bn", bn, x); break;
                case ReLU: x = g.Relu(x); layer++; break;
                default: break; // dropout: identity at inference
            }
        }
        return g.Reshape(LinearOnnx(g, "prediction", prediction, x), new long[] { -1 });
    }
}
