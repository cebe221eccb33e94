using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// A trained feature-interaction model (NFM or AFM). As an ML.NET transformer it adds <c>Score</c> (regression: the
/// predicted value) or <c>Score</c> (logit), <c>Probability</c> and <c>PredictedLabel</c> (binary classification) through
/// ONNX Runtime, and saves/loads with <c>mlContext.Model.Save</c>/<c>Load</c>. It keeps the TorchSharp network as well.
/// </summary>
/// <remarks>
/// <para>The ONNX graph reads the feature columns under their own names: a key column as uint32 [-1,1], a vector column
/// as float [-1,D].</para>
/// <para><b>Unseen categorical values</b> (key 0 from <c>MapValueToKey</c>, or a key beyond the trained cardinality) and
/// all-zero vectors are "no feature": the field contributes nothing (x = 0), as libFM treats a feature it never saw.
/// The prediction then rests on the other fields, the global bias and, for AFM, the pairs among the known features.</para>
/// <para>A sparse vector column keeps, per row, as many non-zeros as the densest training row had (its largest
/// magnitudes).</para>
/// <para><b>Non-finite feature values</b>: training and validation data with a NaN or ±∞ feature (or a |value| above
/// <see cref="FeatureInteractionTrainerOptions.MaxFeatureMagnitude"/>) are rejected by <c>Fit</c>, naming the column,
/// row and element. When scoring through ML.NET (<c>Transform</c>, a prediction engine, a saved and loaded model), a row
/// with a NaN or ±∞ in any feature column gets <c>Score</c> = NaN (binary classification: <c>Probability</c> = NaN and
/// <c>PredictedLabel</c> = false) and no exception, as ML.NET's own trainers propagate missing values; the other rows are
/// unaffected. Finite values are scored as they are, however large; far beyond the training range the score may
/// overflow to ±∞. <see cref="AfmTransformer.Explain"/> reads rows itself and rejects non-finite values with an
/// <see cref="InvalidOperationException"/>.</para>
/// </remarks>
public class FeatureInteractionTransformer : DeepRecTransformerBase
{
    private readonly FieldFeatureModule _module;
    private readonly Device _device;

    internal FeatureInteractionTransformer(MLContext mlContext, string modelName, FieldFeatureModule module, FieldFeatureLayout layout,
        FeatureInteractionTask task, IDataView trainData, TrainingReport report, Device device)
        : base(mlContext, BuildOnnx(modelName, module, layout, task),
               layout.Columns.ToDictionary(c => c.Name, c => c.Name),
               task == FeatureInteractionTask.Regression ? DeepRecScoreKind.Regression : DeepRecScoreKind.BinaryClassification, trainData)
    {
        ModelName = modelName;
        Task = task;
        _module = module;
        _device = device;
        Layout = layout;
        TrainingReport = report;
    }

    /// <summary>"NFM" or "AFM".</summary>
    public string ModelName { get; }

    /// <summary>Regression or binary classification.</summary>
    public FeatureInteractionTask Task { get; }

    /// <summary>The feature columns (fields) the model reads, in order.</summary>
    public IReadOnlyList<string> FeatureColumnNames => Layout.Columns.Select(c => c.Name).ToArray();

    /// <summary>Number of features (rows of the embedding table, one padding row included).</summary>
    public int FeatureCount => Layout.FeatureCount;

    /// <summary>Active-feature slots per row (one per key column; a vector column's largest non-zero count).</summary>
    public int SlotCount => Layout.SlotCount;

    /// <summary>Trainable parameters of the network.</summary>
    public long ParameterCount => _module.ParameterCount;

    /// <summary>Per-epoch loss, validation metric and timing of the training run.</summary>
    public TrainingReport TrainingReport { get; }

    internal FieldFeatureLayout Layout { get; }

    /// <summary>Every feature column must have the kind and size it had in training: a key column of the same
    /// cardinality, or a Vector&lt;Single&gt; of the same fixed size (a variable-size vector is rejected naming that size).</summary>
    private protected override void CheckInputSchema(DataViewSchema inputSchema) => Layout.CheckSchema(inputSchema, FieldFeatureLayout.TrainedOn);
    internal FieldFeatureModule Module => _module;
    internal Device Device => _device;

    /// <summary>Raw network outputs (regression value or logit) for every row, computed by TorchSharp in batches.</summary>
    internal float[] ScoreWithTorch(IDataView data)
    {
        var features = FieldFeatureReader.Read(data, FeatureColumnNames, null, FieldFeatureReader.LabelKind.None, Layout);
        using var scope = NewDisposeScope();
        _module.eval();
        return FeatureTensors.Predict(_module, FeatureTensors.From(features, _device));
    }

    /// <summary>Frees the TorchSharp network and the ONNX Runtime session.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _module.Dispose();
        base.Dispose(disposing);
    }

    internal static SchemaShape AppendOutputColumns(MLContext mlContext, SchemaShape input, FeatureInteractionTask task) =>
        OutputColumns.Append(mlContext, input, task == FeatureInteractionTask.Regression ? DeepRecScoreKind.Regression : DeepRecScoreKind.BinaryClassification);

    /// <summary>
    /// A bool [N,1] that is true for rows with a NaN or ±∞ in any vector column (key columns cannot hold one), or null
    /// without vector columns. Such rows score NaN whatever the network would make of them: without this a NaN could be
    /// dropped by the sparse columns' top-k or an infinity turn into ±∞ or a finite value, depending on the model.
    /// </summary>
    private static string? NonFiniteRows(OnnxGraphBuilder g, FieldFeatureLayout layout)
    {
        string? count = null;
        foreach (var c in layout.Columns.Where(c => c.Kind == FieldColumnKind.Vector))
        {
            // x − x is NaN exactly when x is NaN or ±∞.
            string bad = g.Cast(g.Node("IsNaN", new[] { g.Sub(c.Name, c.Name) }), OnnxElementType.Float);
            string perRow = g.ReduceSum(bad, new long[] { 1 }, keepDims: true);
            count = count == null ? perRow : g.Add(count, perRow);
        }
        return count == null ? null : g.Greater(count, g.ConstFloat(0));
    }

    private static byte[] BuildOnnx(string modelName, FieldFeatureModule module, FieldFeatureLayout layout, FeatureInteractionTask task)
    {
        var g = new OnnxGraphBuilder(modelName);
        var (indices, values) = layout.BuildOnnxInputs(g);
        string output = g.Reshape(module.ExportOnnx(g, indices, values), new long[] { -1, 1 });
        string? nonFinite = NonFiniteRows(g, layout);
        g.Identity(nonFinite == null ? output : g.Where(nonFinite, g.ConstFloat(float.NaN), output), "Score");
        g.AddOutput("Score", OnnxElementType.Float, -1, 1);
        if (task == FeatureInteractionTask.BinaryClassification)
        {
            // Clipped away from exactly 0 and 1: a float sigmoid saturates beyond |logit| ≈ 17, and ML.NET's log-loss
            // of a confident mistake would then be infinite.
            string probability = g.Node("Clip", new[] { g.Sigmoid(output), g.ConstFloat(1e-7f), g.ConstFloat(1 - 1e-7f) });
            g.Identity(nonFinite == null ? probability : g.Where(nonFinite, g.ConstFloat(float.NaN), probability), "Probability");
            g.AddOutput("Probability", OnnxElementType.Float, -1, 1);
        }
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = modelName,
            ["deeprec.task"] = task.ToString(),
            ["deeprec.feature_columns"] = string.Join(",", layout.Columns.Select(c => c.Name)),
            ["deeprec.feature_count"] = layout.FeatureCount.ToString(CultureInfo.InvariantCulture),
        });
    }
}
