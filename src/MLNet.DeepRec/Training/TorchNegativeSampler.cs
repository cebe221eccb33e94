using static TorchSharp.torch;

namespace MLNet.DeepRec.Training;

/// <summary>How negative items are drawn during training.</summary>
public enum NegativeSampling
{
    /// <summary>Uniformly over all item keys (the NCF paper's choice).</summary>
    Uniform,
    /// <summary>Proportional to each item's interaction count in the training data (harder negatives).</summary>
    Popularity,
}

/// <summary>
/// Draws negative items for a batch of users entirely with tensor operations: candidates are drawn at once, collisions
/// with the user's interacted items are found with one <c>searchsorted</c> over sorted (user, item) keys, and only the
/// colliding draws are redrawn. Never returns key 0 or an item the user interacted with.
/// </summary>
internal sealed class TorchNegativeSampler : IDisposable
{
    private const int MaxRedraws = 64;
    private readonly Tensor _seenKeys;        // sorted int64 user * stride + item
    private readonly Tensor? _weights;        // float [ItemCount + 1] with weight 0 for key 0
    private readonly long _stride;
    private readonly int _itemCount;

    public TorchNegativeSampler(int[] users, int[] items, int userCount, int itemCount, NegativeSampling strategy, Device device)
    {
        _itemCount = itemCount;
        _stride = itemCount + 1L;
        var keys = new long[users.Length];
        var perUser = new int[userCount + 1];
        var popularity = new float[itemCount + 1];
        for (int n = 0; n < users.Length; n++)
        {
            keys[n] = users[n] * _stride + items[n];
            popularity[items[n]] += 1;
        }
        Array.Sort(keys);
        int unique = 0;
        for (int n = 0; n < keys.Length; n++)
            if (n == 0 || keys[n] != keys[n - 1]) { keys[unique++] = keys[n]; perUser[(int)(keys[n] / _stride)]++; }
        for (int u = 1; u <= userCount; u++)
            if (perUser[u] >= itemCount)
                throw new InvalidOperationException($"User key {u} has interacted with all {itemCount} items, so no negative item can be sampled for it. Remove that user from the training data.");
        _seenKeys = tensor(keys.AsSpan(0, unique).ToArray(), dtype: int64, device: device);
        if (strategy == NegativeSampling.Popularity)
        {
            popularity[0] = 0;
            // Items never seen still get a small weight so that every item can be a negative.
            for (int i = 1; i <= itemCount; i++) popularity[i] += 0.5f;
            _weights = tensor(popularity, dtype: float32, device: device);
        }
    }

    /// <summary>One negative item per entry of <paramref name="users"/> (int64 [n]) → int64 [n].</summary>
    public Tensor Sample(Tensor users, Generator generator)
    {
        long n = users.shape[0];
        using var scope = NewDisposeScope();
        var items = Draw(n, users.device, generator);
        // Round 1 checks every draw; later rounds only the entries redrawn in the round before.
        var pending = arange(n, dtype: int64, device: users.device);
        var pendingUsers = users;
        var pendingItems = items;
        for (int round = 0; round < MaxRedraws; round++)
        {
            var keys = pendingUsers * _stride + pendingItems;
            var position = searchsorted(_seenKeys, keys).clamp_max(_seenKeys.shape[0] - 1);
            var hit = _seenKeys.index_select(0, position).eq(keys);
            pending = pending.masked_select(hit);
            if (pending.shape[0] == 0) return items.MoveToOuterDisposeScope();
            pendingUsers = users.index_select(0, pending);
            pendingItems = Draw(pending.shape[0], users.device, generator);
            items.index_put_(pendingItems, pending);
        }
        throw new InvalidOperationException("Negative sampling could not find unseen items after many redraws; some users have interacted with nearly every item.");
    }

    private Tensor Draw(long n, Device device, Generator generator) => _weights is null
        ? randint(1, _itemCount + 1, new long[] { n }, dtype: int64, device: device, generator: generator)
        : multinomial(_weights, n, replacement: true, generator: generator);

    public void Dispose()
    {
        _seenKeys.Dispose();
        _weights?.Dispose();
    }
}
