using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>One recommended item.</summary>
/// <param name="ItemKey">The item's key (1-based, as produced by <c>MapValueToKey</c>).</param>
/// <param name="ItemId">The item's original id from the key's KeyValues annotation, or null when unknown.</param>
/// <param name="Score">The model's score (higher is better): a logit for implicit-feedback models, the predicted rating
/// for models trained with <see cref="CollaborativeLoss.SquaredError"/>.</param>
public sealed record Recommendation(uint ItemKey, string? ItemId, float Score);

/// <summary>
/// A trained collaborative model (GMF, MLP, NeuMF, dot-product MF or LightGCN). As an ML.NET transformer it adds, for each
/// (user, item) row, <c>Score</c> (the logit), <c>Probability</c> (its sigmoid) and <c>PredictedLabel</c>
/// (<c>Probability &gt; 0.5</c>) for implicit feedback, the columns <c>mlContext.BinaryClassification.Evaluate</c> reads; or
/// only <c>Score</c>, the predicted rating, for a model trained on ratings (<see cref="CollaborativeLoss.SquaredError"/>),
/// the column <c>mlContext.Regression.Evaluate</c> reads. It scores through ONNX Runtime and saves/loads
/// with <c>mlContext.Model.Save</c>/<c>Load</c>. It also keeps the TorchSharp network for fast batched scoring:
/// <see cref="Recommend(uint, int, bool, IEnumerable{uint}?)"/> and <see cref="IItemScorer"/> for top-K evaluation.
/// </summary>
/// <remarks>
/// <para>Unknown users or items (key 0 from <c>MapValueToKey</c>, a key beyond the trained range, or a key the key type
/// declares but that never occurred in the training data) are scored with the mean of the trained embeddings — an
/// "average" user or item — so they get a popularity-like, finite score rather than an error. Recommendations for an
/// unknown user are therefore the items an average user would like.</para>
/// <para>The network has embedding rows only for the keys that occurred in training, so memory, checkpoints and the
/// ONNX graph grow with the data, not with the key type's cardinality; where some declared keys never occurred, the
/// graph maps keys to rows with one small lookup table of the occurring keys. <see cref="Recommend(uint, int, bool, IEnumerable{uint}?)"/>
/// ranks the items that occurred in training.</para>
/// </remarks>
public sealed class CollaborativeFilteringTransformer : DeepRecTransformerBase, IItemScorer, IPredictionTransformer<CollaborativeModelParameters>
{
    private const string UserInput = "user_key";
    private const string ItemInput = "item_key";
    private readonly CollaborativeModule _module;
    private readonly Device _device;
    private readonly CollaborativeScorer _scorer;
    private readonly UserItemSet _seen;

    internal CollaborativeFilteringTransformer(MLContext mlContext, string modelName, CollaborativeModule module, Device device,
        string userIdColumnName, string itemIdColumnName, UserItemSet seen, KeyVocabulary vocabulary, TrainingReport report, OptimizerState? optimizerState = null,
        KeyCompaction? userKeys = null, KeyCompaction? itemKeys = null, DeepRecScoreKind scoreKind = DeepRecScoreKind.BinaryClassification)
        : base(mlContext, BuildOnnx(modelName, module, userKeys ?? KeyCompaction.Identity(module.UserCount), itemKeys ?? KeyCompaction.Identity(module.ItemCount), scoreKind),
               new Dictionary<string, string> { [UserInput] = userIdColumnName, [ItemInput] = itemIdColumnName }, scoreKind, null)
    {
        ModelName = modelName;
        _module = module;
        _device = device;
        UserKeys = userKeys ?? KeyCompaction.Identity(module.UserCount);
        ItemKeys = itemKeys ?? KeyCompaction.Identity(module.ItemCount);
        if (UserKeys.Count != module.UserCount || ItemKeys.Count != module.ItemCount)
            throw new ArgumentException("The key maps do not match the network's rows.");
        _scorer = new CollaborativeScorer(module, device, UserKeys, ItemKeys);
        _seen = seen;
        Vocabulary = vocabulary;
        TrainingReport = report;
        UserColumnName = userIdColumnName;
        ItemColumnName = itemIdColumnName;
        OptimizerState = optimizerState;
    }

    /// <summary>"GMF", "MLP", "NeuMF", "MF" or "LightGCN".</summary>
    public string ModelName { get; }

    /// <summary>The learned parameters: user and item embeddings (and MF's biases) by key.</summary>
    public CollaborativeModelParameters Model => new(this);

    internal void ThrowIfDisposedForParameters() => ThrowIfDisposed();

    /// <summary>Per-epoch loss, validation metric and timing of the training run.</summary>
    public TrainingReport TrainingReport { get; }

    /// <summary>Original user/item ids behind the keys (from MapValueToKey's KeyValues annotation).</summary>
    public KeyVocabulary Vocabulary { get; }

    /// <summary>The key-typed user column the model reads.</summary>
    public string UserColumnName { get; }

    /// <summary>The key-typed item column the model reads.</summary>
    public string ItemColumnName { get; }

    /// <inheritdoc/>
    /// <remarks>The user key type's cardinality; <see cref="TrainedUserCount"/> of them have their own embedding.</remarks>
    public int UserCount => UserKeys.DeclaredCount;

    /// <inheritdoc/>
    /// <remarks>The item key type's cardinality; <see cref="TrainedItemCount"/> of them have their own embedding.</remarks>
    public int ItemCount => ItemKeys.DeclaredCount;

    /// <summary>Number of users that occurred in training and so have an embedding row of their own.</summary>
    public int TrainedUserCount => _module.UserCount;

    /// <summary>Number of items that occurred in training and so have an embedding row of their own.</summary>
    public int TrainedItemCount => _module.ItemCount;

    /// <summary>The user and item columns must be scalar key columns of the model's cardinalities (the same fitted
    /// <c>MapValueToKey</c> as the training data): raw ids in a plain UInt32 column would be scored as other users' keys.</summary>
    private protected override void CheckInputSchema(DataViewSchema inputSchema)
    {
        ColumnChecks.Key(inputSchema, UserColumnName, "user", UserCount);
        ColumnChecks.Key(inputSchema, ItemColumnName, "item", ItemCount);
    }

    internal CollaborativeModule Module => _module;
    /// <summary>Training interactions, in the network's row space.</summary>
    internal UserItemSet Seen => _seen;
    internal KeyCompaction UserKeys { get; }
    internal KeyCompaction ItemKeys { get; }
    internal OptimizerState? OptimizerState { get; }

    /// <summary>
    /// Writes a checkpoint for continued training: weights, hyper-parameters, key vocabularies, Adam's state and the
    /// training interactions (for excluding seen items). Continue with the trainer's <c>InitialModel</c> option after
    /// <see cref="LoadCheckpoint"/>. This is not the serving format: for that use <c>mlContext.Model.Save</c> or
    /// <see cref="DeepRecTransformerBase.ExportOnnx"/>.
    /// </summary>
    public void SaveCheckpoint(string path) => CollaborativeCheckpoint.Save(this, path);

    /// <summary>
    /// Loads a checkpoint written by <see cref="SaveCheckpoint"/> (the network is rebuilt on the CPU). A truncated or
    /// corrupted file, another kind of file or an unsupported format version gives an <see cref="InvalidDataException"/>;
    /// the file is only read.
    /// </summary>
    public static CollaborativeFilteringTransformer LoadCheckpoint(MLContext mlContext, string path) => CollaborativeCheckpoint.Load(mlContext, path);

    /// <inheritdoc/>
    public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser) => _scorer.ScoreCandidates(users, items, candidatesPerUser);

    /// <inheritdoc/>
    public float[] ScoreAllItems(int[] users) => _scorer.ScoreAllItems(users);

    /// <summary>
    /// Top-<paramref name="k"/> items for one user key. Items the user interacted with in the training data are
    /// excluded when <paramref name="excludeSeen"/> is true; <paramref name="candidateItems"/> restricts the ranking to
    /// those item keys. Fewer than k items come back when fewer are eligible.
    /// </summary>
    public IReadOnlyList<Recommendation> Recommend(uint userKey, int k, bool excludeSeen = true, IEnumerable<uint>? candidateItems = null) =>
        Recommend(new[] { userKey }, k, excludeSeen, candidateItems)[0];

    /// <summary>Top-k items for a user id as it appeared before <c>MapValueToKey</c>; an unknown id gets the average user's list.</summary>
    public IReadOnlyList<Recommendation> Recommend(string userId, int k, bool excludeSeen = true, IEnumerable<string>? candidateItemIds = null) =>
        Recommend(Vocabulary.UserKey(userId), k, excludeSeen,
            candidateItemIds?.Select(id => Vocabulary.ItemKey(id)).Where(key => key != 0).ToArray());

    /// <summary>
    /// Top-k items for each of a batch of user keys, scored in batches of users against slices of the catalogue with a
    /// running top-k, so memory stays bounded for catalogues of millions of items. Items that never occurred in training
    /// are not ranked (they would all tie at the unknown item's score); candidate keys among them are ignored.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<Recommendation>> Recommend(IReadOnlyList<uint> userKeys, int k, bool excludeSeen = true, IEnumerable<uint>? candidateItems = null)
    {
        ArgumentNullException.ThrowIfNull(userKeys);
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive.");
        long[]? candidateRows = null;
        if (candidateItems != null)
        {
            var rows = new List<long>();
            foreach (var c in candidateItems)
            {
                if (c == 0 || c > ItemCount) throw new ArgumentOutOfRangeException(nameof(candidateItems), c, $"Candidate item keys must be in 1..{ItemCount}.");
                int row = ItemKeys.ToRow((int)c);
                if (row != 0) rows.Add(row);
            }
            candidateRows = rows.Distinct().ToArray();
        }

        var results = new IReadOnlyList<Recommendation>[userKeys.Count];
        int items = TrainedItemCount;
        // About 2M scores per slice (8 MB, within the last-level cache, so the top-k pass reads what the matrix product
        // just wrote): wide slices for small catalogues, many users per pass for large ones.
        const long ScoresPerSlice = 1L << 21;
        int usersPerBatch = 256;
        long slice = Math.Max(1024, Math.Min(items, ScoresPerSlice / usersPerBatch));
        using var _ = no_grad();
        // A scope for the whole call: an unreferenced temporary can be finalized by a collection on another thread while
        // libtorch still reads it (docs/reliability.md, section 5).
        using var outer = NewDisposeScope();
        _module.eval();
        Tensor? keep = null;
        if (candidateRows is not null)
        {
            var mask = new bool[items + 1L];
            foreach (long row in candidateRows) mask[row] = true;
            keep = tensor(mask, device: _device);
        }
        for (int start = 0; start < userKeys.Count; start += usersPerBatch)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(usersPerBatch, userKeys.Count - start);
            var userRows = new long[count];
            for (int n = 0; n < count; n++) userRows[n] = UserKeys.ToRow(userKeys[start + n] > int.MaxValue ? 0 : (int)userKeys[start + n]);
            var u = tensor(userRows, dtype: int64, device: _device);
            Tensor? seenRows = null, seenCols = null;
            if (excludeSeen)
            {
                var r = new List<long>(); var c = new List<long>();
                for (int n = 0; n < count; n++)
                {
                    if (userRows[n] == 0) continue;
                    foreach (var item in _seen.ItemsOf((int)userRows[n])) { r.Add(n); c.Add(item); }
                }
                if (r.Count > 0) { seenRows = tensor(r.ToArray(), device: _device); seenCols = tensor(c.ToArray(), device: _device); }
            }
            Tensor? bestValues = null, bestRows = null;
            for (long first = 1; first <= items; first += slice)
            {
                using var sliceScope = NewDisposeScope();
                long width = Math.Min(slice, items - first + 1);
                var scores = _module.RankingScores(u, first, width, out var offset).to(float32);
                // Explicit Scalars, alive for the whole slice: a temporary one may be freed during the native call (LiveScalars).
                using TorchSharp.Scalar minusInfinity = float.NegativeInfinity, sliceStart = first, sliceEnd = first + width;
                if (keep is not null)
                    scores = scores.masked_fill(keep.narrow(0, first, width).logical_not().unsqueeze(0), minusInfinity);
                if (seenCols is not null)
                {
                    var inSlice = seenCols.ge(sliceStart).logical_and_(seenCols.lt(sliceEnd));
                    if (inSlice.any().item<bool>())
                        scores.index_put_(minusInfinity, seenRows!.masked_select(inSlice), seenCols.masked_select(inSlice).sub(sliceStart));
                }
                var (values, positions) = TopK(scores, (int)Math.Min(k, width));
                if (offset is not null) values = values.Plus(offset.to(float32));
                var rows = positions.add(sliceStart, LiveScalars.One);
                if (bestValues is not null)
                {
                    // Merge with the best so far: one topk over the 2k survivors.
                    var allValues = cat(new[] { bestValues, values }, 1);
                    var allRows = cat(new[] { bestRows!, rows }, 1);
                    var (v, p) = allValues.topk((int)Math.Min(k, allValues.shape[1]), dim: 1);
                    values = v; rows = allRows.gather(1, p);
                }
                bestValues?.Dispose(); bestRows?.Dispose();
                bestValues = values.MoveToOuterDisposeScope();
                bestRows = rows.MoveToOuterDisposeScope();
            }
            var vs = bestValues!.cpu().contiguous().data<float>().ToArray();
            var ix = bestRows!.cpu().contiguous().data<long>().ToArray();
            int top = (int)bestValues.shape[1];
            for (int n = 0; n < count; n++)
            {
                var list = new List<Recommendation>(top);
                for (int j = 0; j < top; j++)
                {
                    float score = vs[n * top + j];
                    if (float.IsNegativeInfinity(score)) break;
                    uint item = (uint)ItemKeys.ToKey((int)ix[n * top + j]);
                    list.Add(new Recommendation(item, Vocabulary.ItemId(item), score));
                }
                results[start + n] = list;
            }
        }
        return results;
    }

    /// <summary>Columns per block of the two-stage top-k.</summary>
    private const int TopKBlock = 64;

    /// <summary>
    /// Row-wise top-<paramref name="k"/> of <paramref name="scores"/> [b, w] → (values, column positions), best first.
    /// For wide rows, in two stages: the maximum of each block of 64 columns (one streaming pass), the k best blocks,
    /// then the top-k of those k × 64 candidates. The k largest entries of a row always lie in its k blocks with the
    /// largest maxima (an entry outside them would have k larger block maxima above it), so the result is exact; it
    /// avoids running topk's selection over every score, which on a CPU costs several times the matrix product that
    /// produced them.
    /// </summary>
    private static (Tensor Values, Tensor Positions) TopK(Tensor scores, int k)
    {
        long b = scores.shape[0], w = scores.shape[1];
        if (w < 4L * k * TopKBlock) return scores.topk(k, dim: 1);
        long blocks = w / TopKBlock, whole = blocks * TopKBlock;
        var blocked = (whole == w ? scores : scores.narrow(1, 0, whole)).view(b, blocks, TopKBlock);
        var (_, bestBlocks) = blocked.amax(new long[] { 2 }).topk(k, dim: 1);                       // [b, k]
        var candidates = blocked.gather(1, bestBlocks.unsqueeze(2).expand(b, k, TopKBlock)).reshape(b, k * TopKBlock);
        var columns = bestBlocks.unsqueeze(2).mul(LiveScalars.Of((long)TopKBlock)).Plus(arange(TopKBlock, dtype: int64, device: scores.device).view(1, 1, TopKBlock)).reshape(b, k * TopKBlock);
        if (whole < w)
        {
            // The last, partial block joins the candidates whole.
            candidates = cat(new[] { candidates, scores.narrow(1, whole, w - whole) }, 1);
            columns = cat(new[] { columns, arange(whole, w, dtype: int64, device: scores.device).unsqueeze(0).expand(b, w - whole) }, 1);
        }
        var (values, picked) = candidates.topk(k, dim: 1);
        return (values, columns.gather(1, picked));
    }

    /// <summary>Frees the TorchSharp network and the ONNX Runtime session.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) { _module.Dispose(); OptimizerState?.Dispose(); }
        base.Dispose(disposing);
    }

    /// <summary>
    /// Writes an ONNX graph for retrieval outside ML.NET: input <c>user_key</c> (uint32 [N,1], key 0 or out of range =
    /// unknown user) and, when <paramref name="withSeenItems"/>, <c>seen_item_keys</c> (uint32 [N,S], padded with 0) whose
    /// items are excluded; it scores every item and outputs <c>top_item_keys</c> (int64 [N,k], 1-based item keys) and
    /// <c>top_scores</c> (float [N,k]), best first. Excluded items score −∞, so with fewer than k eligible items the
    /// tail of the list has −∞ scores.
    /// </summary>
    /// <param name="path">Where to write the .onnx file.</param>
    /// <param name="k">Number of items to return (capped at the catalogue size).</param>
    /// <param name="withSeenItems">Whether the graph takes the items to exclude as an input.</param>
    public void ExportTopKOnnx(string path, int k, bool withSeenItems = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        IO.AtomicFile.WriteAllBytes(path, BuildTopKOnnx(k, withSeenItems));
    }

    internal byte[] BuildTopKOnnx(int k, bool withSeenItems)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive.");
        int rows = TrainedItemCount;
        int top = Math.Min(k, rows);
        var g = new OnnxGraphBuilder(ModelName + "_topk");
        string users = UserKeys.Export(g, KeyInput(g, UserInput, UserCount));               // [N] user rows
        var all = new long[rows];
        for (int j = 0; j < all.Length; j++) all[j] = j + 1;
        string items = g.AddInitializer("all_item_rows", all, 1, rows);                     // [1, I]
        string zero = g.ConstInt64(new long[] { 0 });
        // Every (user, item) pair by broadcasting: [N,1] + 0·[1,I] and 0·[N,1] + [1,I], flattened.
        string userIdColumnName = g.Unsqueeze(users, new long[] { 1 });                             // [N, 1]
        string pairUsers = g.Reshape(g.Add(userIdColumnName, g.Mul(items, zero)), new long[] { -1 });
        string pairItems = g.Reshape(g.Add(g.Mul(userIdColumnName, zero), items), new long[] { -1 });
        string scores = g.Reshape(_module.ExportOnnx(g, pairUsers, pairItems), new long[] { -1, rows }); // [N, I]
        if (withSeenItems)
        {
            g.AddInput("seen_item_keys", OnnxElementType.UInt32, -1, -1);
            string seenKeys = g.Cast("seen_item_keys", OnnxElementType.Int64);
            // Keys → rows; padding 0 and keys without a row become row 0, which no ranked item has.
            string seenRows = ItemKeys.Export(g, g.Where(g.Greater(seenKeys, g.ConstInt64(new long[] { ItemCount })), zero, seenKeys));
            string seen = g.Unsqueeze(seenRows, new long[] { 2 });                              // [N, S, 1]
            string hits = g.Cast(g.Equal(seen, g.Unsqueeze(items, new long[] { 0 })), OnnxElementType.Float); // [N, S, I]
            string seenMask = g.Cast(g.Node("ReduceMax", new[] { hits }, new[] { OnnxAttribute.Ints("axes", new long[] { 1 }), OnnxAttribute.Int("keepdims", 0) }), OnnxElementType.Bool);
            scores = g.Where(seenMask, g.ConstFloat(float.NegativeInfinity), scores);
        }
        var (values, indices) = g.TopK(scores, top, axis: 1);
        g.Identity(values, "top_scores");
        if (ItemKeys.IsIdentity)
            g.Node("Add", new[] { indices, g.ConstInt64(new long[] { 1 }) }, outputName: "top_item_keys");
        else
        {
            // Position j is row j + 1, whose declared key is the (j)th occurring key.
            var keys = ItemKeys.OccurringKeys!.Select(key => (long)key).ToArray();
            g.Node("Gather", new[] { g.AddInitializer("item_row_keys", keys, keys.Length), indices }, new[] { OnnxAttribute.Int("axis", 0) }, outputName: "top_item_keys");
        }
        g.AddOutput("top_item_keys", OnnxElementType.Int64, -1, top);
        g.AddOutput("top_scores", OnnxElementType.Float, -1, top);
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = ModelName,
            ["deeprec.graph"] = "top_k",
            ["deeprec.k"] = top.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["deeprec.user_count"] = UserCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["deeprec.item_count"] = ItemCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    internal static SchemaShape AppendOutputColumns(MLContext mlContext, SchemaShape input, DeepRecScoreKind kind) => OutputColumns.Append(mlContext, input, kind);

    /// <summary>
    /// ONNX graph: uint32 [N,1] user/item keys → int64, keys above the declared range mapped to 0 (unknown) → rows
    /// (identity, or a lookup table of the occurring keys) → network logits → Score [N,1] and Probability = σ(Score) [N,1].
    /// </summary>
    private static byte[] BuildOnnx(string modelName, CollaborativeModule module, KeyCompaction userKeys, KeyCompaction itemKeys, DeepRecScoreKind kind)
    {
        var g = new OnnxGraphBuilder(modelName);
        string users = userKeys.Export(g, KeyInput(g, UserInput, userKeys.DeclaredCount));
        string items = itemKeys.Export(g, KeyInput(g, ItemInput, itemKeys.DeclaredCount));
        string logits = g.Reshape(module.ExportOnnx(g, users, items), new long[] { -1, 1 });
        g.Identity(logits, "Score");
        g.AddOutput("Score", OnnxElementType.Float, -1, 1);
        if (kind != DeepRecScoreKind.Regression)
        {
            g.Node("Sigmoid", new[] { logits }, outputName: "Probability");
            g.AddOutput("Probability", OnnxElementType.Float, -1, 1);
        }
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = modelName,
            ["deeprec.score_kind"] = kind.ToString(),
            ["deeprec.user_count"] = userKeys.DeclaredCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["deeprec.item_count"] = itemKeys.DeclaredCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    private static string KeyInput(OnnxGraphBuilder g, string name, int count)
    {
        g.AddInput(name, OnnxElementType.UInt32, -1, 1);
        string keys = g.Reshape(g.Cast(name, OnnxElementType.Int64), new long[] { -1 });
        string zero = g.ConstInt64(new long[] { 0 });
        string max = g.ConstInt64(new long[] { count });
        return g.Where(g.Greater(keys, max), zero, keys);
    }
}
