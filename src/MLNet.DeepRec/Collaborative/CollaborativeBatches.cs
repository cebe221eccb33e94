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
    /// <summary>
    /// Explicit feedback (ratings): squared error between the predicted and the labelled value of every labelled
    /// (user, item) row, no sampled negatives. <c>Score</c> is the predicted rating (no <c>Probability</c>), evaluated with
    /// <c>mlContext.Regression.Evaluate</c>. Needs a label column; the output bias starts at the mean label.
    /// </summary>
    SquaredError,
}

/// <summary>A batch of collaborative training samples.</summary>
/// <param name="Users">User keys, int64 [n].</param>
/// <param name="Items">Item keys (positive or negative), int64 [n].</param>
/// <param name="Labels">1 for observed, 0 for sampled negatives, float [n] (pointwise losses).</param>
/// <param name="NegativeItems">Sampled negative per row, int64 [n] (pairwise losses), else null.</param>
internal sealed record CollaborativeBatch(Tensor Users, Tensor Items, Tensor? Labels, Tensor? NegativeItems);

/// <summary>
/// Each epoch: the positives in a fresh random order, taken a chunk at a time; each chunk gets <c>k</c> fresh negatives
/// per positive and is shuffled, and its batches are views of it. Only one chunk's samples exist at a time, so memory
/// follows the chunk size, not the epoch (20M interactions × 5 samples would otherwise be gigabytes of indices).
/// </summary>
internal sealed class CollaborativeBatchSource : IBatchSource<CollaborativeBatch>
{
    /// <summary>Positives per chunk before rounding to whole batches: about a million samples at 4 negatives.</summary>
    internal const long TargetPositivesPerChunk = 1 << 18;
    private readonly Tensor _users, _items;
    private readonly TorchNegativeSampler _sampler;
    private readonly int _negatives;
    private readonly CollaborativeLoss _loss;
    private readonly long _positivesPerChunk;

    public CollaborativeBatchSource(Tensor positiveUsers, Tensor positiveItems, TorchNegativeSampler sampler, int negativesPerPositive,
        CollaborativeLoss loss, int batchSize, long targetPositivesPerChunk = TargetPositivesPerChunk)
    {
        _users = positiveUsers; _items = positiveItems; _sampler = sampler; _negatives = negativesPerPositive; _loss = loss;
        // A whole number of batches per chunk, so chunk boundaries never cut a batch short.
        _positivesPerChunk = Math.Max(1, (targetPositivesPerChunk + batchSize - 1) / batchSize) * batchSize;
    }

    private long SamplesPerPositive => _loss == CollaborativeLoss.Bpr ? _negatives : 1 + _negatives;

    public IEpochData<CollaborativeBatch> PrepareEpoch(int epoch, Generator generator)
    {
        long n = _users.shape[0];
        // int32 order: at 20M positives half the memory of int64, and index_select takes either.
        var order = randperm(n, dtype: n <= int.MaxValue ? int32 : int64, device: _users.device, generator: generator);
        return new Epoch(this, order, generator, n);
    }

    /// <summary>A chunk of the shuffled positives with their fresh negatives: [users, items, labels, negative items].</summary>
    private sealed class Epoch(CollaborativeBatchSource source, Tensor order, Generator generator, long positives)
        : ChunkedEpoch<CollaborativeBatch>(positives * source.SamplesPerPositive, source._positivesPerChunk * source.SamplesPerPositive)
    {
        protected override Tensor?[] Materialize(long start, long count)
        {
            long perPositive = source.SamplesPerPositive;
            long first = start / perPositive, m = count / perPositive;
            var picked = order.narrow(0, first, m);
            var users = source._users.index_select(0, picked).to(int64);
            var items = source._items.index_select(0, picked).to(int64);
            int k = source._negatives;
            if (source._loss == CollaborativeLoss.Bpr)
            {
                var repeatedUsers = users.repeat(k);
                var negatives = source._sampler.Sample(repeatedUsers, generator);
                var shuffle = randperm(m * k, device: users.device, generator: generator);
                return [repeatedUsers.index_select(0, shuffle), items.repeat(k).index_select(0, shuffle), null, negatives.index_select(0, shuffle)];
            }
            // Row r of the chunk is positive r for r < m, else a negative for user (r mod m). The shuffled users and
            // labels follow from the permutation alone (permutation mod m, permutation < m): no concatenation of users.
            var sampled = source._sampler.Sample(users.repeat(k), generator);
            var all = cat(new[] { items, sampled });
            var permutation = randperm(m * (1 + k), device: users.device, generator: generator);
            var u = users.index_select(0, permutation.remainder(m));
            Tensor labels;
            using (Scalar positivesInChunk = m) labels = permutation.lt(positivesInChunk).to(float32); // a live Scalar (see LiveScalars)
            return [u, all.index_select(0, permutation), labels, null];
        }

        protected override CollaborativeBatch Batch(Tensor?[] rows) => new(rows[0]!, rows[1]!, rows[2], rows[3]);
    }
}

/// <summary>
/// Each epoch: every labelled (user, item, rating) row once, in a fresh random order; batches are views of one
/// shuffled chunk at a time (no negatives: the ratings are the targets).
/// </summary>
internal sealed class RatingBatchSource : IBatchSource<CollaborativeBatch>
{
    private readonly Tensor _users, _items, _labels;
    private readonly long _rowsPerChunk;

    public RatingBatchSource(Tensor users, Tensor items, Tensor labels, int batchSize)
    {
        _users = users; _items = items; _labels = labels;
        _rowsPerChunk = Math.Max(1, (CollaborativeBatchSource.TargetPositivesPerChunk * 4 + batchSize - 1) / batchSize) * batchSize;
    }

    public IEpochData<CollaborativeBatch> PrepareEpoch(int epoch, Generator generator)
    {
        long n = _users.shape[0];
        var order = randperm(n, dtype: n <= int.MaxValue ? int32 : int64, device: _users.device, generator: generator);
        return new ShuffledRowsEpoch<CollaborativeBatch>(order, [_users, _items, _labels], _rowsPerChunk, rows => new(rows[0]!, rows[1]!, rows[2], null));
    }
}

/// <summary>
/// BCE, BPR or squared error over a <see cref="CollaborativeModule"/>, plus the optional per-occurrence L2 penalty
/// λ · mean over the batch of the squared norms of the user and item rows (embeddings and biases) each sample looks up
/// in the trained tables (not in <see cref="EmbeddingTable.Derived"/> ones: LightGCN's penalty is on E⁽⁰⁾).
/// </summary>
internal sealed class CollaborativeObjective : ITrainingObjective<CollaborativeBatch>
{
    private readonly CollaborativeModule _model;
    private readonly CollaborativeLoss _loss;
    private readonly EmbeddingTable[] _userTables, _itemTables;
    private readonly Scalar? _lambda;

    public CollaborativeObjective(CollaborativeModule model, CollaborativeLoss loss, double embeddingRegularization = 0)
    {
        _model = model; _loss = loss;
        var tables = model.KeyedTables.Select(t => t.Table).Where(t => !t.Derived).ToArray();
        _userTables = tables.Where(t => t.Role == EmbeddingRole.User).ToArray();
        _itemTables = tables.Where(t => t.Role == EmbeddingRole.Item).ToArray();
        // Rooted for the objective's lifetime (see LiveScalars): libtorch reads it during the call.
        _lambda = embeddingRegularization > 0 ? LiveScalars.Of(embeddingRegularization) : null;
    }

    public nn.Module Module => _model;

    public Tensor ComputeLoss(CollaborativeBatch batch)
    {
        Tensor loss;
        if (_loss == CollaborativeLoss.Bpr)
        {
            loss = -nn.functional.logsigmoid(_model.PairwiseDifference(batch.Users, batch.Items, batch.NegativeItems!)).mean();
        }
        else if (_loss == CollaborativeLoss.SquaredError)
            loss = nn.functional.mse_loss(_model.call(batch.Users, batch.Items), batch.Labels!);
        else
            loss = nn.functional.binary_cross_entropy_with_logits(_model.call(batch.Users, batch.Items), batch.Labels!);
        if (_lambda is null) return loss;
        // Per-occurrence regularisation (biased MF's λ(‖p_u‖² + ‖q_i‖² + b_u² + b_i²) per rating): a row is pulled
        // towards 0 as often as it is used, unlike weight decay, which under Adam shrinks rarely seen rows at full speed.
        Tensor penalty = SquaredNorms(_userTables, batch.Users);
        penalty = penalty.Plus(SquaredNorms(_itemTables, batch.Items));
        if (batch.NegativeItems is not null) penalty = penalty.Plus(SquaredNorms(_itemTables, batch.NegativeItems));
        using Scalar count = batch.Users.shape[0];
        return loss.Plus(penalty.mul(_lambda).div(count));
    }

    private static Tensor SquaredNorms(EmbeddingTable[] tables, Tensor keys)
    {
        Tensor? sum = null;
        foreach (var table in tables)
        {
            // rows · rows, not square(): TorchSharp's square() is pow(2) with a temporary Scalar (see LiveScalars).
            var rows = table.call(keys);
            var part = rows.mul(rows).sum();
            sum = sum is null ? part : sum.Plus(part);
        }
        return sum ?? zeros(1, device: keys.device);
    }
}
