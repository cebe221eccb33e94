using Microsoft.ML;
using Microsoft.ML.Trainers;

namespace MLNet.DeepRec.Training;

/// <summary>
/// What every MLNet.DeepRec estimator shares: validated options, the ML.NET context, a model name for logs, and
/// <c>Fit</c> with optional validation data (which drives early stopping and best-weight restore).
/// </summary>
/// <remarks>
/// <para>The trainer keeps a reference to its options object, not a copy: a field changed after the trainer was
/// created takes effect at the next <c>Fit</c>. The options are therefore validated twice, when the trainer is created
/// (so that a bad literal fails where it is written) and again at the start of every <c>Fit</c>, before any data is read
/// or any epoch runs (so that a later change such as <c>BatchSize = 0</c> is an <see cref="ArgumentException"/>, not an
/// endless loop or an untrained model). Changing the options while <c>Fit</c> runs is not supported.</para>
/// <para><c>Fit</c> then checks the schemas of the training and validation data (column presence, key types and their
/// cardinalities, vector sizes), again before any epoch, and only then trains (<see cref="FitCore"/>).</para>
/// </remarks>
/// <typeparam name="TOptions">The model's options.</typeparam>
/// <typeparam name="TTransformer">The transformer <c>Fit</c> returns.</typeparam>
public abstract class DeepRecTrainerBase<TOptions, TTransformer> : IEstimator<TTransformer>
    where TOptions : DeepRecTrainerOptionsBase
    where TTransformer : class, ITransformer
{
    private protected DeepRecTrainerBase(MLContext mlContext, TOptions options, string name)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Context = mlContext;
        TrainerOptions = options;
        Name = name;
    }

    private protected MLContext Context { get; }

    /// <summary>The options this trainer was created with; validated at construction and again by every <c>Fit</c>.</summary>
    private protected TOptions TrainerOptions { get; }

    /// <summary>Model name used in logs and exported metadata (e.g. "NeuMF").</summary>
    public string Name { get; }

    /// <summary>
    /// ML.NET's description of the trainer: no normalization needed (<see cref="TrainerInfo.NeedNormalization"/> false:
    /// embeddings take keys, and feature values are used as given) and no caching wanted
    /// (<see cref="TrainerInfo.WantCaching"/> false: the training data is read once into tensors). ML.NET's
    /// <see cref="TrainerInfo"/> has no public constructor, so this is the instance of ML.NET's own Prior trainer, which
    /// declares exactly these two values (see docs/architecture.md).
    /// </summary>
    public TrainerInfo Info => s_info;

    private static readonly TrainerInfo s_info = new MLContext().BinaryClassification.Trainers.Prior().Info;

    /// <summary>Trains on <paramref name="input"/>, with the options' <see cref="DeepRecTrainerOptionsBase.ValidationSet"/>
    /// as validation data when it is set (this is the overload a pipeline calls); without it all epochs run and the last
    /// weights are kept.</summary>
    public TTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>
    /// Trains on <paramref name="trainData"/>; with <paramref name="validationData"/> (transformed by the same fitted
    /// key mappings; when null, the options' <see cref="DeepRecTrainerOptionsBase.ValidationSet"/>) the model's validation metric is computed after each epoch, drives early stopping, and the best
    /// epoch's weights are kept.
    /// </summary>
    /// <remarks>Before any training the options are validated again (they may have changed since the trainer was
    /// created) and the columns of both data views are checked; see the class remarks.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="trainData"/> is null.</exception>
    /// <exception cref="ArgumentException">An option is out of range or conflicts with another (the message names it),
    /// or a column is missing or has the wrong type.</exception>
    /// <exception cref="DllNotFoundException">libtorch or ONNX Runtime's native library cannot be loaded (the message names
    /// the package to add); raised before any training.</exception>
    public TTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        TrainerOptions.Validate();
        validationData ??= TrainerOptions.ValidationSet;
        CheckSchema(trainData.Schema, validationData?.Schema);
        // The native libraries are loaded now, so that a missing package fails here and not after the last epoch (ONNX
        // Runtime is first needed to build the transformer that Fit returns).
        NativeRuntimes.EnsureForTraining();
        return FitCore(trainData, validationData);
    }

    /// <summary>
    /// Checks the columns the model reads in the training schema and, when given, the validation schema (same key
    /// cardinalities as the training data), throwing an <see cref="ArgumentException"/> that names the column. Runs
    /// before <see cref="FitCore"/>, so before any data is read.
    /// </summary>
    private protected abstract void CheckSchema(DataViewSchema trainSchema, DataViewSchema? validationSchema);

    /// <summary>The model's training, called by <c>Fit</c> with validated options and checked schemas.</summary>
    /// <param name="trainData">Training data (not null).</param>
    /// <param name="validationData">Optional validation data.</param>
    /// <returns>The trained model.</returns>
    protected abstract TTransformer FitCore(IDataView trainData, IDataView? validationData);

    /// <inheritdoc/>
    public abstract SchemaShape GetOutputSchema(SchemaShape inputSchema);
}
