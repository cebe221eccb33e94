using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Training;

/// <summary>What the rows of an embedding table stand for.</summary>
internal enum EmbeddingRole
{
    /// <summary>One row per user key (row 0 = unknown user).</summary>
    User,
    /// <summary>One row per item key (row 0 = unknown or padding item).</summary>
    Item,
    /// <summary>One row per categorical feature value (row 0 = padding feature).</summary>
    Feature,
    /// <summary>One row per sequence position.</summary>
    Position,
}

/// <summary>
/// An embedding table that can be trained with sparse (row-wise) updates. Its single parameter is registered as
/// <c>weight</c>, like TorchSharp's <c>Embedding</c>, so state-dict names and checkpoints are the same.
/// </summary>
/// <remarks>
/// Why not <c>nn.Embedding</c>: a dense embedding gradient is as large as the table, so every optimizer step touches
/// every row and costs O(catalogue). When a <see cref="SparseRowOptimizer"/> manages the table it sets
/// <see cref="SparseLookups"/>; lookups in training mode then read the rows from a detached copy of the weights, as a
/// small leaf tensor that records its own gradient, and the optimizer updates only those rows (PyTorch's
/// <c>sparse=True</c> embedding, without relying on sparse tensors). Evaluation-mode lookups and lookups under
/// <c>no_grad</c> read the weights directly.
/// </remarks>
internal sealed class EmbeddingTable : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    /// <summary>A table of <paramref name="rows"/> × <paramref name="dimension"/> zeros; initialise it with <see cref="Initialize"/>.</summary>
    public EmbeddingTable(string name, long rows, long dimension, EmbeddingRole role) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimension);
        Role = role;
        Dimension = dimension;
        weight = nn.Parameter(zeros(rows, dimension));
        RegisterComponents();
    }

    /// <summary>What the rows stand for: warm start, unknown-row handling and memory estimates walk tables by role.</summary>
    public EmbeddingRole Role { get; }

    /// <summary>Width of a row.</summary>
    public long Dimension { get; }

    /// <summary>Number of rows.</summary>
    public long Rows => weight.shape[0];

    /// <summary>The weights [Rows, Dimension]. Under sparse updates they do not require gradients: read rows through
    /// <see cref="forward"/> or <see cref="AllRows"/> in training code.</summary>
    public Parameter Weight => weight;

    /// <summary>Set by a model whose every training step reads the whole table (e.g. a full softmax over items), where a
    /// sparse update saves nothing: <see cref="EmbeddingUpdateMode.Auto"/> then updates it densely.</summary>
    public bool PreferDense { get; set; }

    /// <summary>
    /// Whether the table is computed from other tables rather than trained (LightGCN's propagated embeddings): its weights
    /// do not require gradients, so no optimizer updates them, and the per-occurrence penalty skips it. It is still saved,
    /// warm-started and given a mean unknown row like any user or item table. Set with <see cref="AsDerived"/>.
    /// </summary>
    public bool Derived { get; private set; }

    /// <summary>Marks the table <see cref="Derived"/> (its weights stop requiring gradients).</summary>
    public EmbeddingTable AsDerived()
    {
        Derived = true;
        weight.requires_grad = false;
        return this;
    }

    /// <summary>Set by a <see cref="SparseRowOptimizer"/> that manages this table: the lookups of the current step.</summary>
    internal List<(Tensor Rows, Tensor Values)>? SparseLookups { get; set; }

    /// <summary>Fills the table from N(0, <paramref name="std"/>²) (zeros when <paramref name="std"/> is 0).</summary>
    public EmbeddingTable Initialize(double std)
    {
        using (no_grad())
        {
            if (std == 0) weight.zero_();
            else nn.init.normal_(weight, 0, std);
        }
        return this;
    }

    /// <summary>Rows of <paramref name="indices"/> (int64, any shape) → [..., Dimension].</summary>
    public override Tensor forward(Tensor indices)
    {
        var flat = indices.reshape(-1);
        var shape = indices.shape.Append(Dimension).ToArray();
        if (!Recording) return weight.index_select(0, flat).view(shape);
        var rows = weight.detach().index_select(0, flat).requires_grad_(true);
        SparseLookups!.Add((flat, rows));
        return rows.view(shape);
    }

    /// <summary>The whole table [Rows, Dimension] as a differentiable tensor (e.g. full-softmax logits). Under sparse
    /// updates this touches every row, as a dense update would.</summary>
    public Tensor AllRows()
    {
        if (!Recording) return weight;
        var all = arange(Rows, dtype: int64, device: weight.device);
        var rows = weight.detach().clone().requires_grad_(true);
        SparseLookups!.Add((all, rows));
        return rows;
    }

    private bool Recording => SparseLookups != null && training && is_grad_enabled();
}
