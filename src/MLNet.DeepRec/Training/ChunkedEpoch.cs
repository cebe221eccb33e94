using static TorchSharp.torch;

namespace MLNet.DeepRec.Training;

/// <summary>
/// An epoch whose samples exist one chunk at a time as row-aligned tensors (row r of each is sample r of the chunk), and
/// whose batches are views of the current chunk: what the chunked batch sources share. A source says how a chunk is
/// materialised (<see cref="Materialize"/>) and how a batch is made of the views (<see cref="Batch"/>).
/// </summary>
/// <typeparam name="TBatch">The model's batch type.</typeparam>
internal abstract class ChunkedEpoch<TBatch> : IEpochData<TBatch>
{
    private long _chunkStart;
    private Tensor?[] _chunk = [];

    /// <param name="sampleCount">Samples in the epoch.</param>
    /// <param name="chunkSampleCount">Samples per chunk (a whole number of batches, so no batch spans two chunks).</param>
    protected ChunkedEpoch(long sampleCount, long chunkSampleCount)
    {
        SampleCount = sampleCount;
        ChunkSampleCount = chunkSampleCount;
    }

    public long SampleCount { get; }

    public long ChunkSampleCount { get; }

    public void PrepareChunk(long start, long count)
    {
        _chunk = Materialize(start, count);
        _chunkStart = start;
    }

    public TBatch Slice(long start, long count)
    {
        long at = start - _chunkStart;
        return Batch(Array.ConvertAll(_chunk, t => t?.narrow(0, at, count)));
    }

    /// <summary>Samples [start, start + count) of the epoch as row-aligned tensors; null for one a batch goes without.</summary>
    protected abstract Tensor?[] Materialize(long start, long count);

    /// <summary>A batch of views of the chunk's tensors, given in the order <see cref="Materialize"/> returned them.</summary>
    protected abstract TBatch Batch(Tensor?[] rows);
}

/// <summary>
/// Every row of some row-aligned columns once per epoch, in a random order: a chunk gathers its rows of each column.
/// Int32 columns, kept narrow on the device to halve their memory, are widened to the int64 that lookups take.
/// </summary>
/// <typeparam name="TBatch">The model's batch type.</typeparam>
/// <param name="order">The epoch's permutation of the rows.</param>
/// <param name="columns">The row-aligned columns; null for one the data does not have.</param>
/// <param name="chunkRows">Rows per chunk, a whole number of batches.</param>
/// <param name="batch">Makes a batch of the columns' views, given in the order of <paramref name="columns"/>.</param>
internal sealed class ShuffledRowsEpoch<TBatch>(Tensor order, Tensor?[] columns, long chunkRows, Func<Tensor?[], TBatch> batch)
    : ChunkedEpoch<TBatch>(order.shape[0], chunkRows)
{
    protected override Tensor?[] Materialize(long start, long count)
    {
        var picked = order.narrow(0, start, count);
        return Array.ConvertAll(columns, c => c is null ? null : Widened(c.index_select(0, picked)));
    }

    private static Tensor Widened(Tensor rows) => rows.dtype == ScalarType.Int32 ? rows.to(ScalarType.Int64) : rows;

    protected override TBatch Batch(Tensor?[] rows) => batch(rows);
}
