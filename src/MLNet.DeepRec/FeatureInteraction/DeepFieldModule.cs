using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// ŷ = w₀ + Σ wᵢxᵢ [+ FM(x)] + hᵀ MLP([x₁v₁; …; x_F v_F]): the linear ("wide") part every feature-interaction module has,
/// optionally FM's pairwise term, and a deep component over the field embeddings side by side. Without the FM term this
/// is Wide&amp;Deep (Cheng et al. 2016) with the raw features as its wide part; with it, DeepFM (Guo et al. 2017), whose FM
/// and deep components share the embeddings.
/// </summary>
internal sealed class DeepFieldModule : FieldFeatureModule
{
    public DeepFieldModule(string name, bool fmTerm, int featureCount, int slotCount, int factors, IReadOnlyList<int> hiddenLayers, bool batchNorm, double dropoutRate, double embeddingDropoutRate, double fmDropoutRate = 0)
        : base(name, featureCount, slotCount, factors)
    {
        FmTerm = fmTerm;
        HiddenLayers = hiddenLayers.ToArray();
        int input = slotCount * factors;
        input_dropout = new FastDropout(embeddingDropoutRate);
        fm_dropout = new FastDropout(fmDropoutRate);
        deep = MlpStack.Create(input, HiddenLayers, batchNorm, dropoutRate);
        deep_output = MlpStack.GlorotLinear(MlpStack.OutputWidth(input, HiddenLayers), 1);
        RegisterComponents();
    }

    public bool FmTerm { get; }
    public int[] HiddenLayers { get; }
    private readonly FastDropout input_dropout;
    private readonly FastDropout fm_dropout;
    private readonly Sequential deep;
    private readonly Linear deep_output;

    protected override long ActivationsPerRow => Math.Max(base.ActivationsPerRow, HiddenLayers.DefaultIfEmpty(0).Max());

    protected override Tensor Interaction(Tensor scaled, Tensor? values)
    {
        var deepPart = deep_output.call(deep.call(input_dropout.call(Flatten(scaled)))).squeeze(-1);
        return FmTerm ? deepPart.Plus(fm_dropout.call(BiInteraction(scaled)).sum(1)) : deepPart;
    }

    protected override string InteractionOnnx(OnnxGraphBuilder g, string scaled, string values)
    {
        string deepPart = g.Reshape(g.Linear("deep_output", deep_output, g.Sequential("deep", deep, FlattenOnnx(g, scaled))), new long[] { -1 });
        return FmTerm ? g.Add(deepPart, g.ReduceSum(BiInteractionOnnx(g, scaled), new long[] { 1 }, keepDims: false)) : deepPart;
    }
}
