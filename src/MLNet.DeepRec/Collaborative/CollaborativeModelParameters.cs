using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// A learned embedding table indexed by key: row <c>k</c> is the vector of key <c>k</c> of the key-typed column (as
/// <c>MapValueToKey</c> assigned it), row 0 the vector unknown keys are scored with (the mean of the trained rows).
/// Keys that the key type declares but that never occurred in training have no row of their own in the network and
/// hold row 0's vector here, which is what they are scored with.
/// </summary>
/// <remarks>A copy: changing it does not change the model. It holds (<see cref="KeyCount"/> + 1) ×
/// <see cref="Dimension"/> floats, so for a catalogue of millions of keys ask for it once and keep it.</remarks>
public sealed class EmbeddingMatrix
{
    private readonly float[] _values;

    internal EmbeddingMatrix(string name, int keyCount, int dimension, float[] values)
    {
        Name = name; KeyCount = keyCount; Dimension = dimension; _values = values;
    }

    /// <summary>The table's name in the network (its state-dict name without <c>.weight</c>, e.g. <c>gmf.user_embedding</c>),
    /// or a combined name such as <c>user_embedding (gmf + mlp)</c>.</summary>
    public string Name { get; }

    /// <summary>Number of keys of the key type (rows are <see cref="KeyCount"/> + 1, row 0 being the unknown key).</summary>
    public int KeyCount { get; }

    /// <summary>Width of each vector.</summary>
    public int Dimension { get; }

    /// <summary>All rows, row-major: the vector of key <c>k</c> is <c>Values[k * Dimension .. (k + 1) * Dimension]</c>.</summary>
    public ReadOnlyMemory<float> Values => _values;

    /// <summary>The vector of <paramref name="key"/> (0 = the unknown-key vector).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="key"/> is above <see cref="KeyCount"/>.</exception>
    public ReadOnlySpan<float> GetVector(uint key)
    {
        if (key > KeyCount) throw new ArgumentOutOfRangeException(nameof(key), key, $"Keys of this table are 0..{KeyCount}.");
        return _values.AsSpan(checked((int)key * Dimension), Dimension);
    }
}

/// <summary>
/// The learned parameters of a collaborative model (<see cref="CollaborativeFilteringTransformer.Model"/>), as ML.NET
/// exposes <c>MatrixFactorizationModelParameters.LeftFactorMatrix</c> or FFM's <c>GetLatentWeights()</c>: user and item
/// embeddings for approximate-nearest-neighbour retrieval, clustering or cold-start tricks, and the biases where the
/// model has them. Every call copies from the network (on the CPU), so the result stays valid after the model is disposed.
/// </summary>
public sealed class CollaborativeModelParameters
{
    private readonly CollaborativeFilteringTransformer _owner;

    internal CollaborativeModelParameters(CollaborativeFilteringTransformer owner) { _owner = owner; }

    /// <summary>"MF", "GMF", "MLP", "NeuMF" or "LightGCN".</summary>
    public string ModelName => _owner.ModelName;

    /// <summary><see cref="DeepRecScoreKind.Regression"/> for a model trained on ratings, else
    /// <see cref="DeepRecScoreKind.BinaryClassification"/>.</summary>
    public DeepRecScoreKind ScoreKind => _owner.ScoreKind;

    /// <summary>Number of user keys (the key type's cardinality).</summary>
    public int UserCount => _owner.UserCount;

    /// <summary>Number of item keys (the key type's cardinality).</summary>
    public int ItemCount => _owner.ItemCount;

    /// <summary>
    /// The users' embedding vectors by user key. For a model with several user tables (NeuMF: the GMF and the MLP
    /// branch) their vectors are concatenated in the order of <see cref="GetEmbeddingTables"/>; bias tables are not
    /// included (see <see cref="GetUserBiases"/>). For LightGCN these are the propagated embeddings it scores with (the
    /// mean over its layers); the layer-0 embeddings it trains are among <see cref="GetEmbeddingTables"/>.
    /// </summary>
    public EmbeddingMatrix GetUserEmbeddings() => Combined(EmbeddingRole.User, "user_embedding", _owner.UserKeys);

    /// <summary>The items' embedding vectors by item key, as <see cref="GetUserEmbeddings"/>.</summary>
    public EmbeddingMatrix GetItemEmbeddings() => Combined(EmbeddingRole.Item, "item_embedding", _owner.ItemKeys);

    /// <summary>Every user and item table of the network by key, under its state-dict name, bias tables included.</summary>
    public IReadOnlyList<EmbeddingMatrix> GetEmbeddingTables() =>
        Tables().Select(t => ByKey(t.Name, t.Table, t.Table.Role == EmbeddingRole.User ? _owner.UserKeys : _owner.ItemKeys)).ToArray();

    /// <summary>The user biases b_u by user key (index 0 = unknown users), or null for a model without them (only MF has them).</summary>
    public float[]? GetUserBiases() => _owner.Module.UserBias is { } t ? ByKey("user_bias", t, _owner.UserKeys).Values.ToArray() : null;

    /// <summary>The item biases b_i by item key (index 0 = unknown items), or null for a model without them.</summary>
    public float[]? GetItemBiases() => _owner.Module.ItemBias is { } t ? ByKey("item_bias", t, _owner.ItemKeys).Values.ToArray() : null;

    /// <summary>The global bias of MF (for ratings: about the mean rating), or null for a model without one.</summary>
    public float? GlobalBias => _owner.Module.GlobalBiasValue;

    private IReadOnlyList<KeyedTable> Tables()
    {
        _owner.ThrowIfDisposedForParameters();
        return _owner.Module.KeyedTables;
    }

    private EmbeddingMatrix Combined(EmbeddingRole role, string name, KeyCompaction keys)
    {
        var module = _owner.Module;
        var parts = Tables().Where(t => t.Table.Role == role && !ReferenceEquals(t.Table, module.UserBias) && !ReferenceEquals(t.Table, module.ItemBias)).ToArray();
        // A model that scores with derived tables (LightGCN's propagated embeddings) gives those, not what they derive from.
        if (parts.Any(t => t.Table.Derived)) parts = parts.Where(t => t.Table.Derived).ToArray();
        if (parts.Length == 1) return ByKey(parts[0].Name, parts[0].Table, keys);
        using var scope = NewDisposeScope();
        using var weights = cat(parts.Select(p => p.Table.Weight.detach()).ToArray(), 1);
        return ByKey($"{name} ({string.Join(" + ", parts.Select(p => p.Name))})", weights, keys);
    }

    private static EmbeddingMatrix ByKey(string name, EmbeddingTable table, KeyCompaction keys)
    {
        using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
        return ByKey(name, table.Weight.detach(), keys);
    }

    private static EmbeddingMatrix ByKey(string name, Tensor weight, KeyCompaction keys)
    {
        int width = (int)weight.shape[1];
        using var _ = no_grad();
        using var cpuWeight = weight.to(float32).cpu().contiguous();
        var rows = cpuWeight.data<float>().ToArray();
        var values = new float[checked((keys.DeclaredCount + 1L) * width)];
        for (int key = 0; key <= keys.DeclaredCount; key++)
            Array.Copy(rows, (long)keys.ToRow(key) * width, values, (long)key * width, width);
        return new EmbeddingMatrix(name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^7] : name, keys.DeclaredCount, width, values);
    }
}
