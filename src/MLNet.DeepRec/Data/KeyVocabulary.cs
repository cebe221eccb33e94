using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// The original user and item values behind the key columns, read from the <c>KeyValues</c> annotation that
/// <c>MapValueToKey</c> attaches (key k ↔ Users[k − 1]). Lets the recommendation API speak in the user's own ids.
/// </summary>
public sealed class KeyVocabulary
{
    private readonly Dictionary<string, uint>? _userIndex;
    private readonly Dictionary<string, uint>? _itemIndex;

    /// <summary>Creates a vocabulary from the key values of each column (null when a column has no key values).</summary>
    public KeyVocabulary(IReadOnlyList<string>? users, IReadOnlyList<string>? items)
    {
        Users = users; Items = items;
        _userIndex = Index(users);
        _itemIndex = Index(items);
    }

    /// <summary>User ids by key − 1, or null.</summary>
    public IReadOnlyList<string>? Users { get; }

    /// <summary>Item ids by key − 1, or null.</summary>
    public IReadOnlyList<string>? Items { get; }

    /// <summary>The key of a user id, or 0 (unknown) when the id was not in the training data.</summary>
    public uint UserKey(string userId) => Lookup(_userIndex, userId, "user");

    /// <summary>The key of an item id, or 0 (unknown) when the id was not in the training data.</summary>
    public uint ItemKey(string itemId) => Lookup(_itemIndex, itemId, "item");

    /// <summary>The item id of a key, or null for key 0 or when no vocabulary is known.</summary>
    public string? ItemId(uint key) => Items != null && key >= 1 && key <= Items.Count ? Items[(int)key - 1] : null;

    /// <summary>The user id of a key, or null for key 0 or when no vocabulary is known.</summary>
    public string? UserId(uint key) => Users != null && key >= 1 && key <= Users.Count ? Users[(int)key - 1] : null;

    private static uint Lookup(Dictionary<string, uint>? index, string id, string role)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (index == null)
            throw new InvalidOperationException($"The {role} key column had no KeyValues annotation at training time, so ids cannot be mapped to keys; pass keys instead.");
        return index.TryGetValue(id, out var key) ? key : 0u;
    }

    private static Dictionary<string, uint>? Index(IReadOnlyList<string>? values)
    {
        if (values == null) return null;
        var d = new Dictionary<string, uint>(values.Count, StringComparer.Ordinal);
        for (int k = 0; k < values.Count; k++) d.TryAdd(values[k], (uint)(k + 1));
        return d;
    }

    /// <summary>Reads a key column's KeyValues annotation as strings, or null when it has none.</summary>
    public static IReadOnlyList<string>? Read(DataViewSchema.Column column)
    {
        var annotation = column.Annotations.Schema.GetColumnOrNull("KeyValues");
        if (annotation == null || annotation.Value.Type is not VectorDataViewType vector) return null;
        var raw = vector.ItemType.RawType;
        if (raw == typeof(ReadOnlyMemory<char>)) return ReadAs<ReadOnlyMemory<char>>(column, v => v.ToString());
        if (raw == typeof(uint)) return ReadAs<uint>(column, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (raw == typeof(int)) return ReadAs<int>(column, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (raw == typeof(long)) return ReadAs<long>(column, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (raw == typeof(ulong)) return ReadAs<ulong>(column, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (raw == typeof(float)) return ReadAs<float>(column, v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        if (raw == typeof(double)) return ReadAs<double>(column, v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        return null;
    }

    private static string[] ReadAs<T>(DataViewSchema.Column column, Func<T, string> format)
    {
        VBuffer<T> values = default;
        column.GetKeyValues(ref values);
        var dense = values.DenseValues().ToArray();
        var result = new string[dense.Length];
        for (int n = 0; n < dense.Length; n++) result[n] = format(dense[n]);
        return result;
    }
}
