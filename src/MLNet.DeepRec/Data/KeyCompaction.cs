using MLNet.DeepRec.Onnx;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Data;

/// <summary>
/// Maps the keys a key type declares (1..<see cref="DeclaredCount"/>) to the rows of a model that has rows only for the
/// keys that occurred in training (1..<see cref="Count"/>, in key order); key 0 and keys that did not occur map to row 0,
/// the unknown row. So memory, checkpoints and ONNX graphs grow with the keys present in the data, not with the key
/// type's cardinality (a key type may declare millions of ids of which a few thousand occur).
/// </summary>
/// <remarks>When every declared key occurred the map is the identity and costs nothing anywhere.</remarks>
internal sealed class KeyCompaction
{
    private readonly int[]? _keys; // sorted declared keys that occurred; row r ↔ _keys[r - 1]; null = identity

    private KeyCompaction(int declaredCount, int[]? keys)
    {
        DeclaredCount = declaredCount;
        _keys = keys;
    }

    /// <summary>Cardinality of the key type.</summary>
    public int DeclaredCount { get; }

    /// <summary>Number of model rows besides row 0 (keys that occurred).</summary>
    public int Count => _keys?.Length ?? DeclaredCount;

    /// <summary>Whether row r is key r for every key.</summary>
    public bool IsIdentity => _keys is null;

    /// <summary>The declared keys that have rows, ascending (row r ↔ element r − 1); null for the identity.</summary>
    public IReadOnlyList<int>? OccurringKeys => _keys;

    /// <summary>The identity over <paramref name="declaredCount"/> keys (every key has its row).</summary>
    public static KeyCompaction Identity(int declaredCount) => new(declaredCount, null);

    /// <summary>The map that gives a row to each key in <paramref name="keyLists"/> (0 and out-of-range keys ignored).
    /// Uses one bit per declared key while building, nothing per declared key after.</summary>
    public static KeyCompaction FromOccurring(int declaredCount, params IEnumerable<int>[] keyLists)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(declaredCount);
        var seen = new ulong[(declaredCount >> 6) + 1];
        int count = 0;
        foreach (var list in keyLists)
        {
            foreach (int key in list)
            {
                if (key <= 0 || key > declaredCount) continue;
                ref ulong word = ref seen[key >> 6];
                ulong bit = 1UL << (key & 63);
                if ((word & bit) == 0) { word |= bit; count++; }
            }
        }
        if (count == declaredCount) return Identity(declaredCount);
        var keys = new int[count];
        int n = 0;
        for (int w = 0; w < seen.Length; w++)
        {
            ulong word = seen[w];
            while (word != 0)
            {
                int bit = System.Numerics.BitOperations.TrailingZeroCount(word);
                keys[n++] = (w << 6) + bit;
                word &= word - 1;
            }
        }
        return new KeyCompaction(declaredCount, keys);
    }

    /// <summary>Rebuilds a map from its stored keys (a checkpoint); null keys mean the identity.</summary>
    /// <exception cref="InvalidDataException">The keys are not strictly ascending within 1..declaredCount.</exception>
    public static KeyCompaction FromStored(int declaredCount, int[]? keys, string what)
    {
        if (keys is null) return Identity(declaredCount);
        for (int n = 0; n < keys.Length; n++)
            if (keys[n] <= 0 || keys[n] > declaredCount || (n > 0 && keys[n] <= keys[n - 1]))
                throw new InvalidDataException($"{what}: the stored occurring keys are not strictly ascending within 1..{declaredCount}.");
        return new KeyCompaction(declaredCount, keys);
    }

    /// <summary>Whether both maps give every key the same row.</summary>
    public bool SameAs(KeyCompaction other) =>
        DeclaredCount == other.DeclaredCount && (_keys is null ? other._keys is null : other._keys is not null && _keys.AsSpan().SequenceEqual(other._keys));

    /// <summary>The row of a declared key: 0 for key 0, a key outside the declared range, or one that did not occur.</summary>
    public int ToRow(int key)
    {
        if (key <= 0 || key > DeclaredCount) return 0;
        if (_keys is null) return key;
        int at = Array.BinarySearch(_keys, key);
        return at >= 0 ? at + 1 : 0;
    }

    /// <summary><see cref="ToRow(int)"/> for every element, in parallel for large arrays. For the identity over keys
    /// already within range this returns <paramref name="keys"/> itself (no copy).</summary>
    public int[] ToRows(int[] keys)
    {
        if (_keys is null && !keys.AsSpan().ContainsAnyExceptInRange(0, DeclaredCount)) return keys;
        var rows = new int[keys.Length];
        if (keys.Length < 1 << 16)
            for (int n = 0; n < keys.Length; n++) rows[n] = ToRow(keys[n]);
        else
            Parallel.For(0, (keys.Length + (1 << 16) - 1) >> 16, block =>
            {
                int end = Math.Min(keys.Length, (block + 1) << 16);
                for (int n = block << 16; n < end; n++) rows[n] = ToRow(keys[n]);
            });
        return rows;
    }

    /// <summary>The declared key of a row (0 for row 0).</summary>
    public int ToKey(int row) => row <= 0 || row > Count ? 0 : _keys is null ? row : _keys[row - 1];

    /// <summary>
    /// The ONNX form of <see cref="ToRow(int)"/> for int64 keys already clamped to 0..DeclaredCount: nothing for the
    /// identity, else one LabelEncoder whose table holds the occurring keys only.
    /// </summary>
    public string Export(OnnxGraphBuilder g, string keys)
    {
        if (_keys is null) return keys;
        var from = new long[_keys.Length];
        var to = new long[_keys.Length];
        for (int n = 0; n < _keys.Length; n++) { from[n] = _keys[n]; to[n] = n + 1; }
        return g.LabelEncoder(keys, from, to, 0);
    }

    /// <summary>Dense declared-key → row table as an int64 tensor [DeclaredCount + 1] for batched lookups on a device;
    /// null for the identity. Only for scoring paths that see every declared key anyway (full catalogue scoring).</summary>
    public Tensor? RowTensor(Device device)
    {
        if (_keys is null) return null;
        var map = new long[DeclaredCount + 1L];
        for (int n = 0; n < _keys.Length; n++) map[_keys[n]] = n + 1;
        return tensor(map, dtype: int64, device: device);
    }
}
