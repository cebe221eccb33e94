using MLNet.DeepRec.Data;
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
    private const long SortedLookupThreshold = 1 << 16;
    private Tensor _seenKeys;        // sorted int64 user * stride + item
    private readonly Tensor? _weights;        // float [ItemCount + 1] with weight 0 for key 0
    private readonly long _stride;
    private readonly int _itemCount;

    public TorchNegativeSampler(int[] users, int[] items, int userCount, int itemCount, NegativeSampling strategy, Device device)
        : this(new UserItemSet(users, items, userCount, itemCount), strategy, device)
    {
    }

    /// <summary>A sampler that never draws, for a user, an item of <paramref name="seen"/>.</summary>
    public TorchNegativeSampler(UserItemSet seen, NegativeSampling strategy, Device device)
    {
        _itemCount = seen.ItemCount;
        _stride = seen.ItemCount + 1L;
        for (int u = 1; u <= seen.UserCount; u++)
            if (seen.ItemsOf(u).Length >= seen.ItemCount)
                throw new InvalidOperationException($"User key {u} has interacted with all {seen.ItemCount} items, so no negative item can be sampled for it. Remove that user from the training data.");
        // The seen set is already sorted by user, then item, without duplicates: its pairs are the sorted keys. They are
        // written into the tensor a block at a time, so no second full-size managed copy exists.
        _seenKeys = empty(Math.Max(1, (long)seen.PairCount), dtype: int64);
        const int Block = 1 << 20;
        var buffer = new long[Block];
        long written = 0;
        int filled = 0;
        void Flush()
        {
            if (filled == 0) return;
            using var block = tensor(filled == Block ? buffer : buffer.AsSpan(0, filled).ToArray(), dtype: int64);
            using var target = _seenKeys.narrow(0, written, filled);
            target.copy_(block);
            written += filled;
            filled = 0;
        }
        for (int u = 1; u <= seen.UserCount; u++)
        {
            foreach (int item in seen.ItemsOf(u))
            {
                buffer[filled++] = u * _stride + item;
                if (filled == Block) Flush();
            }
        }
        Flush();
        // An empty set still needs one key for searchsorted; −1 matches no (user, item).
        if (written == 0) _seenKeys.fill_(-1);
        if (device.type != TorchSharp.DeviceType.CPU)
        {
            var moved = _seenKeys.to(device);
            _seenKeys.Dispose();
            _seenKeys = moved;
        }
        if (strategy == NegativeSampling.Popularity)
        {
            var popularity = seen.ItemUserCounts().Select(c => (float)c).ToArray();
            popularity[0] = 0;
            // Items never seen still get a small weight so that every item can be a negative.
            for (int i = 1; i <= seen.ItemCount; i++) popularity[i] += 0.5f;
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
            if (keys.shape[0] >= SortedLookupThreshold)
            {
                // Sorted queries walk the (large) seen-key array in order instead of jumping around it: 3× faster for a
                // million queries against 20M keys, the sort included. Only the order of the pending list changes.
                var (sortedKeys, order) = keys.sort();
                var position = searchsorted(_seenKeys, sortedKeys).clamp_max(_seenKeys.shape[0] - 1);
                var hit = _seenKeys.index_select(0, position).eq(sortedKeys);
                pending = pending.index_select(0, order.masked_select(hit));
            }
            else
            {
                var position = searchsorted(_seenKeys, keys).clamp_max(_seenKeys.shape[0] - 1);
                var hit = _seenKeys.index_select(0, position).eq(keys);
                pending = pending.masked_select(hit);
            }
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
