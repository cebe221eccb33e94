using System.Runtime.InteropServices;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Models;

/// <summary>
/// The user–item interaction graph of graph-convolution models (LightGCN) as one sparse matrix over users and items:
/// Â = D^-½ A D^-½, where A is the symmetric adjacency of the bipartite graph of the distinct training pairs and D its
/// degrees, so the edge (u, i) weighs 1/√(d_u d_i). Nodes 0..UserCount are the user rows (row 0, the unknown user, has no
/// edge), then UserCount + 1 + item row for the items. Built with tensor operations on the training device; its memory
/// follows the number of interactions (2 entries per distinct pair), not the number of keys.
/// </summary>
/// <remarks>
/// <para>The product Â X runs one of two ways. On a GPU (and wherever <see cref="Build"/> is asked for it) it is libtorch's
/// sparse COO × dense product, <c>sparse_coo_tensor(…).mm(X)</c>, whose autograd backward gives the gradient for X
/// (checked against a dense reference in the tests). On the CPU that product makes one small BLAS call per stored entry,
/// so there the graph keeps compressed rows (CSR) and multiplies them with a vectorised C# loop inside a custom autograd
/// function (measured at ML-100K size, 156K stored entries × 64 factors, one thread, idle machine: 7–8 ms against 35–37 ms
/// for the forward and backward of 3 layers)
/// (<see cref="LayerMeanFunction"/>). Its backward needs no transpose: Â is symmetric, so the operator
/// X ↦ mean over k of Âᵏ X is its own adjoint.</para>
/// </remarks>
internal sealed class InteractionGraph : IDisposable
{
    private readonly Tensor? _adjacency;          // sparse COO [n, n] (GPU, or when asked for)
    private readonly CooEntries? _coo;             // its entries, kept to reweight them for edge dropout (owner graph only)
    private readonly int[] _rowStart = [];         // CSR (CPU): row r's entries are _rowStart[r] .. _rowStart[r + 1] − 1
    private readonly int[] _columns = [];
    private readonly float[] _weights = [];
    private readonly int[] _pairOfEntry = [];      // CSR: the distinct pair (edge) behind each entry; each pair has two

    /// <summary>The COO entries: indices [2, E], weights [E], and the pair (edge) behind each entry [E].</summary>
    private sealed record CooEntries(Tensor Indices, Tensor Weights, Tensor PairOfEntry);

    private InteractionGraph(long nodes, long pairs, Tensor? adjacency, CooEntries? coo, int[]? rowStart, int[]? columns, float[]? weights, int[]? pairOfEntry)
    {
        (Nodes, Pairs, _adjacency, _coo) = (nodes, pairs, adjacency, coo);
        (_rowStart, _columns, _weights, _pairOfEntry) = (rowStart ?? [], columns ?? [], weights ?? [], pairOfEntry ?? []);
    }

    /// <summary>Number of nodes: UserCount + 1 + ItemCount + 1.</summary>
    public long Nodes { get; }

    /// <summary>Number of edges: the distinct (user, item) training pairs; each is stored as two symmetric entries.</summary>
    public long Pairs { get; }

    /// <summary>Whether products run on libtorch's sparse COO tensor rather than the C# CSR loop.</summary>
    public bool UsesTorchSparse => _adjacency is not null;

    /// <summary>Â from the (user row, item row) pairs of the training interactions; repeated pairs count once.</summary>
    /// <param name="userRows">User row (1..<paramref name="userCount"/>) of each interaction.</param>
    /// <param name="itemRows">Item row (1..<paramref name="itemCount"/>) of each interaction.</param>
    /// <param name="userCount">Number of user rows besides row 0.</param>
    /// <param name="itemCount">Number of item rows besides row 0.</param>
    /// <param name="device">Where the products run.</param>
    /// <param name="torchSparse">Use libtorch's sparse product on the CPU too (the GPU always does).</param>
    public static InteractionGraph Build(int[] userRows, int[] itemRows, int userCount, int itemCount, Device device, bool torchSparse = false)
    {
        long n = userCount + 1L + itemCount + 1L;
        using var scope = NewDisposeScope();
        using Scalar stride = n, itemOffset = userCount + 1L;
        var (pairs, _, _) = tensor(userRows, dtype: int64, device: device).mul(stride)
            .Plus(tensor(itemRows, dtype: int64, device: device).add(itemOffset, LiveScalars.One)).unique();
        var users = pairs.div(stride, rounding_mode: RoundingMode.floor);
        var items = pairs.remainder(stride);
        var rows = cat(new[] { users, items });
        var columns = cat(new[] { items, users });
        var degree = bincount(rows, minlength: n).to(float32);
        var half = degree.index_select(0, users).mul(degree.index_select(0, items)).rsqrt();
        var weights = cat(new[] { half, half });
        long pairCount = pairs.shape[0];
        var pairIndex = arange(pairCount, dtype: int64, device: device);
        var pairOfEntry = cat(new[] { pairIndex, pairIndex });
        if (torchSparse || device.type != DeviceType.CPU || n > int.MaxValue || rows.shape[0] > int.MaxValue)
        {
            var indices = stack(new[] { rows, columns });
            var coo = new CooEntries(indices.MoveToOuterDisposeScope(), weights.MoveToOuterDisposeScope(), pairOfEntry.MoveToOuterDisposeScope());
            return new InteractionGraph(n, pairCount, sparse_coo_tensor(indices, weights, [n, n]).MoveToOuterDisposeScope(), coo, null, null, null, null);
        }
        var order = rows.mul(stride).Plus(columns).argsort();
        var rowStart = cat(new[] { zeros(1, dtype: int64), bincount(rows, minlength: n).cumsum(0) });
        return new InteractionGraph(n, pairCount, null, null, rowStart.to(int32).data<int>().ToArray(),
            columns.index_select(0, order).to(int32).data<int>().ToArray(), weights.index_select(0, order).data<float>().ToArray(),
            pairOfEntry.index_select(0, order).to(int32).data<int>().ToArray());
    }

    /// <summary>
    /// Edge dropout (the LightGCN authors' code, after DropEdge): this graph with each edge kept with probability
    /// 1 − <paramref name="rate"/> and the kept weights scaled by 1/(1 − rate), so that Â keeps its expected value. Both
    /// entries of an edge are kept or dropped together, so the dropped matrix stays symmetric (the CPU backward relies on it).
    /// One mask per call: call once per training step. A COO result's matrix belongs to the caller's dispose scope; the
    /// result shares this graph's arrays and must not be disposed on its own.
    /// </summary>
    public InteractionGraph WithDroppedEdges(double rate, Random random)
    {
        if (rate <= 0) return this;
        var keep = new float[Pairs];
        float scale = (float)(1.0 / (1.0 - rate));
        for (long p = 0; p < keep.Length; p++) keep[p] = random.NextDouble() < rate ? 0f : scale;
        if (_coo is { } coo)
        {
            var entryScale = tensor(keep, device: coo.Weights.device).index_select(0, coo.PairOfEntry);
            return new InteractionGraph(Nodes, Pairs, sparse_coo_tensor(coo.Indices, coo.Weights.mul(entryScale), [Nodes, Nodes]), null, null, null, null, null);
        }
        var weights = new float[_weights.Length];
        for (int e = 0; e < weights.Length; e++) weights[e] = _weights[e] * keep[_pairOfEntry[e]];
        return new InteractionGraph(Nodes, Pairs, null, null, _rowStart, _columns, weights, _pairOfEntry);
    }

    /// <summary>The mean of Â⁰X, Â¹X, …, ÂᴷX for node features X [Nodes, f] (LightGCN's layer combination), differentiable in X.</summary>
    public Tensor LayerMean(Tensor x, int layers)
    {
        if (_adjacency is null)
        {
            if (x.dtype != float32 || x.device_type != DeviceType.CPU || x.NumberOfElements > int.MaxValue)
                throw new NotSupportedException($"The CPU graph product takes float32 CPU features of at most {int.MaxValue} values; got {x.dtype} on {x.device_type}, {x.NumberOfElements} values.");
            return x.requires_grad && is_grad_enabled() ? LayerMeanFunction.apply(x, this, layers) : CpuLayerMean(x, layers);
        }
        Tensor layer = x, sum = x;
        for (int k = 0; k < layers; k++) sum = sum.Plus(layer = _adjacency.mm(layer));
        return sum.mul(LiveScalars.Of(1.0 / (layers + 1)));
    }

    private Tensor CpuLayerMean(Tensor x, int layers)
    {
        // Its own scope: the autograd backward calls it too, where no scope of ours need be open, and an unreferenced
        // temporary can be finalized during a native call (docs/reliability.md, section 5).
        using var scope = NewDisposeScope();
        var input = x.detach().contiguous();
        var sum = input.clone();
        Tensor source = input, a = empty_like(input), b = layers > 1 ? empty_like(input) : a;
        for (int k = 0; k < layers; k++)
        {
            var target = k % 2 == 0 ? a : b;
            // Rows in parallel blocks, as many as libtorch has threads: each block writes only its own rows.
            int blocks = Math.Max(1, Math.Min(get_num_threads(), (int)(Nodes / 256)));
            Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = blocks },
                block => MultiplyRows(source, target, (int)(Nodes * block / blocks), (int)(Nodes * (block + 1) / blocks)));
            sum.PlusInPlace(target);
            source = target;
        }
        return sum.mul_(LiveScalars.Of(1.0 / (layers + 1))).MoveToOuterDisposeScope();
    }

    /// <summary>output[r] = Σ_e weight_e · input[column_e] over row r's entries, for rows first..end − 1 (CPU, float32, contiguous).</summary>
    private void MultiplyRows(Tensor input, Tensor output, int first, int end)
    {
        int f = (int)input.shape[1];
        ReadOnlySpan<float> x = MemoryMarshal.Cast<byte, float>(input.bytes);
        Span<float> y = MemoryMarshal.Cast<byte, float>(output.bytes);
        for (int r = first; r < end; r++)
        {
            var row = y.Slice(r * f, f);
            row.Clear();
            for (int e = _rowStart[r]; e < _rowStart[r + 1]; e++)
                if (_weights[e] != 0) SparseRowOptimizer.AddScaled(row, x.Slice(_columns[e] * f, f), _weights[e]); // 0: a dropped edge
        }
    }

    /// <summary>Frees the COO matrix and its entries (the CSR arrays are managed).</summary>
    public void Dispose()
    {
        _adjacency?.Dispose();
        if (_coo is { } coo) { coo.Indices.Dispose(); coo.Weights.Dispose(); coo.PairOfEntry.Dispose(); }
    }

    /// <summary>X ↦ mean over k ≤ K of Âᵏ X on the CSR form; self-adjoint, so the backward applies the same operator.</summary>
    private sealed class LayerMeanFunction : autograd.SingleTensorFunction<LayerMeanFunction>
    {
        public override string Name => "LightGcnLayerMean";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (graph, layers) = ((InteractionGraph)vars[1], (int)vars[2]);
            ctx.save_data("graph", graph);
            ctx.save_data("layers", layers);
            return graph.CpuLayerMean((Tensor)vars[0], layers);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradient) =>
            [((InteractionGraph)ctx.get_data("graph")).CpuLayerMean(gradient, (int)ctx.get_data("layers")), null!, null!];
    }
}
