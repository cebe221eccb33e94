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

/// <summary>
/// SASRec (Kang &amp; McAuley 2018, "Self-Attentive Sequential Recommendation"): a causal Transformer over each user's
/// item history that predicts the next item. <c>Fit</c> reads an interaction log (key-typed user and item columns, and
/// an optional timestamp); the returned <see cref="SasRecTransformer"/> scores rows that carry a history column
/// (variable-length vector of item keys) and a candidate item column.
/// </summary>
/// <remarks>
/// <para>Data: each user's events are ordered by timestamp (ties and logs without timestamps keep row order: the
/// <c>user item</c> files of the SASRec repository are already in time order). Each user with at least two training
/// events gives one training sequence: the most recent <see cref="Options.MaxLength"/> + 1 items, left-padded; the
/// model predicts item t + 1 at every position t. The padded [users, MaxLength + 1] tensor is built once; epochs are
/// tensor operations only.</para>
/// <para>Validation (<c>Fit(train, validation)</c>): NDCG@<see cref="Options.ValidationK"/> under the sampled protocol
/// (<see cref="Options.ValidationNegativesPerPositive"/> negatives, as in the paper), each user scored with its training history;
/// it drives early stopping and best-weight restore in the shared training core.</para>
/// <para>Large catalogues: the item table is an embedding table that <see cref="DeepRecTrainerOptionsBase.EmbeddingUpdates"/>
/// applies to; under <see cref="EmbeddingUpdateMode.Auto"/> a table of 2²⁰ values or more (about 21,000 items at
/// d = 50) trained with <see cref="SasRecLoss.BinaryCrossEntropy"/> or <see cref="SasRecLoss.SampledSoftmax"/> is
/// updated row-wise, so neither a step nor an epoch's preparation (a permutation of the users, negatives drawn per
/// batch) nor the sampled validation depends on the number of items: memory is the tables with their optimizer moments
/// plus O(batch × length). <see cref="SasRecLoss.CrossEntropy"/> reads every item in every step; it computes its logits
/// in chunks of items when a step's would exceed 512 MiB (see <see cref="SasRecLoss.CrossEntropy"/>).</para>
/// </remarks>
public sealed class SasRecTrainer : DeepRecTrainerBase<SasRecTrainer.Options, SasRecTransformer>
{
    /// <summary>Default values of <see cref="Options"/> and of the catalog's short overload (the SASRec paper's settings).</summary>
    public static class Defaults
    {
        /// <summary>Maximum sequence length: 50.</summary>
        public const int MaxLength = 50;

        /// <summary>Hidden size: 50.</summary>
        public const int HiddenSize = 50;

        /// <summary>Self-attention blocks: 2.</summary>
        public const int NumberOfBlocks = 2;

        /// <summary>Dropout rate: 0.5 (the paper's for sparse Amazon data).</summary>
        public const double DropoutRate = 0.5;

        /// <summary>Sampled negatives per positive under sampled softmax: 100.</summary>
        public const int NegativesPerPositive = 100;

        /// <summary>Batch size: 128 (the paper's).</summary>
        public const int BatchSize = 128;

        /// <summary>Number of epochs: 200.</summary>
        public const int NumberOfEpochs = 200;
    }

    /// <summary>SASRec options. Defaults are the paper's Amazon Games settings.</summary>
    public sealed class Options : DeepRecTrainerOptionsBase
    {
        /// <summary>Sets the paper's training defaults: batch size 128, 200 epochs, Adam with learning rate 0.001.</summary>
        public Options()
        {
            BatchSize = Defaults.BatchSize;
            NumberOfEpochs = Defaults.NumberOfEpochs;
        }

        /// <summary>Key-typed user column of the training log (from <c>MapValueToKey</c>). Default "UserId".</summary>
        public string UserIdColumnName = "UserId";

        /// <summary>Key-typed item column: the item of each training event, and the candidate item when scoring. Default "ItemId".</summary>
        public string ItemIdColumnName = "ItemId";

        /// <summary>Numeric timestamp column of the training log, used when present (null or absent: row order is time order). Default "Timestamp".</summary>
        public string? TimestampColumnName = "Timestamp";

        /// <summary>When scoring: the column holding a user's history, a vector (usually variable-length) of item keys, oldest first. Must differ from <see cref="ItemIdColumnName"/>. Default "History".</summary>
        public string HistoryColumnName = "History";

        /// <summary>Maximum sequence length L (1..1024): longer histories keep their L most recent items, shorter ones are left-padded. Default 50.</summary>
        public int MaxLength = Defaults.MaxLength;

        /// <summary>Hidden size d (item and position embeddings, attention), 1..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>. Must be a multiple of <see cref="NumberOfHeads"/>. Default 50.</summary>
        public int HiddenSize = Defaults.HiddenSize;

        /// <summary>Number of self-attention blocks, 1..<see cref="DeepRecTrainerOptionsBase.MaxLayers"/>. Default 2.</summary>
        public int NumberOfBlocks = Defaults.NumberOfBlocks;

        /// <summary>Attention heads per block. Default 1.</summary>
        public int NumberOfHeads = 1;

        /// <summary>Inner size of the point-wise feed-forward network, 0..<see cref="DeepRecTrainerOptionsBase.MaxWidth"/>; 0 means <see cref="HiddenSize"/> (the paper's choice). Default 0.</summary>
        public int FeedForwardSize;

        /// <summary>Dropout rate on embeddings, attention weights and sub-layer outputs. Default 0.5 (the paper's value for sparse Amazon data; 0.2 for MovieLens).</summary>
        public double DropoutRate = Defaults.DropoutRate;

        /// <summary>
        /// Loss. Default <see cref="SasRecLoss.BinaryCrossEntropy"/> (the paper's). With a large catalogue use
        /// <see cref="SasRecLoss.SampledSoftmax"/> or the default: their steps cost the same whatever the number of items.
        /// <see cref="SasRecLoss.CrossEntropy"/> costs O(non-padding positions × items × d) per step; beyond 2²⁷ logits per
        /// step (512 MiB, e.g. 128 sequences × 50 positions × 21,000 items) it computes them in chunks of items, so it
        /// never runs out of memory for the logits, only slower (about 4/3 of the arithmetic).
        /// </summary>
        public SasRecLoss Loss = SasRecLoss.BinaryCrossEntropy;

        /// <summary>Negatives per sequence for <see cref="SasRecLoss.SampledSoftmax"/>, 1..<see cref="DeepRecTrainerOptionsBase.MaxCount"/>. Default 100.</summary>
        public int NegativesPerPositive = Defaults.NegativesPerPositive;

        /// <summary>Length K of the top-K output columns (<c>TopKItems</c>, <c>TopKScores</c>). Must not exceed the number of items. Default 10.</summary>
        public int TopK = 10;

        /// <summary>Whether the top-K output leaves out the items of the row's history. Default true.</summary>
        public bool ExcludeHistoryFromTopK = true;

        /// <summary>K of the validation metric NDCG@K used for early stopping. Default 10.</summary>
        public int ValidationK = 10;

        /// <summary>Sampled negatives per validation interaction (sampled protocol). Default 100 (the paper's).</summary>
        public int ValidationNegativesPerPositive = 100;

        internal int EffectiveFeedForwardSize => FeedForwardSize == 0 ? HiddenSize : FeedForwardSize;

        // Where the full cross-entropy switches to chunks of items, and the chunk size (logits); tests lower them to
        // run the chunked path on small catalogues.
        internal long CrossEntropySinglePassLogits = SasRecObjective.SinglePassLogits;
        internal long CrossEntropyChunkLogits = SasRecObjective.ChunkLogits;

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
            CheckRange(MaxLength, 1, SasRecHistoryWindowMapping.Width, nameof(MaxLength));
            CheckWidth(HiddenSize, nameof(HiddenSize));
            CheckRange(NumberOfBlocks, 1, MaxLayers, nameof(NumberOfBlocks));
            if (NumberOfHeads <= 0 || HiddenSize % NumberOfHeads != 0)
                throw new ArgumentOutOfRangeException(nameof(NumberOfHeads), NumberOfHeads, $"NumberOfHeads must be positive and divide HiddenSize ({HiddenSize}); it is {NumberOfHeads}.");
            CheckRange(FeedForwardSize, 0, MaxWidth, nameof(FeedForwardSize));
            CheckDropout(DropoutRate, nameof(DropoutRate));
            if (!Enum.IsDefined(Loss)) throw new ArgumentOutOfRangeException(nameof(Loss), Loss, "Unknown loss.");
            CheckRange(NegativesPerPositive, 1, MaxCount, nameof(NegativesPerPositive));
            CheckRange(TopK, 1, MaxCount, nameof(TopK));
            CheckRange(ValidationK, 1, MaxCount, nameof(ValidationK));
            CheckRange(ValidationNegativesPerPositive, 1, MaxCount, nameof(ValidationNegativesPerPositive));
        }
    }

    internal SasRecTrainer(MLContext mlContext, Options options) : base(mlContext, options, "SASRec") { }

    /// <summary>
    /// Trains on the interaction log <paramref name="trainData"/>; with <paramref name="validationData"/> (same key types,
    /// e.g. the leave-one-out validation split) the sampled NDCG@K of each epoch drives early stopping and the best
    /// epoch's weights are kept.
    /// </summary>
    /// <exception cref="ArgumentException">A column is missing or not key-typed, or the validation key types differ.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="Options.TopK"/> exceeds the number of items.</exception>
    /// <exception cref="InvalidOperationException">No user has two training events (nothing to learn a next item from).</exception>
    protected override SasRecTransformer FitCore(IDataView trainData, IDataView? validationData)
    {
        var o = TrainerOptions;
        var host = ((IHostEnvironment)Context).Register("SASRec");
        var sequences = UserSequences.FromDataViews(new[] { trainData }, o.UserIdColumnName, o.ItemIdColumnName, o.TimestampColumnName);
        int userCount = sequences.UserCount, itemCount = sequences.ItemCount;
        if (o.TopK > itemCount)
            throw new ArgumentOutOfRangeException(nameof(Options.TopK), o.TopK, $"TopK ({o.TopK}) exceeds the number of items ({itemCount}) of the item column '{o.ItemIdColumnName}'.");

        // Training sequences: the most recent L + 1 items of every user with at least two events.
        int l = o.MaxLength;
        var trainUsers = new List<long>();
        for (int u = 1; u <= userCount; u++) if (sequences.ItemsOf(u).Length >= 2) trainUsers.Add(u);
        if (trainUsers.Count == 0)
            throw new InvalidOperationException($"No user has two or more training events in columns '{o.UserIdColumnName}'/'{o.ItemIdColumnName}': SASRec needs sequences to learn the next item.");
        var windows = new long[trainUsers.Count * (long)(l + 1)];
        long tokens = 0;
        for (int n = 0; n < trainUsers.Count; n++)
        {
            var items = sequences.ItemsOf((int)trainUsers[n]);
            UserSequences.WriteTail(items, windows.AsSpan(n * (l + 1), l + 1));
            tokens += Math.Min(items.Length - 1, l);
        }
        var (pairUsers, pairItems) = Pairs(sequences);

        using var ch = host.Start("Setup");
        var device = DeviceSelector.Select(Context, ch);
        var module = SeededInitialization.Create(o.Seed, () => new SasRecModule(itemCount, l, o.HiddenSize, o.NumberOfBlocks, o.NumberOfHeads, o.EffectiveFeedForwardSize, o.DropoutRate));
        try
        {
            // A full softmax reads every item row in every step, and so does any step whose lookups (inputs, targets and
            // sampled negatives) outnumber the items: a row-wise update would save nothing there.
            long lookupsPerStep = (long)o.BatchSize * l * 2 + (o.Loss == SasRecLoss.SampledSoftmax ? (long)o.BatchSize * o.NegativesPerPositive : (long)o.BatchSize * l);
            module.ItemTable.PreferDense = o.Loss == SasRecLoss.CrossEntropy || lookupsPerStep >= itemCount;
            module.to(device);
            var seen = new UserItemSet(pairUsers, pairItems, userCount, itemCount);
            var trainHistories = sequences.PaddedTails(l);

            ValidationMetric? validation = null;
            SasRecScorer? validationScorer = null;
            if (validationData != null)
            {
                var valid = KeyedInteractions.FromDataView(validationData, o.UserIdColumnName, o.ItemIdColumnName);
                validationScorer = new SasRecScorer(module, trainHistories, userCount, device);
                var evalOptions = new TopKEvaluationOptions { K = o.ValidationK, NegativesPerPositive = o.ValidationNegativesPerPositive, Protocol = RankingProtocol.Sampled, Seed = o.Seed, UserBatchSize = 1024 };
                var scorer = validationScorer;
                validation = new ValidationMetric($"NDCG@{o.ValidationK} (sampled, {o.ValidationNegativesPerPositive} negatives)",
                    () => TopKEvaluator.Evaluate(scorer, valid, seen, evalOptions).Ndcg);
            }

            TrainingReport report;
            try
            {
                using var sampler = new TorchNegativeSampler(pairUsers, pairItems, userCount, itemCount, NegativeSampling.Uniform, device);
                using var users = tensor(trainUsers.ToArray(), dtype: int64, device: device);
                using var windowTensor = tensor(windows, dtype: int64, device: device).view(trainUsers.Count, l + 1);
                var source = new SasRecBatchSource(users, windowTensor, sampler, o.Loss, o.NegativesPerPositive);
                report = TrainingCore.Train(host, new SasRecObjective(module, o.Loss, o.CrossEntropySinglePassLogits, o.CrossEntropyChunkLogits), source, o, device, validation);
            }
            finally
            {
                validationScorer?.Dispose();
            }
            module.SetUnknownItemToMean();
            var itemIds = KeyVocabulary.Read(trainData.Schema[o.ItemIdColumnName]);
            return new SasRecTransformer(Context, module, device, o, userCount, trainHistories, itemIds, report, tokens);
        }
        catch
        {
            module.Dispose(); // not left to the finalizer (device memory on a GPU)
            throw;
        }
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
    /// (Single vector), each of length <see cref="Options.TopK"/>.
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
        return SasRecTransformer.AppendOutputColumns(Context, inputSchema, TrainerOptions.TopK);
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
