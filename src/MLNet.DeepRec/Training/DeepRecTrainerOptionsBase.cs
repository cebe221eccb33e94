namespace MLNet.DeepRec.Training;

/// <summary>Optimizer used by the shared training core.</summary>
public enum DeepRecOptimizer
{
    /// <summary>Adam (Kingma &amp; Ba 2015). The default for every model.</summary>
    Adam,
    /// <summary>Adagrad, as in the NFM/AFM papers' released code.</summary>
    Adagrad,
    /// <summary>Plain stochastic gradient descent.</summary>
    Sgd,
}

/// <summary>How the optimizer updates embedding tables (user, item and feature embeddings).</summary>
public enum EmbeddingUpdateMode
{
    /// <summary>
    /// Sparse (row-wise) updates when the model's user, item and feature tables together hold at least about a million
    /// values (rows × width: ML-20M-sized MF has 10 million), so that a step costs the same whatever the catalogue size;
    /// exact dense updates for smaller models, where a dense step is as cheap, and for tables every step reads whole
    /// (SASRec's item table under the full cross-entropy loss, or when a step's lookups outnumber the items). The default.
    /// </summary>
    Auto,
    /// <summary>
    /// Every embedding table is updated densely: each step reads and writes every row (exact dense Adam/Adagrad/SGD).
    /// Step cost grows with the catalogue.
    /// </summary>
    Dense,
    /// <summary>
    /// Every user, item and feature table is updated row-wise: a step touches only the rows its batch looked up, so its
    /// cost follows the batch, not the catalogue. Adam becomes lazy Adam (TensorFlow's LazyAdam, PyTorch's SparseAdam):
    /// a row's moments decay only in steps that touch it, and L2 regularisation applies to touched rows only.
    /// </summary>
    Sparse,
}

/// <summary>
/// Options shared by every MLNet.DeepRec trainer: optimisation, epochs, early stopping, seed, cancellation.
/// Each trainer's nested <c>Options</c> class derives from this and adds model hyper-parameters and column names.
/// </summary>
public abstract class DeepRecTrainerOptionsBase
{
    /// <summary>Number of passes over the training data. Default 20.</summary>
    public int NumberOfEpochs = 20;

    /// <summary>Mini-batch size (training samples per optimizer step). Default 256.</summary>
    public int BatchSize = 256;

    /// <summary>Optimizer. Default <see cref="DeepRecOptimizer.Adam"/>.</summary>
    public DeepRecOptimizer Optimizer = DeepRecOptimizer.Adam;

    /// <summary>Learning rate. Default 0.001.</summary>
    public double LearningRate = 0.001;

    /// <summary>L2 regularisation applied as optimizer weight decay to every parameter. Default 0.</summary>
    public double L2Regularization;

    /// <summary>
    /// Stop when the validation metric has not improved for this many epochs, then restore the best weights.
    /// 0 disables early stopping (all epochs run; with validation data the best epoch's weights are still restored).
    /// Needs validation data passed to <c>Fit</c>. Default 0.
    /// </summary>
    public int EarlyStoppingPatience;

    /// <summary>Seed for weight initialisation, shuffling and negative sampling. Same seed, same data, same model. Default 0.</summary>
    public int Seed;

    /// <summary>Cancels training between mini-batches (an <see cref="OperationCanceledException"/> is thrown). Default none.</summary>
    public CancellationToken CancellationToken;

    /// <summary>
    /// How embedding tables are updated. <see cref="EmbeddingUpdateMode.Auto"/> (default) makes each step's cost follow
    /// the batch on large catalogues (row-wise lazy updates) and keeps the fused dense update on small ones; see
    /// <see cref="EmbeddingUpdateMode"/> for the difference in semantics.
    /// </summary>
    public EmbeddingUpdateMode EmbeddingUpdates = EmbeddingUpdateMode.Auto;

    /// <summary>
    /// Number of CPU threads libtorch uses while this trainer trains; 0 keeps the process's current setting (libtorch's
    /// default is one per core). libtorch's thread count is process-wide, so the previous value is restored when
    /// training ends. Default 0.
    /// </summary>
    public int NumberOfThreads;

    internal virtual void Validate()
    {
        if (NumberOfEpochs <= 0) throw new ArgumentOutOfRangeException(nameof(NumberOfEpochs), NumberOfEpochs, "NumberOfEpochs must be positive.");
        if (BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be positive.");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be a positive finite number.");
        if (!(L2Regularization >= 0) || double.IsInfinity(L2Regularization)) throw new ArgumentOutOfRangeException(nameof(L2Regularization), L2Regularization, "L2Regularization must be a finite number >= 0.");
        if (EarlyStoppingPatience < 0) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "EarlyStoppingPatience must be >= 0.");
        if (NumberOfThreads < 0) throw new ArgumentOutOfRangeException(nameof(NumberOfThreads), NumberOfThreads, "NumberOfThreads must be >= 0.");
        if (!Enum.IsDefined(EmbeddingUpdates)) throw new ArgumentOutOfRangeException(nameof(EmbeddingUpdates), EmbeddingUpdates, "Unknown embedding update mode.");
        if (!Enum.IsDefined(Optimizer)) throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer, "Unknown optimizer.");
    }
}
