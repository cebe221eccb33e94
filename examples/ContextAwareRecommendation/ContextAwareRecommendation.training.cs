// Model Builder-style training code: loading, featurization, the trainers with their settings, training, evaluation.
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;

namespace ContextAwareRecommendation;

public static partial class ContextAwareRecommender
{
    /// <summary>The Boolean label: did the user open the app?</summary>
    public const string LabelColumn = "Used";

    /// <summary>The categorical columns of the CSV; each is one field of the factorization machines.</summary>
    public static readonly string[] CsvFields = ["User", "App", "DayTime", "Weekday", "Weather"];

    /// <summary>
    /// The data the example works on, whatever its source: train / validation (early stopping) / test splits, the field
    /// columns, and whether those are text (CSV: still to be mapped to keys) or ready-made one-hot vectors (libFM).
    /// </summary>
    public sealed record Dataset(string Description, IDataView Train, IDataView Validation, IDataView Test, string[] Fields, bool Categorical);

    /// <summary>A CSV with the <see cref="ModelInput"/> columns, read through its LoadColumn attributes.</summary>
    public static Dataset LoadCsv(MLContext mlContext, string path, string description, int seed)
    {
        IDataView all = mlContext.Data.LoadFromTextFile<ModelInput>(path, separatorChar: ',', hasHeader: true);
        return Split(mlContext, all, description, CsvFields, categorical: true, seed);
    }

    /// <summary>
    /// A libFM file (<c>label idx:value …</c>, one feature per field per line, e.g. frappe): the library's loader infers
    /// the fields and gives one sparse one-hot <c>Vector&lt;Single&gt;</c> column per field, named by
    /// <paramref name="fieldNames"/> or "Field0", "Field1", ….
    /// </summary>
    public static Dataset LoadLibFm(MLContext mlContext, string path, string[]? fieldNames, int seed)
    {
        var data = mlContext.DeepRec().Data;
        LibFmLoaderOptions layout = data.InferLibFmFields(path);
        layout.LabelColumnName = LabelColumn;
        layout.BooleanLabel = true; // label > 0 → true (frappe's labels are ±1)
        int fieldCount = layout.FieldStarts!.Length;
        if (fieldNames != null && fieldNames.Length != fieldCount)
            throw new ArgumentException($"{path} has {fieldCount} fields but {fieldNames.Length} names were given.", nameof(fieldNames));
        string[] fields = fieldNames ?? Enumerable.Range(0, fieldCount).Select(f => $"Field{f}").ToArray();
        layout.FieldColumnNames = fields;
        IDataView all = data.LoadLibFm(path, layout);
        return Split(mlContext, all, $"{Path.GetFileName(path)} ({layout.FeatureCount} features in {fields.Length} fields)", fields, categorical: false, seed);
    }

    /// <summary>Random 72 / 8 / 20 split into train / validation / test, cached: every model reads the same rows.</summary>
    private static Dataset Split(MLContext mlContext, IDataView all, string description, string[] fields, bool categorical, int seed)
    {
        var trainTest = mlContext.Data.TrainTestSplit(all, testFraction: 0.2, seed: seed);
        var trainValidation = mlContext.Data.TrainTestSplit(trainTest.TrainSet, testFraction: 0.1, seed: seed);
        return new Dataset(description, mlContext.Data.Cache(trainValidation.TrainSet), mlContext.Data.Cache(trainValidation.TestSet),
            mlContext.Data.Cache(trainTest.TestSet), fields, categorical);
    }

    /// <summary>
    /// Featurization for NFM/AFM: every categorical column becomes a key column, in place (MapValueToKey), so the
    /// AFM explanations can name features "App=game-03". Values not seen in training map to key 0 and add nothing.
    /// libFM fields are already one-hot vectors, which NFM and AFM read as they are: nothing to do.
    /// </summary>
    public static IEstimator<ITransformer> KeyFeaturizer(MLContext mlContext, Dataset data) => data.Categorical
        ? mlContext.Transforms.Conversion.MapValueToKey(data.Fields.Select(f => new InputOutputColumnPair(f)).ToArray())
        : new EstimatorChain<ITransformer>();

    /// <summary>Featurization for ML.NET's own trainers, which take <c>Vector&lt;Single&gt;</c> columns: one-hot vectors, in place.</summary>
    public static IEstimator<ITransformer> OneHotFeaturizer(MLContext mlContext, Dataset data) => data.Categorical
        ? mlContext.Transforms.Categorical.OneHotEncoding(data.Fields.Select(f => new InputOutputColumnPair(f)).ToArray())
        : new EstimatorChain<ITransformer>();

    /// <summary>Settings shared by FM, NFM and AFM.</summary>
    private static T Common<T>(T options, Dataset data, int epochs, int seed) where T : FeatureInteractionTrainerOptions
    {
        options.FeatureColumnNames = data.Fields;
        options.LabelColumnName = LabelColumn;
        options.Task = FeatureInteractionTask.BinaryClassification; // Boolean label, log loss; Score, Probability, PredictedLabel
        options.Factors = 8; // embedding size; the generated data is small, and 16 overfitted its User × App pairs
        options.BatchSize = 512;
        options.NumberOfEpochs = epochs;
        options.EarlyStoppingPatience = 3; // on validation AUC; the best epoch's weights are kept
        options.Seed = seed;
        // Small batches of a small model: one libtorch thread is fastest here, and leaves the other cores alone.
        // Leave it at 0 (one thread per core) for large data.
        options.NumberOfThreads = 1;
        return options;
    }

    /// <summary>A factorization machine: NFM with no hidden layer and no batch norm (NFM-0) is exactly FM.</summary>
    public static NfmTrainer Fm(MLContext mlContext, Dataset data, int epochs, int seed) =>
        mlContext.DeepRec().Trainers.Nfm(Common(new NfmTrainer.Options
        {
            HiddenLayers = [], BatchNormalization = false, BiInteractionDropoutRate = 0.2, LearningRate = 0.01,
        }, data, epochs, seed));

    /// <summary>NFM: bi-interaction pooling, then one hidden layer of 64 (the paper's shape).</summary>
    public static NfmTrainer Nfm(MLContext mlContext, Dataset data, int epochs, int seed) =>
        mlContext.DeepRec().Trainers.Nfm(Common(new NfmTrainer.Options
        {
            HiddenLayers = [64], BiInteractionDropoutRate = 0.2, HiddenDropoutRate = 0.2, LearningRate = 0.005,
        }, data, epochs, seed));

    /// <summary>
    /// AFM: an attention network weighs every pair of features. Its embeddings start from the trained FM's
    /// (<c>PretrainedModel</c>), as the AFM paper does; that needs the same columns and <c>Factors</c>.
    /// </summary>
    public static AfmTrainer Afm(MLContext mlContext, Dataset data, FeatureInteractionTransformer pretrainedFm, int epochs, int seed) =>
        mlContext.DeepRec().Trainers.Afm(Common(new AfmTrainer.Options
        {
            AttentionSize = 16, DropoutRate = 0.2, LearningRate = 0.005, PretrainedModel = pretrainedFm,
        }, data, epochs, seed));

    /// <summary>
    /// Fits the featurizer on the training split, trains with early stopping on the validation split, and returns the
    /// whole chain (featurizer → model), ready for <c>mlContext.Model.Save</c>.
    /// </summary>
    public static TransformerChain<TModel> Train<TOptions, TModel>(MLContext mlContext, Dataset data, DeepRecTrainerBase<TOptions, TModel> trainer)
        where TOptions : DeepRecTrainerOptionsBase
        where TModel : class, ITransformer
    {
        ITransformer keys = KeyFeaturizer(mlContext, data).Fit(data.Train);
        TModel model = trainer.Fit(keys.Transform(data.Train), keys.Transform(data.Validation));
        return new TransformerChain<ITransformer>(keys).Append(model);
    }

    /// <summary>The no-interaction baseline: ML.NET's logistic regression on the concatenated one-hot fields.</summary>
    public static ITransformer TrainLogisticRegression(MLContext mlContext, Dataset data) =>
        OneHotFeaturizer(mlContext, data)
            .Append(mlContext.Transforms.Concatenate("Features", data.Fields))
            .Append(mlContext.BinaryClassification.Trainers.LbfgsLogisticRegression(LabelColumn, "Features"))
            .Fit(data.Train);

    /// <summary>ML.NET's field-aware factorization machine over the same fields (one-hot vectors), with its defaults.</summary>
    public static ITransformer TrainFieldAwareFm(MLContext mlContext, Dataset data) =>
        OneHotFeaturizer(mlContext, data)
            .Append(mlContext.BinaryClassification.Trainers.FieldAwareFactorizationMachine(data.Fields, LabelColumn))
            .Fit(data.Train);

    /// <summary>AUC, log loss, accuracy on the test split: the same ML.NET evaluator for every model.</summary>
    public static CalibratedBinaryClassificationMetrics Evaluate(MLContext mlContext, ITransformer model, Dataset data) =>
        mlContext.BinaryClassification.Evaluate(model.Transform(data.Test), LabelColumn);

    /// <summary>
    /// Which pairs of fields AFM relied on: the mean absolute contribution (and mean attention weight) of each field
    /// pair over the explained rows, largest first.
    /// </summary>
    public static IReadOnlyList<(string FieldPair, double MeanAbsContribution, double MeanWeight)> FieldPairImportance(IEnumerable<AfmExplanation> rows) =>
        rows.SelectMany(r => r.Pairs)
            .GroupBy(p => $"{p.FirstColumn} × {p.SecondColumn}")
            .Select(g => (FieldPair: g.Key, MeanAbsContribution: g.Average(p => (double)Math.Abs(p.Contribution)), MeanWeight: g.Average(p => (double)p.Weight)))
            .OrderByDescending(t => t.MeanAbsContribution)
            .ToList();
}
