using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Training;

/// <summary>
/// Fits that run at the same time in one process: each must give the model it gives alone. libtorch has one
/// process-wide generator; the library seeds and creates each network under a lock and draws everything later (batch
/// order, negatives, dropout masks) from the fit's own generator.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ConcurrentFitDeterminismTests
{
    private sealed class Row
    {
        public string User { get; set; } = "";
        public string Context { get; set; } = "";
        [VectorType(2)] public float[] Dense { get; set; } = new float[2];
        public bool Label { get; set; }
    }

    [Test]
    public void NfmWithDropoutFittedConcurrentlyEqualsTheSameFitAlone()
    {
        var ml = new MLContext(0);
        var random = new Random(2);
        var rows = Enumerable.Range(0, 600).Select(n =>
        {
            int u = random.Next(30), c = random.Next(5);
            return new Row { User = "u" + u, Context = "c" + c, Dense = [(float)random.NextDouble(), (float)random.NextDouble()], Label = (u + c) % 3 == 0 };
        }).ToArray();
        IDataView raw = ml.Data.LoadFromEnumerable(rows);
        IDataView data = ml.Transforms.Conversion.MapValueToKey("UserKey", "User")
            .Append(ml.Transforms.Conversion.MapValueToKey("ContextKey", "Context")).Fit(raw).Transform(raw);

        // Dropout on, one libtorch thread (so that sums are added in one order), different seeds per fit.
        byte[] FitOnnx(int seed) => new MLContext(seed).DeepRec().Trainers.Nfm(new NfmTrainer.Options
        {
            FeatureColumnNames = ["UserKey", "ContextKey", "Dense"],
            Task = FeatureInteractionTask.BinaryClassification,
            NumberOfEpochs = 3, Seed = seed, NumberOfThreads = 1, BiInteractionDropoutRate = 0.3, HiddenDropoutRate = 0.3,
        }).Fit(data).OnnxModel;

        byte[] aloneA = FitOnnx(11), aloneB = FitOnnx(12);
        Assert.That(aloneA, Is.EqualTo(FitOnnx(11)), "a fit is reproducible on its own");
        Assert.That(aloneA, Is.Not.EqualTo(aloneB), "different seeds give different models (so the comparison below means something)");

        for (int round = 0; round < 3; round++)
        {
            var a = Task.Run(() => FitOnnx(11));
            var b = Task.Run(() => FitOnnx(12));
            Task.WaitAll(a, b);
            Assert.That(a.Result, Is.EqualTo(aloneA), $"round {round}: seed 11 fitted next to seed 12");
            Assert.That(b.Result, Is.EqualTo(aloneB), $"round {round}: seed 12 fitted next to seed 11");
        }
    }

    [Test]
    public void NeuMFFittedConcurrentlyEqualsTheSameFitAlone()
    {
        var d = TestData.SmallSynthetic;
        byte[] FitOnnx(int seed) => d.Context.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1, Seed = seed, NumberOfThreads = 1,
        }).Fit(d.Train).OnnxModel;
        byte[] aloneA = FitOnnx(21), aloneB = FitOnnx(22);
        var a = Task.Run(() => FitOnnx(21));
        var b = Task.Run(() => FitOnnx(22));
        Task.WaitAll(a, b);
        Assert.That(a.Result, Is.EqualTo(aloneA));
        Assert.That(b.Result, Is.EqualTo(aloneB));
    }
}
