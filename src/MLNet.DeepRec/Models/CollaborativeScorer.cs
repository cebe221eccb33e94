using MLNet.DeepRec.Evaluation;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>Batched TorchSharp scoring of a <see cref="CollaborativeModule"/> behind <see cref="IItemScorer"/>.</summary>
internal sealed class CollaborativeScorer : IItemScorer
{
    // Pairs scored per forward call: large enough to amortise per-call overhead, small enough to bound memory.
    private const long PairsPerChunk = 1 << 18;
    private readonly CollaborativeModule _module;
    private readonly Device _device;

    public CollaborativeScorer(CollaborativeModule module, Device device) { _module = module; _device = device; }

    public int UserCount => _module.UserCount;
    public int ItemCount => _module.ItemCount;

    public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser)
    {
        ItemScorerArguments.CheckCandidates(users, items, candidatesPerUser);
        var result = new float[items.Length];
        using var _ = no_grad();
        _module.eval();
        using var u = tensor(ItemScorerArguments.ClampKeys(users, UserCount), dtype: int64, device: _device).repeat_interleave(candidatesPerUser);
        using var i = tensor(ItemScorerArguments.ClampKeys(items, ItemCount), dtype: int64, device: _device);
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
        _module.eval();
        var clamped = ItemScorerArguments.ClampKeys(users, UserCount);
        for (int start = 0; start < users.Length; start += usersPerChunk)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(usersPerChunk, users.Length - start);
            var u = tensor(clamped.AsSpan(start, count).ToArray(), dtype: int64, device: _device);
            var scores = _module.ScoreAllItems(u).to(float32).cpu().contiguous();
            scores.data<float>().CopyTo(result.AsSpan(start * ItemCount, count * ItemCount));
        }
        return result;
    }

}
