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
    protected CollaborativeModule(string name, int userCount, int itemCount) : base(name)
    {
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

    /// <summary>"GMF", "MLP", "NeuMF" or "MF": what a checkpoint records to rebuild the network.</summary>
    public abstract string Kind { get; }

    /// <summary>The architecture's sizes (e.g. factors, layer widths), recorded in checkpoints.</summary>
    public abstract IReadOnlyDictionary<string, int[]> HyperParameters { get; }

    /// <summary>Rebuilds an (untrained) network of a checkpointed kind; the sizes are checked first (<see cref="Describe"/>).</summary>
    public static CollaborativeModule Create(string kind, int userCount, int itemCount, IReadOnlyDictionary<string, int[]> hp)
    {
        _ = Describe(kind, userCount, itemCount, hp, $"The checkpoint of a {kind} model");
        return kind switch
        {
            "GMF" => new GmfModule(userCount, itemCount, hp["factors"][0]),
            "MLP" => new MlpModule(userCount, itemCount, hp["layers"]),
            "NeuMF" => new NeuMFModule(userCount, itemCount, hp["factors"][0], hp["layers"]),
            _ => new DotProductMFModule(userCount, itemCount, hp["factors"][0]),
        };
    }

    /// <summary>
    /// The parameters (state-dict names and shapes) that <see cref="Create"/> would allocate for these sizes, without
    /// allocating them, after checking every size against <see cref="LoadLimits"/>: what a checkpoint's stored tensors
    /// are compared with before any network is built. Each parameter says which fields its shape follows from.
    /// </summary>
    /// <exception cref="InvalidDataException">A size is missing, not positive or beyond the limits; the message names it.</exception>
    public static IReadOnlyList<ParameterSpec> Describe(string kind, int userCount, int itemCount, IReadOnlyDictionary<string, int[]> hp, string what)
    {
        LoadLimits.CheckRange(userCount, 1, LoadLimits.MaxTableRows, what, "UserCount");
        LoadLimits.CheckRange(itemCount, 1, LoadLimits.MaxTableRows, what, "ItemCount");
        int[] Get(string key, int maxLength)
        {
            if (!hp.TryGetValue(key, out var v) || v is null || v.Length == 0)
                throw new InvalidDataException($"{what} lacks the hyper-parameter '{key}'.");
            LoadLimits.CheckRange(v.Length, 1, maxLength, what, $"the length of hyper-parameter '{key}'");
            for (int n = 0; n < v.Length; n++)
                LoadLimits.CheckRange(v[n], 1, LoadLimits.MaxWidth, what, maxLength == 1 ? $"hyper-parameter '{key}'" : $"hyper-parameter '{key}'[{n}]");
            return v;
        }
        long users = userCount + 1L, items = itemCount + 1L;
        var specs = new List<ParameterSpec>();
        void Tables(string prefix, long width, string widthOrigin)
        {
            specs.Add(new(prefix + "user_embedding.weight", [users, width], $"UserCount + 1 = {users} rows × {widthOrigin}"));
            specs.Add(new(prefix + "item_embedding.weight", [items, width], $"ItemCount + 1 = {items} rows × {widthOrigin}"));
        }
        void Linear(string prefix, long inputs, long outputs, string origin)
        {
            specs.Add(new(prefix + ".weight", [outputs, inputs], origin));
            specs.Add(new(prefix + ".bias", [outputs], origin));
        }
        void Tower(string prefix, int[] layers)
        {
            if (layers[0] % 2 != 0)
                throw new InvalidDataException($"{what}: hyper-parameter 'layers'[0] = {layers[0]} must be even (it is twice the embedding width).");
            Tables(prefix, layers[0] / 2, $"layers[0] / 2 = {layers[0] / 2}");
            for (int l = 1; l < layers.Length; l++)
                Linear($"{prefix}tower.{2 * (l - 1)}", layers[l - 1], layers[l], $"layers[{l - 1}] = {layers[l - 1]} → layers[{l}] = {layers[l]}");
        }
        switch (kind)
        {
            case "GMF":
            {
                int f = Get("factors", 1)[0];
                Tables("", f, $"factors = {f}");
                Linear("output", f, 1, $"factors = {f}");
                break;
            }
            case "MLP":
            {
                int[] layers = Get("layers", LoadLimits.MaxLayers);
                Tower("", layers);
                Linear("output", layers[^1], 1, $"layers[^1] = {layers[^1]}");
                break;
            }
            case "NeuMF":
            {
                int f = Get("factors", 1)[0];
                int[] layers = Get("layers", LoadLimits.MaxLayers);
                Tables("gmf.", f, $"factors = {f}");
                Tower("mlp.", layers);
                Linear("output", f + layers[^1], 1, $"factors + layers[^1] = {f + layers[^1]}");
                break;
            }
            case "MF":
            {
                int f = Get("factors", 1)[0];
                Tables("", f, $"factors = {f}");
                specs.Add(new("user_bias.weight", [users, 1], $"UserCount + 1 = {users} rows"));
                specs.Add(new("item_bias.weight", [items, 1], $"ItemCount + 1 = {items} rows"));
                specs.Add(new("global_bias", [1], "one value"));
                break;
            }
            default:
                throw new InvalidDataException($"{what}: Unknown model kind '{kind}' (ModelKind must be GMF, MLP, NeuMF or MF).");
        }
        return specs;
    }

    /// <summary>Logits for pairs: <paramref name="users"/> and <paramref name="items"/> are int64 [n]; returns [n].</summary>
    public abstract override Tensor forward(Tensor users, Tensor items);

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
    /// Sets row 0 (the unknown key) of every embedding table to the mean of the trained rows: the documented fallback
    /// for users and items unseen in training.
    /// </summary>
    public void SetUnknownRowsToMean()
    {
        using var _ = no_grad();
        foreach (var table in modules().OfType<EmbeddingTable>().Where(t => t.Role is EmbeddingRole.User or EmbeddingRole.Item))
        {
            var w = table.Weight;
            w[0].copy_(w.narrow(0, 1, w.shape[0] - 1).mean(new long[] { 0 }));
        }
    }

    /// <summary>
    /// Writes this network into <paramref name="graph"/>: <paramref name="users"/> and <paramref name="items"/> name int64
    /// [N] tensors of keys already clamped to the known range; returns the name of the float [N] logits.
    /// </summary>
    public abstract string ExportOnnx(OnnxGraphBuilder graph, string users, string items);

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

/// <summary>One parameter a collaborative network has: its state-dict name, shape, and the fields the shape follows from.</summary>
internal sealed record ParameterSpec(string Name, long[] Shape, string Origin)
{
    /// <summary>Number of values.</summary>
    public long Elements => Shape.Aggregate(1L, (a, d) => a * d);
}
