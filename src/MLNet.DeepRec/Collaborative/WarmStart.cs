using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// Copies a trained model's weights into a freshly initialised network whose key vocabularies may have grown:
/// embedding rows are matched by original id, so existing users/items keep their vectors and new ones keep their
/// fresh initialisation. Tables are recognised by their declared role (<see cref="CollaborativeModule.KeyedTables"/>): user
/// tables are indexed by user row, item tables by item row; all other parameters must have identical shapes.
/// </summary>
internal sealed class WarmStart
{
    private readonly int[] _userMap, _itemMap; // new key → old key (-1 = new)
    private readonly UserItemSet _initialSeen;

    private WarmStart(int[] userMap, int[] itemMap, bool same, UserItemSet initialSeen)
    {
        _userMap = userMap; _itemMap = itemMap; SameVocabulary = same; _initialSeen = initialSeen;
        KnownUsers = userMap.Skip(1).Count(k => k > 0);
        KnownItems = itemMap.Skip(1).Count(k => k > 0);
    }

    public bool SameVocabulary { get; }
    public int KnownUsers { get; }
    public int KnownItems { get; }

    /// <summary>
    /// The declared keys, in the new key types, of the users and items the initial model has rows for (so that a
    /// continued fit keeps rows for them even when they are absent from the new interactions). Keys whose id is not in
    /// the new vocabulary are left out.
    /// </summary>
    public static (int[] Users, int[] Items) KnownKeys(CollaborativeFilteringTransformer initial, KeyVocabulary vocabulary, int userCount, int itemCount) =>
        (NewKeysOf(initial.UserKeys, initial.Vocabulary.Users, vocabulary.Users, vocabulary.UserKey, userCount, "user"),
         NewKeysOf(initial.ItemKeys, initial.Vocabulary.Items, vocabulary.Items, vocabulary.ItemKey, itemCount, "item"));

    private static int[] NewKeysOf(KeyCompaction old, IReadOnlyList<string>? oldIds, IReadOnlyList<string>? newIds, Func<string, uint> newKeyOf, int newCount, string role)
    {
        var keys = new int[old.Count];
        for (int row = 1; row <= old.Count; row++)
            keys[row - 1] = NewKey(old.ToKey(row), oldIds, newIds, newKeyOf, old.DeclaredCount, newCount, role);
        return keys;
    }

    private static int NewKey(int oldKey, IReadOnlyList<string>? oldIds, IReadOnlyList<string>? newIds, Func<string, uint> newKeyOf, int oldCount, int newCount, string role)
    {
        if (oldIds == null || newIds == null)
        {
            if (oldCount != newCount)
                throw new ArgumentException($"The {role} vocabulary changed size ({oldCount} → {newCount}) but the key columns have no KeyValues to match ids; use MapValueToKey.", "InitialModel");
            return oldKey;
        }
        return oldKey >= 1 && oldKey <= oldIds.Count ? (int)newKeyOf(oldIds[oldKey - 1]) : 0;
    }

    /// <summary>Copies <paramref name="initial"/>'s weights into <paramref name="target"/>, whose rows follow
    /// <paramref name="userKeys"/>/<paramref name="itemKeys"/>, matching rows by original id.</summary>
    public static WarmStart Apply(CollaborativeModule target, CollaborativeFilteringTransformer initial, KeyVocabulary vocabulary, KeyCompaction userKeys, KeyCompaction itemKeys)
    {
        var source = initial.Module;
        if (source.Kind != target.Kind)
            throw new ArgumentException($"InitialModel is a {source.Kind} model; this trainer trains {target.Kind}.", "InitialModel");
        var hp = target.HyperParameters;
        foreach (var (key, value) in source.HyperParameters)
            if (!hp.TryGetValue(key, out var mine) || !mine.SequenceEqual(value))
                throw new ArgumentException($"InitialModel has {key} = {{{string.Join(", ", value)}}}, these options ask for {{{string.Join(", ", hp.GetValueOrDefault(key) ?? Array.Empty<int>())}}}.", "InitialModel");

        var userMap = Map(initial.UserKeys, userKeys, vocabulary.Users, initial.Vocabulary.UserKey, initial.Vocabulary.Users != null);
        var itemMap = Map(initial.ItemKeys, itemKeys, vocabulary.Items, initial.Vocabulary.ItemKey, initial.Vocabulary.Items != null);
        bool same = source.UserCount == target.UserCount && source.ItemCount == target.ItemCount
            && userMap.Select((old, row) => old == row).All(x => x) && itemMap.Select((old, row) => old == row).All(x => x);

        using var _ = no_grad();
        var from = source.state_dict();
        var keyed = target.KeyedTables.ToDictionary(t => t.WeightName, t => t.Table.Role == EmbeddingRole.User ? userMap : itemMap);
        foreach (var (name, to) in target.state_dict())
        {
            using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
            var old = from[name];
            int[]? map = keyed.GetValueOrDefault(name);
            if (map == null)
            {
                to.copy_(old.to(to.device));
                continue;
            }
            var newRows = Enumerable.Range(0, map.Length).Where(k => map[k] >= 0).Select(k => (long)k).ToArray();
            var oldRows = newRows.Select(k => (long)map[k]).ToArray();
            using var newIndex = tensor(newRows, device: to.device);
            using var oldIndex = tensor(oldRows, device: old.device);
            using var rows = old.index_select(0, oldIndex).to(to.device);
            to.index_copy_(0, newIndex, rows);
        }
        return new WarmStart(userMap, itemMap, same, initial.Seen);
    }

    /// <summary>New row → old row (−1 = new), through declared keys and, where both sides have them, original ids.</summary>
    private static int[] Map(KeyCompaction oldKeys, KeyCompaction newKeys, IReadOnlyList<string>? newIds, Func<string, uint> oldKeyOf, bool oldHasIds)
    {
        var map = new int[newKeys.Count + 1];
        map[0] = 0; // the unknown row carries over
        for (int row = 1; row <= newKeys.Count; row++)
        {
            int newKey = newKeys.ToKey(row);
            int oldKey = newIds != null && oldHasIds ? (int)oldKeyOf(newIds[newKey - 1]) : newKey;
            int oldRow = oldKeys.ToRow(oldKey);
            map[row] = oldRow > 0 ? oldRow : -1;
        }
        return map;
    }

    /// <summary>The initial model's training interactions (re-keyed) plus the new ones.</summary>
    public (int[] Users, int[] Items) SeenWith(int[] users, int[] items)
    {
        var newUser = Inverse(_userMap, _initialSeen.UserCount);
        var newItem = Inverse(_itemMap, _initialSeen.ItemCount);
        var u = new List<int>(users); var i = new List<int>(items);
        for (int oldUser = 1; oldUser <= _initialSeen.UserCount; oldUser++)
        {
            if (newUser[oldUser] <= 0) continue;
            foreach (int oldItem in _initialSeen.ItemsOf(oldUser))
                if (newItem[oldItem] > 0) { u.Add(newUser[oldUser]); i.Add(newItem[oldItem]); }
        }
        return (u.ToArray(), i.ToArray());
    }

    private static int[] Inverse(int[] newToOld, int oldCount)
    {
        var inverse = new int[oldCount + 1];
        for (int k = 1; k < newToOld.Length; k++) if (newToOld[k] > 0) inverse[newToOld[k]] = k;
        return inverse;
    }
}
