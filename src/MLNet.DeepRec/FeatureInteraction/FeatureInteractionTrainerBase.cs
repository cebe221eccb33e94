using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>What a feature-interaction model (NFM, AFM) predicts.</summary>
public enum FeatureInteractionTask
{
    /// <summary>A numeric target (Single label), trained with squared loss; output <c>Score</c>. RMSE is the NFM/AFM papers' metric.</summary>
    Regression,
    /// <summary>
    /// A Boolean label (implicit feedback, CTR), trained with log loss; outputs <c>Score</c> (the logit), <c>Probability</c>
    /// and <c>PredictedLabel</c>, ready for <c>mlContext.BinaryClassification.Evaluate</c>.
    /// </summary>
    BinaryClassification,
}

/// <summary>Options shared by the feature-interaction trainers (NFM, AFM).</summary>
/// <remarks>Changed defaults of <see cref="DeepRecTrainerOptionsBase"/>: <c>BatchSize</c> 512, <c>LearningRate</c> 0.002.</remarks>
public abstract class FeatureInteractionTrainerOptions : DeepRecTrainerOptionsBase
{
    /// <summary>Creates options with the defaults documented on each field.</summary>
    protected FeatureInteractionTrainerOptions()
    {
        BatchSize = 512;
        LearningRate = 0.002;
    }

    /// <summary>
    /// Largest |feature value| accepted in training and validation data: 1,000,000. Larger values make the pairwise
    /// products x_i·x_j·⟨v_i, v_j⟩ overflow float32 or swamp every other feature (a value of 1e30 either gives NaN or
    /// scores of 1e27), so such data is rejected with the column, row and element, and a hint to normalise it.
    /// </summary>
    public const float MaxFeatureMagnitude = 1e6f;

    /// <summary>
    /// The feature columns; each is a field. A column is either a scalar <c>UInt32</c> key column (from
    /// <c>MapValueToKey</c>: one categorical feature with x = 1; key 0 = missing/unseen contributes nothing) or a
    /// known-size <c>Vector&lt;Single&gt;</c> (one-hot or numeric, as ML.NET's <c>FieldAwareFactorizationMachine</c>
    /// takes: every non-zero element is a feature with x = its value), including a single sparse libFM-style vector
    /// holding every feature. Values must be finite and within ±<see cref="MaxFeatureMagnitude"/> in training and
    /// validation data. Default { "Features" }.
    /// </summary>
    public string[] FeatureColumnNames = { "Features" };

    /// <summary>Label column: Single for <see cref="FeatureInteractionTask.Regression"/>, Boolean for
    /// <see cref="FeatureInteractionTask.BinaryClassification"/>. Default "Label".</summary>
    public string LabelColumnName = "Label";

    /// <summary>Regression (squared loss) or binary classification (log loss). Default <see cref="FeatureInteractionTask.Regression"/>.</summary>
    public FeatureInteractionTask Task = FeatureInteractionTask.Regression;

    /// <summary>Embedding size k of every feature, 1..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>. Default 64.</summary>
    public int Factors = NfmTrainer.Defaults.Factors;

    /// <summary>
    /// A trained model (typically an FM: <see cref="NfmTrainer"/> with no hidden layers and no batch norm) whose feature
    /// embeddings, linear weights and global bias initialise this model, as both papers do (NFM §4, AFM §4.1:
    /// "we initialise the feature embeddings with FM's"); the rest of the network starts as usual and everything is
    /// trained. It must read the same feature columns with the same feature count and <see cref="Factors"/>; its
    /// weights are copied, not shared. Default null (random N(0, 0.01²) embeddings, zero linear weights, w₀ at the
    /// label mean / prior log-odds).
    /// </summary>
    public FeatureInteractionTransformer? PretrainedModel;

    internal override void Validate()
    {
        base.Validate();
        if (FeatureColumnNames == null || FeatureColumnNames.Length == 0) throw new ArgumentException("FeatureColumnNames must name at least one column.", nameof(FeatureColumnNames));
        foreach (var name in FeatureColumnNames)
        {
            if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("FeatureColumnNames contains an empty name.", nameof(FeatureColumnNames));
            if (name is "Score" or "Probability" or "PredictedLabel") throw new ArgumentException($"'{name}' is an output column name and cannot be a feature column.", nameof(FeatureColumnNames));
        }
        if (FeatureColumnNames.Distinct(StringComparer.Ordinal).Count() != FeatureColumnNames.Length) throw new ArgumentException($"FeatureColumnNames lists a column twice: {string.Join(", ", FeatureColumnNames)}.", nameof(FeatureColumnNames));
        CheckColumnName(LabelColumnName, nameof(LabelColumnName));
        if (FeatureColumnNames.Contains(LabelColumnName)) throw new ArgumentException($"The label column '{LabelColumnName}' is also listed as a feature column.", nameof(LabelColumnName));
        if (!Enum.IsDefined(Task)) throw new ArgumentOutOfRangeException(nameof(Task), Task, "Unknown task.");
        CheckWidth(Factors, nameof(Factors));
    }
}

/// <summary>
/// The shared estimator of the feature-interaction models: reads the feature columns and the label once into
/// [N, F] index/value tensors, trains the model's module with the shared <see cref="TrainingCore"/> (squared loss or
/// log loss; validation −RMSE or AUC for early stopping) and returns the model's transformer, scored by ONNX Runtime.
/// </summary>
/// <typeparam name="TOptions">The model's options.</typeparam>
/// <typeparam name="TTransformer">The transformer it returns.</typeparam>
public abstract class FeatureInteractionTrainerBase<TOptions, TTransformer> : DeepRecTrainerBase<TOptions, TTransformer>
    where TOptions : FeatureInteractionTrainerOptions
    where TTransformer : FeatureInteractionTransformer
{
    private protected FeatureInteractionTrainerBase(MLContext mlContext, TOptions options, string name) : base(mlContext, options, name) { }

    private protected abstract FieldFeatureModule CreateModule(FieldFeatureLayout layout);

    private protected abstract TTransformer CreateTransformer(FieldFeatureModule module, FieldFeatureLayout layout, IDataView trainData, TrainingReport report, Device device);

    private FieldFeatureReader.LabelKind LabelKind => TrainerOptions.Task == FeatureInteractionTask.Regression ? FieldFeatureReader.LabelKind.Regression : FieldFeatureReader.LabelKind.Binary;


    /// <summary>
    /// Trains on <paramref name="trainData"/>. When <paramref name="validationData"/> is given (same columns), the
    /// validation metric (−RMSE for regression, AUC for binary classification; higher is better) is computed after each
    /// epoch, drives early stopping (<c>EarlyStoppingPatience</c>) and the best epoch's weights are kept.
    /// </summary>
    /// <exception cref="ArgumentException">A column is missing or has the wrong type (the message names it).</exception>
    /// <exception cref="InvalidOperationException">A value is NaN/infinite or a vector has the wrong size (the message names column and row).</exception>
    protected override TTransformer FitCore(IDataView trainData, IDataView? validationData)
    {
        var o = TrainerOptions;
        var host = ((IHostEnvironment)Context).Register(Name);
        FieldFeatureData? train = FieldFeatureReader.Read(trainData, o.FeatureColumnNames, o.LabelColumnName, LabelKind, null, maxMagnitude: FeatureInteractionTrainerOptions.MaxFeatureMagnitude);
        if (train.RowCount == 0) throw new InvalidOperationException("The training data has no rows.");
        var layout = train.Layout;
        FieldFeatureData? valid = validationData == null ? null
            : FieldFeatureReader.Read(validationData, o.FeatureColumnNames, o.LabelColumnName, LabelKind, layout, maxMagnitude: FeatureInteractionTrainerOptions.MaxFeatureMagnitude);

        using var ch = host.Start("Setup");
        var device = DeviceSelector.Select(Context, ch);
        var module = SeededInitialization.Create(o.Seed, () => CreateModule(layout));
        try
        {
            if (o.PretrainedModel is { } pretrained)
            {
                if (!pretrained.FeatureColumnNames.SequenceEqual(layout.Columns.Select(c => c.Name)) || pretrained.FeatureCount != layout.FeatureCount)
                    throw new ArgumentException($"PretrainedModel reads columns [{string.Join(", ", pretrained.FeatureColumnNames)}] with {pretrained.FeatureCount} features; " +
                        $"this trainer reads [{string.Join(", ", layout.Columns.Select(c => c.Name))}] with {layout.FeatureCount}. Both must be the same.", nameof(o.PretrainedModel));
                if (pretrained.Module.Factors != o.Factors)
                    throw new ArgumentException($"PretrainedModel has {pretrained.Module.Factors} factors; Factors is {o.Factors}. They must be equal.", nameof(o.PretrainedModel));
                module.LoadFeatureWeights(pretrained.Module); // copy_ works across devices
                ch.Info(MessageSensitivity.None, "{0}", $"{Name}: feature embeddings, linear weights and global bias initialised from the pre-trained {pretrained.ModelName}.");
            }
            else
            {
                double mean = train.Labels!.Average(l => (double)l);
                module.InitializeGlobalBias(o.Task == FeatureInteractionTask.Regression ? mean : Math.Log(Math.Clamp(mean, 1e-6, 1 - 1e-6) / (1 - Math.Clamp(mean, 1e-6, 1 - 1e-6))));
            }
            module.to(device);
            ch.Info(MessageSensitivity.None, "{0}", $"{Name}: {train.RowCount} rows, {layout.Columns.Count} columns, {layout.SlotCount} feature slots, {layout.FeatureCount} features, {module.ParameterCount} parameters.");

            TrainingReport report;
            using (var scope = NewDisposeScope())
            {
                // Once the rows are tensors the managed arrays are dropped, so the data is held once, not twice.
                var data = FeatureTensors.From(train, device);
                float maxFeature = train.MaxAbsValue;
                train = null;
                ValidationMetric? validation = null;
                if (valid != null)
                {
                    var v = FeatureTensors.From(valid, device);
                    var labels = valid.Labels!;
                    valid = null;
                    validation = o.Task == FeatureInteractionTask.Regression
                        ? new ValidationMetric("-RMSE", () => -Rmse(FeatureTensors.Predict(module, v), labels))
                        : new ValidationMetric("AUC", () => Auc(FeatureTensors.Predict(module, v), labels));
                }
                report = TrainingCore.Train(host, new FeatureInteractionObjective(module, o.Task, maxFeature), new FeatureBatchSource(data, o.BatchSize), o, device, validation);
            }
            return CreateTransformer(module, layout, trainData, report, device);
        }
        catch
        {
            // Not left to the finalizer: on a GPU the weights and optimizer state would hold device memory until a GC.
            module.Dispose();
            throw;
        }
    }

    /// <summary>Feature columns (key or fixed-size Vector&lt;Single&gt;) and the label the task needs; the validation
    /// data's feature columns must have the training data's kinds and sizes.</summary>
    private protected override void CheckSchema(DataViewSchema trainSchema, DataViewSchema? validationSchema)
    {
        var o = TrainerOptions;
        var described = FieldFeatureLayout.Describe(trainSchema, o.FeatureColumnNames);
        FieldFeatureReader.CheckLabel(trainSchema, o.LabelColumnName, LabelKind);
        if (validationSchema == null) return;
        FieldFeatureLayout.CheckColumns(validationSchema, described.Select(d => (d.Name, d.Kind, d.Size)).ToList(), "the training data has");
        FieldFeatureReader.CheckLabel(validationSchema, o.LabelColumnName, LabelKind);
    }

    /// <summary>Checks the feature and label columns; adds <c>Score</c> (regression) or <c>Score</c>, <c>Probability</c>
    /// and <c>PredictedLabel</c> (binary classification).</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        foreach (string name in TrainerOptions.FeatureColumnNames)
        {
            var found = inputSchema.Where(c => c.Name == name).ToArray();
            if (found.Length == 0) throw new ArgumentException($"Feature column '{name}' was not found in the input schema.");
            var col = found[^1];
            bool key = col.IsKey && col.Kind == SchemaShape.Column.VectorKind.Scalar;
            bool vector = col.Kind == SchemaShape.Column.VectorKind.Vector && col.ItemType == NumberDataViewType.Single && !col.IsKey;
            if (!key && !vector)
                throw new ArgumentException($"Feature column '{name}' must be a scalar key column (MapValueToKey) or a known-size Vector<Single>; it is {col.ItemType} ({col.Kind}).");
        }
        return FeatureInteractionTransformer.AppendOutputColumns(Context, inputSchema, TrainerOptions.Task);
    }

    private static double Rmse(float[] predictions, float[] labels)
    {
        double sum = 0;
        for (int i = 0; i < labels.Length; i++) { double d = predictions[i] - labels[i]; sum += d * d; }
        return Math.Sqrt(sum / Math.Max(1, labels.Length));
    }

    /// <summary>Area under the ROC curve with tied scores sharing their mean rank.</summary>
    internal static double Auc(float[] scores, float[] labels)
    {
        int n = scores.Length;
        var order = Enumerable.Range(0, n).ToArray();
        Array.Sort(scores.ToArray(), order);
        double positives = 0, rankSum = 0;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && scores[order[j + 1]] == scores[order[i]]) j++;
            double rank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) if (labels[order[k]] > 0.5f) { positives++; rankSum += rank; }
            i = j + 1;
        }
        double negatives = n - positives;
        return positives == 0 || negatives == 0 ? 0.5 : (rankSum - positives * (positives + 1) / 2) / (positives * negatives);
    }
}

/// <summary>A batch: int64 [n, F] indices, float [n, F] values (null when every value of the data is 1), float [n] labels.</summary>
internal sealed record FeatureBatch(Tensor Indices, Tensor? Values, Tensor Labels);

/// <summary>
/// A data set as tensors on the training device: int32 [N, F] indices (half the memory of int64; they are widened a
/// chunk at a time), float [N, F] values or null when every value is 1 (one-hot data), float [N] labels.
/// </summary>
internal sealed record FeatureTensors(Tensor Indices, Tensor? Values, Tensor? Labels)
{
    public long RowCount => Indices.shape[0];

    public static FeatureTensors From(FieldFeatureData data, Device device)
    {
        long n = data.RowCount, f = data.Layout.SlotCount;
        return new FeatureTensors(
            tensor(data.Indices, new[] { n, f }, dtype: int32).to(device),
            data.AllOnes ? null : tensor(data.Values, new[] { n, f }, dtype: float32).to(device),
            data.Labels == null ? null : tensor(data.Labels, dtype: float32).to(device));
    }

    /// <summary>
    /// Network outputs for every row under no_grad (the caller sets eval mode), in chunks of
    /// <see cref="FieldFeatureModule.PredictionChunkRows"/> so that the intermediate tensors stay small.
    /// </summary>
    public static float[] Predict(FieldFeatureModule module, FeatureTensors data)
    {
        using var _ = no_grad();
        long n = data.RowCount, chunk = module.PredictionChunkRows;
        var result = new float[n];
        for (long start = 0; start < n; start += chunk)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(chunk, n - start);
            var indices = data.Indices.narrow(0, start, count).to(int64);
            var y = module.Output(indices, data.Values?.narrow(0, start, count)).to(float32).cpu();
            y.data<float>().CopyTo(result, (int)start);
        }
        return result;
    }
}

/// <summary>
/// Each epoch: all rows in a fresh random order, gathered a chunk at a time (<see cref="IEpochData{TBatch}.PrepareChunk"/>):
/// an epoch holds the permutation (8 bytes per row) and one chunk of shuffled int64 indices, values and labels, not a
/// shuffled copy of the whole data set. Batches are views of the chunk.
/// </summary>
internal sealed class FeatureBatchSource : IBatchSource<FeatureBatch>
{
    /// <summary>Rows per chunk (rounded to whole batches): large enough that one gather serves many steps, small
    /// enough that the chunk is a few MB whatever the data size.</summary>
    internal const long ChunkRows = 16384;

    private readonly FeatureTensors _data;
    private readonly long _chunk;

    public FeatureBatchSource(FeatureTensors data, int batchSize)
    {
        _data = data;
        _chunk = Math.Max(1, ChunkRows / batchSize) * batchSize;
    }

    public IEpochData<FeatureBatch> PrepareEpoch(int epoch, Generator generator) =>
        new ShuffledRowsEpoch<FeatureBatch>(randperm(_data.RowCount, device: _data.Indices.device, generator: generator),
            [_data.Indices, _data.Values, _data.Labels!], _chunk, rows => new(rows[0]!, rows[1], rows[2]!));
}

/// <summary>Squared loss (regression) or log loss on logits (binary), plus the module's own regularisation term.</summary>
internal sealed class FeatureInteractionObjective : ITrainingObjective<FeatureBatch>
{
    private readonly FieldFeatureModule _module;
    private readonly FeatureInteractionTask _task;
    private readonly float _maxFeature;
    public FeatureInteractionObjective(FieldFeatureModule module, FeatureInteractionTask task, float maxFeature) { _module = module; _task = task; _maxFeature = maxFeature; }
    public nn.Module Module => _module;

    public string DivergenceHint =>
        $"the largest |feature value| in the training data is {_maxFeature.ToString("G4", System.Globalization.CultureInfo.InvariantCulture)}" +
        (_maxFeature > 10 ? " (standardise numeric features, e.g. with mlContext.Transforms.NormalizeMeanVariance)" : "");

    public Tensor ComputeLoss(FeatureBatch batch)
    {
        var output = _module.Output(batch.Indices, batch.Values);
        var loss = _task == FeatureInteractionTask.Regression
            ? nn.functional.mse_loss(output, batch.Labels)
            : nn.functional.binary_cross_entropy_with_logits(output, batch.Labels);
        return _module.RegularizationLoss() is { } extra ? loss.Plus(extra) : loss;
    }
}
