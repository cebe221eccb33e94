using System.Globalization;
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

/// <summary>
/// A trained sequential (next-item) model: SASRec (<see cref="SasRecTransformer"/>) or GRU4Rec. As an ML.NET transformer
/// it reads a history column (a vector, usually variable-length, of item keys, oldest first) and a candidate item column
/// (scalar item key), and adds <c>Score</c> (the logit of the candidate being the next item), <c>Probability</c> (its
/// sigmoid), <c>TopKItems</c> (UInt32 vector: the K best next item keys, best first) and <c>TopKScores</c> (Single
/// vector: their logits), through ONNX Runtime. It saves and loads with <c>mlContext.Model.Save</c>/<c>Load</c> and works
/// in a <c>PredictionEngine</c> for one user's live history.
/// </summary>
/// <remarks>
/// <para><b>Input handling</b> (the same in the ONNX graph, in <see cref="Recommend(IReadOnlyList{uint}, int, bool)"/> and in the
/// <see cref="IItemScorer"/> methods):</para>
/// <list type="bullet">
/// <item>Histories longer than <see cref="MaxLength"/> keep their most recent <see cref="MaxLength"/> items; shorter ones are left-padded.</item>
/// <item>Unknown history items (key 0, or a key above the trained item count) keep their position but are masked out, like padding.</item>
/// <item>An empty history (or one of unknown items only) is scored with the learned "no history" state: every user gets the same, finite, popularity-like scores.</item>
/// <item>An unknown candidate item (key 0 or above the item count) is scored as the average item (mean embedding).</item>
/// <item>The top-K list leaves out the history's items when the model was trained with <c>ExcludeHistoryFromTopK</c> (default);
/// when fewer than K items are eligible the tail holds key 0 with score −∞. K larger than the catalogue is rejected by <c>Fit</c>.
/// The ML.NET path sees the most recent 1024 history items (the window fed to ONNX), so older items of a longer history are not excluded.</item>
/// </list>
/// <para>The inner chain is: <c>ConvertType</c> (history keys → UInt32) → a registered custom mapping that keeps the most
/// recent 1024 keys right-aligned in a fixed window (ML.NET's OnnxTransformer feeds a variable-length vector input as
/// length 1) → ML.NET's OnnxTransformer → the score mapping → <c>DropColumns</c> of the helper columns.</para>
/// </remarks>
public class SequentialTransformer : DeepRecTransformerBase, IItemScorer
{
    /// <summary>Name of the top-K item keys output column.</summary>
    public const string TopKItemsColumnName = "TopKItems";
    /// <summary>Name of the top-K scores output column.</summary>
    public const string TopKScoresColumnName = "TopKScores";
    private const string HistoryInput = "history";
    private const string ItemInput = "item_key";

    private readonly SequentialModule _module;
    private readonly Device _device;
    private readonly SequentialScorer _scorer;
    private readonly SequentialTrainerOptions _options;

    internal SequentialTransformer(MLContext mlContext, SequentialModule module, Device device, SequentialTrainerOptions options, SequentialTrainingResult result)
        : base(mlContext, BuildOnnx(module, options.TopK, options.ExcludeHistoryFromTopK),
               new Dictionary<string, string> { [HistoryInput] = SequentialHistoryWindowMapping.OutputColumn, [ItemInput] = options.ItemIdColumnName },
               DeepRecScoreKind.Ranking, new EmptyDataView(ScoringSchema(options, module.ItemCount)), [TopKItemsColumnName, TopKScoresColumnName],
               HistoryWindow(mlContext, options))
    {
        _module = module;
        _device = device;
        _options = options;
        UserCount = result.UserCount;
        _scorer = new SequentialScorer(module, result.TrainHistories, result.UserCount, device);
        Vocabulary = new KeyVocabulary(null, result.ItemIds);
        TrainingReport = result.Report;
        TrainingTokensPerEpoch = result.TokensPerEpoch;
    }

    /// <summary>[history keys as UInt32] → [fixed window of the most recent items], before the ONNX scorer; both helper
    /// columns are dropped after it. Every step is ML.NET's own, so Model.Save writes them and Load reads them back.</summary>
    private static InputPreparation HistoryWindow(MLContext mlContext, SequentialTrainerOptions options) => new(
        [
            mlContext.Transforms.Conversion.ConvertType(SequentialHistoryWindowMapping.InputColumn, options.HistoryColumnName, DataKind.UInt32),
            mlContext.Transforms.CustomMapping<SequentialHistoryWindowInput, SequentialHistoryWindowOutput>(SequentialHistoryWindowMapping.Map, SequentialHistoryWindowMapping.ContractName),
        ],
        [SequentialHistoryWindowMapping.InputColumn, SequentialHistoryWindowMapping.OutputColumn]);

    /// <summary>The model's name: "SASRec" or "GRU4Rec".</summary>
    public string ModelName => _module.Kind;

    /// <summary>
    /// The history must be a vector of item keys and the candidate a scalar item key, both of the trained item key type:
    /// the chain converts the history to UInt32, so a plain numeric vector would otherwise be scored as keys.
    /// </summary>
    private protected override void CheckInputSchema(DataViewSchema inputSchema)
    {
        ColumnChecks.KeyVector(inputSchema, HistoryColumnName, "history", _module.ItemCount);
        ColumnChecks.Key(inputSchema, ItemColumnName, "item", _module.ItemCount);
    }

    /// <summary>Frees the TorchSharp network and the ONNX Runtime session.</summary>
    /// <param name="disposing">True when called from <see cref="DeepRecTransformerBase.Dispose()"/>.</param>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _scorer.Dispose();
            _module.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>Per-epoch loss, validation metric and timing of the training run.</summary>
    public TrainingReport TrainingReport { get; }

    /// <summary>Non-padding target positions per training epoch (the "tokens" of tokens/s).</summary>
    public long TrainingTokensPerEpoch { get; }

    /// <summary>Original item ids behind the item keys (from MapValueToKey's KeyValues annotation), when known.</summary>
    public KeyVocabulary Vocabulary { get; }

    /// <summary>Maximum sequence length L.</summary>
    public int MaxLength => _module.MaxLength;

    /// <summary>Length K of the top-K output columns.</summary>
    public int TopK => _options.TopK;

    /// <summary>The history column read when scoring.</summary>
    public string HistoryColumnName => _options.HistoryColumnName;

    /// <summary>The candidate item column read when scoring.</summary>
    public string ItemColumnName => _options.ItemIdColumnName;

    /// <summary>Number of user keys of the training log (the <see cref="IItemScorer"/> methods score user u with its training history).</summary>
    public int UserCount { get; }

    /// <inheritdoc/>
    public int ItemCount => _module.ItemCount;

    /// <summary>Scores candidates for user keys, each user with its training history (e.g. for validation).</summary>
    public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser) => _scorer.ScoreCandidates(users, items, candidatesPerUser);

    /// <summary>Scores all items for user keys, each user with its training history.</summary>
    public float[] ScoreAllItems(int[] users) => _scorer.ScoreAllItems(users);

    /// <summary>
    /// An <see cref="IItemScorer"/> that scores each user key with the history built from <paramref name="interactionLogs"/>
    /// (concatenated per user in time order; see <c>DeepRec().Data.GroupSequences</c>). Under leave-one-out, pass the
    /// training and validation logs to evaluate on the test split, as in the paper. Dispose it when done.
    /// </summary>
    /// <param name="interactionLogs">Logs with the model's key-typed user and item columns (and optional timestamp).</param>
    public IItemScorer CreateScorer(params IDataView[] interactionLogs)
    {
        ArgumentNullException.ThrowIfNull(interactionLogs);
        if (interactionLogs.Length == 0) throw new ArgumentException("At least one interaction log is needed.", nameof(interactionLogs));
        var sequences = UserSequences.FromDataViews(interactionLogs, _options.UserIdColumnName, _options.ItemIdColumnName, _options.TimestampColumnName);
        if (sequences.ItemCount != ItemCount)
            throw new ArgumentException($"The logs' item key type has {sequences.ItemCount} keys but the model was trained with {ItemCount}; use the same fitted MapValueToKey.", nameof(interactionLogs));
        return new SequentialScorer(_module, sequences.PaddedTails(MaxLength), sequences.UserCount, _device);
    }

    /// <summary>
    /// The top-<paramref name="k"/> next items for a live history of item keys (oldest first), scored in TorchSharp.
    /// Items of the history are left out when <paramref name="excludeHistory"/> is true; fewer than k come back when
    /// fewer are eligible (k larger than the catalogue is allowed here).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not positive.</exception>
    public IReadOnlyList<Recommendation> Recommend(IReadOnlyList<uint> history, int k, bool excludeHistory = true)
    {
        ArgumentNullException.ThrowIfNull(history);
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive.");
        var row = new long[MaxLength];
        var known = history.Select(h => h > ItemCount ? 0 : (int)h).ToArray();
        UserSequences.WriteTail(known, row);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        _module.eval();
        var hidden = _module.LastHidden(tensor(row, dtype: int64, device: _device).view(1, MaxLength));
        var scores = hidden.matmul(_module.ItemWeights.t()).squeeze(0).to(float32).cpu().contiguous(); // [ItemCount + 1]
        scores[0] = float.NegativeInfinity;
        if (excludeHistory)
            foreach (int item in known) scores[item] = float.NegativeInfinity;
        var (values, indices) = scores.topk(Math.Min(k, ItemCount + 1));
        var v = values.data<float>().ToArray();
        var ix = indices.data<long>().ToArray();
        var list = new List<Recommendation>(v.Length);
        for (int j = 0; j < v.Length && !float.IsNegativeInfinity(v[j]); j++)
            list.Add(new Recommendation((uint)ix[j], Vocabulary.ItemId((uint)ix[j]), v[j]));
        return list;
    }

    /// <summary>Top-k next items for a history of original item ids (unknown ids are ignored).</summary>
    public IReadOnlyList<Recommendation> Recommend(IEnumerable<string> historyItemIds, int k, bool excludeHistory = true)
    {
        ArgumentNullException.ThrowIfNull(historyItemIds);
        return Recommend(historyItemIds.Select(Vocabulary.ItemKey).ToArray(), k, excludeHistory);
    }

    internal SequentialModule Module => _module;

    internal static SchemaShape AppendOutputColumns(MLContext mlContext, SchemaShape input, int k)
    {
        // SchemaShape.Column has no public constructor: an (unsaved) custom-mapping estimator whose output schema
        // definition has the K-sized vectors describes the added columns through ML.NET's own code.
        var output = SchemaDefinition.Create(typeof(OutputColumns));
        output[TopKItemsColumnName].ColumnType = new VectorDataViewType(NumberDataViewType.UInt32, k);
        output[TopKScoresColumnName].ColumnType = new VectorDataViewType(NumberDataViewType.Single, k);
        return mlContext.Transforms.CustomMapping<NoColumns, OutputColumns>(static (_, _) => { }, contractName: null, outputSchemaDefinition: output)
            .GetOutputSchema(input);
    }

    private sealed class NoColumns { }

    private sealed class OutputColumns
    {
        public float Score { get; set; }
        public float Probability { get; set; }
        public uint[] TopKItems { get; set; } = [];
        public float[] TopKScores { get; set; } = [];
    }

    private static DataViewSchema ScoringSchema(SequentialTrainerOptions o, int itemCount)
    {
        var key = new KeyDataViewType(typeof(uint), itemCount);
        var b = new DataViewSchema.Builder();
        b.AddColumn(o.HistoryColumnName, new VectorDataViewType(key));
        if (o.ItemIdColumnName == o.HistoryColumnName) throw new ArgumentException("The history and item columns must differ.");
        b.AddColumn(o.ItemIdColumnName, key);
        return b.ToSchema();
    }

    /// <summary>
    /// ONNX graph: history uint32 [N, 1024] (the most recent item keys, right-aligned, 0 = none) and item_key uint32 [N, 1] → keys above the trained range mapped
    /// to 0 → [zeros(N, L), history] and its last L columns (left padding and truncation) → encoder → last hidden state
    /// h [N, d]; Score = h·E[item] [N, 1], Probability = σ(Score); all logits h·Eᵀ with key 0 (and, when excluding, the
    /// history) set to −∞ → TopK → TopKItems uint32 [N, K] (0 where −∞) and TopKScores float [N, K].
    /// </summary>
    private static byte[] BuildOnnx(SequentialModule module, int k, bool excludeHistory)
    {
        var g = new OnnxGraphBuilder(module.Kind);
        int items = module.ItemCount, l = module.MaxLength;
        g.AddInput(HistoryInput, OnnxElementType.UInt32, -1, SequentialHistoryWindowMapping.Width);
        g.AddInput(ItemInput, OnnxElementType.UInt32, -1, 1);
        string zero = g.ConstInt64(new long[] { 0 });
        string max = g.ConstInt64(new long[] { items });
        string history = g.Cast(HistoryInput, OnnxElementType.Int64);
        history = g.Where(g.Greater(history, max), zero, history);
        string candidate = g.Reshape(g.Cast(ItemInput, OnnxElementType.Int64), new long[] { -1 });
        candidate = g.Where(g.Greater(candidate, max), zero, candidate);
        string padding = g.Node("Expand", [g.Mul(g.Reshape(candidate, new long[] { -1, 1 }), zero), g.ConstInt64Vector(1, l)]); // [N, L] zeros
        string full = g.Concat(1, padding, history);                                                                           // [N, L + T]
        string sequence = g.Slice(full, new long[] { -l }, new long[] { long.MaxValue }, new long[] { 1 });                   // [N, L]
        string hidden = module.ExportOnnx(g, sequence, out string table);                                                     // [N, d]

        string score = g.ReduceSum(g.Mul(hidden, g.Gather(table, candidate)), new long[] { 1 }, keepDims: true);
        g.Identity(score, "Score");
        g.Node("Sigmoid", [score], outputName: "Probability");

        string all = g.Gemm(hidden, table, transB: true);                       // [N, ItemCount + 1]
        var excludeUnknown = new float[items + 1];
        excludeUnknown[0] = float.NegativeInfinity;
        all = g.Add(all, g.AddInitializer("exclude_unknown", excludeUnknown, items + 1));
        string minusInf = g.ConstFloat(float.NegativeInfinity);
        if (excludeHistory)
        {
            string updates = g.Add(g.Mul(g.Cast(full, OnnxElementType.Float), g.ConstFloat(0f)), minusInf);
            all = g.Node("ScatterElements", [all, full, updates], [OnnxAttribute.Int("axis", 1)]);
        }
        var (values, indices) = g.TopK(all, k, axis: 1);
        string keys = g.Where(g.Equal(values, minusInf), zero, indices);
        g.Cast(keys, OnnxElementType.UInt32);
        g.Node("Identity", [g.Cast(keys, OnnxElementType.UInt32)], outputName: TopKItemsColumnName);
        g.Identity(values, TopKScoresColumnName);

        g.AddOutput("Score", OnnxElementType.Float, -1, 1);
        g.AddOutput("Probability", OnnxElementType.Float, -1, 1);
        g.AddOutput(TopKItemsColumnName, OnnxElementType.UInt32, -1, k);
        g.AddOutput(TopKScoresColumnName, OnnxElementType.Float, -1, k);
        return g.Build(new Dictionary<string, string>
        {
            ["deeprec.model_kind"] = module.Kind,
            ["deeprec.item_count"] = items.ToString(CultureInfo.InvariantCulture),
            ["deeprec.max_length"] = l.ToString(CultureInfo.InvariantCulture),
            ["deeprec.top_k"] = k.ToString(CultureInfo.InvariantCulture),
        });
    }
}
