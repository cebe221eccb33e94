using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Contract of a feature-interaction network (NFM, AFM): for int64 [N, F] global feature indices and float [N, F]
/// values, ŷ = w₀ + Σᵢ wᵢxᵢ + f(interactions) as a float [N] tensor (a regression value or a logit). Feature tables have
/// <c>FeatureCount</c> rows; row 0 is the padding feature, which always arrives with x = 0 and so never contributes.
/// Both feature tables (<c>feature_embedding</c> vᵢ and <c>feature_bias</c> wᵢ) are <see cref="EmbeddingTable"/>s of role
/// <see cref="EmbeddingRole.Feature"/>, so <see cref="DeepRecTrainerOptionsBase.EmbeddingUpdates"/> decides whether a
/// training step updates them row-wise (only the features of the batch) or densely.
/// </summary>
internal abstract class FieldFeatureModule : nn.Module<Tensor, Tensor, Tensor>
{
    protected FieldFeatureModule(string name, int featureCount, int slotCount, int factors) : base(name)
    {
        FeatureCount = featureCount;
        SlotCount = slotCount;
        Factors = factors;
        // N(0, 0.01²) embeddings and zero linear weights, as in the NFM/AFM reference code.
        feature_embedding = new EmbeddingTable("feature_embedding", featureCount, factors, EmbeddingRole.Feature).Initialize(0.01);
        feature_bias = new EmbeddingTable("feature_bias", featureCount, 1, EmbeddingRole.Feature).Initialize(0);
        global_bias = nn.Parameter(zeros(1));
        // Registered here: RegisterComponents in a derived class does not see a base class's private fields.
        register_module("feature_embedding", feature_embedding);
        register_module("feature_bias", feature_bias);
        register_parameter("global_bias", global_bias);
    }

    public int FeatureCount { get; }
    public int SlotCount { get; }
    public int Factors { get; }

    private readonly EmbeddingTable feature_embedding;
    private readonly EmbeddingTable feature_bias;
    private readonly Parameter global_bias;
    /// <summary>The feature embeddings vᵢ [FeatureCount, Factors].</summary>
    public EmbeddingTable FeatureEmbedding => feature_embedding;
    /// <summary>The linear weights wᵢ [FeatureCount, 1].</summary>
    public EmbeddingTable FeatureBias => feature_bias;

    /// <summary>The interaction part f(x) of the model: [N] from the value-scaled embeddings xᵢvᵢ [N, F, k] and the
    /// values [N, F]; <paramref name="values"/> null means every value is 1 (no padding, no unknown key).</summary>
    protected abstract Tensor Interaction(Tensor scaledEmbeddings, Tensor? values);

    public override Tensor forward(Tensor indices, Tensor values) => Output(indices, values);

    /// <summary>
    /// As <see cref="forward"/>; <paramref name="values"/> null means every value is 1 (one-hot rows, as in libFM data),
    /// which skips the multiplications by x (about a tenth of an NFM training step on the CPU). Same result.
    /// </summary>
    public Tensor Output(Tensor indices, Tensor? values)
    {
        var bias = feature_bias.call(indices).squeeze(-1);
        var linear = (values is null ? bias : bias * values).sum(1).Plus(global_bias);
        var embedded = feature_embedding.call(indices);
        var scaled = values is null ? embedded : embedded * values.unsqueeze(-1);
        return linear.Plus(Interaction(scaled, values));
    }

    /// <summary>Extra loss term (e.g. AFM's L2 on the attention weights); null when none.</summary>
    public virtual Tensor? RegularizationLoss() => null;

    /// <summary>
    /// Copies the feature embeddings vᵢ, the linear weights wᵢ and the global bias w₀ of <paramref name="source"/>
    /// (a trained FM/NFM/AFM over the same features and factor count): the papers' pre-training from a trained FM.
    /// </summary>
    public void LoadFeatureWeights(FieldFeatureModule source)
    {
        if (source.FeatureCount != FeatureCount || source.Factors != Factors)
            throw new ArgumentException($"The pre-trained model has {source.FeatureCount} features × {source.Factors} factors; this model needs {FeatureCount} × {Factors}.");
        using var _ = no_grad();
        feature_embedding.Weight.copy_(source.feature_embedding.Weight);
        feature_bias.Weight.copy_(source.feature_bias.Weight);
        global_bias.copy_(source.global_bias);
    }

    /// <summary>Starts w₀ at the label mean (regression) or the prior log-odds (binary).</summary>
    public void InitializeGlobalBias(double value)
    {
        using (no_grad()) global_bias.fill_(LiveScalars.Of(value));
    }

    /// <summary>Floats of the widest intermediate tensor per row (NFM: the F × k embeddings; AFM: the P × max(k, t) pairs).</summary>
    protected virtual long ActivationsPerRow => (long)SlotCount * Factors;

    /// <summary>
    /// Rows per chunk when scoring a whole data set: about 4 M floats (16 MB) in the widest intermediate tensor, so that
    /// scoring memory does not grow with the model (AFM's pair tensors) or the data.
    /// </summary>
    public long PredictionChunkRows => Math.Clamp((1L << 22) / Math.Max(1, ActivationsPerRow), 256, 16384);

    /// <summary>Number of trainable scalars.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>
    /// Writes the network into <paramref name="g"/>: <paramref name="indices"/> int64 [N,F], <paramref name="values"/>
    /// float [N,F]; returns the name of the float [N] output.
    /// </summary>
    public string ExportOnnx(OnnxGraphBuilder g, string indices, string values)
    {
        string bias = g.Reshape(g.Gather(Weights(g, "feature_bias", feature_bias.Weight), indices), new long[] { -1, SlotCount });
        string linear = g.Add(g.ReduceSum(g.Mul(bias, values), new long[] { 1 }, keepDims: false), Weights(g, "global_bias", global_bias));
        string embedded = g.Gather(Weights(g, "feature_embedding", feature_embedding.Weight), indices);
        string scaled = g.Mul(embedded, g.Unsqueeze(values, new long[] { 2 }));
        return g.Add(linear, InteractionOnnx(g, scaled, values));
    }

    /// <summary>ONNX of <see cref="Interaction"/>: returns a float [N] name.</summary>
    protected abstract string InteractionOnnx(OnnxGraphBuilder g, string scaledEmbeddings, string values);

    /// <summary>Adds a tensor's values as an initializer (see <see cref="TorchOnnxExtensions.AddWeights"/>).</summary>
    protected static string Weights(OnnxGraphBuilder graph, string name, Tensor t) => graph.AddWeights(name, t);

    /// <summary>y = x Wᵀ + b for a TorchSharp Linear layer (see <see cref="TorchOnnxExtensions.Linear"/>).</summary>
    protected static string LinearOnnx(OnnxGraphBuilder graph, string prefix, Linear layer, string x) => graph.Linear(prefix, layer, x);

    /// <summary>Batch norm in inference mode, folded into x·scale + shift (see <see cref="TorchOnnxExtensions.BatchNorm"/>).</summary>
    protected static string BatchNormOnnx(OnnxGraphBuilder graph, string prefix, BatchNorm1d bn, string x) => graph.BatchNorm(prefix, bn, x);

    /// <summary>The value-scaled embeddings of a row side by side, [N, F, k] → [N, F·k]: the input of a deep component.</summary>
    protected static Tensor Flatten(Tensor scaledEmbeddings) => scaledEmbeddings.flatten(1);

    /// <summary>ONNX of <see cref="Flatten"/>.</summary>
    protected string FlattenOnnx(OnnxGraphBuilder graph, string scaledEmbeddings) => graph.Reshape(scaledEmbeddings, new long[] { -1, (long)SlotCount * Factors });

    /// <summary>FM's pairwise term Σᵢ&lt;ⱼ ⟨xᵢvᵢ, xⱼvⱼ⟩ = ½ Σ_f [(Σᵢ xᵢvᵢ)² − Σᵢ (xᵢvᵢ)²]_f per row, [N, F, k] → [N, k] (summed over k by the caller or not).</summary>
    protected static Tensor BiInteraction(Tensor scaled)
    {
        var sum = scaled.sum(1);
        using Scalar half = 0.5;
        return (sum * sum - (scaled * scaled).sum(1)).mul_(half);
    }

    /// <summary>ONNX of <see cref="BiInteraction"/>.</summary>
    protected static string BiInteractionOnnx(OnnxGraphBuilder g, string scaled)
    {
        string sum = g.ReduceSum(scaled, new long[] { 1 }, keepDims: false);
        string squares = g.ReduceSum(g.Mul(scaled, scaled), new long[] { 1 }, keepDims: false);
        return g.Mul(g.Sub(g.Mul(sum, sum), squares), g.ConstFloat(0.5f));
    }
}

/// <summary>
/// Inverted dropout, x · m / (1 − p) with m ~ Bernoulli(1 − p) in training mode and the identity in eval mode, the
/// same as <c>nn.DropoutRate</c>. The mask is drawn as <c>rand ≥ p</c> (uniform, global generator) instead of libtorch's
/// CPU <c>bernoulli_</c>: measured ≈3x cheaper per call at [512, 64] with one thread (≈140 µs against ≈500 µs forward +
/// backward), which is a large part of an NFM step. No parameters, so state dicts keep their names.
/// The training core sets <see cref="Generator"/> to its own seeded generator for the duration of <c>Fit</c>, so that
/// masks do not come from libtorch's process-wide generator, which concurrent fits in one process would share.
/// </summary>
internal sealed class FastDropout : nn.Module<Tensor, Tensor>
{
    public FastDropout(double p) : base("FastDropout") { P = p; }

    public double P { get; }

    /// <summary>The generator masks are drawn from; null for libtorch's global one.</summary>
    public Generator? Generator { get; set; }

    public override Tensor forward(Tensor x)
    {
        if (!training || P == 0) return x.alias();
        Tensor mask;
        using (no_grad())
        {
            // Scalars disposed here, not left to the finalizer (see FeatureBatchSource on why that matters).
            using Scalar p = P, scale = 1.0 / (1.0 - P);
            using var r = Generator is null ? rand_like(x) : rand(x.shape, x.dtype, x.device, generator: Generator);
            mask = r.ge_(p).to(x.dtype).mul_(scale);
        }
        return x * mask;
    }
}

