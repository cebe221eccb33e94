using Microsoft.ML;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>
/// What docs/reliability.md promises about threads: a model (trained or loaded) may be shared by threads that each use
/// their own PredictionEngine, and Recommend may be called from several threads at once.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ThreadSafetyTests
{
    private sealed class Pair
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
    }

    private sealed class Prediction
    {
        public float Score { get; set; }
    }

    [Test]
    public void EightThreadsWithOnePredictionEngineEachScoreAsOneThreadDoes()
    {
        var ml = new MLContext(0);
        IDataView data = ml.DeepRec().Data.GenerateSyntheticInteractions(
            new MLNet.DeepRec.Data.SyntheticInteractionOptions { UserCount = 80, ItemCount = 60, InteractionsPerUser = 10, Seed = 3 });
        var model = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
            .Append(ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1, Seed = 1 }))
            .Fit(data);
        string path = Path.Combine(Path.GetTempPath(), $"deeprec-threads-{Guid.NewGuid():N}.zip");
        try
        {
            DeepRecServing.SaveModel(ml, model, data.Schema, path);
            var serving = new MLContext();
            ITransformer loaded = DeepRecServing.LoadModel(serving, path);
            var pairs = Enumerable.Range(0, 400).Select(n => new Pair { UserId = "u" + n % 80, ItemId = "i" + n * 7 % 60 }).ToArray();
            // ML.NET's PredictionEngine.Dispose disposes its model unless told otherwise: engines that share a model must not own it.
            var shareModel = new PredictionEngineOptions { OwnsTransformer = false };
            float[] expected;
            using (var engine = serving.Model.CreatePredictionEngine<Pair, Prediction>(loaded, shareModel))
                expected = pairs.Select(p => engine.Predict(p).Score).ToArray();

            foreach (ITransformer shared in new[] { loaded, model })
            {
                var results = new float[8][];
                Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
                {
                    using var engine = serving.Model.CreatePredictionEngine<Pair, Prediction>(shared, shareModel);
                    var scores = new float[pairs.Length];
                    // Each thread starts at another pair, so that threads score different pairs at the same moment.
                    for (int round = 0; round < 3; round++)
                        for (int j = 0; j < pairs.Length; j++)
                        {
                            int i = (j + t * 50) % pairs.Length;
                            scores[i] = engine.Predict(pairs[i]).Score;
                        }
                    results[t] = scores;
                });
                for (int t = 0; t < 8; t++)
                    Assert.That(results[t], Is.EqualTo(expected).Within(1e-6), $"thread {t}");
            }
            (loaded as IDisposable)?.Dispose();

            // With the default options the engine owns the model: after the engine is disposed, the DeepRec transformer says
            // so instead of failing inside ONNX Runtime.
            using (var owning = ml.Model.CreatePredictionEngine<Pair, Prediction>(model)) owning.Predict(pairs[0]);
            Assert.That(() => model.Transform(data), Throws.InstanceOf<ObjectDisposedException>().With.Message.Contains("OwnsTransformer"));
        }
        finally
        {
            File.Delete(path);
            model.Dispose();
        }
    }

    [Test]
    public void RecommendFromFourThreadsGivesTheSequentialLists()
    {
        var d = TestData.SmallSynthetic;
        using var model = d.Context.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1, Seed = 1,
        }).Fit(d.Train);
        uint[] users = Enumerable.Range(1, 200).Select(u => (uint)u).ToArray();
        var expected = users.Select(u => model.Recommend(u, k: 10).Select(r => r.ItemKey).ToArray()).ToArray();
        var actual = new uint[users.Length][];
        Parallel.For(0, users.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            i => actual[i] = model.Recommend(users[i], k: 10).Select(r => r.ItemKey).ToArray());
        Assert.That(actual, Is.EqualTo(expected));
    }
}
