using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// Copies a trained model's weights into a freshly initialised network whose key vocabularies may have grown:
/// embedding rows are matched by original id, so existing users/items keep their vectors and new ones keep their
/// fresh initialisation. Tables are recognised by name: parameters whose name contains "user_" are indexed by user
/// key, "item_" by item key; all other parameters must have identical shapes.
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

    public static WarmStart Apply(CollaborativeModule target, CollaborativeFilteringTransformer initial, KeyVocabulary vocabulary)
    {
        var source = initial.Module;
        if (source.Kind != target.Kind)
            throw new ArgumentException($"InitialModel is a {source.Kind} model; this trainer trains {target.Kind}.", "InitialModel");
        var hp = target.HyperParameters;
        foreach (var (key, value) in source.HyperParameters)
            if (!hp.TryGetValue(key, out var mine) || !mine.SequenceEqual(value))
                throw new ArgumentException($"InitialModel has {key} = {{{string.Join(", ", value)}}}, these options ask for {{{string.Join(", ", hp.GetValueOrDefault(key) ?? Array.Empty<int>())}}}.", "InitialModel");

        var userMap = Map(initial.Vocabulary.Users, vocabulary.Users, source.UserCount, target.UserCount, "user");
        var itemMap = Map(initial.Vocabulary.Items, vocabulary.Items, source.ItemCount, target.ItemCount, "item");
        bool same = source.UserCount == target.UserCount && source.ItemCount == target.ItemCount
            && userMap.Select((old, key) => old == key).All(x => x) && itemMap.Select((old, key) => old == key).All(x => x);

        using var _ = no_grad();
        var from = source.state_dict();
        foreach (var (name, to) in target.state_dict())
        {
            var old = from[name];
            int[]? map = name.Contains("user_", StringComparison.Ordinal) ? userMap : name.Contains("item_", StringComparison.Ordinal) ? itemMap : null;
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

    private static int[] Map(IReadOnlyList<string>? oldIds, IReadOnlyList<string>? newIds, int oldCount, int newCount, string role)
    {
        var map = new int[newCount + 1];
        map[0] = 0; // the unknown row carries over
        if (oldIds == null || newIds == null)
        {
            if (oldCount != newCount)
                throw new ArgumentException($"The {role} vocabulary changed size ({oldCount} → {newCount}) but the key columns have no KeyValues to match ids; use MapValueToKey.", "InitialModel");
            for (int k = 1; k <= newCount; k++) map[k] = k;
            return map;
        }
        var oldIndex = new Dictionary<string, int>(oldIds.Count, StringComparer.Ordinal);
        for (int k = 0; k < oldIds.Count; k++) oldIndex.TryAdd(oldIds[k], k + 1);
        for (int k = 1; k <= newCount; k++) map[k] = oldIndex.TryGetValue(newIds[k - 1], out int old) ? old : -1;
        return map;
    }
}
