using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Serving;
using TorchSharp;
using MLNet.DeepRec.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Contract of a collaborative-filtering network: a logit for each (user key, item key) pair. Embedding tables have
/// one row per key plus row 0, ML.NET's "missing" key, which after training holds the mean of the trained rows so
/// that unknown users and items get an "average" representation instead of an untrained random one.
/// </summary>
internal abstract class CollaborativeModule : nn.Module<Tensor, Tensor, Tensor>
{
    /// <param name="kind">The registered kind's name (<see cref="CollaborativeModelKind.Name"/>), also the module's name.</param>
    /// <param name="userCount">Number of user keys.</param>
    /// <param name="itemCount">Number of item keys.</param>
    protected CollaborativeModule(string kind, int userCount, int itemCount) : base(kind)
    {
        Kind = kind;
        UserCount = userCount;
        ItemCount = itemCount;
    }

    /// <summary>Number of user keys (embedding rows are UserCount + 1).</summary>
    public int UserCount { get; }

    /// <summary>Number of item keys (embedding rows are ItemCount + 1).</summary>
    public int ItemCount { get; }

    /// <summary>The per-user bias table b_u, for a model that has one (MF); null otherwise.</summary>
    public virtual EmbeddingTable? UserBias => null;

    /// <summary>The per-item bias table b_i, for a model that has one (MF); null otherwise.</summary>
    public virtual EmbeddingTable? ItemBias => null;

    /// <summary>The global bias of a model that adds one to the score outside any layer (MF); null otherwise.</summary>
    public virtual float? GlobalBiasValue => null;

    /// <summary>The registered kind (<see cref="CollaborativeModels"/>), e.g. "GMF": what a checkpoint records to rebuild the network.</summary>
    public string Kind { get; }

    /// <summary>The architecture's sizes (e.g. factors, layer widths), recorded in checkpoints under the keys of the
    /// kind's <see cref="CollaborativeModelKind.HyperParameters"/>.</summary>
    public abstract IReadOnlyDictionary<string, int[]> HyperParameters { get; }

    /// <summary>Rebuilds an (untrained) network of a registered kind (<see cref="CollaborativeModelKind.Create"/>), for
    /// callers that hold only the kind string.</summary>
    /// <exception cref="InvalidDataException">The kind is not registered, or a size is missing or beyond the limits.</exception>
    public static CollaborativeModule Create(string kind, int userCount, int itemCount, IReadOnlyDictionary<string, int[]> hp) =>
        CollaborativeModels.Get(kind, $"The checkpoint of a {kind} model").Create(userCount, itemCount, hp);

    /// <summary>
    /// The user and item tables (roles <see cref="EmbeddingRole.User"/> and <see cref="EmbeddingRole.Item"/>) with their
    /// module names, in registration order: the one list that warm start, unknown-row handling, the per-occurrence
    /// penalty and the exported embeddings walk. A table is found by its declared role, never by its name.
    /// </summary>
    public IReadOnlyList<KeyedTable> KeyedTables =>
        named_modules().Where(m => m.module is EmbeddingTable { Role: EmbeddingRole.User or EmbeddingRole.Item })
            .Select(m => new KeyedTable(m.name, (EmbeddingTable)m.module)).ToArray();

    /// <summary>Logits for pairs: <paramref name="users"/> and <paramref name="items"/> are int64 [n]; returns [n].</summary>
    public abstract override Tensor forward(Tensor users, Tensor items);

    /// <summary>
    /// s(u, i⁺) − s(u, i⁻) for a pairwise loss (BPR): int64 [n] users, positives and negatives → [n]. Default: two
    /// <see cref="forward"/> calls; a model whose forward pass has a cost shared by all pairs (LightGCN's propagation)
    /// overrides it to pay that cost once per batch.
    /// </summary>
    public virtual Tensor PairwiseDifference(Tensor users, Tensor positives, Tensor negatives) => call(users, positives) - call(users, negatives);

    /// <summary>
    /// Called by <c>Fit</c> before training with the training interactions in row space (the positives, plus the initial
    /// model's interactions when continuing), for a model that learns from the interaction graph itself (LightGCN).
    /// Returns what to dispose when training ends (the graph), or null. Default: nothing.
    /// </summary>
    public virtual IDisposable? UseInteractions(int[] userRows, int[] itemRows, Device device) => null;

    /// <summary>Logits of every item 1..ItemCount for each user: int64 [b] → [b, ItemCount].</summary>
    public Tensor ScoreAllItems(Tensor users) => ScoreItemRange(users, 1, ItemCount);

    /// <summary>Logits of the items first..first + count − 1 for each user: int64 [b] → [b, count]. Override with
    /// something faster than the pairwise expansion where the model allows (MF: one matrix product).</summary>
    /// <summary>
    /// For ranking items within each user: scores of items first..first + count − 1 ([b, count]) such that adding
    /// <paramref name="rowOffset"/> ([b, 1], when not null) gives <see cref="ScoreItemRange"/>. A per-user constant does
    /// not change a user's ranking, so top-k adds it to the k winners only. Default: the full scores, no offset.
    /// </summary>
    public virtual Tensor RankingScores(Tensor users, long first, long count, out Tensor? rowOffset)
    {
        rowOffset = null;
        return ScoreItemRange(users, first, count);
    }

    public virtual Tensor ScoreItemRange(Tensor users, long first, long count)
    {
        long b = users.shape[0];
        using var items = arange(first, first + count, dtype: int64, device: users.device);
        var u = users.repeat_interleave(count);
        var i = items.repeat(b);
        return forward(u, i).view(b, count);
    }

    /// <summary>
    /// Starts the output at the log-odds of the training labels' prior (1 positive per k negatives), so that early
    /// training does not push hidden units towards the prior by switching them off.
    /// </summary>
    public abstract void InitializeOutputBias(double logit);

    /// <summary>
    /// Sets row 0 (the unknown key) of every user and item table (<see cref="KeyedTables"/>) to the mean of the trained
    /// rows: the documented fallback for users and items unseen in training.
    /// </summary>
    public void SetUnknownRowsToMean()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
        foreach (var table in KeyedTables)
        {
            var w = table.Table.Weight;
            w[0].copy_(w.narrow(0, 1, w.shape[0] - 1).mean(new long[] { 0 }));
        }
    }

    /// <summary>
    /// Writes this network into <paramref name="graph"/>: <paramref name="users"/> and <paramref name="items"/> name int64
    /// [N] tensors of keys already clamped to the known range; returns the name of the float [N] logits.
    /// </summary>
    public abstract string ExportOnnx(OnnxGraphBuilder graph, string users, string items);

    /// <summary>
    /// Writes the scores of the all-items graph that a saved model carries for serving (<see cref="RecommenderGraphs"/>):
    /// <paramref name="userRows"/> names int64 [U] embedding rows (0 = the average user); returns the name of the float
    /// [U, ItemCount] logits of item rows 1..ItemCount. Each model writes it in the form that is cheap to run (one matrix
    /// product for dot products, the first tower layer split into per-user and per-item parts). Called under
    /// <c>no_grad</c> and a dispose scope. Default: not supported, so a model without it cannot be saved for serving.
    /// </summary>
    /// <exception cref="NotSupportedException">The model has no all-items graph.</exception>
    public virtual string ExportAllItemsOnnx(OnnxGraphBuilder graph, string userRows) =>
        throw new NotSupportedException($"No all-items graph for {Kind}.");

    /// <summary>The rows of the trained items 1..ItemCount of an item table: the all-items graph's columns.</summary>
    protected Tensor TrainedItemRows(Tensor table) => table.narrow(0, 1, ItemCount);

    /// <summary>Adds a tensor's values as an initializer (see <see cref="TorchOnnxExtensions.AddWeights"/>).</summary>
    protected static string Weights(OnnxGraphBuilder graph, string name, Tensor t) => graph.AddWeights(name, t);

    /// <summary>y = x Wᵀ + b for a TorchSharp Linear layer (see <see cref="TorchOnnxExtensions.Linear"/>).</summary>
    protected static string LinearOnnx(OnnxGraphBuilder graph, string prefix, Linear layer, string x) => graph.Linear(prefix, layer, x);

    /// <summary>A user embedding table: one row per user key plus row 0 (unknown), initialised N(0, std²) as in the
    /// NCF paper. Trained with sparse row updates where <see cref="DeepRecTrainerOptionsBase.EmbeddingUpdates"/> says so.</summary>
    protected static EmbeddingTable UserTable(int userCount, int dimension, double std = 0.01) =>
        new EmbeddingTable("user_table", userCount + 1L, dimension, EmbeddingRole.User).Initialize(std);

    /// <summary>An item embedding table: one row per item key plus row 0 (unknown), initialised N(0, std²).</summary>
    protected static EmbeddingTable ItemTable(int itemCount, int dimension, double std = 0.01) =>
        new EmbeddingTable("item_table", itemCount + 1L, dimension, EmbeddingRole.Item).Initialize(std);
}

/// <summary>A user or item table of a collaborative network and its module name (e.g. "gmf.user_embedding").</summary>
internal sealed record KeyedTable(string Name, EmbeddingTable Table)
{
    /// <summary>The state-dict name of its weights.</summary>
    public string WeightName => Name + ".weight";
}
