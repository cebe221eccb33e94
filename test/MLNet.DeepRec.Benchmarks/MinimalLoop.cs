using System.Diagnostics;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// The reference point for our pipeline's overhead: the same module and optimizer trained by the shortest TorchSharp
/// loop, over tensors made once (random pairs and labels of one epoch's size).
/// </summary>
internal static class MinimalLoop
{
    /// <summary>Same-sized network as a trained model (its kind and hyper-parameters), freshly initialised.</summary>
    public static double SamplesPerSecond(CollaborativeModule like, long samplesPerEpoch, int batchSize, int seed, bool fusedAdam = false)
    {
        random.manual_seed(seed);
        using var module = CollaborativeModule.Create(like.Kind, like.UserCount, like.ItemCount, like.HyperParameters);
        return Measure(module, like.UserCount, like.ItemCount, samplesPerEpoch, batchSize, fusedAdam);
    }

    public static double SamplesPerSecond(string model, int userCount, int itemCount, long samplesPerEpoch, int batchSize, int seed, bool fusedAdam = false)
    {
        random.manual_seed(seed);
        using CollaborativeModule module = model switch
        {
            "MF" => new DotProductMFModule(userCount, itemCount, 32),
            "GMF" => new GmfModule(userCount, itemCount, 8),
            "MLP" => new MlpModule(userCount, itemCount, new[] { 64, 32, 16, 8 }),
            _ => new NeuMFModule(userCount, itemCount, 8, new[] { 64, 32, 16, 8 }),
        };
        return Measure(module, userCount, itemCount, samplesPerEpoch, batchSize, fusedAdam);
    }

    private static double Measure(CollaborativeModule module, int userCount, int itemCount, long samplesPerEpoch, int batchSize, bool fusedAdam)
    {
        using var users = randint(1, userCount + 1, new long[] { samplesPerEpoch }, dtype: int64);
        using var items = randint(1, itemCount + 1, new long[] { samplesPerEpoch }, dtype: int64);
        using var labels = (rand(samplesPerEpoch) < 0.2).to(float32);
        using IStepOptimizer optimizer = fusedAdam ? new FlatAdam(module.parameters().ToList(), 0.001, 0) : new TorchAdam(module);
        module.train();
        // One warm-up pass over 10% of the data, then three timed epochs; the median resists a noisy neighbour.
        Run(module, optimizer, users, items, labels, batchSize, samplesPerEpoch / 10);
        var rates = new List<double>();
        for (int repeat = 0; repeat < 3; repeat++)
        {
            var watch = Stopwatch.StartNew();
            Run(module, optimizer, users, items, labels, batchSize, samplesPerEpoch);
            rates.Add(samplesPerEpoch / watch.Elapsed.TotalSeconds);
        }
        rates.Sort();
        return rates[1];
    }

    private static void Run(CollaborativeModule module, IStepOptimizer optimizer, Tensor users, Tensor items, Tensor labels, int batchSize, long count)
    {
        for (long start = 0; start < count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            long n = Math.Min(batchSize, count - start);
            var loss = nn.functional.binary_cross_entropy_with_logits(module.call(users.narrow(0, start, n), items.narrow(0, start, n)), labels.narrow(0, start, n));
            optimizer.ZeroGrad();
            loss.backward();
            optimizer.Step();
        }
    }

    /// <summary>
    /// A feature-interaction network (NFM/AFM, built fresh by <paramref name="create"/>) trained by the shortest
    /// TorchSharp loop over the first <paramref name="samplesPerEpoch"/> of the given one-hot rows (global feature
    /// indices, values all 1, as frappe's) and labels, squared loss, in file order. Samples/s, median of three epochs
    /// after a warm-up.
    /// </summary>
    public static double FieldSamplesPerSecond(Func<FieldFeatureModule> create, long[] rowIndices, float[] rowLabels, long samplesPerEpoch, int batchSize, int seed, bool fusedAdam)
    {
        random.manual_seed(seed);
        using var module = create();
        samplesPerEpoch = Math.Min(samplesPerEpoch, rowLabels.Length);
        using var indices = tensor(rowIndices, new long[] { rowLabels.Length, module.SlotCount }).narrow(0, 0, samplesPerEpoch).contiguous();
        using var labels = tensor(rowLabels).narrow(0, 0, samplesPerEpoch).contiguous();
        using IStepOptimizer optimizer = fusedAdam ? new FlatAdam(module.parameters().ToList(), 0.001, 0) : new TorchAdam(module);
        module.train();
        void Epoch(long count)
        {
            for (long start = 0; start < count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                long n = Math.Min(batchSize, count - start);
                var loss = nn.functional.mse_loss(module.Output(indices.narrow(0, start, n), null), labels.narrow(0, start, n));
                optimizer.ZeroGrad();
                loss.backward();
                optimizer.Step();
            }
        }
        Epoch(samplesPerEpoch / 10);
        var rates = new List<double>();
        for (int repeat = 0; repeat < 3; repeat++)
        {
            var watch = Stopwatch.StartNew();
            Epoch(samplesPerEpoch);
            rates.Add(samplesPerEpoch / watch.Elapsed.TotalSeconds);
        }
        rates.Sort();
        return rates[1];
    }

    /// <summary>TorchSharp's own Adam, as a hand-written script would use it.</summary>
    private sealed class TorchAdam : IStepOptimizer
    {
        private readonly optim.Optimizer _adam;
        public TorchAdam(nn.Module module) => _adam = optim.Adam(module.parameters(), lr: 0.001);
        public void ZeroGrad() => _adam.zero_grad();
        public void Step() => _adam.step();
        public void Dispose() => _adam.Dispose();
    }
}
