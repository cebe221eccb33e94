using MLNet.DeepRec.Evaluation;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// Batched TorchSharp scoring of a <see cref="SequentialModule"/> behind <see cref="IItemScorer"/>: user key u is scored
/// with the history held in row u of a [UserCount + 1, L] left-padded tensor (row 0, the unknown user, is empty).
/// </summary>
internal sealed class SequentialScorer : IItemScorer, IDisposable
{
    private const int UsersPerChunk = 512;
    private readonly SequentialModule _module;
    private readonly Tensor _histories;
    private readonly Device _device;

    public SequentialScorer(SequentialModule module, long[] paddedHistories, int userCount, Device device)
    {
        _module = module;
        _device = device;
        UserCount = userCount;
        _histories = tensor(paddedHistories, new long[] { userCount + 1, module.MaxLength }, dtype: int64, device: device); // shaped at creation: no temporary
    }

    public int UserCount { get; }
    public int ItemCount => _module.ItemCount;

    public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser)
    {
        ItemScorerArguments.CheckCandidates(users, items, candidatesPerUser);
        var result = new float[items.Length];
        using var _ = no_grad();
        _module.eval();
        for (int start = 0; start < users.Length; start += UsersPerChunk)
        {
            using var scope = NewDisposeScope();
            int b = Math.Min(UsersPerChunk, users.Length - start);
            var hidden = Hidden(users.AsSpan(start, b));
            var cand = tensor(ItemScorerArguments.ClampKeys(items.AsSpan(start * candidatesPerUser, b * candidatesPerUser), ItemCount), dtype: int64, device: _device);
            var emb = _module.ItemWeights.index_select(0, cand).view(b, candidatesPerUser, -1);
            var scores = emb.bmm(hidden.unsqueeze(2)).squeeze(2).to(float32).cpu().contiguous();
            scores.data<float>().CopyTo(result.AsSpan(start * candidatesPerUser, b * candidatesPerUser));
        }
        return result;
    }

    public float[] ScoreAllItems(int[] users)
    {
        ArgumentNullException.ThrowIfNull(users);
        var result = new float[(long)users.Length * ItemCount];
        int chunk = (int)Math.Clamp((1 << 22) / Math.Max(1, ItemCount), 1, UsersPerChunk);
        using var _ = no_grad();
        _module.eval();
        for (int start = 0; start < users.Length; start += chunk)
        {
            using var scope = NewDisposeScope();
            int b = Math.Min(chunk, users.Length - start);
            var scores = Hidden(users.AsSpan(start, b)).matmul(_module.ItemWeights.narrow(0, 1, ItemCount).t()).to(float32).cpu().contiguous();
            scores.data<float>().CopyTo(result.AsSpan(start * ItemCount, b * ItemCount));
        }
        return result;
    }

    private Tensor Hidden(ReadOnlySpan<int> users)
    {
        var keys = ItemScorerArguments.ClampKeys(users, UserCount);
        return _module.LastHidden(_histories.index_select(0, tensor(keys, dtype: int64, device: _device)));
    }


    public void Dispose() => _histories.Dispose();
}
