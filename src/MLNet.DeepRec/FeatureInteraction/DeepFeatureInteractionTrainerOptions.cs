using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// Options of the feature-interaction models with a deep component (DeepFM, DCN-V2, Wide&amp;Deep): a feed-forward
/// network over the value-scaled field embeddings placed side by side ([N, slots · <c>Factors</c>]), each hidden layer
/// Linear → [batch norm] → ReLU → dropout.
/// </summary>
public abstract class DeepFeatureInteractionTrainerOptions : FeatureInteractionTrainerOptions
{
    /// <summary>Creates options with the given deep-component defaults.</summary>
    private protected DeepFeatureInteractionTrainerOptions(int[] hiddenLayers, double hiddenDropoutRate)
    {
        HiddenLayers = hiddenLayers;
        HiddenDropoutRate = hiddenDropoutRate;
    }

    /// <summary>Widths of the deep component's hidden layers; at most <see cref="DeepRecTrainerOptionsBase.MaxLayers"/>
    /// widths, each 1..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>. The default depends on the model.</summary>
    public int[] HiddenLayers;

    /// <summary>Batch normalisation after each hidden layer's Linear. Default false (the papers' deep components have none).</summary>
    public bool BatchNormalization;

    /// <summary>Dropout rate after each hidden layer, in [0, 1). The default depends on the model.</summary>
    public double HiddenDropoutRate;

    /// <summary>Dropout rate on the embeddings side by side where the deep (and DCN-V2's cross) network reads them, in
    /// [0, 1): the input-layer dropout of the DeepFM reference code, the counterpart of NFM's dropout on the
    /// bi-interaction vector. Default 0.</summary>
    public double EmbeddingDropoutRate;

    internal override void Validate()
    {
        base.Validate();
        CheckWidths(HiddenLayers, nameof(HiddenLayers), allowEmpty: AllowsNoHiddenLayer);
        CheckDropout(HiddenDropoutRate, nameof(HiddenDropoutRate));
        CheckDropout(EmbeddingDropoutRate, nameof(EmbeddingDropoutRate));
    }

    /// <summary>Whether the model still has a deep part with no hidden layer (DCN-V2's cross network does).</summary>
    private protected virtual bool AllowsNoHiddenLayer => false;
}
