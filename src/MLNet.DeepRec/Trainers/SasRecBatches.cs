using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>Training loss of SASRec.</summary>
public enum SasRecLoss
{
    /// <summary>
    /// The paper's loss: at every non-padding position, binary cross-entropy of the next item against one sampled
    /// negative (an item the user never interacted with in training), redrawn every epoch.
    /// </summary>
    BinaryCrossEntropy,

    /// <summary>
    /// Sampled softmax: at every non-padding position, cross-entropy of the next item against
    /// <see cref="SasRecTrainer.Options.NegativeCount"/> sampled negatives (drawn per sequence, shared by its positions,
    /// never one of the user's training items).
    /// </summary>
    SampledSoftmax,

    /// <summary>
    /// Full cross-entropy over the whole catalogue at every non-padding position (Klenitskiy &amp; Vasilev 2023). Logits
    /// are computed only at non-padding positions: memory per step is (non-padding positions of the batch) × ItemCount
    /// floats, several times over for the softmax and its gradient; lower <c>BatchSize</c> for very large catalogues.
    /// </summary>
    CrossEntropy,
}

/// <summary>A batch of user sequences.</summary>
/// <param name="Users">User keys, int64 [b].</param>
/// <param name="Inputs">Input items, int64 [b, L], left-padded with 0.</param>
/// <param name="Targets">Next item at each position, int64 [b, L], 0 where there is none.</param>
/// <param name="Negatives">BCE: int64 [b, L]; sampled softmax: int64 [b, N]; full cross-entropy: null.</param>
internal sealed record SasRecBatch(Tensor Users, Tensor Inputs, Tensor Targets, Tensor? Negatives);

/// <summary>
/// The [U, L + 1] tensor of each training user's most recent L + 1 items is built once; an epoch is a permutation of
/// its rows, and a batch is an index_select plus, for the sampled losses, tensor-only negative sampling.
/// </summary>
internal sealed class SasRecBatchSource : IBatchSource<SasRecBatch>
{
    private readonly Tensor _users;     // int64 [U']
    private readonly Tensor _sequences; // int64 [U', L + 1]
    private readonly TorchNegativeSampler _sampler;
    private readonly SasRecLoss _loss;
    private readonly int _negatives;

    public SasRecBatchSource(Tensor users, Tensor sequences, TorchNegativeSampler sampler, SasRecLoss loss, int negatives)
    {
        _users = users; _sequences = sequences; _sampler = sampler; _loss = loss; _negatives = negatives;
    }

    public IEpochData<SasRecBatch> PrepareEpoch(int epoch, Generator generator) =>
        new Epoch(this, randperm(_users.shape[0], device: _users.device, generator: generator), generator);

    private sealed class Epoch : IEpochData<SasRecBatch>
    {
        private readonly SasRecBatchSource _s;
        private readonly Tensor _order;
        private readonly Generator _generator;

        public Epoch(SasRecBatchSource source, Tensor order, Generator generator) { _s = source; _order = order; _generator = generator; }

        public long SampleCount => _order.shape[0];

        public SasRecBatch Slice(long start, long count)
        {
            var rows = _order.narrow(0, start, count);
            var users = _s._users.index_select(0, rows);
            var seq = _s._sequences.index_select(0, rows);
            long l = seq.shape[1] - 1;
            var inputs = seq.narrow(1, 0, l);
            var targets = seq.narrow(1, 1, l);
            Tensor? negatives = _s._loss switch
            {
                SasRecLoss.BinaryCrossEntropy => _s._sampler.Sample(users.repeat_interleave(l), _generator).view(count, l),
                SasRecLoss.SampledSoftmax => _s._sampler.Sample(users.repeat_interleave(_s._negatives), _generator).view(count, _s._negatives),
                _ => null,
            };
            return new SasRecBatch(users, inputs, targets, negatives);
        }
    }
}

/// <summary>The three SASRec losses over a <see cref="SasRecModule"/>, averaged over non-padding positions.</summary>
internal sealed class SasRecObjective : ITrainingObjective<SasRecBatch>
{
    private readonly SasRecModule _model;
    private readonly SasRecLoss _loss;

    public SasRecObjective(SasRecModule model, SasRecLoss loss) { _model = model; _loss = loss; }

    public nn.Module Module => _model;

    public Tensor ComputeLoss(SasRecBatch batch)
    {
        var hidden = _model.call(batch.Inputs);                       // [b, L, d]
        var table = _model.ItemWeights;
        long d = hidden.shape[2];
        var valid = batch.Targets.gt(0).reshape(-1).nonzero().squeeze(1); // positions with a next item
        var h = hidden.reshape(-1, d).index_select(0, valid);           // [T, d]
        var targets = batch.Targets.reshape(-1).index_select(0, valid); // [T]
        switch (_loss)
        {
            case SasRecLoss.BinaryCrossEntropy:
            {
                var negatives = batch.Negatives!.reshape(-1).index_select(0, valid);
                var pos = (h * table.index_select(0, targets)).sum(1);
                var neg = (h * table.index_select(0, negatives)).sum(1);
                // −log σ(pos) − log(1 − σ(neg)), averaged over positions.
                return (nn.functional.softplus(-pos) + nn.functional.softplus(neg)).mean();
            }
            case SasRecLoss.SampledSoftmax:
            {
                long b = batch.Inputs.shape[0], l = batch.Inputs.shape[1], n = batch.Negatives!.shape[1];
                var negEmb = table.index_select(0, batch.Negatives.reshape(-1)).view(b, n, d);
                var negLogits = hidden.bmm(negEmb.transpose(1, 2)).reshape(b * l, n).index_select(0, valid); // [T, N]
                var pos = (h * table.index_select(0, targets)).sum(1, keepdim: true);
                var logits = cat(new[] { pos, negLogits }, 1);
                return nn.functional.cross_entropy(logits, zeros(logits.shape[0], dtype: int64, device: logits.device));
            }
            default:
            {
                // Logits only at non-padding positions, over items 1..ItemCount (class j = item key j + 1).
                var logits = h.matmul(table.narrow(0, 1, _model.ItemCount).t());
                return nn.functional.cross_entropy(logits, targets - 1);
            }
        }
    }
}
