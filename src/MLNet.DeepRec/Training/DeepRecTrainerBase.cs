using Microsoft.ML;

namespace MLNet.DeepRec.Training;

/// <summary>
/// What every MLNet.DeepRec estimator shares: validated options, the ML.NET context, a model name for logs, and
/// <c>Fit</c> with optional validation data (which drives early stopping and best-weight restore).
/// </summary>
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

    /// <summary>The options this trainer was created with (validated).</summary>
    private protected TOptions TrainerOptions { get; }

    /// <summary>Model name used in logs and exported metadata (e.g. "NeuMF").</summary>
    public string Name { get; }

    /// <summary>Trains on <paramref name="input"/> without validation data (all epochs run, last weights kept).</summary>
    public TTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>
    /// Trains on <paramref name="trainData"/>; with <paramref name="validationData"/> (transformed by the same fitted
    /// key mappings) the model's validation metric is computed after each epoch, drives early stopping, and the best
    /// epoch's weights are kept.
    /// </summary>
    public abstract TTransformer Fit(IDataView trainData, IDataView? validationData);

    /// <inheritdoc/>
    public abstract SchemaShape GetOutputSchema(SchemaShape inputSchema);
}
