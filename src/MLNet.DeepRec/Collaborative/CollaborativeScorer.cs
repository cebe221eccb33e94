using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Batched TorchSharp scoring of a <see cref="CollaborativeModule"/> behind <see cref="IItemScorer"/>, in the key space of
/// the data: declared keys are mapped to the module's rows (<see cref="KeyCompaction"/>); keys without a row score as
/// the unknown row.
/// </summary>
internal sealed class CollaborativeScorer : IItemScorer
{
    // Pairs scored per forward call: large enough to amortise per-call overhead, small enough to bound memory.
    private const long PairsPerChunk = 1 << 18;
    private readonly CollaborativeModule _module;
    private readonly Device _device;
    private readonly KeyCompaction _users, _items;
    private Tensor? _itemKeyRows; // [ItemCount] row of each declared item key, built on first full-catalogue call

    public CollaborativeScorer(CollaborativeModule module, Device device, KeyCompaction? users = null, KeyCompaction? items = null)
    {
        _module = module; _device = device;
        _users = users ?? KeyCompaction.Identity(module.UserCount);
        _items = items ?? KeyCompaction.Identity(module.ItemCount);
    }

    public int UserCount => _users.DeclaredCount;
    public int ItemCount => _items.DeclaredCount;

    public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser)
    {
        ItemScorerArguments.CheckCandidates(users, items, candidatesPerUser);
        var result = new float[items.Length];
        using var _ = no_grad();
        // Every tensor made here, temporaries included, belongs to a scope: an unreferenced temporary can be finalized by a
        // collection on another thread while libtorch still reads it (docs/reliability.md, section 5).
        using var outer = NewDisposeScope();
        _module.eval();
        var u = tensor(Rows(users, _users), dtype: int64, device: _device).repeat_interleave(candidatesPerUser);
        var i = tensor(Rows(items, _items), dtype: int64, device: _device);
        for (long start = 0; start < items.Length; start += PairsPerChunk)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(PairsPerChunk, items.Length - start);
            var scores = _module.call(u.narrow(0, start, count), i.narrow(0, start, count)).to(float32).cpu();
            scores.data<float>().CopyTo(result.AsSpan((int)start, (int)count));
        }
        return result;
    }

    public float[] ScoreAllItems(int[] users)
    {
        ArgumentNullException.ThrowIfNull(users);
        var result = new float[(long)users.Length * ItemCount];
        int usersPerChunk = (int)Math.Max(1, PairsPerChunk / Math.Max(1, ItemCount));
        using var _ = no_grad();
        using var outer = NewDisposeScope(); // temporaries stay referenced during native calls (see ScoreCandidates)
        _module.eval();
        var rows = Rows(users, _users);
        if (!_items.IsIdentity) _itemKeyRows ??= _items.RowTensor(_device)!.narrow(0, 1, ItemCount).clone().DetachFromDisposeScope();
        for (int start = 0; start < users.Length; start += usersPerChunk)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(usersPerChunk, users.Length - start);
            var u = tensor(rows.AsSpan(start, count).ToArray(), dtype: int64, device: _device);
            var scores = _module.ScoreAllItems(u);
            if (_itemKeyRows is not null)
            {
                // Column j is declared item key j + 1: its row's score, or the unknown row's for keys without a row.
                var unknown = _module.call(u, zeros(count, dtype: int64, device: _device)).unsqueeze(1);
                scores = cat(new[] { unknown, scores }, 1).index_select(1, _itemKeyRows);
            }
            scores.to(float32).cpu().contiguous().data<float>().CopyTo(result.AsSpan(start * ItemCount, count * ItemCount));
        }
        return result;
    }

    /// <summary>Declared keys → int64 module rows (out-of-range and never-trained keys → 0).</summary>
    internal static long[] Rows(ReadOnlySpan<int> keys, KeyCompaction map)
    {
        var r = new long[keys.Length];
        for (int n = 0; n < keys.Length; n++) r[n] = map.ToRow(keys[n]);
        return r;
    }
}
