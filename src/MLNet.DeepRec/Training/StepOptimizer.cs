using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Training;

/// <summary>The optimizer contract the training core needs: clear gradients, apply one update.</summary>
internal interface IStepOptimizer : IDisposable
{
    void ZeroGrad();
    void Step();
}

/// <summary>
/// Optimizer state carried across training runs (for resuming): Adam's step count and flat first/second moments.
/// Only <see cref="DeepRecOptimizer.Adam"/> keeps state; Adagrad and SGD restart from scratch.
/// </summary>
internal sealed class OptimizerState : IDisposable
{
    public OptimizerState(long step, Tensor firstMoment, Tensor secondMoment) { Step = step; FirstMoment = firstMoment; SecondMoment = secondMoment; }
    public long Step { get; }
    public Tensor FirstMoment { get; }
    public Tensor SecondMoment { get; }
    public void Dispose() { FirstMoment.Dispose(); SecondMoment.Dispose(); }
}

internal static class StepOptimizer
{
    /// <summary>
    /// Under <see cref="EmbeddingUpdateMode.Auto"/> a model's user, item and feature tables are updated row-wise when
    /// together they hold at least this many values (rows × width, 4 MB of floats), densely otherwise. Measured on the
    /// 2-core benchmark machine (docs/benchmarks.md, scale section): at ML-100K size (0.17M values) the fused dense Adam
    /// and the row-wise kernel cost about the same per step (≈0.9 ms for MF at batch 1024), so small models keep exact
    /// dense Adam; at 2M values a dense MF step already costs ≈5 ms against ≈1.2 ms row-wise, and at ML-20M size
    /// ≈110 ms against ≈1.3 ms. One decision for all the model's tables: a half-dense model pays for its dense tables.
    /// </summary>
    internal const long AutoSparseThreshold = 1L << 20;

    /// <summary>
    /// The optimizer for <paramref name="module"/>: embedding tables chosen by <see cref="DeepRecTrainerOptionsBase.EmbeddingUpdates"/>
    /// get row-wise updates (<see cref="SparseRowOptimizer"/>), every other parameter a dense one (Adam fused over one
    /// flat buffer, <see cref="FlatAdam"/>; Adagrad and SGD from TorchSharp).
    /// </summary>
    public static IStepOptimizer Create(nn.Module module, DeepRecTrainerOptionsBase o)
    {
        var trainable = module.parameters().Where(p => p.requires_grad).ToList();
        var sparseTables = SparseTables(module, o.EmbeddingUpdates);
        var sparseWeights = new HashSet<IntPtr>(sparseTables.Select(t => t.Weight.Handle));
        var dense = trainable.Where(p => !sparseWeights.Contains(p.Handle)).ToList();
        if (sparseTables.Count == 0) return CreateDense(module, dense, o);
        var rule = o.Optimizer switch
        {
            DeepRecOptimizer.Adam => SparseRowRule.Adam,
            DeepRecOptimizer.Adagrad => SparseRowRule.Adagrad,
            DeepRecOptimizer.Sgd => SparseRowRule.Sgd,
            _ => throw new ArgumentOutOfRangeException(nameof(o.Optimizer), o.Optimizer, "Unknown optimizer."),
        };
        var sparse = new SparseRowOptimizer(sparseTables, rule, o.LearningRate, o.L2Regularization);
        return new HybridOptimizer(trainable, dense.Count == 0 ? null : CreateDense(module, dense, o), sparse);
    }

    /// <summary>Whether <paramref name="table"/> of <paramref name="module"/> gets row-wise updates under <paramref name="mode"/>.</summary>
    internal static bool UseSparse(nn.Module module, EmbeddingTable table, EmbeddingUpdateMode mode) => SparseTables(module, mode).Contains(table);

    /// <summary>The tables of <paramref name="module"/> that get row-wise updates under <paramref name="mode"/>:
    /// user, item and feature tables (never position tables, nor under Auto those that prefer dense updates).</summary>
    internal static IReadOnlyList<EmbeddingTable> SparseTables(nn.Module module, EmbeddingUpdateMode mode)
    {
        var tables = module.modules().OfType<EmbeddingTable>().Where(t => t.Role != EmbeddingRole.Position && t.Weight.requires_grad).ToList();
        return mode switch
        {
            EmbeddingUpdateMode.Dense => [],
            EmbeddingUpdateMode.Sparse => tables,
            _ => tables.Where(t => !t.PreferDense).ToList() is var candidates && candidates.Sum(t => t.Rows * t.Dimension) >= AutoSparseThreshold ? candidates : [],
        };
    }

    private static IStepOptimizer CreateDense(nn.Module module, IReadOnlyList<TorchSharp.Modules.Parameter> parameters, DeepRecTrainerOptionsBase o) => o.Optimizer switch
    {
        DeepRecOptimizer.Adam => new FlatAdam(parameters, o.LearningRate, o.L2Regularization),
        DeepRecOptimizer.Adagrad => new DenseAdagradOrSgd(parameters, o.LearningRate, o.L2Regularization, adagrad: true),
        DeepRecOptimizer.Sgd => new DenseAdagradOrSgd(parameters, o.LearningRate, o.L2Regularization, adagrad: false),
        _ => throw new ArgumentOutOfRangeException(nameof(o.Optimizer), o.Optimizer, "Unknown optimizer."),
    };
}

/// <summary>
/// Adagrad or plain SGD over dense parameters, with PyTorch's arithmetic (Adagrad: weight decay added to the gradient,
/// squared-gradient sums from 0, ε = 1e-10, no learning-rate decay). Why not TorchSharp's own optimizers: their step
/// passes numbers (ε, the learning rate) as temporary Scalars that nothing keeps alive during the native call, so a
/// collection on another thread can free one mid-call (see <see cref="LiveScalars"/>). Measured: an NFM run with
/// TorchSharp's Adagrad died at epoch 59 of frappe with libtorch's "Expected false to be true" from Scalar::toFloat,
/// on a loaded machine. Here every number is an explicit Scalar alive for the whole step.
/// </summary>
internal sealed class DenseAdagradOrSgd : IStepOptimizer
{
    private const double AdagradEpsilon = 1e-10;
    private readonly IReadOnlyList<TorchSharp.Modules.Parameter> _parameters;
    private readonly Tensor?[] _sums;
    private readonly double _lr, _weightDecay;
    private readonly bool _adagrad;

    public DenseAdagradOrSgd(IReadOnlyList<TorchSharp.Modules.Parameter> parameters, double lr, double weightDecay, bool adagrad)
    {
        _parameters = parameters; _lr = lr; _weightDecay = weightDecay; _adagrad = adagrad;
        _sums = new Tensor?[parameters.Count];
    }

    public void ZeroGrad()
    {
        foreach (var p in _parameters)
        {
            using var grad = p.grad; // a new handle on the gradient per call: release it now, not at finalization
            grad?.zero_();
        }
    }

    public void Step()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using Scalar one = 1, decay = _weightDecay, eps = AdagradEpsilon, stepSize = -_lr;
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i];
            var grad = p.grad;
            if (grad is null) continue;
            if (_weightDecay != 0) grad = grad.add(p, alpha: decay);
            if (!_adagrad)
            {
                p.add_(grad, alpha: stepSize);
                continue;
            }
            var sum = _sums[i] ??= zeros_like(p).DetachFromDisposeScope();
            sum.addcmul_(grad, grad, value: one);
            p.addcdiv_(grad, sum.sqrt().add_(eps, LiveScalars.One), value: stepSize);
        }
    }

    public void Dispose()
    {
        foreach (var sum in _sums) sum?.Dispose();
    }
}

/// <summary>
/// Dense parameters through one optimizer, embedding tables through a <see cref="SparseRowOptimizer"/>. Adam's state is
/// exported and imported in one layout whatever the split: each trainable parameter's moments, flattened, in the
/// module's parameter order (the layout <see cref="FlatAdam"/> alone uses), so checkpoints resume across modes.
/// </summary>
internal sealed class HybridOptimizer : IStepOptimizer, IAdamState
{
    private readonly IReadOnlyList<TorchSharp.Modules.Parameter> _order;
    private readonly IStepOptimizer? _dense;
    private readonly SparseRowOptimizer _sparse;

    public HybridOptimizer(IReadOnlyList<TorchSharp.Modules.Parameter> order, IStepOptimizer? dense, SparseRowOptimizer sparse)
    {
        _order = order; _dense = dense; _sparse = sparse;
    }

    public void ZeroGrad() { _dense?.ZeroGrad(); _sparse.ZeroGrad(); }

    public void Step() { _dense?.Step(); _sparse.Step(); }

    public long StepCount => _sparse.StepCount;

    public Tensor? Moment(TorchSharp.Modules.Parameter p, int which) =>
        _sparse.Moment(p, which) ?? (_dense as FlatAdam)?.Moment(p, which);

    public OptimizerState? ExportState() => AdamStateLayout.Export(this, _order);

    public bool TryImportState(OptimizerState state)
    {
        if (!AdamStateLayout.TryImport(this, _order, state)) return false;
        _sparse.StepCount = state.Step;
        if (_dense is FlatAdam adam) adam.StepCount = state.Step;
        return true;
    }

    public void Dispose() { _dense?.Dispose(); _sparse.Dispose(); }
}

/// <summary>Access to Adam's per-parameter moments, for the one checkpoint layout.</summary>
internal interface IAdamState
{
    /// <summary>The moment (0 = first, 1 = second) of <paramref name="p"/> as a view shaped like it, or null when this
    /// optimizer does not run Adam on it.</summary>
    Tensor? Moment(TorchSharp.Modules.Parameter p, int which);

    /// <summary>Adam's step count.</summary>
    long StepCount { get; }

    /// <summary>A detached copy of the state, or null when the optimizer is not Adam.</summary>
    OptimizerState? ExportState();

    /// <summary>Continues from a saved state; false (state ignored) when it does not fit these parameters.</summary>
    bool TryImportState(OptimizerState state);
}

internal static class AdamStateLayout
{
    public static OptimizerState? Export(IAdamState adam, IReadOnlyList<TorchSharp.Modules.Parameter> order)
    {
        using var scope = NewDisposeScope();
        var first = new List<Tensor>();
        var second = new List<Tensor>();
        foreach (var p in order)
        {
            var m = adam.Moment(p, 0);
            var v = adam.Moment(p, 1);
            if (m is null || v is null) return null;
            first.Add(m.reshape(-1)); second.Add(v.reshape(-1));
        }
        var state = new OptimizerState(adam.StepCount, cat(first).detach().cpu().clone(), cat(second).detach().cpu().clone());
        state.FirstMoment.DetachFromDisposeScope(); // owned by the state (and the checkpoint that holds it), not by a scope
        state.SecondMoment.DetachFromDisposeScope();
        return state;
    }

    public static bool TryImport(IAdamState adam, IReadOnlyList<TorchSharp.Modules.Parameter> order, OptimizerState state)
    {
        long total = order.Sum(p => p.numel());
        if (state.FirstMoment.numel() != total || state.SecondMoment.numel() != total) return false;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        long offset = 0;
        foreach (var p in order)
        {
            long n = p.numel();
            var m = adam.Moment(p, 0);
            var v = adam.Moment(p, 1);
            if (m is null || v is null) return false;
            m.copy_(state.FirstMoment.narrow(0, offset, n).view(p.shape));
            v.copy_(state.SecondMoment.narrow(0, offset, n).view(p.shape));
            offset += n;
        }
        return true;
    }
}

/// <summary>The update rule a <see cref="SparseRowOptimizer"/> applies to the rows a step touched.</summary>
internal enum SparseRowRule
{
    /// <summary>Lazy Adam: moments and weights of touched rows only; bias correction by the global step.</summary>
    Adam,
    /// <summary>Row-wise Adagrad: squared-gradient sums of touched rows only.</summary>
    Adagrad,
    /// <summary>Plain SGD on touched rows.</summary>
    Sgd,
}

/// <summary>
/// Row-wise (sparse) updates of embedding tables: a step reads and writes only the rows that the step's lookups
/// touched, so its cost follows the batch, not the catalogue.
/// </summary>
/// <remarks>
/// <para>Semantics differ from dense Adam in the way of TensorFlow's LazyAdam and PyTorch's SparseAdam: a row's
/// moments decay only in steps that touch it, so a rarely seen row keeps its last momentum instead of coasting on a
/// decaying one; L2 (<c>weight_decay</c>) is applied to touched rows only (rows unused in a step are neither
/// decayed nor moved). For a row touched in a step from equal state the update equals dense Adam's exactly.</para>
/// <para>Tables of the same width and device share one storage (each table a slice of it, like <see cref="FlatAdam"/>),
/// so a step costs about twenty tensor operations per width, not per table. Duplicate lookups of a row within a step
/// are summed first, as a dense gradient would sum them.</para>
/// </remarks>
internal sealed class SparseRowOptimizer : IDisposable
{
    private readonly List<Group> _groups = new();
    private readonly SparseRowRule _rule;
    private readonly double _lr, _beta1, _beta2, _eps, _weightDecay;

    public SparseRowOptimizer(IReadOnlyList<EmbeddingTable> tables, SparseRowRule rule, double lr, double weightDecay,
        double beta1 = 0.9, double beta2 = 0.999, double eps = double.NaN)
    {
        if (tables.Count == 0) throw new ArgumentException("No embedding tables to optimise.", nameof(tables));
        _rule = rule; _lr = lr; _weightDecay = weightDecay; _beta1 = beta1; _beta2 = beta2;
        // PyTorch's defaults: 1e-8 for Adam, 1e-10 for Adagrad.
        _eps = double.IsNaN(eps) ? (rule == SparseRowRule.Adagrad ? 1e-10 : 1e-8) : eps;
        foreach (var same in tables.GroupBy(t => (t.Dimension, t.Weight.dtype, t.Weight.device_type, t.Weight.device_index)))
            _groups.Add(new Group(same.ToList(), rule));
    }

    /// <summary>Adam's step count (bias correction uses the global step, as LazyAdam does).</summary>
    public long StepCount { get; set; }

    public void ZeroGrad()
    {
        foreach (var g in _groups) foreach (var t in g.Tables) t.SparseLookups!.Clear();
    }

    public void Step()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        StepCount++;
        foreach (var group in _groups) Apply(group);
    }

    private void Apply(Group group)
    {
        var indices = new List<Tensor>();
        var gradients = new List<Tensor>();
        for (int t = 0; t < group.Tables.Count; t++)
        {
            foreach (var (rows, values) in group.Tables[t].SparseLookups!)
            {
                var grad = values.grad;
                if (grad is null) continue; // looked up but not part of the loss
                indices.Add(group.Offsets[t] == 0 ? rows : rows.add(LiveScalars.Of(group.Offsets[t]), LiveScalars.One));
                gradients.Add(grad);
            }
        }
        if (indices.Count == 0) return;
        var index = indices.Count == 1 ? indices[0] : cat(indices);
        var gradient = gradients.Count == 1 ? gradients[0] : cat(gradients);
        if (group.Fused)
        {
            ApplyFused(group, index.contiguous(), gradient.contiguous());
            return;
        }
        var (unique, inverse, _) = index.unique(sorted: true, return_inverse: true);
        // Every number goes to libtorch as an explicit Scalar kept alive by its using (see FlatAdam.Step on why).
        using Scalar one = 1;
        var g = zeros(unique.shape[0], group.Dimension, dtype: gradient.dtype, device: gradient.device).index_add_(0, inverse!, gradient, one);
        var w = group.Storage.index_select(0, unique);
        if (_weightDecay != 0)
        {
            using Scalar decay = _weightDecay;
            g.add_(w, alpha: decay);
        }
        switch (_rule)
        {
            case SparseRowRule.Adam:
            {
                double biasCorrection1 = 1 - Math.Pow(_beta1, StepCount);
                double biasCorrection2 = 1 - Math.Pow(_beta2, StepCount);
                using Scalar beta1 = _beta1, oneMinusBeta1 = 1 - _beta1, beta2 = _beta2, oneMinusBeta2 = 1 - _beta2,
                    correction2 = Math.Sqrt(biasCorrection2), eps = _eps, stepSize = -_lr / biasCorrection1;
                var m = group.First!.index_select(0, unique).mul_(beta1).add_(g, alpha: oneMinusBeta1);
                var v = group.Second!.index_select(0, unique).mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
                group.First.index_copy_(0, unique, m);
                group.Second.index_copy_(0, unique, v);
                var denominator = v.sqrt().div_(correction2).add_(eps, LiveScalars.One);
                w.addcdiv_(m, denominator, value: stepSize);
                break;
            }
            case SparseRowRule.Adagrad:
            {
                using Scalar eps = _eps, stepSize = -_lr;
                var sum = group.First!.index_select(0, unique).addcmul_(g, g, one);
                group.First.index_copy_(0, unique, sum);
                w.addcdiv_(g, sum.sqrt().add_(eps, LiveScalars.One), value: stepSize);
                break;
            }
            default:
            {
                using Scalar stepSize = -_lr;
                w.add_(g, alpha: stepSize);
                break;
            }
        }
        group.Storage.index_copy_(0, unique, w);
    }

    /// <summary>Tests set this to run the tensor-operation form on the CPU too (the form GPUs use).</summary>
    internal static bool DisableFusedKernel { get; set; }

    // Scratch for the fused kernel, reused across steps (a step's lookups: a few thousand).
    private int[] _unique = new int[4096];
    private float[] _sums = new float[4096 * 64];

    /// <summary>
    /// The CPU form of <see cref="Apply"/>: one pass over the touched rows in place, on the storages' memory. Why: a
    /// step's arithmetic is tiny (thousands of rows), and as tensor operations it costs about twenty calls with
    /// index_copy_'s element-wise write-back (≈0.3 ms each), several times the forward and backward together.
    /// Duplicates are summed in lookup order through a per-row slot table (no sort), then the rule is applied,
    /// vectorised with <see cref="System.Numerics.Vector{T}"/>; the arithmetic is the tensor form's.
    /// </summary>
    private void ApplyFused(Group group, Tensor index, Tensor gradient)
    {
        int n = (int)index.shape[0];
        int d = (int)group.Dimension;
        if (_unique.Length < n) _unique = new int[n * 2];
        if (_sums.Length < (long)n * d) _sums = new float[(long)n * d * 2];
        var keys = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(index.bytes);
        var grads = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(gradient.bytes);
        var slots = group.Slots;
        int count = 0;
        for (int j = 0; j < n; j++)
        {
            int row = (int)keys[j];
            int slot = slots[row] - 1;
            if (slot < 0)
            {
                slot = count++;
                slots[row] = slot + 1;
                _unique[slot] = row;
                grads.Slice(j * d, d).CopyTo(_sums.AsSpan(slot * d, d));
            }
            else Add(_sums.AsSpan(slot * d, d), grads.Slice(j * d, d));
        }

        var weights = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(group.Storage.bytes);
        var first = group.First is null ? default : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(group.First.bytes);
        var second = group.Second is null ? default : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(group.Second.bytes);
        float lr = (float)_lr, wd = (float)_weightDecay, eps = (float)_eps, b1 = (float)_beta1, b2 = (float)_beta2;
        float stepSize = 0, rootCorrection2 = 1;
        if (_rule == SparseRowRule.Adam)
        {
            stepSize = (float)(_lr / (1 - Math.Pow(_beta1, StepCount)));
            rootCorrection2 = (float)Math.Sqrt(1 - Math.Pow(_beta2, StepCount));
        }
        for (int slot = 0; slot < count; slot++)
        {
            int row = _unique[slot];
            slots[row] = 0; // ready for the next step
            var g = _sums.AsSpan(slot * d, d);
            var w = weights.Slice(row * d, d);
            if (wd != 0) AddScaled(g, w, wd);
            switch (_rule)
            {
                case SparseRowRule.Adam:
                    AdamRow(w, first.Slice(row * d, d), second.Slice(row * d, d), g, b1, b2, stepSize, rootCorrection2, eps);
                    break;
                case SparseRowRule.Adagrad:
                    AdagradRow(w, first.Slice(row * d, d), g, lr, eps);
                    break;
                default:
                    AddScaled(w, g, -lr);
                    break;
            }
        }
    }

    private static void Add(Span<float> target, ReadOnlySpan<float> x)
    {
        int i = 0, width = System.Numerics.Vector<float>.Count;
        for (; i <= target.Length - width; i += width)
            (new System.Numerics.Vector<float>(target.Slice(i)) + new System.Numerics.Vector<float>(x.Slice(i))).CopyTo(target.Slice(i));
        for (; i < target.Length; i++) target[i] += x[i];
    }

    /// <summary>target += scale · x, vectorised (also the CSR product of <see cref="Models.InteractionGraph"/>).</summary>
    internal static void AddScaled(Span<float> target, ReadOnlySpan<float> x, float scale)
    {
        int i = 0, width = System.Numerics.Vector<float>.Count;
        for (; i <= target.Length - width; i += width)
            (new System.Numerics.Vector<float>(target.Slice(i)) + new System.Numerics.Vector<float>(x.Slice(i)) * scale).CopyTo(target.Slice(i));
        for (; i < target.Length; i++) target[i] += x[i] * scale;
    }

    /// <summary>m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w − stepSize · m / (√v / √(1−β₂ᵗ) + ε), as the tensor form.</summary>
    private static void AdamRow(Span<float> w, Span<float> m, Span<float> v, ReadOnlySpan<float> g, float b1, float b2, float stepSize, float rootCorrection2, float eps)
    {
        int i = 0, width = System.Numerics.Vector<float>.Count;
        for (; i <= w.Length - width; i += width)
        {
            var gv = new System.Numerics.Vector<float>(g.Slice(i));
            var mv = new System.Numerics.Vector<float>(m.Slice(i)) * b1 + gv * (1 - b1);
            var vv = new System.Numerics.Vector<float>(v.Slice(i)) * b2 + gv * gv * (1 - b2);
            var denominator = System.Numerics.Vector.SquareRoot(vv) / rootCorrection2 + new System.Numerics.Vector<float>(eps);
            (new System.Numerics.Vector<float>(w.Slice(i)) - mv / denominator * stepSize).CopyTo(w.Slice(i));
            mv.CopyTo(m.Slice(i));
            vv.CopyTo(v.Slice(i));
        }
        for (; i < w.Length; i++)
        {
            m[i] = m[i] * b1 + g[i] * (1 - b1);
            v[i] = v[i] * b2 + g[i] * g[i] * (1 - b2);
            w[i] -= stepSize * m[i] / (MathF.Sqrt(v[i]) / rootCorrection2 + eps);
        }
    }

    /// <summary>s ← s + g²; w ← w − lr · g / (√s + ε), as PyTorch's Adagrad.</summary>
    private static void AdagradRow(Span<float> w, Span<float> s, ReadOnlySpan<float> g, float lr, float eps)
    {
        int i = 0, width = System.Numerics.Vector<float>.Count;
        for (; i <= w.Length - width; i += width)
        {
            var gv = new System.Numerics.Vector<float>(g.Slice(i));
            var sv = new System.Numerics.Vector<float>(s.Slice(i)) + gv * gv;
            (new System.Numerics.Vector<float>(w.Slice(i)) - gv / (System.Numerics.Vector.SquareRoot(sv) + new System.Numerics.Vector<float>(eps)) * lr).CopyTo(w.Slice(i));
            sv.CopyTo(s.Slice(i));
        }
        for (; i < w.Length; i++)
        {
            s[i] += g[i] * g[i];
            w[i] -= lr * g[i] / (MathF.Sqrt(s[i]) + eps);
        }
    }

    /// <summary>Adam's moment (0 = first, 1 = second) of a managed table's weights, or null.</summary>
    public Tensor? Moment(TorchSharp.Modules.Parameter p, int which)
    {
        if (_rule != SparseRowRule.Adam) return null;
        foreach (var group in _groups)
            for (int t = 0; t < group.Tables.Count; t++)
                if (group.Tables[t].Weight.Handle == p.Handle)
                    return (which == 0 ? group.First! : group.Second!).narrow(0, group.Offsets[t], group.Tables[t].Rows);
        return null;
    }

    public void Dispose()
    {
        foreach (var group in _groups)
        {
            foreach (var t in group.Tables)
            {
                t.SparseLookups = null;
                t.Weight.requires_grad = true;
            }
            group.First?.Dispose();
            group.Second?.Dispose();
        }
    }

    /// <summary>Tables of one width sharing one storage [sum of rows, width]; each table's weights are a slice of it.</summary>
    private sealed class Group
    {
        public Group(List<EmbeddingTable> tables, SparseRowRule rule)
        {
            Tables = tables;
            Dimension = tables[0].Dimension;
            var first = tables[0].Weight;
            long total = tables.Sum(t => t.Rows);
            Offsets = new long[tables.Count];
            Storage = empty(new[] { total, Dimension }, dtype: first.dtype, device: first.device);
            using (no_grad())
            {
                long offset = 0;
                for (int t = 0; t < tables.Count; t++)
                {
                    var table = tables[t];
                    Offsets[t] = offset;
                    table.Weight.requires_grad = false;
                    using (var slice = Storage.narrow(0, offset, table.Rows))
                    {
                        slice.copy_(table.Weight);
                        table.Weight.set_(slice);
                    }
                    table.SparseLookups = new List<(Tensor, Tensor)>();
                    offset += table.Rows;
                }
            }
            if (rule != SparseRowRule.Sgd) First = zeros(total, Dimension, dtype: first.dtype, device: first.device);
            if (rule == SparseRowRule.Adam) Second = zeros(total, Dimension, dtype: first.dtype, device: first.device);
            // The fused kernel works on the storages' memory as spans: CPU float32 of at most 2 GB each.
            Fused = !DisableFusedKernel && first.device_type == TorchSharp.DeviceType.CPU && first.dtype == ScalarType.Float32 && total * Dimension * sizeof(float) <= int.MaxValue;
            if (Fused) Slots = new int[total];
        }

        /// <summary>Fused kernel: slot + 1 of each row touched in the current step (0 = untouched); all 0 between steps.
        /// One int per row, against 12 × width bytes of weights and moments.</summary>
        public int[] Slots { get; } = [];

        /// <summary>Whether steps run the fused CPU kernel rather than tensor operations.</summary>
        public bool Fused { get; }

        public List<EmbeddingTable> Tables { get; }
        public long Dimension { get; }
        public long[] Offsets { get; }
        public Tensor Storage { get; }
        /// <summary>Adam's first moment, or Adagrad's squared-gradient sum.</summary>
        public Tensor? First { get; }
        public Tensor? Second { get; }
    }
}

/// <summary>
/// Adam (Kingma &amp; Ba; PyTorch's semantics, L2 added to the gradient as <c>weight_decay</c>) over all parameters at
/// once. At construction every parameter is re-pointed (<c>set_</c>) to a slice of one flat buffer and its gradient to
/// a slice of one flat gradient buffer, so an update is 7 tensor operations whatever the number of parameters.
/// Why: at recommender batch sizes a step is bound by per-operation overhead, and TorchSharp's Adam issues about ten
/// operations per parameter tensor (≈140 per NeuMF step). The arithmetic is identical to dense Adam.
/// </summary>
internal sealed class FlatAdam : IStepOptimizer, IAdamState
{
    private readonly Tensor _parameters, _gradients, _exp, _expSq;
    private readonly double _lr, _beta1, _beta2, _eps, _weightDecay;
    private readonly Dictionary<IntPtr, (long Offset, long[] Shape)> _slices = new();
    private long _step;

    public FlatAdam(IReadOnlyList<TorchSharp.Modules.Parameter> parameters, double lr, double weightDecay,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        if (parameters.Count == 0) throw new ArgumentException("The module has no trainable parameters.", nameof(parameters));
        var device = parameters[0].device;
        var dtype = parameters[0].dtype;
        if (parameters.Any(p => p.dtype != dtype || p.device_type != device.type || p.device_index != device.index))
            throw new ArgumentException("All parameters must share one dtype and device.", nameof(parameters));
        long total = parameters.Sum(p => p.numel());
        _parameters = empty(total, dtype: dtype, device: device);
        _gradients = zeros(total, dtype: dtype, device: device);
        _exp = zeros(total, dtype: dtype, device: device);
        _expSq = zeros(total, dtype: dtype, device: device);
        using (no_grad())
        using (NewDisposeScope()) // temporaries stay referenced during native calls; set_ and grad keep libtorch's own references
        {
            long offset = 0;
            foreach (var p in parameters)
            {
                long n = p.numel();
                var shape = p.shape;
                using (var slice = _parameters.narrow(0, offset, n))
                {
                    slice.copy_(p.detach().reshape(n));
                    using var view = slice.view(shape);
                    p.set_(view);
                }
                p.grad = _gradients.narrow(0, offset, n).view(shape);
                _slices[p.Handle] = (offset, shape);
                offset += n;
            }
        }
        _lr = lr; _weightDecay = weightDecay; _beta1 = beta1; _beta2 = beta2; _eps = eps;
    }

    /// <summary>Zeroes the flat gradient in place (the parameters' .grad views must stay attached).</summary>
    public void ZeroGrad() => _gradients.zero_();

    public void Step()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        _step++;
        var g = _gradients;
        double biasCorrection1 = 1 - Math.Pow(_beta1, _step);
        double biasCorrection2 = 1 - Math.Pow(_beta2, _step);
        // Explicit Scalars, alive until the end of the step. A number passed as double becomes a temporary Scalar whose
        // handle TorchSharp hands to libtorch; the JIT may consider the temporary dead as soon as the handle is read, so a
        // collection triggered by another thread can finalize (free) it while libtorch still reads it. That showed as a
        // rare native "cannot be converted to type float" error in this method under parallel tests.
        using Scalar decay = _weightDecay, beta1 = _beta1, oneMinusBeta1 = 1 - _beta1, beta2 = _beta2, oneMinusBeta2 = 1 - _beta2,
            correction2 = Math.Sqrt(biasCorrection2), eps = _eps, stepSize = -_lr / biasCorrection1;
        if (_weightDecay != 0) g.add_(_parameters, alpha: decay);
        _exp.mul_(beta1).add_(g, alpha: oneMinusBeta1);
        _expSq.mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
        var denominator = _expSq.sqrt().div_(correction2).add_(eps, LiveScalars.One);
        _parameters.addcdiv_(_exp, denominator, value: stepSize);
    }

    /// <summary>Adam's step count.</summary>
    public long StepCount { get => _step; set => _step = value; }

    /// <summary>The moment (0 = first, 1 = second) of <paramref name="p"/> shaped like it, or null when p is not ours.</summary>
    public Tensor? Moment(TorchSharp.Modules.Parameter p, int which) =>
        _slices.TryGetValue(p.Handle, out var s) ? (which == 0 ? _exp : _expSq).narrow(0, s.Offset, s.Shape.Aggregate(1L, (a, b) => a * b)).view(s.Shape) : null;

    /// <summary>A detached copy of the moments and step count.</summary>
    public OptimizerState? ExportState()
    {
        using var scope = NewDisposeScope(); // a scope keeps temporaries referenced during native calls (docs/reliability.md, section 5)
        return new(_step, _exp.detach().clone().cpu().DetachFromDisposeScope(), _expSq.detach().clone().cpu().DetachFromDisposeScope());
    }

    /// <summary>Continues from a saved state; returns false (state ignored) when it belongs to differently shaped parameters.</summary>
    public bool TryImportState(OptimizerState state)
    {
        if (state.FirstMoment.numel() != _exp.numel() || state.SecondMoment.numel() != _expSq.numel()) return false;
        using (no_grad())
        {
            _exp.copy_(state.FirstMoment);
            _expSq.copy_(state.SecondMoment);
        }
        _step = state.Step;
        return true;
    }

    public void Dispose()
    {
        // The parameters keep the flat storage alive through their views; only our handles are released.
        _exp.Dispose(); _expSq.Dispose();
    }
}
