namespace MLNet.DeepRec.Data;

/// <summary>
/// The distinct positive items of every user, at the level of key indices (users 1..<see cref="UserCount"/>, items
/// 1..<see cref="ItemCount"/>; key 0 is ML.NET's unknown key). Stored as sorted per-user arrays (compressed rows), so
/// <see cref="Contains"/> is a binary search and <see cref="ItemsOf"/> allocates nothing. Immutable and thread-safe.
/// </summary>
public sealed class UserItemSet
{
    private readonly int[] _offsets; // length UserCount + 2: items of user u are _items[_offsets[u].._offsets[u + 1]]
    private readonly int[] _items;

    /// <summary>Builds the set from key-indexed interactions. Rows whose user or item key is 0 (unknown) are ignored;
    /// duplicates are kept once.</summary>
    /// <param name="interactions">The interactions (typically the training data).</param>
    public UserItemSet(KeyedInteractions interactions)
        : this(Check(interactions).Users, interactions.Items, interactions.UserCount, interactions.ItemCount)
    {
    }

    /// <summary>Builds the set from parallel arrays of user and item keys. Pairs whose user or item key is 0 (unknown)
    /// are ignored; duplicates are kept once.</summary>
    /// <param name="users">User key per interaction, 0..<paramref name="userCount"/>.</param>
    /// <param name="items">Item key per interaction, 0..<paramref name="itemCount"/>.</param>
    /// <param name="userCount">Number of user keys.</param>
    /// <param name="itemCount">Number of item keys.</param>
    /// <exception cref="ArgumentOutOfRangeException">A count is not positive, or a key is negative or above its count.</exception>
    public UserItemSet(int[] users, int[] items, int userCount, int itemCount)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(items);
        if (users.Length != items.Length) throw new ArgumentException($"users ({users.Length}) and items ({items.Length}) must have the same length.", nameof(items));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(userCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(itemCount);
        UserCount = userCount;
        ItemCount = itemCount;

        var counts = new int[userCount + 2];
        for (int r = 0; r < users.Length; r++)
        {
            int u = users[r], i = items[r];
            if ((uint)u > (uint)userCount) throw new ArgumentOutOfRangeException(nameof(users), u, $"User key at index {r} is outside 0..{userCount}.");
            if ((uint)i > (uint)itemCount) throw new ArgumentOutOfRangeException(nameof(items), i, $"Item key at index {r} is outside 0..{itemCount}.");
            if (u != 0 && i != 0) counts[u + 1]++;
        }
        for (int u = 0; u <= userCount; u++) counts[u + 1] += counts[u];
        var raw = new int[counts[userCount + 1]];
        var fill = (int[])counts.Clone();
        for (int r = 0; r < users.Length; r++)
            if (users[r] != 0 && items[r] != 0) raw[fill[users[r]]++] = items[r];

        // Sort each user's items and drop duplicates, compacting in place.
        _offsets = new int[userCount + 2];
        int write = 0;
        for (int u = 0; u <= userCount; u++)
        {
            _offsets[u] = write;
            var span = raw.AsSpan(counts[u], counts[u + 1] - counts[u]);
            span.Sort();
            for (int k = 0; k < span.Length; k++)
                if (k == 0 || span[k] != span[k - 1]) raw[write++] = span[k];
        }
        _offsets[userCount + 1] = write;
        _items = write == raw.Length ? raw : raw.AsSpan(0, write).ToArray();
    }

    private static KeyedInteractions Check(KeyedInteractions interactions)
    {
        ArgumentNullException.ThrowIfNull(interactions);
        return interactions;
    }

    /// <summary>Number of user keys.</summary>
    public int UserCount { get; }

    /// <summary>Number of item keys.</summary>
    public int ItemCount { get; }

    /// <summary>Number of distinct (user, item) pairs.</summary>
    public int PairCount => _items.Length;

    /// <summary>Whether <paramref name="user"/> has <paramref name="item"/> as a positive. False for keys out of range or 0.</summary>
    /// <param name="user">User key.</param>
    /// <param name="item">Item key.</param>
    public bool Contains(int user, int item)
    {
        if ((uint)user > (uint)UserCount) return false;
        return ItemsOf(user).BinarySearch(item) >= 0;
    }

    /// <summary>The sorted distinct positive item keys of <paramref name="user"/> (empty for key 0).</summary>
    /// <param name="user">User key, 0..<see cref="UserCount"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="user"/> is outside 0..<see cref="UserCount"/>.</exception>
    public ReadOnlySpan<int> ItemsOf(int user)
    {
        if ((uint)user > (uint)UserCount)
            throw new ArgumentOutOfRangeException(nameof(user), user, $"User key must be in 0..{UserCount}.");
        return _items.AsSpan(_offsets[user], _offsets[user + 1] - _offsets[user]);
    }

    /// <summary>Number of distinct users with each item, indexed by item key (index 0, the unknown key, is 0).</summary>
    public int[] ItemUserCounts()
    {
        var counts = new int[ItemCount + 1];
        foreach (int i in _items) counts[i]++;
        return counts;
    }
}
