using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>The attention an AFM model gave one pair of active features of a row.</summary>
/// <param name="FirstFeature">Readable name of the first feature: <c>Column=value</c> for a key column (from its
/// KeyValues), <c>Column[index]</c> for a vector element.</param>
/// <param name="SecondFeature">Readable name of the second feature.</param>
/// <param name="FirstColumn">Column of the first feature.</param>
/// <param name="SecondColumn">Column of the second feature.</param>
/// <param name="Weight">Attention weight aᵢⱼ (the weights of a row sum to 1).</param>
/// <param name="Contribution">The pair's contribution to the score, aᵢⱼ pᵀ(vᵢ∘vⱼ)xᵢxⱼ.</param>
public sealed record FeaturePairAttention(string FirstFeature, string SecondFeature, string FirstColumn, string SecondColumn, float Weight, float Contribution);

/// <summary>AFM's explanation of one scored row.</summary>
/// <param name="Row">0-based row position in the data passed to <see cref="AfmTransformer.Explain"/>.</param>
/// <param name="Score">The model's score for the row (regression value or logit), as the <c>Score</c> column.</param>
/// <param name="Pairs">Every pair of active features, by decreasing attention weight.</param>
public sealed record AfmExplanation(long Row, float Score, IReadOnlyList<FeaturePairAttention> Pairs);

/// <summary>A trained AFM model: the <see cref="FeatureInteractionTransformer"/> plus attention explanations.</summary>
public sealed class AfmTransformer : FeatureInteractionTransformer
{
    internal AfmTransformer(MLContext mlContext, FieldFeatureModule module, FieldFeatureLayout layout, FeatureInteractionTask task,
        IDataView trainData, TrainingReport report, Device device)
        : base(mlContext, "AFM", module, layout, task, trainData, report, device) { }

    /// <summary>
    /// The attention weight of every pair of active features for each row of <paramref name="data"/> (the paper's
    /// interpretability claim): which feature interactions the model relied on, and how much each pair added to the
    /// score. Pairs involving an unknown key or a zero value are not active and are left out.
    /// </summary>
    /// <param name="data">Rows with the model's feature columns.</param>
    /// <param name="maxRows">Explain at most this many rows from the start. Default 1000.</param>
    public IReadOnlyList<AfmExplanation> Explain(IDataView data, int maxRows = 1000)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (maxRows <= 0) throw new ArgumentOutOfRangeException(nameof(maxRows), maxRows, "maxRows must be positive.");
        var afm = (AfmModule)Module;
        var features = FieldFeatureReader.Read(data, FeatureColumnNames, null, FieldFeatureReader.LabelKind.None, Layout, maxRows);
        int n = features.RowCount, f = Layout.SlotCount, p = afm.PairCount;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Module.eval();
        var indices = tensor(features.Indices, new long[] { n, f }, dtype: int32).to(int64).to(Device);
        var values = tensor(features.Values, new long[] { n, f }, dtype: float32).to(Device);
        var (w, c) = afm.Explain(indices, values);
        var weights = w.cpu().data<float>().ToArray();
        var contributions = c.cpu().data<float>().ToArray();
        var scores = Module.call(indices, values).cpu().data<float>().ToArray();
        var result = new AfmExplanation[n];
        for (int r = 0; r < n; r++)
        {
            var pairs = new List<FeaturePairAttention>(p);
            for (int k = 0; k < p; k++)
            {
                long si = r * (long)f + afm.PairRows[k], sj = r * (long)f + afm.PairColumns[k];
                if (features.Values[si] == 0 || features.Values[sj] == 0) continue;
                var a = Layout.Locate(features.Indices[si]); var b = Layout.Locate(features.Indices[sj]);
                pairs.Add(new FeaturePairAttention(Layout.FeatureName(features.Indices[si]), Layout.FeatureName(features.Indices[sj]),
                    a?.Column.Name ?? "", b?.Column.Name ?? "", weights[r * p + k], contributions[r * p + k]));
            }
            pairs.Sort((x, y) => y.Weight.CompareTo(x.Weight));
            result[r] = new AfmExplanation(r, scores[r], pairs);
        }
        return result;
    }
}
