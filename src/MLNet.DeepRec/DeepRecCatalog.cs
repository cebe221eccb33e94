using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace MLNet.DeepRec;

/// <summary>Entry point: <c>mlContext.DeepRec()</c>.</summary>
public static class MLContextDeepRecExtensions
{
    /// <summary>Returns the MLNet.DeepRec catalog (trainers, data tooling, top-K evaluation) for this context.</summary>
    public static DeepRecCatalog DeepRec(this MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return new DeepRecCatalog(mlContext);
    }
}

/// <summary>The MLNet.DeepRec catalog, reached through <c>mlContext.DeepRec()</c>.</summary>
public sealed class DeepRecCatalog
{
    internal DeepRecCatalog(MLContext mlContext)
    {
        Context = mlContext;
        Trainers = new DeepRecTrainers(mlContext);
        Data = new DeepRecDataCatalog(mlContext);
        Evaluation = new DeepRecEvaluationCatalog(mlContext);
    }

    internal MLContext Context { get; }

    /// <summary>Deep recommender trainers (NeuMF family, MF, …).</summary>
    public DeepRecTrainers Trainers { get; }

    /// <summary>Loaders, splitters, negative samplers and synthetic data for recommendation.</summary>
    public DeepRecDataCatalog Data { get; }

    /// <summary>Top-K evaluation (HR, NDCG, MRR, Recall, Precision, MAP, coverage) under sampled or full-ranking protocols.</summary>
    public DeepRecEvaluationCatalog Evaluation { get; }
}

/// <summary>Trainers of MLNet.DeepRec. Each model adds its catalog methods in its own file.</summary>
public sealed partial class DeepRecTrainers
{
    internal DeepRecTrainers(MLContext mlContext) { Context = mlContext; Environment = mlContext; }
    internal MLContext Context { get; }
    internal IHostEnvironment Environment { get; }
}

/// <summary>Data tooling for recommendation: loaders, splitters, negative samplers, synthetic data.</summary>
public sealed partial class DeepRecDataCatalog
{
    internal DeepRecDataCatalog(MLContext mlContext) { Context = mlContext; }
    internal MLContext Context { get; }
}

/// <summary>Top-K evaluation of recommenders.</summary>
public sealed partial class DeepRecEvaluationCatalog
{
    internal DeepRecEvaluationCatalog(MLContext mlContext) { Context = mlContext; }
    internal MLContext Context { get; }
}
