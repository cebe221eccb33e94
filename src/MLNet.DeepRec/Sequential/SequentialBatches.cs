using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>A batch of user sequences.</summary>
/// <param name="Users">User keys, int64 [b].</param>
/// <param name="Inputs">Input items, int64 [b, L], left-padded with 0.</param>
/// <param name="Targets">Next item at each position, int64 [b, L], 0 where there is none.</param>
/// <param name="Negatives">BCE: int64 [b, L]; sampled softmax: int64 [b, N]; full cross-entropy: null.</param>
internal sealed record SequentialBatch(Tensor Users, Tensor Inputs, Tensor Targets, Tensor? Negatives);

/// <summary>
/// The [U, L + 1] tensor of each training user's most recent L + 1 items is built once; an epoch is a permutation of
/// its rows, and a batch is an index_select plus, for the sampled losses, tensor-only negative sampling.
/// </summary>
internal sealed class SequentialBatchSource : IBatchSource<SequentialBatch>
{
    private readonly Tensor _users;     // int64 [U']
    private readonly Tensor _sequences; // int64 [U', L + 1]
    private readonly TorchNegativeSampler _sampler;
    private readonly SequentialLoss _loss;
    private readonly int _negatives;

    public SequentialBatchSource(Tensor users, Tensor sequences, TorchNegativeSampler sampler, SequentialLoss loss, int negatives)
    {
        _users = users; _sequences = sequences; _sampler = sampler; _loss = loss; _negatives = negatives;
    }

    public IEpochData<SequentialBatch> PrepareEpoch(int epoch, Generator generator) =>
        new Epoch(this, randperm(_users.shape[0], device: _users.device, generator: generator), generator);

    private sealed class Epoch : IEpochData<SequentialBatch>
    {
        private readonly SequentialBatchSource _s;
        private readonly Tensor _order;
        private readonly Generator _generator;

        public Epoch(SequentialBatchSource source, Tensor order, Generator generator) { _s = source; _order = order; _generator = generator; }

        public long SampleCount => _order.shape[0];

        public SequentialBatch Slice(long start, long count)
        {
            var rows = _order.narrow(0, start, count);
            var users = _s._users.index_select(0, rows);
            var seq = _s._sequences.index_select(0, rows);
            long l = seq.shape[1] - 1;
            var inputs = seq.narrow(1, 0, l);
            var targets = seq.narrow(1, 1, l);
            Tensor? negatives = _s._loss switch
            {
                SequentialLoss.BinaryCrossEntropy => _s._sampler.Sample(users.repeat_interleave(l), _generator).view(count, l),
                SequentialLoss.SampledSoftmax => _s._sampler.Sample(users.repeat_interleave(_s._negatives), _generator).view(count, _s._negatives),
                _ => null,
            };
            return new SequentialBatch(users, inputs, targets, negatives);
        }
    }
}

/// <summary>The three losses of the sequential models over a <see cref="SequentialModule"/>, averaged over non-padding positions.</summary>
/// <remarks>
/// Item rows are read through the module's <see cref="EmbeddingTable"/>: lookups for the targets and sampled negatives
/// (so row-wise updates touch only those rows, and nothing in a BCE or sampled-softmax step depends on the catalogue
/// size) and <see cref="EmbeddingTable.AllRows"/> for the full cross-entropy. The full cross-entropy computes a step's
/// T × ItemCount logits at once while they fit in <see cref="SinglePassLogits"/> floats; beyond that it works through
/// the catalogue in chunks of items (<see cref="ChunkedCrossEntropy"/>), so its memory stays bounded at any catalogue
/// size while its arithmetic, O(T × ItemCount × d) per step, is that of a full softmax.
/// </remarks>
internal sealed class SequentialObjective : ITrainingObjective<SequentialBatch>
{
    /// <summary>Up to this many logits (non-padding positions × ItemCount) a full cross-entropy step computes them at
    /// once (512 MiB of float32; the softmax and its gradient take about three times that).</summary>
    internal const long SinglePassLogits = 1L << 27;

    /// <summary>Logits per item chunk of the chunked full cross-entropy (128 MiB of float32).</summary>
    internal const long ChunkLogits = 1L << 25;

    private readonly SequentialModule _model;
    private readonly SequentialLoss _loss;
    private readonly long _singlePassLogits, _chunkLogits;

    public SequentialObjective(SequentialModule model, SequentialLoss loss, long singlePassLogits = SinglePassLogits, long chunkLogits = ChunkLogits)
    {
        _model = model; _loss = loss; _singlePassLogits = singlePassLogits; _chunkLogits = Math.Max(1, chunkLogits);
    }

    public nn.Module Module => _model;

    public Tensor ComputeLoss(SequentialBatch batch)
    {
        var hidden = _model.call(batch.Inputs);                       // [b, L, d]
        var items = _model.ItemTable;
        long d = hidden.shape[2];
        var valid = batch.Targets.gt(LiveScalars.Zero).reshape(-1).nonzero().squeeze(1); // positions with a next item
        var h = hidden.reshape(-1, d).index_select(0, valid);           // [T, d]
        var targets = batch.Targets.reshape(-1).index_select(0, valid); // [T]
        switch (_loss)
        {
            case SequentialLoss.BinaryCrossEntropy:
            {
                var negatives = batch.Negatives!.reshape(-1).index_select(0, valid);
                var pos = (h * items.call(targets)).sum(1);
                var neg = (h * items.call(negatives)).sum(1);
                // −log σ(pos) − log(1 − σ(neg)) = −(log σ(pos) + log σ(−neg)), averaged over positions (logsigmoid rather
                // than softplus: TorchSharp's softplus passes its beta and threshold as temporary Scalars, docs/reliability.md section 5).
                return nn.functional.logsigmoid(pos).Plus(nn.functional.logsigmoid(-neg)).mean().neg();
            }
            case SequentialLoss.SampledSoftmax:
            {
                long b = batch.Inputs.shape[0], l = batch.Inputs.shape[1], n = batch.Negatives!.shape[1];
                var negEmb = items.call(batch.Negatives);                                                    // [b, N, d]
                var negLogits = hidden.bmm(negEmb.transpose(1, 2)).reshape(b * l, n).index_select(0, valid); // [T, N]
                var pos = (h * items.call(targets)).sum(1, keepdim: true);
                var logits = cat(new[] { pos, negLogits }, 1);
                return nn.functional.cross_entropy(logits, zeros(logits.shape[0], dtype: int64, device: logits.device));
            }
            default:
            {
                long t = h.shape[0], itemCount = _model.ItemCount;
                if (t * itemCount > _singlePassLogits) return ChunkedCrossEntropy(h, targets);
                // Logits only at non-padding positions, over items 1..ItemCount (class j = item key j + 1).
                var logits = h.matmul(items.AllRows().narrow(0, 1, itemCount).t());
                return nn.functional.cross_entropy(logits, targets.sub(LiveScalars.One));
            }
        }
    }

    /// <summary>
    /// Full cross-entropy mean(logsumexp_i(h·E[i]) − h·E[target]) over items 1..ItemCount without materialising the
    /// [T, ItemCount] logits. Pass 1 accumulates the log-sum-exp over chunks of items; pass 2 recomputes each chunk's
    /// logits z, P = softmax(z)/T, and adds the log-sum-exp term's gradients by hand: Pᵀh into the chunk's rows of the
    /// item table's gradient, P·E_chunk into h's. The returned loss has the exact value, and its graph carries the target
    /// term and h's accumulated gradient on to the encoder and the target rows, so the core's <c>backward</c> completes
    /// the step (it runs after this method, and the core clears gradients before it). About 4/3 of the single pass's
    /// arithmetic (the logits are computed twice); memory: a few [T, chunk] tensors.
    /// </summary>
    private Tensor ChunkedCrossEntropy(Tensor h, Tensor targets)
    {
        long t = h.shape[0], itemCount = _model.ItemCount;
        long chunk = Math.Clamp(_chunkLogits / Math.Max(1, t), 1, itemCount);
        var items = _model.ItemTable;
        var all = items.AllRows(); // [ItemCount + 1, d], a leaf: the whole weight (dense) or its step copy (row-wise)
        if (!all.is_leaf || !all.requires_grad)
            throw new InvalidOperationException("The chunked cross-entropy needs the item table's rows as a leaf tensor that records its gradient.");
        Tensor lse, hGradient;
        using (no_grad())
        {
            var x = h.detach();
            Tensor? running = null;
            for (long start = 1; start <= itemCount; start += chunk)
            {
                using var scope = NewDisposeScope();
                var part = x.matmul(all.narrow(0, start, Math.Min(chunk, itemCount + 1 - start)).t()).logsumexp(1);
                var next = running is null ? part : stack(new[] { running, part }).logsumexp(0);
                running?.Dispose();
                running = next.MoveToOuterDisposeScope();
            }
            lse = running!;
            var shift = lse.unsqueeze(1);
            if (all.grad is null) all.grad = zeros_like(all);
            var tableGradient = all.grad!;
            hGradient = zeros_like(x);
            using Scalar positions = t; // live for the loop (a temporary may be freed during the call: LiveScalars)
            for (long start = 1; start <= itemCount; start += chunk)
            {
                using var scope = NewDisposeScope();
                long count = Math.Min(chunk, itemCount + 1 - start);
                var rows = all.narrow(0, start, count);
                var probability = x.matmul(rows.t()).sub_(shift).exp_().div_(positions); // [T, chunk] = softmax / T
                hGradient.PlusInPlace(probability.matmul(rows));
                tableGradient.narrow(0, start, count).PlusInPlace(probability.t().matmul(x));
            }
        }
        var target = (h * items.call(targets)).sum(1);
        var carried = (h * hGradient).sum();
        // Value: mean(lse) − mean(target); gradient: ∂lse/∂h − E[target]/T into the encoder, −h/T into E[target].
        return (lse.mean() - target.mean()).Plus(carried - carried.detach());
    }
}
