using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Training;

/// <summary>Row-wise (sparse) embedding updates: what they touch, and where they must equal the dense optimizers.</summary>
public class SparseRowOptimizerTests
{
    [TearDown]
    public void UseTheFusedKernelAgain() => SparseRowOptimizer.DisableFusedKernel = false;

    private const int Users = 30, Items = 40;

    private static NeuMFModule NewModule()
    {
        random.manual_seed(5);
        return new NeuMFModule(Users, Items, 4, new[] { 16, 8 });
    }

    private static NeuMFTrainer.Options Options(EmbeddingUpdateMode mode, DeepRecOptimizer optimizer, double weightDecay) => new()
    {
        EmbeddingUpdates = mode,
        Optimizer = optimizer,
        LearningRate = 0.01,
        L2Regularization = weightDecay,
    };

    /// <summary>Runs <paramref name="steps"/> BCE steps on batches whose user keys lie in 1..maxUser and item keys in
    /// 1..maxItem (so rows above are never looked up).</summary>
    private static void Train(NeuMFModule module, IStepOptimizer optimizer, int steps, int maxUser, int maxItem, ulong seed = 3)
    {
        module.train();
        using var generator = new Generator(seed);
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            // 64 lookups among ≤ 20 keys: duplicates within a batch are the rule, and must be summed.
            var u = randint(1, maxUser + 1, new long[] { 64 }, dtype: int64, generator: generator);
            var i = randint(1, maxItem + 1, new long[] { 64 }, dtype: int64, generator: generator);
            var y = (rand(64, generator: generator) > 0.7).to(float32);
            optimizer.ZeroGrad();
            nn.functional.binary_cross_entropy_with_logits(module.call(u, i), y).backward();
            optimizer.Step();
        }
    }

    private static float[] Rows(Tensor weight, long from, long count) => weight.detach().narrow(0, from, count).contiguous().data<float>().ToArray();

    [TestCase(true)]
    [TestCase(false)]
    public void SparseUpdatesTouchOnlyTheRowsOfTheBatches(bool fused)
    {
        SparseRowOptimizer.DisableFusedKernel = !fused;
        using var module = NewModule();
        var before = module.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());
        using (var optimizer = StepOptimizer.Create(module, Options(EmbeddingUpdateMode.Sparse, DeepRecOptimizer.Adam, 0.01)))
        {
            Assert.That(optimizer, Is.InstanceOf<HybridOptimizer>());
            Train(module, optimizer, steps: 5, maxUser: 10, maxItem: 12);
        }
        SparseRowOptimizer.DisableFusedKernel = false;
        foreach (var table in module.modules().OfType<EmbeddingTable>())
        {
            string name = module.named_modules().First(m => ReferenceEquals(m.module, table)).name + ".weight";
            long used = table.Role == EmbeddingRole.User ? 10 : 12;
            // Rows never looked up (the unknown row 0 and keys above the batches' range) are bit-identical, although
            // L2 is on: lazy L2 decays touched rows only.
            Assert.That(Rows(table.Weight, 0, 1), Is.EqualTo(Rows(before[name], 0, 1)), name + " row 0");
            Assert.That(Rows(table.Weight, used + 1, table.Rows - used - 1), Is.EqualTo(Rows(before[name], used + 1, table.Rows - used - 1)), name + " unused rows");
            Assert.That(Rows(table.Weight, 1, used), Is.Not.EqualTo(Rows(before[name], 1, used)), name + " used rows moved");
        }
        foreach (var p in before.Values) p.Dispose();
    }

    [TestCase(0.0, true)]
    [TestCase(0.01, true)]
    [TestCase(0.0, false)]
    [TestCase(0.01, false)]
    public void OneLazyAdamStepEqualsDenseAdamOnTheRowsItTouches(double weightDecay, bool fused)
    {
        SparseRowOptimizer.DisableFusedKernel = !fused;
        using var dense = NewModule();
        using var sparse = NewModule();
        using (var d = StepOptimizer.Create(dense, Options(EmbeddingUpdateMode.Dense, DeepRecOptimizer.Adam, weightDecay)))
        using (var s = StepOptimizer.Create(sparse, Options(EmbeddingUpdateMode.Sparse, DeepRecOptimizer.Adam, weightDecay)))
        {
            Assert.That(d, Is.InstanceOf<FlatAdam>());
            Train(dense, d, steps: 1, maxUser: 10, maxItem: 12);
            Train(sparse, s, steps: 1, maxUser: 10, maxItem: 12);
        }
        SparseRowOptimizer.DisableFusedKernel = false;
        // Rows touched by the step and every dense parameter: same arithmetic from the same state.
        foreach (var ((name, pd), (_, ps)) in dense.named_parameters().Zip(sparse.named_parameters()))
        {
            bool table = name.Contains("embedding", StringComparison.Ordinal);
            long rows = table ? (name.Contains("user", StringComparison.Ordinal) ? 10 : 12) : pd.shape[0];
            long from = table ? 1 : 0;
            Assert.That(Rows(ps, from, rows), Is.EqualTo(Rows(pd, from, rows)).Within(1e-6), name);
        }
    }

    [TestCase(DeepRecOptimizer.Sgd, true)]
    [TestCase(DeepRecOptimizer.Adagrad, true)]
    [TestCase(DeepRecOptimizer.Sgd, false)]
    [TestCase(DeepRecOptimizer.Adagrad, false)]
    public void RowWiseSgdAndAdagradEqualTheirDenseFormsOverManySteps(DeepRecOptimizer kind, bool fused)
    {
        SparseRowOptimizer.DisableFusedKernel = !fused;
        // Without L2 a zero gradient leaves a row and its Adagrad sum unchanged, so the row-wise forms are exact.
        using var dense = NewModule();
        using var sparse = NewModule();
        using (var d = StepOptimizer.Create(dense, Options(EmbeddingUpdateMode.Dense, kind, 0)))
        using (var s = StepOptimizer.Create(sparse, Options(EmbeddingUpdateMode.Sparse, kind, 0)))
        {
            Train(dense, d, steps: 6, maxUser: Users, maxItem: 15);
            Train(sparse, s, steps: 6, maxUser: Users, maxItem: 15);
        }
        SparseRowOptimizer.DisableFusedKernel = false;
        foreach (var ((name, pd), (_, ps)) in dense.named_parameters().Zip(sparse.named_parameters()))
            Assert.That(ps.detach().contiguous().data<float>().ToArray(), Is.EqualTo(pd.detach().contiguous().data<float>().ToArray()).Within(1e-5), name);
    }

    [Test]
    public void AutoKeepsSmallTablesDenseAndMakesLargeOnesSparse()
    {
        using var small = new DotProductMFModule(900, 1700, 64);
        using (var o = StepOptimizer.Create(small, Options(EmbeddingUpdateMode.Auto, DeepRecOptimizer.Adam, 0)))
            Assert.That(o, Is.InstanceOf<FlatAdam>(), "ML-100K-sized tables stay on the fused dense Adam");
        using var large = new DotProductMFModule(900, 40_000, 64);
        using (var o = StepOptimizer.Create(large, Options(EmbeddingUpdateMode.Auto, DeepRecOptimizer.Adam, 0)))
        {
            // 2.7 M values in all: every user and item table goes row-wise, the small ones too (one decision per model).
            Assert.That(o, Is.InstanceOf<HybridOptimizer>());
            Assert.That(large.ItemEmbedding.Weight.requires_grad, Is.False, "the 40K × 64 item table is sparse");
            Assert.That(large.UserEmbedding.Weight.requires_grad, Is.False, "the 900 × 64 user table too");
            Assert.That(large.UserBias.Weight.requires_grad, Is.False, "and the bias tables");
            Assert.That(large.GlobalBias.requires_grad, Is.True, "dense parameters stay dense");
        }
        Assert.That(large.ItemEmbedding.Weight.requires_grad, Is.True, "disposing the optimizer gives the table back");
    }

    [Test]
    public void AdamStateRoundTripsBetweenDenseAndSparseLayouts()
    {
        using var dense = NewModule();
        using var sparse = NewModule();
        OptimizerState? state;
        using (var d = StepOptimizer.Create(dense, Options(EmbeddingUpdateMode.Dense, DeepRecOptimizer.Adam, 0)))
        {
            Train(dense, d, steps: 3, maxUser: Users, maxItem: Items);
            state = ((IAdamState)d).ExportState();
        }
        Assert.That(state, Is.Not.Null);
        using (state)
        using (var s = StepOptimizer.Create(sparse, Options(EmbeddingUpdateMode.Sparse, DeepRecOptimizer.Adam, 0)))
        {
            var adam = (IAdamState)s;
            Assert.That(adam.TryImportState(state!), Is.True);
            using var again = adam.ExportState()!;
            Assert.That(again.Step, Is.EqualTo(3));
            Assert.That(again.FirstMoment.data<float>().ToArray(), Is.EqualTo(state!.FirstMoment.data<float>().ToArray()));
            Assert.That(again.SecondMoment.data<float>().ToArray(), Is.EqualTo(state.SecondMoment.data<float>().ToArray()));
        }
    }
}
