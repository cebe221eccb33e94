using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Training;

/// <summary>The training data of one epoch, already on the training device; batches are cheap views of it.</summary>
/// <typeparam name="TBatch">The model's batch type.</typeparam>
internal interface IEpochData<out TBatch>
{
    /// <summary>Number of training samples in this epoch.</summary>
    long SampleCount { get; }

    /// <summary>The samples [start, start + count) of this epoch as a batch; always inside the chunk prepared last.</summary>
    TBatch Slice(long start, long count);

    /// <summary>
    /// Samples per chunk. The core asks for one chunk at a time (<see cref="PrepareChunk"/>) and disposes the chunk's
    /// tensors before the next, so an epoch's working memory follows the chunk, not the epoch (e.g. negatives are drawn
    /// per chunk). Default: the whole epoch is one chunk.
    /// </summary>
    long ChunkSampleCount => SampleCount;

    /// <summary>Materialises samples [start, start + count); tensors it creates belong to the caller's dispose scope.</summary>
    void PrepareChunk(long start, long count) { }
}

/// <summary>Supplies shuffled (and, where the model needs it, freshly negative-sampled) training data per epoch.</summary>
/// <typeparam name="TBatch">The model's batch type.</typeparam>
internal interface IBatchSource<out TBatch>
{
    /// <summary>Builds epoch <paramref name="epoch"/>'s data. Tensors it creates belong to the caller's dispose scope.</summary>
    IEpochData<TBatch> PrepareEpoch(int epoch, Generator generator);
}

/// <summary>What a model contributes to training: a loss for a batch (RecBole's calculate_loss).</summary>
/// <typeparam name="TBatch">The model's batch type.</typeparam>
internal interface ITrainingObjective<in TBatch>
{
    /// <summary>The module whose parameters are optimised.</summary>
    nn.Module Module { get; }

    /// <summary>Mean loss over the batch, as a scalar tensor attached to the autograd graph.</summary>
    Tensor ComputeLoss(TBatch batch);

    /// <summary>
    /// What the data may contribute to a divergence, appended to the message when the loss becomes NaN or infinite
    /// (e.g. "the largest |feature value| in the training data is 3e+05"); null when the data cannot be the cause.
    /// </summary>
    string? DivergenceHint => null;
}

/// <summary>A validation metric evaluated after each epoch (higher is better), e.g. NDCG@10 on held-out interactions.</summary>
internal sealed class ValidationMetric
{
    public ValidationMetric(string name, Func<double> evaluate) { Name = name; Evaluate = evaluate; }
    public string Name { get; }
    public Func<double> Evaluate { get; }

    /// <summary>
    /// NDCG@K of the validation interactions under <paramref name="protocol"/>, the ranking trainers' early-stopping
    /// metric: sampled (each target against <paramref name="negatives"/> random unseen items) or full ranking (against
    /// every item the user has not seen in training).
    /// </summary>
    public static ValidationMetric TopKNdcg(Evaluation.IItemScorer scorer, Data.KeyedInteractions validation, Data.UserItemSet seen,
        int k, Evaluation.RankingProtocol protocol, int negatives, int seed, int userBatchSize)
    {
        var options = new Evaluation.TopKEvaluationOptions { K = k, NegativesPerPositive = negatives, Protocol = protocol, Seed = seed, UserBatchSize = userBatchSize };
        string name = protocol == Evaluation.RankingProtocol.FullRanking ? $"NDCG@{k} (full ranking)" : $"NDCG@{k} (sampled, {negatives} negatives)";
        return new ValidationMetric(name, () => Evaluation.TopKEvaluator.Evaluate(scorer, validation, seen, options).Ndcg);
    }
}

/// <summary>
/// The one training loop of the library: optimizer, epochs, shuffling, early stopping with best-weight restore,
/// seeding, logging through ML.NET's channels, progress and cancellation. Models only supply an
/// <see cref="ITrainingObjective{TBatch}"/> and an <see cref="IBatchSource{TBatch}"/>.
/// </summary>
internal static class TrainingCore
{
    /// <summary>
    /// Steps between forced gen-0 collections. TorchSharp turns each numeric argument of a tensor call (the optimizer's
    /// betas and learning rate, the implicit alpha of a + b, dropout rates) into a native Scalar that only the
    /// finalizer frees. .NET sees none of that memory and rarely collects, so these small blocks pile up among
    /// libtorch's large activation buffers in glibc's heap and keep freed buffers from being reused. Measured on frappe
    /// (AFM, 64 factors, batch 512, one thread): the process grew by ~8 MB per step without collections and stayed flat
    /// with a gen-0 collection every 32 steps, which also made steps faster (fewer page faults); the frappe benchmark's
    /// peak went from 8.7 GB to 1.0 GB. Collected here, on the training thread between steps, where no native call is
    /// in flight; a gen-0 collection costs well under a millisecond.
    /// </summary>
    internal const int StepsPerCollection = 32;

    public static TrainingReport Train<TBatch>(IHost host, ITrainingObjective<TBatch> objective, IBatchSource<TBatch> source,
        DeepRecTrainerOptionsBase options, Device device, ValidationMetric? validation)
        => Train(host, objective, source, options, device, validation, null, out _);

    /// <summary>
    /// As above, resuming Adam from <paramref name="initialState"/> when its shapes match, and returning the final
    /// optimizer state (Adam only) for checkpoints.
    /// </summary>
    public static TrainingReport Train<TBatch>(IHost host, ITrainingObjective<TBatch> objective, IBatchSource<TBatch> source,
        DeepRecTrainerOptionsBase options, Device device, ValidationMetric? validation, OptimizerState? initialState, out OptimizerState? finalState)
    {
        // libtorch's thread count is process-wide: set it for this training only and give the caller's back after.
        int previousThreads = torch.get_num_threads();
        if (options.NumberOfThreads > 0) torch.set_num_threads(options.NumberOfThreads);
        try
        {
            return TrainWithThreadsSet(host, objective, source, options, device, validation, initialState, out finalState);
        }
        finally
        {
            if (options.NumberOfThreads > 0 && torch.get_num_threads() != previousThreads) torch.set_num_threads(previousThreads);
        }
    }

    private static TrainingReport TrainWithThreadsSet<TBatch>(IHost host, ITrainingObjective<TBatch> objective, IBatchSource<TBatch> source,
        DeepRecTrainerOptionsBase options, Device device, ValidationMetric? validation, OptimizerState? initialState, out OptimizerState? finalState)
    {
        var module = objective.Module;
        using var optimizer = StepOptimizer.Create(module, options);
        finalState = null;
        using var generator = new Generator((ulong)options.Seed, device.type == DeviceType.CUDA ? device : null);
        // Dropout draws from this fit's generator, not libtorch's process-wide one, so that fits running at the same time
        // in one process do not take each other's random numbers (docs/reliability.md#4-determinism).
        var dropouts = module.modules().OfType<Models.FastDropout>().ToArray();
        foreach (var dropout in dropouts) dropout.Generator = generator;
        using var releaseGenerator = new DropoutGeneratorRelease(dropouts);
        using var ch = host.Start("Training");
        if (initialState != null)
        {
            bool resumed = optimizer is IAdamState adam && adam.TryImportState(initialState);
            ch.Info(MessageSensitivity.None, "{0}", resumed
                ? $"Resuming Adam from step {initialState.Step}."
                : "The saved optimizer state does not fit this run (other optimizer or changed vocabulary); the optimizer starts afresh.");
        }
        using var progress = host.StartProgressChannel("Training");

        var epochs = new List<EpochReport>();
        long steps = 0;
        int currentEpoch = 0;
        double currentLoss = double.NaN;
        progress.SetHeader(new ProgressHeader(new[] { "Loss" }, new[] { "Epoch" }), e =>
        {
            e.SetProgress(0, currentEpoch, options.NumberOfEpochs);
            e.SetMetric(0, currentLoss);
        });

        Dictionary<string, Tensor>? best = null;
        double bestMetric = double.NegativeInfinity;
        int bestEpoch = 0, epochsWithoutImprovement = 0;
        var total = Stopwatch.StartNew();
        try
        {
            for (int epoch = 1; epoch <= options.NumberOfEpochs; epoch++)
            {
                options.CancellationToken.ThrowIfCancellationRequested();
                currentEpoch = epoch;
                var watch = Stopwatch.StartNew();
                module.train();
                long samples;
                double meanLoss, dataSeconds;
                using (var epochScope = NewDisposeScope())
                {
                    var data = source.PrepareEpoch(epoch, generator);
                    dataSeconds = watch.Elapsed.TotalSeconds;
                    samples = data.SampleCount;
                    if (samples == 0) throw new InvalidOperationException("The training data produced no samples for an epoch.");
                    double lossSum = 0;
                    using var lossOnDevice = device.type == DeviceType.CPU ? null : zeros(1, dtype: float32, device: device);
                    long chunkSize = Math.Max(1, data.ChunkSampleCount);
                    for (long chunkStart = 0; chunkStart < samples; chunkStart += chunkSize)
                    {
                        using var chunkScope = NewDisposeScope();
                        long chunkEnd = Math.Min(samples, chunkStart + chunkSize);
                        var chunkWatch = Stopwatch.StartNew();
                        data.PrepareChunk(chunkStart, chunkEnd - chunkStart);
                        dataSeconds += chunkWatch.Elapsed.TotalSeconds;
                        for (long start = chunkStart; start < chunkEnd; start += options.BatchSize)
                        {
                            options.CancellationToken.ThrowIfCancellationRequested();
                            using var stepScope = NewDisposeScope();
                            long count = Math.Min(options.BatchSize, chunkEnd - start);
                            optimizer.ZeroGrad();
                            var loss = objective.ComputeLoss(data.Slice(start, count));
                            loss.backward();
                            optimizer.Step();
                            // On the CPU one scalar read per step is the cheapest; on a GPU it would synchronise every
                            // step, so there the sum stays on the device.
                            if (lossOnDevice is null) lossSum += loss.item<float>() * (double)count;
                            else
                            {
                                using Scalar weight = count; // alive until the call returns (see FlatAdam.Step)
                                lossOnDevice.add_(loss.detach(), alpha: weight);
                            }
                            if (++steps % StepsPerCollection == 0) GC.Collect(0, GCCollectionMode.Forced, blocking: true);
                        }
                    }
                    meanLoss = (lossOnDevice is null ? lossSum : lossOnDevice.item<float>()) / samples;
                }
                if (double.IsNaN(meanLoss) || double.IsInfinity(meanLoss))
                    throw Diverged(epoch, meanLoss, options, objective.DivergenceHint);
                double trainSeconds = watch.Elapsed.TotalSeconds;
                currentLoss = meanLoss;

                double? metric = null;
                bool improved = false;
                if (validation != null)
                {
                    module.eval();
                    using (no_grad()) metric = validation.Evaluate();
                    if (metric > bestMetric)
                    {
                        improved = true;
                        bestMetric = metric.Value;
                        bestEpoch = epoch;
                        epochsWithoutImprovement = 0;
                        ReplaceSnapshot(ref best, module);
                    }
                    else epochsWithoutImprovement++;
                }

                var report = new EpochReport(epoch, meanLoss, metric, trainSeconds, watch.Elapsed.TotalSeconds, samples / trainSeconds, dataSeconds);
                epochs.Add(report);
                string metricText = metric == null ? "" : $", validation {validation!.Name} = {metric:F4}{(improved ? " (best)" : "")}";
                ch.Info(MessageSensitivity.None, "{0}", $"Epoch {epoch}/{options.NumberOfEpochs}: loss = {meanLoss:F5}{metricText}, {trainSeconds:F2} s, {report.SamplesPerSecond:N0} samples/s");
                progress.Checkpoint(meanLoss, epoch);

                if (validation != null && options.EarlyStoppingPatience > 0 && epochsWithoutImprovement >= options.EarlyStoppingPatience)
                {
                    ch.Info(MessageSensitivity.None, "{0}", $"Early stopping after epoch {epoch}: {validation.Name} has not improved for {options.EarlyStoppingPatience} epochs (best {bestMetric:F4} at epoch {bestEpoch}).");
                    break;
                }
            }

            if (best != null && bestEpoch != epochs.Count)
            {
                RestoreSnapshot(best, module);
                ch.Info(MessageSensitivity.None, "{0}", $"Restored the weights of epoch {bestEpoch} ({validation!.Name} = {bestMetric:F4}).");
            }
        }
        finally
        {
            if (best != null) foreach (var t in best.Values) t.Dispose();
            module.eval();
        }
        if (optimizer is IAdamState trained) finalState = trained.ExportState();
        return new TrainingReport(epochs, validation?.Name, bestEpoch == 0 ? null : bestEpoch, total.Elapsed.TotalSeconds);
    }

    /// <summary>The error for a NaN or infinite epoch loss, naming the likely causes: the learning rate, and the data's
    /// scale where the model can tell it.</summary>
    internal static InvalidOperationException Diverged(int epoch, double loss, DeepRecTrainerOptionsBase options, string? dataHint) =>
        new($"Training diverged at epoch {epoch} (loss = {loss.ToString(System.Globalization.CultureInfo.InvariantCulture)}). Likely causes: " +
            $"the learning rate is too high for this data (LearningRate = {options.LearningRate.ToString(System.Globalization.CultureInfo.InvariantCulture)}, optimizer {options.Optimizer}); lower it" +
            (dataHint == null ? "" : $"; or the input is badly scaled: {dataHint}") +
            $". Raising L2Regularization (now {options.L2Regularization.ToString(System.Globalization.CultureInfo.InvariantCulture)}) can also help.");

    private static void ReplaceSnapshot(ref Dictionary<string, Tensor>? snapshot, nn.Module module)
    {
        if (snapshot != null) foreach (var t in snapshot.Values) t.Dispose();
        snapshot = new Dictionary<string, Tensor>();
        using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
        foreach (var (name, tensor) in module.state_dict())
            snapshot[name] = tensor.detach().clone().DetachFromDisposeScope(); // disposed by the next replacement or the caller
    }

    private static void RestoreSnapshot(Dictionary<string, Tensor> snapshot, nn.Module module)
    {
        using var _ = no_grad();
        foreach (var (name, tensor) in module.state_dict())
            tensor.copy_(snapshot[name]);
    }
}

/// <summary>What happened in one training epoch.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Loss">Mean training loss over the epoch's samples.</param>
/// <param name="ValidationMetric">Validation metric after the epoch, when validation data was given.</param>
/// <param name="TrainSeconds">Seconds spent in training steps (data preparation included, validation excluded).</param>
/// <param name="TotalSeconds">Seconds for the whole epoch including validation.</param>
/// <param name="SamplesPerSecond">Training samples per second over <paramref name="TrainSeconds"/>.</param>
/// <param name="DataSeconds">Seconds spent preparing the epoch's data (negative sampling, shuffling), part of <paramref name="TrainSeconds"/>.</param>
public sealed record EpochReport(int Epoch, double Loss, double? ValidationMetric, double TrainSeconds, double TotalSeconds, double SamplesPerSecond, double DataSeconds);

/// <summary>The history of a training run.</summary>
/// <param name="Epochs">One entry per completed epoch.</param>
/// <param name="ValidationMetricName">Name of the validation metric, or null without validation data.</param>
/// <param name="BestEpoch">Epoch whose weights the model holds (best validation metric), or null without validation data.</param>
/// <param name="TotalSeconds">Wall-clock seconds of the whole run.</param>
public sealed record TrainingReport(IReadOnlyList<EpochReport> Epochs, string? ValidationMetricName, int? BestEpoch, double TotalSeconds);

/// <summary>Detaches a fit's generator from its dropout layers when training ends (the generator is disposed then).</summary>
internal readonly struct DropoutGeneratorRelease(Models.FastDropout[] dropouts) : IDisposable
{
    public void Dispose()
    {
        foreach (var dropout in dropouts) dropout.Generator = null;
    }
}
