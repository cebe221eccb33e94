using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;

namespace MLNet.DeepRec.Models;

/// <summary>
/// The registry of collaborative models: every kind that a checkpoint manifest, a saved recommender or the ONNX metadata
/// may name, in one table (<see cref="All"/>). Code that meets a kind string (loading a checkpoint, parsing a saved
/// recommender, sizing serving chunks) asks this table, never a <c>switch</c> of its own, so a model added here is
/// loadable, servable and covered by the registry-driven tests without further edits.
/// </summary>
internal static class CollaborativeModels
{
    /// <summary>Latent factors: one width (GMF, MF, NeuMF's GMF branch).</summary>
    public static readonly CollaborativeHyperParameter Factors = new("factors", 1);

    /// <summary>Widths of an NCF tower, first = concatenated embedding width (MLP, NeuMF's MLP branch).</summary>
    public static readonly CollaborativeHyperParameter Layers = new("layers", LoadLimits.MaxLayers);

    /// <summary>Generalized Matrix Factorization (<see cref="GmfModule"/>).</summary>
    public static readonly CollaborativeModelKind Gmf = new("GMF", [Factors],
        (users, items, hp) => new GmfModule(users, items, Factors.Width(hp)),
        d =>
        {
            int f = Factors.Width(d.HyperParameters);
            d.KeyTables("", f, $"factors = {f}");
            d.Linear("output", f, 1, $"factors = {f}");
        });

    /// <summary>NCF's Multi-Layer Perceptron (<see cref="MlpModule"/>).</summary>
    public static readonly CollaborativeModelKind Mlp = new("MLP", [Layers],
        (users, items, hp) => new MlpModule(users, items, Layers.Widths(hp)),
        d =>
        {
            int[] layers = Layers.Widths(d.HyperParameters);
            d.Tower("", layers);
            d.Linear("output", layers[^1], 1, $"layers[^1] = {layers[^1]}");
        },
        scoresPairsThroughATower: true);

    /// <summary>Neural Matrix Factorization (<see cref="NeuMFModule"/>).</summary>
    public static readonly CollaborativeModelKind NeuMF = new("NeuMF", [Factors, Layers],
        (users, items, hp) => new NeuMFModule(users, items, Factors.Width(hp), Layers.Widths(hp)),
        d =>
        {
            int f = Factors.Width(d.HyperParameters);
            int[] layers = Layers.Widths(d.HyperParameters);
            d.KeyTables("gmf.", f, $"factors = {f}");
            d.Tower("mlp.", layers);
            d.Linear("output", f + layers[^1], 1, $"factors + layers[^1] = {f + layers[^1]}");
        },
        scoresPairsThroughATower: true);

    /// <summary>Dot-product matrix factorization with biases (<see cref="DotProductMFModule"/>).</summary>
    public static readonly CollaborativeModelKind MatrixFactorization = new("MF", [Factors],
        (users, items, hp) => new DotProductMFModule(users, items, Factors.Width(hp)),
        d =>
        {
            int f = Factors.Width(d.HyperParameters);
            d.KeyTables("", f, $"factors = {f}");
            d.KeyTable("user_bias", EmbeddingRole.User, 1);
            d.KeyTable("item_bias", EmbeddingRole.Item, 1);
            d.Add("global_bias", [1], "one value");
        });

    /// <summary>LightGCN (<see cref="LightGcnModule"/>): the trained layer-0 tables and the propagated tables it scores
    /// with. The number of propagation layers is a training option, not stored: the propagated tables are.</summary>
    public static readonly CollaborativeModelKind LightGcn = new("LightGCN", [Factors],
        (users, items, hp) => new LightGcnModule(users, items, Factors.Width(hp), LightGcnTrainer.Defaults.NumberOfLayers),
        d =>
        {
            int f = Factors.Width(d.HyperParameters);
            d.KeyTables("", f, $"factors = {f}");
            d.KeyTable("user_final", EmbeddingRole.User, f, $"factors = {f}");
            d.KeyTable("item_final", EmbeddingRole.Item, f, $"factors = {f}");
        });

    /// <summary>Every registered kind. The order is the one error messages list them in.</summary>
    public static IReadOnlyList<CollaborativeModelKind> All { get; } = [Gmf, Mlp, NeuMF, MatrixFactorization, LightGcn];

    /// <summary>The kind named <paramref name="name"/>, or null when no registered model has that name.</summary>
    public static CollaborativeModelKind? Find(string? name) => All.FirstOrDefault(k => k.Name == name);

    /// <summary>The kind a file names.</summary>
    /// <param name="name">The kind string read from the file.</param>
    /// <param name="what">The file, for the message (e.g. "The checkpoint 'model.ckpt'").</param>
    /// <exception cref="InvalidDataException">No registered model has that name.</exception>
    public static CollaborativeModelKind Get(string? name, string what) => Find(name)
        ?? throw new InvalidDataException($"{what}: Unknown model kind '{name}' (ModelKind must be {string.Join(", ", All.Take(All.Count - 1).Select(k => k.Name))} or {All[^1].Name}).");
}

/// <summary>
/// A collaborative model as the registry knows it: the name written in files, the hyper-parameters its checkpoints
/// store, how its network is rebuilt from them, the parameters that network has, and what serving needs to know.
/// </summary>
/// <param name="name">The kind string written to checkpoints, saved recommenders and ONNX metadata; never change it for
/// an existing model, or files it wrote stop loading.</param>
/// <param name="hyperParameters">What a checkpoint stores to rebuild the network, in the order they are checked.</param>
/// <param name="create">Builds an (untrained) network from hyper-parameters already checked against the limits.</param>
/// <param name="describe">Lists the parameters <paramref name="create"/> would allocate, in state-dict order, with the
/// fields each shape follows from; it must agree with the built network (a registry-driven test checks it).</param>
/// <param name="scoresPairsThroughATower">Whether the all-items graph runs a tower for every (user, item) pair, so that
/// serving scores fewer users per chunk.</param>
internal sealed class CollaborativeModelKind(string name, IReadOnlyList<CollaborativeHyperParameter> hyperParameters,
    Func<int, int, IReadOnlyDictionary<string, int[]>, CollaborativeModule> create, Action<CollaborativeParameterSpecs> describe,
    bool scoresPairsThroughATower = false)
{
    /// <summary>"GMF", "MLP", "NeuMF", "MF", …: what checkpoints and saved recommenders record.</summary>
    public string Name { get; } = name;

    /// <summary>The hyper-parameters a checkpoint of this kind must hold.</summary>
    public IReadOnlyList<CollaborativeHyperParameter> HyperParameters { get; } = hyperParameters;

    /// <summary>Whether the all-items graph runs a tower per (user, item) pair (MLP, NeuMF) rather than one matrix product.</summary>
    public bool ScoresPairsThroughATower { get; } = scoresPairsThroughATower;

    /// <summary>
    /// The parameters (state-dict names and shapes) that <see cref="Create"/> would allocate for these sizes, without
    /// allocating them, after checking every size against <see cref="LoadLimits"/>: what a checkpoint's stored tensors
    /// are compared with before any network is built. Each parameter says which fields its shape follows from.
    /// </summary>
    /// <exception cref="InvalidDataException">A size is missing, not positive or beyond the limits; the message names it.</exception>
    public IReadOnlyList<ParameterSpec> Describe(int userCount, int itemCount, IReadOnlyDictionary<string, int[]> hp, string what)
    {
        var specs = new CollaborativeParameterSpecs(this, userCount, itemCount, hp, what);
        describe(specs);
        return specs.Specs;
    }

    /// <summary>Rebuilds an (untrained) network of this kind; the sizes are checked first (<see cref="Describe"/>).</summary>
    /// <exception cref="InvalidDataException">A size is missing, not positive or beyond the limits.</exception>
    public CollaborativeModule Create(int userCount, int itemCount, IReadOnlyDictionary<string, int[]> hp)
    {
        _ = Describe(userCount, itemCount, hp, $"The checkpoint of a {Name} model");
        return create(userCount, itemCount, hp);
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>A hyper-parameter that collaborative checkpoints store: its key and how many widths it holds at most.</summary>
/// <param name="Name">The key in the manifest's <c>HyperParameters</c>.</param>
/// <param name="MaxLength">1 for a single width; more for a list of widths (a tower).</param>
internal sealed record CollaborativeHyperParameter(string Name, int MaxLength)
{
    /// <summary>The single width stored under <see cref="Name"/> (checked already).</summary>
    public int Width(IReadOnlyDictionary<string, int[]> hp) => hp[Name][0];

    /// <summary>The widths stored under <see cref="Name"/> (checked already).</summary>
    public int[] Widths(IReadOnlyDictionary<string, int[]> hp) => hp[Name];

    /// <summary>Checks the stored value against <see cref="LoadLimits"/>.</summary>
    /// <exception cref="InvalidDataException">It is missing, empty, too long, or a width is not positive or too large.</exception>
    public void Check(IReadOnlyDictionary<string, int[]> hp, string what)
    {
        if (!hp.TryGetValue(Name, out var v) || v is null || v.Length == 0)
            throw new InvalidDataException($"{what} lacks the hyper-parameter '{Name}'.");
        LoadLimits.CheckRange(v.Length, 1, MaxLength, what, $"the length of hyper-parameter '{Name}'");
        for (int n = 0; n < v.Length; n++)
            LoadLimits.CheckRange(v[n], 1, LoadLimits.MaxWidth, what, MaxLength == 1 ? $"hyper-parameter '{Name}'" : $"hyper-parameter '{Name}'[{n}]");
    }
}

/// <summary>
/// What a registry entry's description writes to: the parameters of the building blocks collaborative networks are
/// made of (user and item tables, linear layers, the NCF tower), named and shaped as the modules register them.
/// Constructing it checks the key counts and the kind's hyper-parameters.
/// </summary>
internal sealed class CollaborativeParameterSpecs
{
    private readonly List<ParameterSpec> _specs = [];
    private readonly long _users, _items;

    public CollaborativeParameterSpecs(CollaborativeModelKind kind, int userCount, int itemCount, IReadOnlyDictionary<string, int[]> hp, string what)
    {
        LoadLimits.CheckRange(userCount, 1, LoadLimits.MaxTableRows, what, "UserCount");
        LoadLimits.CheckRange(itemCount, 1, LoadLimits.MaxTableRows, what, "ItemCount");
        foreach (var parameter in kind.HyperParameters) parameter.Check(hp, what);
        _users = userCount + 1L;
        _items = itemCount + 1L;
        HyperParameters = hp;
        What = what;
    }

    /// <summary>The kind's hyper-parameters, checked against the limits.</summary>
    public IReadOnlyDictionary<string, int[]> HyperParameters { get; }

    /// <summary>The file being checked, for messages.</summary>
    public string What { get; }

    /// <summary>The parameters added so far, in order.</summary>
    public IReadOnlyList<ParameterSpec> Specs => _specs;

    /// <summary>Any parameter.</summary>
    public void Add(string name, long[] shape, string origin, EmbeddingRole? role = null) => _specs.Add(new(name, shape, origin, role));

    /// <summary>A user or item table (<see cref="EmbeddingTable"/>): one row per trained key plus row 0.</summary>
    /// <param name="prefix">The table's module name, e.g. "gmf.user_embedding".</param>
    /// <param name="role">User or Item: which key count its rows follow.</param>
    /// <param name="width">Its row width.</param>
    /// <param name="widthOrigin">What the width follows from, or null for a width of one (a bias).</param>
    public void KeyTable(string prefix, EmbeddingRole role, long width, string? widthOrigin = null)
    {
        var (rows, count) = role == EmbeddingRole.User ? (_users, "UserCount") : (_items, "ItemCount");
        Add(prefix + ".weight", [rows, width], $"{count} + 1 = {rows} rows{(widthOrigin is null ? "" : " × " + widthOrigin)}", role);
    }

    /// <summary>The <c>user_embedding</c> and <c>item_embedding</c> tables of one width.</summary>
    public void KeyTables(string prefix, long width, string widthOrigin)
    {
        KeyTable(prefix + "user_embedding", EmbeddingRole.User, width, widthOrigin);
        KeyTable(prefix + "item_embedding", EmbeddingRole.Item, width, widthOrigin);
    }

    /// <summary>A TorchSharp Linear layer: weight [outputs, inputs] and bias [outputs].</summary>
    public void Linear(string prefix, long inputs, long outputs, string origin)
    {
        Add(prefix + ".weight", [outputs, inputs], origin);
        Add(prefix + ".bias", [outputs], origin);
    }

    /// <summary>An NCF tower (<see cref="MlpModule"/>): user and item tables of half the first width, then a Linear
    /// between each pair of consecutive widths.</summary>
    /// <exception cref="InvalidDataException">The first width is odd.</exception>
    public void Tower(string prefix, int[] layers)
    {
        if (layers[0] % 2 != 0)
            throw new InvalidDataException($"{What}: hyper-parameter 'layers'[0] = {layers[0]} must be even (it is twice the embedding width).");
        KeyTables(prefix, layers[0] / 2, $"layers[0] / 2 = {layers[0] / 2}");
        for (int l = 1; l < layers.Length; l++)
            Linear($"{prefix}tower.{2 * (l - 1)}", layers[l - 1], layers[l], $"layers[{l - 1}] = {layers[l - 1]} → layers[{l}] = {layers[l]}");
    }
}

/// <summary>One parameter a collaborative network has: its state-dict name, shape, the fields the shape follows from,
/// and, for a user or item table, its role.</summary>
internal sealed record ParameterSpec(string Name, long[] Shape, string Origin, EmbeddingRole? Role = null)
{
    /// <summary>Number of values.</summary>
    public long Elements => Shape.Aggregate(1L, (a, d) => a * d);
}
