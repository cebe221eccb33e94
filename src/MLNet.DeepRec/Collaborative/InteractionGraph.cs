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
/// <see cref="Propagate"/> is libtorch's sparse COO × dense product, which has a backward for the dense operand
/// (checked against a dense reference in the tests). On the CPU it costs about one small BLAS call per stored entry.
/// </remarks>
internal sealed class InteractionGraph : IDisposable
{
    private readonly Tensor _adjacency;

    private InteractionGraph(Tensor adjacency, long userNodes) { _adjacency = adjacency; UserNodes = userNodes; }

    /// <summary>Number of user nodes (UserCount + 1); the item nodes follow.</summary>
    public long UserNodes { get; }

    /// <summary>Number of nodes: UserCount + 1 + ItemCount + 1.</summary>
    public long Nodes => _adjacency.shape[0];

    /// <summary>Â from the (user row, item row) pairs of the training interactions; repeated pairs count once.</summary>
    public static InteractionGraph Build(int[] userRows, int[] itemRows, int userCount, int itemCount, Device device)
    {
        long n = userCount + 1L + itemCount + 1L;
        using var scope = NewDisposeScope();
        using Scalar stride = n, itemOffset = userCount + 1L;
        var (pairs, _, _) = tensor(userRows, dtype: int64, device: device).mul(stride)
            .add(tensor(itemRows, dtype: int64, device: device).add(itemOffset)).unique();
        var users = pairs.div(stride, rounding_mode: RoundingMode.floor);
        var items = pairs.remainder(stride);
        var ends = cat(new[] { users, items });
        var degree = bincount(ends, minlength: n).to(float32);
        var weight = degree.index_select(0, users).mul(degree.index_select(0, items)).rsqrt();
        var adjacency = sparse_coo_tensor(stack(new[] { ends, cat(new[] { items, users }) }), cat(new[] { weight, weight }), [n, n]);
        return new InteractionGraph(adjacency.MoveToOuterDisposeScope(), userCount + 1L);
    }

    /// <summary>Â X for node features X [Nodes, f]; differentiable in X.</summary>
    public Tensor Propagate(Tensor x) => _adjacency.mm(x);

    /// <summary>Frees the matrix.</summary>
    public void Dispose() => _adjacency.Dispose();
}
