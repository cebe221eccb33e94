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

/// <summary>Default values of the options every trainer shares (each trainer's <c>Defaults</c> repeats them beside its own).</summary>
public static class DeepRecTrainerDefaults
{
    /// <summary>Default <see cref="DeepRecTrainerOptionsBase.NumberOfEpochs"/>: 20.</summary>
    public const int NumberOfEpochs = 20;

    /// <summary>Default <see cref="DeepRecTrainerOptionsBase.BatchSize"/>: 256.</summary>
    public const int BatchSize = 256;

    /// <summary>Default <see cref="DeepRecTrainerOptionsBase.LearningRate"/>: 0.001 (Adam's usual rate).</summary>
    public const double LearningRate = 0.001;
}

/// <summary>
/// Options shared by every MLNet.DeepRec trainer: optimisation, epochs, early stopping, seed, cancellation.
/// Each trainer's nested <c>Options</c> class derives from this and adds model hyper-parameters and column names.
/// </summary>
/// <remarks>
/// <para>Every numeric option is checked when the trainer is created and again at the start of every <c>Fit</c> (the
/// trainer reads this object, not a copy, so later changes count): a value that is not finite or lies outside the
/// range documented on its field gives an <see cref="ArgumentOutOfRangeException"/> naming the option, before any data
/// is read. The ranges are wide enough for every published setting and exist so that nothing reaches float32
/// arithmetic or the allocator that cannot work: rates and penalties at most <see cref="MaxRate"/> (libtorch converts
/// them to float32, where 1e300 is not a number), widths (factors, hidden sizes, layer widths) at most
/// <see cref="MaxWidth"/>, at most <see cref="MaxLayers"/> layers or blocks, batches of at most
/// <see cref="MaxBatchSize"/> samples and at most <see cref="MaxEpochs"/> epochs.</para>
/// </remarks>
public abstract class DeepRecTrainerOptionsBase
{
    /// <summary>Largest learning rate, L2 regularisation or other penalty weight accepted: 1000.</summary>
    public const double MaxRate = 1e3;

    /// <summary>Largest embedding size, hidden size or layer width accepted: 16,384.</summary>
    public const int MaxWidth = 1 << 14;

    /// <summary>Largest number of hidden layers (or SASRec blocks) accepted: 64.</summary>
    public const int MaxLayers = 64;

    /// <summary>Largest <see cref="BatchSize"/> accepted: 16,777,216 (2²⁴).</summary>
    public const int MaxBatchSize = 1 << 24;

    /// <summary>Largest <see cref="NumberOfEpochs"/> accepted: 1,000,000.</summary>
    public const int MaxEpochs = 1_000_000;

    /// <summary>Largest <see cref="NumberOfThreads"/> accepted: 1024.</summary>
    public const int MaxThreads = 1024;

    /// <summary>Largest number of sampled negatives, or K of a metric or top-K list, accepted: 100,000.</summary>
    public const int MaxCount = 100_000;

    /// <summary>Number of passes over the training data, 1..<see cref="MaxEpochs"/>. Default 20.</summary>
    public int NumberOfEpochs = DeepRecTrainerDefaults.NumberOfEpochs;

    /// <summary>Mini-batch size (training samples per optimizer step), 1..<see cref="MaxBatchSize"/>. Default 256.</summary>
    public int BatchSize = DeepRecTrainerDefaults.BatchSize;

    /// <summary>Optimizer. Default <see cref="DeepRecOptimizer.Adam"/>.</summary>
    public DeepRecOptimizer Optimizer = DeepRecOptimizer.Adam;

    /// <summary>Learning rate, in (0, <see cref="MaxRate"/>]. Default 0.001.</summary>
    public double LearningRate = DeepRecTrainerDefaults.LearningRate;

    /// <summary>L2 regularisation applied as optimizer weight decay to every parameter, in [0, <see cref="MaxRate"/>]. Default 0.</summary>
    public double L2Regularization;

    /// <summary>
    /// Stop when the validation metric has not improved for this many epochs, then restore the best weights.
    /// 0 disables early stopping (all epochs run; with validation data the best epoch's weights are still restored).
    /// Needs validation data passed to <c>Fit</c>. At least 0. Default 0.
    /// </summary>
    public int EarlyStoppingPatience;

    /// <summary>
    /// Validation data used when <c>Fit</c> is called without any (as inside a pipeline: <c>estimatorChain.Fit(data)</c>),
    /// as ML.NET's TorchSharp trainers take it: the model's validation metric is computed after each epoch, drives
    /// <see cref="EarlyStoppingPatience"/>, and the best epoch's weights are kept. It must hold the columns as this
    /// trainer sees them, i.e. already transformed by the same fitted transforms that precede the trainer (for key
    /// columns: the same fitted <c>MapValueToKey</c>; a key mapping fitted separately on the validation data is detected
    /// through its KeyValues and rejected). <c>Fit(train, validation)</c> with a non-null validation argument takes
    /// precedence. Default null.
    /// </summary>
    public Microsoft.ML.IDataView? ValidationSet;

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
    /// Number of CPU threads libtorch uses while this trainer trains, 0..<see cref="MaxThreads"/>; 0 keeps the
    /// process's current setting (libtorch's default is one per core). libtorch's thread count is process-wide, so the
    /// previous value is restored when training ends. Default 0.
    /// </summary>
    public int NumberOfThreads;

    /// <summary>Checks every option (ranges and conflicts); called at construction and at the start of every <c>Fit</c>.</summary>
    internal virtual void Validate()
    {
        CheckRange(NumberOfEpochs, 1, MaxEpochs, nameof(NumberOfEpochs));
        CheckRange(BatchSize, 1, MaxBatchSize, nameof(BatchSize));
        CheckRate(LearningRate, nameof(LearningRate));
        CheckPenalty(L2Regularization, nameof(L2Regularization));
        CheckRange(EarlyStoppingPatience, 0, int.MaxValue, nameof(EarlyStoppingPatience));
        CheckRange(NumberOfThreads, 0, MaxThreads, nameof(NumberOfThreads));
        if (!Enum.IsDefined(EmbeddingUpdates)) throw new ArgumentOutOfRangeException(nameof(EmbeddingUpdates), EmbeddingUpdates, "Unknown embedding update mode.");
        if (!Enum.IsDefined(Optimizer)) throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer, "Unknown optimizer.");
    }

    // The shared checks of every trainer's options, so that each rule and its message exist once.

    internal static void CheckRange(int value, int min, int max, string name)
    {
        if (value < min || value > max)
            throw new ArgumentOutOfRangeException(name, value, max == int.MaxValue
                ? $"{name} must be >= {min}; it is {value}."
                : $"{name} must be in {min}..{max}; it is {value}.");
    }

    /// <summary>A learning rate: finite, positive, at most <see cref="MaxRate"/>.</summary>
    internal static void CheckRate(double value, string name)
    {
        if (!(value > 0 && value <= MaxRate))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number in (0, {MaxRate}]; it is {value}.");
    }

    /// <summary>A penalty weight (L2): finite, at least 0, at most <see cref="MaxRate"/>.</summary>
    internal static void CheckPenalty(double value, string name)
    {
        if (!(value >= 0 && value <= MaxRate))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number in [0, {MaxRate}]; it is {value}.");
    }

    /// <summary>A dropout rate: in [0, 1).</summary>
    internal static void CheckDropout(double value, string name)
    {
        if (!(value >= 0 && value < 1)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1); it is {value}.");
    }

    /// <summary>An embedding or hidden size: 1..<see cref="MaxWidth"/>.</summary>
    internal static void CheckWidth(int value, string name) => CheckRange(value, 1, MaxWidth, name);

    /// <summary>Layer widths: not null, at most <see cref="MaxLayers"/> (at least one unless <paramref name="allowEmpty"/>), each 1..<see cref="MaxWidth"/>.</summary>
    internal static void CheckWidths(int[]? widths, string name, bool allowEmpty)
    {
        if (widths == null) throw new ArgumentNullException(name, $"{name} must not be null{(allowEmpty ? " (use an empty array for no layers)" : "")}.");
        if (!allowEmpty && widths.Length == 0) throw new ArgumentException($"{name} needs at least one layer width.", name);
        if (widths.Length > MaxLayers) throw new ArgumentOutOfRangeException(name, widths.Length, $"{name} has {widths.Length} layers; at most {MaxLayers} are supported.");
        foreach (int w in widths)
            if (w < 1 || w > MaxWidth) throw new ArgumentOutOfRangeException(name, string.Join(",", widths), $"Every width of {name} must be in 1..{MaxWidth}; it has {w}.");
    }

    /// <summary>A column name option: set (not null or blank).</summary>
    internal static void CheckColumnName(string? value, string name)
    {
        if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"{name} must be set.", name);
    }

    /// <summary>Column name options that must name different columns (null entries, unset optional columns, are skipped).</summary>
    internal static void CheckDistinctColumns(params (string? Value, string Name)[] columns)
    {
        for (int a = 0; a < columns.Length; a++)
            for (int b = a + 1; b < columns.Length; b++)
                if (columns[a].Value != null && string.Equals(columns[a].Value, columns[b].Value, StringComparison.Ordinal))
                    throw new ArgumentException($"{columns[a].Name} and {columns[b].Name} are both '{columns[a].Value}'; they must name different columns.", columns[b].Name);
    }
}
