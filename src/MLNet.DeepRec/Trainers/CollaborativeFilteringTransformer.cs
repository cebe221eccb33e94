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
/// <param name="Score">The model's score (a logit; higher is better).</param>
public sealed record Recommendation(uint ItemKey, string? ItemId, float Score);

/// <summary>
/// A trained collaborative model (GMF, MLP, NeuMF or dot-product MF). As an ML.NET transformer it adds <c>Score</c>
/// (the logit) and <c>Probability</c> (its sigmoid) for each (user, item) row through ONNX Runtime, and saves/loads
/// with <c>mlContext.Model.Save</c>/<c>Load</c>. It also keeps the TorchSharp network for fast batched scoring:
/// <see cref="Recommend(uint, int, bool, IEnumerable{uint}?)"/> and <see cref="IItemScorer"/> for top-K evaluation.
/// </summary>
/// <remarks>
/// Unknown users or items (key 0 from <c>MapValueToKey</c>, or a key beyond the trained range) are scored with the
/// mean of the trained embeddings — an "average" user or item — so they get a popularity-like, finite score rather
/// than an error. Recommendations for an unknown user are therefore the items an average user would like.
/// </remarks>
public sealed class CollaborativeFilteringTransformer : DeepRecTransformerBase, IItemScorer
{
    private const string UserInput = "user_key";
    private const string ItemInput = "item_key";
    private readonly CollaborativeModule _module;
    private readonly Device _device;
    private readonly CollaborativeScorer _scorer;
    private readonly UserItemSet _seen;

    internal CollaborativeFilteringTransformer(MLContext mlContext, string modelName, CollaborativeModule module, Device device,
        string userColumn, string itemColumn, UserItemSet seen, KeyVocabulary vocabulary, TrainingReport report, OptimizerState? optimizerState = null)
        : base(mlContext, BuildOnnx(modelName, module), new Dictionary<string, string> { [UserInput] = userColumn, [ItemInput] = itemColumn },
               DeepRecScoreKind.Ranking, null)
    {
        ModelName = modelName;
        _module = module;
        _device = device;
        _scorer = new CollaborativeScorer(module, device);
        _seen = seen;
        Vocabulary = vocabulary;
        TrainingReport = report;
        UserColumnName = userColumn;
        ItemColumnName = itemColumn;
        OptimizerState = optimizerState;
    }

    /// <summary>"GMF", "MLP", "NeuMF" or "MF".</summary>
    public string ModelName { get; }

    /// <summary>Per-epoch loss, validation metric and timing of the training run.</summary>
    public TrainingReport TrainingReport { get; }

    /// <summary>Original user/item ids behind the keys (from MapValueToKey's KeyValues annotation).</summary>
    public KeyVocabulary Vocabulary { get; }

    /// <summary>The key-typed user column the model reads.</summary>
    public string UserColumnName { get; }

    /// <summary>The key-typed item column the model reads.</summary>
    public string ItemColumnName { get; }

    /// <inheritdoc/>
    public int UserCount => _module.UserCount;

    /// <inheritdoc/>
    public int ItemCount => _module.ItemCount;

    internal CollaborativeModule Module => _module;
    internal UserItemSet Seen => _seen;
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

    /// <summary>Top-k items for each of a batch of user keys, scored in one batched pass.</summary>
    public IReadOnlyList<IReadOnlyList<Recommendation>> Recommend(IReadOnlyList<uint> userKeys, int k, bool excludeSeen = true, IEnumerable<uint>? candidateItems = null)
    {
        ArgumentNullException.ThrowIfNull(userKeys);
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive.");
        uint[]? candidates = candidateItems?.ToArray();
        if (candidates != null)
            foreach (var c in candidates)
                if (c == 0 || c > ItemCount) throw new ArgumentOutOfRangeException(nameof(candidateItems), c, $"Candidate item keys must be in 1..{ItemCount}.");

        var results = new IReadOnlyList<Recommendation>[userKeys.Count];
        const int usersPerBatch = 256;
        using var _ = no_grad();
        for (int start = 0; start < userKeys.Count; start += usersPerBatch)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(usersPerBatch, userKeys.Count - start);
            var keys = new long[count];
            for (int n = 0; n < count; n++) { uint key = userKeys[start + n]; keys[n] = key > UserCount ? 0 : key; }
            var scores = _module.ScoreAllItems(tensor(keys, dtype: int64, device: _device)).to(float32).cpu().contiguous();
            // Column j is item key j + 1. Mask ineligible items with -inf, then one topk for the whole batch.
            if (candidates != null)
            {
                var keep = zeros(new long[] { ItemCount }, dtype: @bool);
                keep.index_fill_(0, tensor(candidates.Select(c => (long)c - 1).ToArray()), true);
                scores = scores.masked_fill(keep.logical_not().unsqueeze(0), float.NegativeInfinity);
            }
            if (excludeSeen)
            {
                var rows = new List<long>(); var cols = new List<long>();
                for (int n = 0; n < count; n++)
                {
                    if (keys[n] == 0) continue;
                    foreach (var item in _seen.ItemsOf((int)keys[n])) { rows.Add(n); cols.Add(item - 1); }
                }
                if (rows.Count > 0)
                    scores.index_put_(float.NegativeInfinity, tensor(rows.ToArray()), tensor(cols.ToArray()));
            }
            var (values, indices) = scores.topk(Math.Min(k, ItemCount), dim: 1);
            var v = values.data<float>().ToArray();
            var ix = indices.data<long>().ToArray();
            int width = (int)values.shape[1];
            for (int n = 0; n < count; n++)
            {
                var list = new List<Recommendation>(width);
                for (int j = 0; j < width; j++)
                {
                    float s = v[n * width + j];
                    if (float.IsNegativeInfinity(s)) break;
                    uint item = (uint)(ix[n * width + j] + 1);
                    list.Add(new Recommendation(item, Vocabulary.ItemId(item), s));
                }
                results[start + n] = list;
            }
        }
        return results;
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
        File.WriteAllBytes(path, BuildTopKOnnx(k, withSeenItems));
    }

    internal byte[] BuildTopKOnnx(int k, bool withSeenItems)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive.");
        int top = Math.Min(k, ItemCount);
        var g = new OnnxGraphBuilder(ModelName + "_topk");
        string users = KeyInput(g, UserInput, UserCount);                                   // [N]
        var all = new long[ItemCount];
        for (int j = 0; j < all.Length; j++) all[j] = j + 1;
        string items = g.AddInitializer("all_item_keys", all, 1, ItemCount);                // [1, I]
        string zero = g.ConstInt64(new long[] { 0 });
        // Every (user, item) pair by broadcasting: [N,1] + 0·[1,I] and 0·[N,1] + [1,I], flattened.
        string userColumn = g.Unsqueeze(users, new long[] { 1 });                             // [N, 1]
        string pairUsers = g.Reshape(g.Add(userColumn, g.Mul(items, zero)), new long[] { -1 });
        string pairItems = g.Reshape(g.Add(g.Mul(userColumn, zero), items), new long[] { -1 });
        string scores = g.Reshape(_module.ExportOnnx(g, pairUsers, pairItems), new long[] { -1, ItemCount }); // [N, I]
        if (withSeenItems)
        {
            g.AddInput("seen_item_keys", OnnxElementType.UInt32, -1, -1);
            string seen = g.Unsqueeze(g.Cast("seen_item_keys", OnnxElementType.Int64), new long[] { 2 });  // [N, S, 1]
            string hits = g.Cast(g.Equal(seen, g.Unsqueeze(items, new long[] { 0 })), OnnxElementType.Float); // [N, S, I]
            string seenMask = g.Cast(g.Node("ReduceMax", new[] { hits }, new[] { OnnxAttribute.Ints("axes", new long[] { 1 }), OnnxAttribute.Int("keepdims", 0) }), OnnxElementType.Bool);
            scores = g.Where(seenMask, g.ConstFloat(float.NegativeInfinity), scores);
        }
        var (values, indices) = g.TopK(scores, top, axis: 1);
        g.Identity(values, "top_scores");
        g.Node("Add", new[] { indices, g.ConstInt64(new long[] { 1 }) }, outputName: "top_item_keys");
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

    internal static SchemaShape AppendOutputColumns(MLContext mlContext, SchemaShape input) =>
        // SchemaShape.Column has no public constructor; an (unsaved) custom-mapping estimator whose output type is
        // the ranking output describes the added columns through ML.NET's own code.
        mlContext.Transforms.CustomMapping<NoColumns, RankingOutput>(static (_, _) => { }, contractName: null).GetOutputSchema(input);

    private sealed class NoColumns { }

    private sealed class RankingOutput
    {
        public float Score { get; set; }
        public float Probability { get; set; }
    }

    /// <summary>
    /// ONNX graph: uint32 [N,1] user/item keys → int64, keys above the trained range mapped to 0 (unknown) →
    /// network logits → Score [N,1] and Probability = σ(Score) [N,1].
    /// </summary>
    private static byte[] BuildOnnx(string modelName, CollaborativeModule module)
    {
        var g = new OnnxGraphBuilder(modelName);
        string users = KeyInput(g, UserInput, module.UserCount);
        string items = KeyInput(g, ItemInput, module.ItemCount);
        string logits = g.Reshape(module.ExportOnnx(g, users, items), new long[] { -1, 1 });
        g.Identity(logits, "Score");
        g.Node("Sigmoid", new[] { logits }, outputName: "Probability");
        g.AddOutput("Score", OnnxElementType.Float, -1, 1);
        g.AddOutput("Probability", OnnxElementType.Float, -1, 1);
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = modelName,
            ["deeprec.user_count"] = module.UserCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["deeprec.item_count"] = module.ItemCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
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
