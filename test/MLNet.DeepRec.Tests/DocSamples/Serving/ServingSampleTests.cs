// <doc:serving-train-save>
using Microsoft.ML;
using MLNet.DeepRec;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
// </doc:serving-train-save>
using System.Globalization;
using MLNet.DeepRec.Data;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.DocSamples.Serving;

/// <summary>
/// The samples of docs/serving.md, in order: train and save (on a small made-up file in MovieLens 100K's u.data
/// format), load and predict in a "service", score the exported ONNX graph with ONNX Runtime directly, and ask for a
/// GPU where there is none.
/// </summary>
[NonParallelizable]
public class ServingSampleTests
{
    [Test]
    public void TrainSaveLoadPredictAndScoreTheOnnxGraph()
    {
        using var directory = new SampleDirectory();
        WriteMovieLensLikeFile("u.data");

        // <doc:serving-train-save>
        var ml = new MLContext(seed: 0);
        IDataView interactions = ml.DeepRec().Data.LoadMovieLens("u.data");   // UserId, ItemId (text), Label, Timestamp

        var pipeline = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
            .Append(ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
            {
                UserIdColumnName = "UserKey",
                ItemIdColumnName = "ItemKey",
                NumberOfEpochs = 20,
                Seed = 42,
            }));
        var model = pipeline.Fit(interactions);

        // The zip holds the key mappings, the ONNX graph, a small score mapping and what top-K needs: no TorchSharp
        // state. SaveModel writes it atomically; ml.Model.Save(model, schema, path) works too, without the top-K part.
        DeepRecServing.SaveModel(ml, model, interactions.Schema, "neumf.zip");
        // </doc:serving-train-save>

        var inMemory = ml.Model.CreatePredictionEngine<Service.Pair, Service.Prediction>(model);
        float Expected(string user, string item) => inMemory.Predict(new Service.Pair { UserId = user, ItemId = item }).Score;

        // A separate "service" with its own MLContext.
        Service.Prediction served = Service.ServiceSample.Run();
        Assert.That(served.Score, Is.EqualTo(Expected("196", "242")).Within(1e-5f), "the service scores as the trained model");

        // ONNX Runtime directly, a batch in one Run: the same scores, an unknown user included.
        var neumf = model.LastTransformer;
        float[] batch = OnnxSample.Run(neumf);
        Assert.That(batch, Is.EqualTo(new[] { Expected("196", "242"), Expected("186", "302"), Expected("unknown-user", "377") }).Within(1e-5f));

        // Batched Transform of the loaded zip: the PredictionEngine's scores.
        Assert.That(Service.RecommenderSample.ScoreInBatches(),
            Is.EqualTo(new[] { Expected("196", "242"), Expected("186", "302"), Expected("unknown-user", "377") }).Within(1e-6f));

        // Top-K from the zip: the in-memory transformer's Recommend.
        var lists = Service.RecommenderSample.Recommend();
        string[] users = ["196", "186", "unknown-user"];
        for (int n = 0; n < users.Length; n++)
        {
            var expected = neumf.Recommend(users[n], 10);
            Assert.That(lists[n].Select(r => r.ItemId), Is.EqualTo(expected.Select(r => r.ItemId)), users[n]);
            Assert.That(lists[n].Select(r => r.Score), Is.EqualTo(expected.Select(r => r.Score)).Within(1e-5f), users[n]);
        }

        // GPU asked for, CPU-only ONNX Runtime here: FallbackToCpu loads for the CPU, and the scores are the same.
        ITransformer onCpu = Service.ServiceSample.LoadForGpu();
        var engine = ml.Model.CreatePredictionEngine<Service.Pair, Service.Prediction>(onCpu);
        Assert.That(engine.Predict(new Service.Pair { UserId = "196", ItemId = "242" }).Score, Is.EqualTo(Expected("196", "242")).Within(1e-5f));

        // ONNX Runtime's CUDA provider is not in the CPU package: the documented failure.
        var cuda = Assert.Catch(() => OnnxSample.RunOnCuda());
        TestContext.Out.WriteLine($"CUDA session on the CPU package: {cuda!.GetType().FullName}: {cuda.Message}");
        Assert.That(cuda, Is.InstanceOf<EntryPointNotFoundException>());
        neumf.Dispose();
    }

    /// <summary>A small u.data-format file (user TAB item TAB rating TAB timestamp) with numeric ids, as in MovieLens 100K.</summary>
    private static void WriteMovieLensLikeFile(string path)
    {
        var data = SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { UserCount = 250, ItemCount = 400, InteractionsPerUser = 12, Seed = 6 });
        var rng = new Random(6);
        var lines = new List<string>(data.Count);
        for (int r = 0; r < data.Count; r++)
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{data.UserIndices[r] + 1}\t{data.ItemIndices[r] + 1}\t{rng.Next(1, 6)}\t{881250949 + (long)data.Timestamps[r]}"));
        File.WriteAllLines(path, lines);
    }
}
