using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Training;

/// <summary>
/// Our dense Adagrad/SGD replace TorchSharp's (whose steps pass temporary Scalars that a collection can free mid-call):
/// they must follow TorchSharp's arithmetic step for step, and survive collections forced between and during steps.
/// </summary>
public class DenseAdagradOrSgdTests
{
    [TestCase(true, 0.0)]
    [TestCase(true, 0.01)]
    [TestCase(false, 0.0)]
    [TestCase(false, 0.01)]
    public void FollowsTorchSharpsOptimizerExactly(bool adagrad, double weightDecay)
    {
        random.manual_seed(5);
        using var a = new NeuMFModule(30, 40, 4, new[] { 16, 8 });
        random.manual_seed(5);
        using var b = new NeuMFModule(30, 40, 4, new[] { 16, 8 });
        using optim.Optimizer reference = adagrad
            ? optim.Adagrad(a.parameters(), lr: 0.05, weight_decay: weightDecay)
            : optim.SGD(a.parameters(), 0.05, weight_decay: weightDecay);
        using var ours = new DenseAdagradOrSgd(b.parameters().ToList(), 0.05, weightDecay, adagrad);
        var generator = new Generator(3);
        for (int step = 0; step < 6; step++)
        {
            using var scope = NewDisposeScope();
            var u = randint(1, 31, new long[] { 64 }, dtype: int64, generator: generator);
            var i = randint(1, 41, new long[] { 64 }, dtype: int64, generator: generator);
            var y = (rand(64, generator: generator) > 0.7).to(float32);
            reference.zero_grad();
            nn.functional.binary_cross_entropy_with_logits(a.call(u, i), y).backward();
            reference.step();
            ours.ZeroGrad();
            nn.functional.binary_cross_entropy_with_logits(b.call(u, i), y).backward();
            GC.Collect(); GC.WaitForPendingFinalizers(); // nothing our step needs may depend on a collectable object
            ours.Step();
        }
        int changed = 0;
        foreach (var ((name, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
        {
            Assert.That(pb.data<float>().ToArray(), Is.EqualTo(pa.data<float>().ToArray()).Within(1e-6), name);
            changed++;
        }
        Assert.That(changed, Is.GreaterThan(3));
    }

    [TestCase("Adagrad")]
    [TestCase("Sgd")]
    [TestCase("Adam")]
    public void StepsWhileAnotherThreadCollectsContinuously(string rule)
    {
        // The failure these optimizers avoid: a Scalar finalized during a native call (TorchSharp's add_(Scalar) makes a
        // temporary alpha = 1 that nothing keeps alive). Force collections on another thread for the whole run; with
        // explicit Scalars the results are those of a quiet run. Measured: TorchSharp's Adagrad fails this within
        // 3,000 steps ("Expected false to be true" from libtorch's Scalar::toFloat), and so did our own step while it
        // still called add_(eps) without an explicit alpha.
        float[] Run(bool collect)
        {
            random.manual_seed(9);
            using var m = new NeuMFModule(50, 60, 8, new[] { 16 });
            var parameters = m.parameters().ToList();
            using IStepOptimizer opt = rule == "Adam" ? new FlatAdam(parameters, 0.01, 0.001) : new DenseAdagradOrSgd(parameters, 0.05, 0.001, adagrad: rule == "Adagrad");
            using var stop = new CancellationTokenSource();
            var collector = collect ? Task.Run(() => { while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); } }) : Task.CompletedTask;
            var generator = new Generator(4);
            for (int step = 0; step < 1500; step++)
            {
                using var scope = NewDisposeScope();
                var u = randint(1, 51, new long[] { 128 }, dtype: int64, generator: generator);
                var i = randint(1, 61, new long[] { 128 }, dtype: int64, generator: generator);
                var y = (rand(128, generator: generator) > 0.5).to(float32);
                opt.ZeroGrad();
                nn.functional.binary_cross_entropy_with_logits(m.call(u, i), y).backward();
                opt.Step();
            }
            stop.Cancel();
            collector.Wait();
            return m.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
        }
        Assert.That(Run(collect: true), Is.EqualTo(Run(collect: false)));
    }
}
