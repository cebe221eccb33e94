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
        hidden = MlpStack.Create(factors, HiddenLayers, batchNorm, hiddenDropout);
        prediction = nn.Linear(MlpStack.OutputWidth(factors, HiddenLayers), 1, hasBias: false);
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
        var bi = BiInteraction(scaled);
        if (BatchNorm) bi = bi_norm.call(bi);
        bi = bi_dropout.call(bi);
        return prediction.call(hidden.call(bi)).squeeze(-1);
    }

    protected override string InteractionOnnx(OnnxGraphBuilder g, string scaled, string values)
    {
        string x = BiInteractionOnnx(g, scaled);
        if (BatchNorm) x = BatchNormOnnx(g, "bi_norm", bi_norm, x);
        x = g.Sequential("hidden", hidden, x);
        return g.Reshape(LinearOnnx(g, "prediction", prediction, x), new long[] { -1 });
    }
}
