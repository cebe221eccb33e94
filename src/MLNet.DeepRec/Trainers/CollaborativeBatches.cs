using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>Loss of collaborative models.</summary>
public enum CollaborativeLoss
{
    /// <summary>Pointwise binary cross-entropy: observed pairs are 1, sampled negatives 0 (the NCF paper's log loss).</summary>
    BinaryCrossEntropy,
    /// <summary>Bayesian Personalized Ranking: −log σ(s(u,i⁺) − s(u,i⁻)) over (positive, sampled negative) pairs.</summary>
    Bpr,
}

/// <summary>A batch of collaborative training samples.</summary>
/// <param name="Users">User keys, int64 [n].</param>
/// <param name="Items">Item keys (positive or negative), int64 [n].</param>
/// <param name="Labels">1 for observed, 0 for sampled negatives, float [n] (pointwise losses).</param>
/// <param name="NegativeItems">Sampled negative per row, int64 [n] (pairwise losses), else null.</param>
internal sealed record CollaborativeBatch(Tensor Users, Tensor Items, Tensor? Labels, Tensor? NegativeItems);

/// <summary>Each epoch: the positives, <c>k</c> fresh negatives per positive, shuffled; batches are views.</summary>
internal sealed class CollaborativeBatchSource : IBatchSource<CollaborativeBatch>
{
    private readonly Tensor _users, _items;
    private readonly TorchNegativeSampler _sampler;
    private readonly int _negatives;
    private readonly CollaborativeLoss _loss;

    public CollaborativeBatchSource(Tensor positiveUsers, Tensor positiveItems, TorchNegativeSampler sampler, int negativesPerPositive, CollaborativeLoss loss)
    {
        _users = positiveUsers; _items = positiveItems; _sampler = sampler; _negatives = negativesPerPositive; _loss = loss;
    }

    public IEpochData<CollaborativeBatch> PrepareEpoch(int epoch, Generator generator)
    {
        long n = _users.shape[0];
        if (_loss == CollaborativeLoss.Bpr)
        {
            var users = _users.repeat(_negatives);
            var positives = _items.repeat(_negatives);
            var negatives = _sampler.Sample(users, generator);
            var order = randperm(users.shape[0], device: users.device, generator: generator);
            return new Epoch(users.index_select(0, order), positives.index_select(0, order), null, negatives.index_select(0, order));
        }
        else
        {
            // Row r of the epoch is positive r for r < n, else a negative for user (r mod n). The shuffled users and
            // labels therefore follow from the permutation alone (order mod n, order < n): no concatenations.
            var negItems = _sampler.Sample(_users.repeat(_negatives), generator);
            var items = cat(new[] { _items, negItems });
            var order = randperm(n * (1 + _negatives), device: _users.device, generator: generator);
            var users = _users.index_select(0, order.remainder(n));
            var labels = order.lt(n).to(float32);
            return new Epoch(users, items.index_select(0, order), labels, null);
        }
    }

    private sealed class Epoch : IEpochData<CollaborativeBatch>
    {
        private readonly Tensor _u, _i;
        private readonly Tensor? _l, _neg;
        public Epoch(Tensor u, Tensor i, Tensor? l, Tensor? neg) { _u = u; _i = i; _l = l; _neg = neg; }
        public long SampleCount => _u.shape[0];
        public CollaborativeBatch Slice(long start, long count) =>
            new(_u.narrow(0, start, count), _i.narrow(0, start, count), _l?.narrow(0, start, count), _neg?.narrow(0, start, count));
    }
}

/// <summary>BCE or BPR over a <see cref="CollaborativeModule"/>.</summary>
internal sealed class CollaborativeObjective : ITrainingObjective<CollaborativeBatch>
{
    private readonly CollaborativeModule _model;
    private readonly CollaborativeLoss _loss;
    public CollaborativeObjective(CollaborativeModule model, CollaborativeLoss loss) { _model = model; _loss = loss; }
    public nn.Module Module => _model;

    public Tensor ComputeLoss(CollaborativeBatch batch)
    {
        if (_loss == CollaborativeLoss.Bpr)
        {
            var diff = _model.call(batch.Users, batch.Items) - _model.call(batch.Users, batch.NegativeItems!);
            return -nn.functional.logsigmoid(diff).mean();
        }
        return nn.functional.binary_cross_entropy_with_logits(_model.call(batch.Users, batch.Items), batch.Labels!);
    }
}
