using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>Training loss of the sequential models (SASRec, GRU4Rec): what the hidden state at each position is trained to predict, the next item.</summary>
public enum SequentialLoss
{
    /// <summary>
    /// The SASRec paper's loss: at every non-padding position, binary cross-entropy of the next item against one sampled
    /// negative (an item the user never interacted with in training), redrawn every epoch.
    /// </summary>
    BinaryCrossEntropy,

    /// <summary>
    /// Sampled softmax: at every non-padding position, cross-entropy of the next item against
    /// <see cref="SequentialTrainerOptions.NegativesPerPositive"/> sampled negatives (drawn per sequence, shared by its positions,
    /// never one of the user's training items). A step's cost and memory follow the batch, not the catalogue: the choice
    /// for catalogues of hundreds of thousands to millions of items.
    /// </summary>
    SampledSoftmax,

    /// <summary>
    /// Full cross-entropy over the whole catalogue at every non-padding position (Klenitskiy &amp; Vasilev 2023). Logits
    /// are computed only at non-padding positions. While a step's logits (T non-padding positions × ItemCount) fit in
    /// 2²⁷ floats (512 MiB) they are computed at once, and the softmax and its gradient take about three times that;
    /// beyond it the step works through the catalogue in chunks of items (about 128 MiB of logits each), so memory stays
    /// bounded at any catalogue size, at about 4/3 of the arithmetic. A step still costs O(T × ItemCount × d): with a very
    /// large catalogue prefer <see cref="SampledSoftmax"/>, whose step cost does not depend on the catalogue. The item
    /// table is updated densely under <see cref="EmbeddingUpdateMode.Auto"/> (every step reads all of it).
    /// </summary>
    CrossEntropy,
}


/// <summary>
/// Options shared by the sequential (next-item) trainers: the columns of the training log and of the scoring rows, the
/// window length, the loss, the top-K output and the validation metric.
/// </summary>
public abstract class SequentialTrainerOptions : DeepRecTrainerOptionsBase
{
    /// <summary>Key-typed user column of the training log (from <c>MapValueToKey</c>). Default "UserId".</summary>
    public string UserIdColumnName = "UserId";

    /// <summary>Key-typed item column: the item of each training event, and the candidate item when scoring. Default "ItemId".</summary>
    public string ItemIdColumnName = "ItemId";

    /// <summary>Numeric timestamp column of the training log, used when present (null or absent: row order is time order). Default "Timestamp".</summary>
    public string? TimestampColumnName = "Timestamp";

    /// <summary>When scoring: the column holding a user's history, a vector (usually variable-length) of item keys, oldest first. Must differ from <see cref="ItemIdColumnName"/>. Default "History".</summary>
    public string HistoryColumnName = "History";

    /// <summary>Maximum sequence length L (1..1024): longer histories keep their L most recent items, shorter ones are left-padded. Default 50.</summary>
    public int MaxLength = SasRecTrainer.Defaults.MaxLength;

    /// <summary>
    /// Loss. Default <see cref="SequentialLoss.BinaryCrossEntropy"/> (SASRec's paper). With a large catalogue use
    /// <see cref="SequentialLoss.SampledSoftmax"/> or the default: their steps cost the same whatever the number of items.
    /// <see cref="SequentialLoss.CrossEntropy"/> costs O(non-padding positions × items × d) per step; beyond 2²⁷ logits per
    /// step (512 MiB, e.g. 128 sequences × 50 positions × 21,000 items) it computes them in chunks of items, so it
    /// never runs out of memory for the logits, only slower (about 4/3 of the arithmetic).
    /// </summary>
    public SequentialLoss Loss = SequentialLoss.BinaryCrossEntropy;

    /// <summary>Negatives per sequence for <see cref="SequentialLoss.SampledSoftmax"/>, 1..<see cref="DeepRecTrainerOptionsBase.MaxCount"/>. Default 100.</summary>
    public int NegativesPerPositive = SasRecTrainer.Defaults.NegativesPerPositive;

    /// <summary>Length K of the top-K output columns (<c>TopKItems</c>, <c>TopKScores</c>). Must not exceed the number of items. Default 10.</summary>
    public int TopK = 10;

    /// <summary>Whether the top-K output leaves out the items of the row's history. Default true.</summary>
    public bool ExcludeHistoryFromTopK = true;

    /// <summary>K of the validation metric NDCG@K used for early stopping. Default 10.</summary>
    public int ValidationK = 10;

    /// <summary>Sampled negatives per validation interaction (sampled protocol). Default 100 (SASRec's paper).</summary>
    public int ValidationNegativesPerPositive = 100;

    /// <summary>
    /// Protocol of the validation metric: <see cref="RankingProtocol.Sampled"/> (default; the validation item against
    /// <see cref="ValidationNegativesPerPositive"/> random items the user has not seen, the SASRec paper's protocol) or
    /// <see cref="RankingProtocol.FullRanking"/> (against every item the user has not seen; each validation then scores
    /// the whole catalogue for every validation user). Use full ranking when the model will be judged by full-ranking
    /// metrics: early stopping then picks the epoch by that measure.
    /// </summary>
    public RankingProtocol ValidationProtocol = RankingProtocol.Sampled;

    // Where the full cross-entropy switches to chunks of items, and the chunk size (logits); tests lower them to
    // run the chunked path on small catalogues.
    internal long CrossEntropySinglePassLogits = SequentialObjective.SinglePassLogits;
    internal long CrossEntropyChunkLogits = SequentialObjective.ChunkLogits;

    internal override void Validate()
    {
        base.Validate();
        CheckColumnName(UserIdColumnName, nameof(UserIdColumnName));
        CheckColumnName(ItemIdColumnName, nameof(ItemIdColumnName));
        CheckColumnName(HistoryColumnName, nameof(HistoryColumnName));
        // The history and the candidate item are two inputs of the scoring rows; the user, item and timestamp
        // columns are three columns of the training log.
        CheckDistinctColumns((HistoryColumnName, nameof(HistoryColumnName)), (ItemIdColumnName, nameof(ItemIdColumnName)));
        CheckDistinctColumns((UserIdColumnName, nameof(UserIdColumnName)), (ItemIdColumnName, nameof(ItemIdColumnName)), (TimestampColumnName, nameof(TimestampColumnName)));
        CheckRange(MaxLength, 1, SequentialHistoryWindowMapping.Width, nameof(MaxLength));
        if (!Enum.IsDefined(Loss)) throw new ArgumentOutOfRangeException(nameof(Loss), Loss, "Unknown loss.");
        CheckRange(NegativesPerPositive, 1, MaxCount, nameof(NegativesPerPositive));
        CheckRange(TopK, 1, MaxCount, nameof(TopK));
        CheckRange(ValidationK, 1, MaxCount, nameof(ValidationK));
        CheckRange(ValidationNegativesPerPositive, 1, MaxCount, nameof(ValidationNegativesPerPositive));
        if (!Enum.IsDefined(ValidationProtocol)) throw new ArgumentOutOfRangeException(nameof(ValidationProtocol), ValidationProtocol, "Unknown ranking protocol.");
    }
}

/// <summary>
/// The shared estimator of the sequential models (SASRec, GRU4Rec): reads an interaction log into per-user sequences,
/// trains the model's <see cref="SequentialModule"/> on windows of each user's most recent items with the shared
/// training core (one of the three <see cref="SequentialLoss"/>es; NDCG for early stopping) and returns a
/// <see cref="SequentialTransformer"/> scored by ONNX Runtime.
/// </summary>
/// <remarks>
/// <para>Data: each user's events are ordered by timestamp (ties and logs without timestamps keep row order: the
/// <c>user item</c> files of the SASRec repository are already in time order). Each user with at least two training
/// events gives one training sequence: the most recent <see cref="SequentialTrainerOptions.MaxLength"/> + 1 items,
/// left-padded; the model predicts item t + 1 at every position t. The padded [users, MaxLength + 1] tensor is built
/// once; epochs are tensor operations only.</para>
/// <para>Validation (<c>Fit(train, validation)</c>): NDCG@<see cref="SequentialTrainerOptions.ValidationK"/> under
/// <see cref="SequentialTrainerOptions.ValidationProtocol"/> (default sampled, <see cref="SequentialTrainerOptions.ValidationNegativesPerPositive"/>
/// negatives as in the SASRec paper; or full ranking), each user scored with its training history; it drives early stopping and best-weight restore in the shared
/// training core.</para>
/// <para>Large catalogues: the item table is an embedding table that <see cref="DeepRecTrainerOptionsBase.EmbeddingUpdates"/>
/// applies to; under <see cref="EmbeddingUpdateMode.Auto"/> a table of 2²⁰ values or more trained with
/// <see cref="SequentialLoss.BinaryCrossEntropy"/> or <see cref="SequentialLoss.SampledSoftmax"/> is updated row-wise
/// when a step's lookups are fewer than the items, so neither a step nor an epoch's preparation (a permutation of the
/// users, negatives drawn per batch) nor the sampled validation depends on the number of items (full-ranking validation does, by design).
/// <see cref="SequentialLoss.CrossEntropy"/> reads every item in every step; it computes its logits in chunks of items
/// when a step's would exceed 512 MiB.</para>
/// </remarks>
/// <typeparam name="TOptions">The model's options.</typeparam>
/// <typeparam name="TTransformer">The transformer it returns.</typeparam>
public abstract class SequentialTrainerBase<TOptions, TTransformer> : DeepRecTrainerBase<TOptions, TTransformer>
    where TOptions : SequentialTrainerOptions
    where TTransformer : SequentialTransformer
{
    private protected SequentialTrainerBase(MLContext mlContext, TOptions options, string name) : base(mlContext, options, name) { }

    /// <summary>The model's network for <paramref name="itemCount"/> items (called under the options' seed).</summary>
    private protected abstract SequentialModule CreateModule(int itemCount);

    /// <summary>The trained model's transformer.</summary>
    private protected abstract TTransformer CreateTransformer(SequentialModule module, Device device, SequentialTrainingResult result);

    /// <summary>
    /// Trains on the interaction log <paramref name="trainData"/>; with <paramref name="validationData"/> (same key types,
    /// e.g. the leave-one-out validation split) NDCG@K under <c>ValidationProtocol</c> after each epoch drives early stopping and the best
    /// epoch's weights are kept.
    /// </summary>
    /// <exception cref="ArgumentException">A column is missing or not key-typed, or the validation key types differ.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="SequentialTrainerOptions.TopK"/> exceeds the number of items.</exception>
    /// <exception cref="InvalidOperationException">No user has two training events (nothing to learn a next item from).</exception>
    protected override TTransformer FitCore(IDataView trainData, IDataView? validationData)
    {
        var o = TrainerOptions;
        var host = ((IHostEnvironment)Context).Register(Name);
        var sequences = UserSequences.FromDataViews(new[] { trainData }, o.UserIdColumnName, o.ItemIdColumnName, o.TimestampColumnName);
        int userCount = sequences.UserCount, itemCount = sequences.ItemCount;
        if (o.TopK > itemCount)
            throw new ArgumentOutOfRangeException(nameof(SequentialTrainerOptions.TopK), o.TopK, $"TopK ({o.TopK}) exceeds the number of items ({itemCount}) of the item column '{o.ItemIdColumnName}'.");
        var (trainUsers, windows, tokens) = Windows(sequences, o.MaxLength);
        if (trainUsers.Length == 0)
            throw new InvalidOperationException($"No user has two or more training events in columns '{o.UserIdColumnName}'/'{o.ItemIdColumnName}': {Name} needs sequences to learn the next item.");
        var (pairUsers, pairItems) = Pairs(sequences);

        using var ch = host.Start("Setup");
        var device = DeviceSelector.Select(Context, ch);
        var module = SeededInitialization.Create(o.Seed, () => CreateModule(itemCount));
        try
        {
            int l = o.MaxLength;
            // A full softmax reads every item row in every step, and so does any step whose lookups (inputs, targets and
            // sampled negatives) outnumber the items: a row-wise update would save nothing there.
            long lookupsPerStep = (long)o.BatchSize * l * 2 + (o.Loss == SequentialLoss.SampledSoftmax ? (long)o.BatchSize * o.NegativesPerPositive : (long)o.BatchSize * l);
            module.ItemTable.PreferDense = o.Loss == SequentialLoss.CrossEntropy || lookupsPerStep >= itemCount;
            module.to(device);
            var seen = new UserItemSet(pairUsers, pairItems, userCount, itemCount);
            var trainHistories = sequences.PaddedTails(l);

            ValidationMetric? validation = null;
            SequentialScorer? validationScorer = null;
            if (validationData != null)
            {
                var valid = KeyedInteractions.FromDataView(validationData, o.UserIdColumnName, o.ItemIdColumnName);
                validationScorer = new SequentialScorer(module, trainHistories, userCount, device);
                validation = ValidationMetric.TopKNdcg(validationScorer, valid, seen, o.ValidationK, o.ValidationProtocol, o.ValidationNegativesPerPositive, o.Seed, userBatchSize: 1024);
            }

            TrainingReport report;
            try
            {
                using var sampler = new TorchNegativeSampler(pairUsers, pairItems, userCount, itemCount, NegativeSampling.Uniform, device);
                using var users = tensor(trainUsers, dtype: int64, device: device);
                using var windowTensor = tensor(windows, new long[] { trainUsers.Length, l + 1 }, dtype: int64, device: device);
                var source = new SequentialBatchSource(users, windowTensor, sampler, o.Loss, o.NegativesPerPositive);
                report = TrainingCore.Train(host, new SequentialObjective(module, o.Loss, o.CrossEntropySinglePassLogits, o.CrossEntropyChunkLogits), source, o, device, validation);
            }
            finally
            {
                validationScorer?.Dispose();
            }
            module.SetUnknownItemToMean();
            var itemIds = KeyVocabulary.Read(trainData.Schema[o.ItemIdColumnName]);
            return CreateTransformer(module, device, new SequentialTrainingResult(userCount, trainHistories, itemIds, report, tokens));
        }
        catch
        {
            module.Dispose(); // not left to the finalizer (device memory on a GPU)
            throw;
        }
    }

    /// <summary>Training windows: the most recent L + 1 items of every user with at least two events, left-padded,
    /// row-major [users, L + 1]; and the non-padding target positions per epoch.</summary>
    private static (long[] Users, long[] Windows, long Tokens) Windows(UserSequences sequences, int l)
    {
        var trainUsers = new List<long>();
        for (int u = 1; u <= sequences.UserCount; u++) if (sequences.ItemsOf(u).Length >= 2) trainUsers.Add(u);
        var windows = new long[trainUsers.Count * (long)(l + 1)];
        long tokens = 0;
        for (int n = 0; n < trainUsers.Count; n++)
        {
            var items = sequences.ItemsOf((int)trainUsers[n]);
            UserSequences.WriteTail(items, windows.AsSpan(n * (l + 1), l + 1));
            tokens += Math.Min(items.Length - 1, l);
        }
        return (trainUsers.ToArray(), windows, tokens);
    }

    /// <summary>Key-typed user and item columns of the log (the validation log's with the training log's cardinalities).</summary>
    private protected override void CheckSchema(DataViewSchema trainSchema, DataViewSchema? validationSchema)
    {
        var o = TrainerOptions;
        ColumnChecks.TrainingAndValidationKeys(trainSchema, validationSchema, o.UserIdColumnName, o.ItemIdColumnName);
    }

    /// <summary>
    /// The scoring schema: needs the history column (vector of keys) and the candidate item column (scalar key); adds
    /// <c>Score</c>, <c>Probability</c> (Single), <c>TopKItems</c> (UInt32 vector of item keys) and <c>TopKScores</c>
    /// (Single vector), each of length <see cref="SequentialTrainerOptions.TopK"/>.
    /// </summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var history = Find(inputSchema, TrainerOptions.HistoryColumnName, "history");
        if (!history.IsKey || history.Kind == SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentException($"The history column '{TrainerOptions.HistoryColumnName}' must be a vector of item keys (MapValueToKey on a vector column, or DeepRec().Data.GroupSequences), but it is {history.ItemType}{(history.Kind == SchemaShape.Column.VectorKind.Scalar ? " scalar" : "")}.");
        var item = Find(inputSchema, TrainerOptions.ItemIdColumnName, "item");
        if (!item.IsKey || item.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentException($"The item column '{TrainerOptions.ItemIdColumnName}' must be a scalar key-typed column (MapValueToKey), but it is {item.ItemType}.");
        return SequentialTransformer.AppendOutputColumns(Context, inputSchema, TrainerOptions.TopK);
    }

    private static SchemaShape.Column Find(SchemaShape schema, string name, string role)
    {
        var found = schema.Where(c => c.Name == name).ToArray();
        if (found.Length == 0) throw new ArgumentException($"The {role} column '{name}' was not found in the input schema.");
        return found[^1];
    }

    private static (int[] Users, int[] Items) Pairs(UserSequences s)
    {
        var users = new int[s.EventCount];
        var items = new int[s.EventCount];
        int n = 0;
        for (int u = 1; u <= s.UserCount; u++)
            foreach (int i in s.ItemsOf(u)) { users[n] = u; items[n] = i; n++; }
        return (users, items);
    }
}

/// <summary>What a sequential fit hands its transformer besides the network.</summary>
/// <param name="UserCount">User keys of the training log.</param>
/// <param name="TrainHistories">Each user's most recent MaxLength training items, [(UserCount + 1) × MaxLength], left-padded.</param>
/// <param name="ItemIds">Original item ids behind the keys, when the item column has KeyValues.</param>
/// <param name="Report">The training report.</param>
/// <param name="TokensPerEpoch">Non-padding target positions per epoch.</param>
internal sealed record SequentialTrainingResult(int UserCount, long[] TrainHistories, IReadOnlyList<string>? ItemIds, TrainingReport Report, long TokensPerEpoch);
