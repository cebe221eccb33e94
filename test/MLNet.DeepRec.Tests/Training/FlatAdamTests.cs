using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Training;

public class FlatAdamTests
{
    [TestCase(0.0)]
    [TestCase(0.01)]
    public void FusedFlatAdamFollowsTorchSharpsAdamExactly(double weightDecay)
    {
        random.manual_seed(5);
        using var a = new NeuMFModule(30, 40, 4, new[] { 16, 8 });
        random.manual_seed(5);
        using var b = new NeuMFModule(30, 40, 4, new[] { 16, 8 });
        using var reference = optim.Adam(a.parameters(), lr: 0.01, weight_decay: weightDecay);
        using var fused = new FlatAdam(b.parameters().ToList(), 0.01, weightDecay);
        var generator = new Generator(3);
        for (int step = 0; step < 5; step++)
        {
            using var scope = NewDisposeScope();
            var u = randint(1, 31, new long[] { 64 }, dtype: int64, generator: generator);
            var i = randint(1, 41, new long[] { 64 }, dtype: int64, generator: generator);
            var y = (rand(64, generator: generator) > 0.7).to(float32);
            reference.zero_grad();
            nn.functional.binary_cross_entropy_with_logits(a.call(u, i), y).backward();
            reference.step();
            fused.ZeroGrad();
            nn.functional.binary_cross_entropy_with_logits(b.call(u, i), y).backward();
            fused.Step();
        }
        foreach (var ((name, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.That(pb.data<float>().ToArray(), Is.EqualTo(pa.data<float>().ToArray()).Within(1e-5), name);
    }
}
