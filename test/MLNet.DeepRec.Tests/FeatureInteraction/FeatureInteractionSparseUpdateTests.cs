using System.Globalization;
using System.Text;
using Microsoft.ML;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.FeatureInteraction;

/// <summary>
/// The FM family's feature tables are embedding tables of role Feature: <see cref="EmbeddingUpdateMode.Sparse"/> updates
/// only the rows of a step's features, and sparse vector columns are read without densifying.
/// </summary>
public class FeatureInteractionSparseUpdateTests
{
    private static PlantedData.Set D => PlantedData.Default;
    private static readonly string[] Columns = { "AKey", "BKey", "CKey", "X" };

    private static NfmTrainer.Options Nfm(EmbeddingUpdateMode mode, int epochs, double l2 = 0) => new()
    {
        FeatureColumnNames = Columns, Task = FeatureInteractionTask.Regression, Factors = 16, BiInteractionDropoutRate = 0.1, HiddenDropoutRate = 0,
        NumberOfEpochs = epochs, Seed = 4, BatchSize = 128, LearningRate = 0.01, NumberOfThreads = 1, L2Regularization = l2, EmbeddingUpdates = mode,
    };

    /// <summary>The untrained network the trainer starts from: same seed, same construction as NfmTrainer.CreateModule.</summary>
    private static NfmModule InitialModule(NfmTrainer.Options o, FieldFeatureLayout layout)
    {
        random.manual_seed(o.Seed);
        return new NfmModule(layout.FeatureCount, layout.SlotCount, o.Factors, o.HiddenLayers, o.BatchNormalization, o.BiInteractionDropoutRate, o.HiddenDropoutRate);
    }

    /// <summary>The bits of the given rows of a table.</summary>
    private static int[] Rows(EmbeddingTable table, long[] rows)
    {
        using var index = tensor(rows, dtype: int64);
        using var selected = table.Weight.detach().cpu().index_select(0, index);
        return selected.data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
    }

    // Rows whose field A takes only its first six values; the key column (fitted on all the data) still declares 12, so
    // six feature rows of A never occur in training. L2 > 0: a dense update would decay those rows every step.
    [Test]
    public void SparseUpdatesLeaveTheRowsOfFeaturesAbsentFromTheDataBitIdentical()
    {
        var ml = D.Context;
        var usedA = new HashSet<string>(Enumerable.Range(0, 6).Select(i => "a" + i.ToString(CultureInfo.InvariantCulture)));
        var subset = D.Featurizer.Transform(ml.Data.LoadFromEnumerable(PlantedData.Rows(2000, 1).Where(r => usedA.Contains(r.A)).ToArray()));

        var sparse = Nfm(EmbeddingUpdateMode.Sparse, 3, l2: 1e-3);
        var dense = Nfm(EmbeddingUpdateMode.Dense, 3, l2: 1e-3);
        using var sparseModel = ml.DeepRec().Trainers.Nfm(sparse).Fit(subset);
        using var denseModel = ml.DeepRec().Trainers.Nfm(dense).Fit(subset);
        var layout = sparseModel.Layout;
        var a = layout.Columns[0];
        Assert.That(a.Name, Is.EqualTo("AKey"));
        Assert.That(a.Size, Is.EqualTo(12), "the key column declares every value of A");
        Assert.That(a.KeyValues, Is.Not.Null);
        long[] unused = Enumerable.Range(0, a.Size).Where(k => !usedA.Contains(a.KeyValues![k])).Select(k => (long)(a.Offset + k)).ToArray();
        long[] used = Enumerable.Range(0, a.Size).Where(k => usedA.Contains(a.KeyValues![k])).Select(k => (long)(a.Offset + k)).ToArray();
        Assert.That(unused, Has.Length.EqualTo(6));

        using var initial = InitialModule(sparse, layout);
        foreach (var (name, pick) in new (string, Func<FieldFeatureModule, EmbeddingTable>)[] { ("feature_embedding", m => m.FeatureEmbedding), ("feature_bias", m => m.FeatureBias) })
        {
            var start = Rows(pick(initial), unused);
            Assert.That(start.Any(bits => bits != 0), name == "feature_bias" ? Is.False : Is.True, $"{name}: initial rows as expected (random embeddings, zero linear weights)");
            Assert.That(Rows(pick(sparseModel.Module), unused), Is.EqualTo(start), $"{name}: rows of unused features are bit-identical after sparse training");
            Assert.That(Rows(pick(sparseModel.Module), used), Is.Not.EqualTo(Rows(pick(initial), used)), $"{name}: rows of used features were trained");
            // The check has teeth: dense L2 decays unused rows every step (the zero linear weights excepted: they stay 0).
            if (name == "feature_embedding")
                Assert.That(Rows(pick(denseModel.Module), unused), Is.Not.EqualTo(start), $"{name}: a dense update with L2 does move them");
        }
    }

    [Test]
    public void SparseAndDenseUpdatesReachSimilarQualityOnThePlantedData()
    {
        var ml = D.Context;
        var rmse = new Dictionary<EmbeddingUpdateMode, double>();
        foreach (var mode in new[] { EmbeddingUpdateMode.Dense, EmbeddingUpdateMode.Sparse })
        {
            using var model = ml.DeepRec().Trainers.Nfm(Nfm(mode, 15)).Fit(D.Train);
            rmse[mode] = ml.Regression.Evaluate(model.Transform(D.Test)).RootMeanSquaredError;
        }
        TestContext.Out.WriteLine($"NFM test RMSE: dense {rmse[EmbeddingUpdateMode.Dense]:F4}, sparse {rmse[EmbeddingUpdateMode.Sparse]:F4}");
        Assert.That(rmse[EmbeddingUpdateMode.Dense], Is.LessThan(0.3));
        Assert.That(rmse[EmbeddingUpdateMode.Sparse], Is.LessThan(0.3));
        Assert.That(rmse[EmbeddingUpdateMode.Sparse], Is.LessThan(1.25 * rmse[EmbeddingUpdateMode.Dense]).And.GreaterThan(0.8 * rmse[EmbeddingUpdateMode.Dense]));
    }

    // A libFM vector of 200,000 features with at most three non-zeros a row: the reader keeps three slots per row (not
    // 200,000 values), and the feature tables (200,000 × (16 + 1) = 3.4 M values) get sparse updates under Auto.
    [Test]
    public void SparseVectorColumnsAreReadWithoutDensifyingAndTrainWithAutoSparseUpdates()
    {
        const int featureCount = 200_000, rows = 1500;
        var rng = new Random(5);
        var weights = new double[featureCount];
        for (int i = 0; i < featureCount; i++) weights[i] = rng.NextDouble() * 2 - 1;
        var text = new StringBuilder();
        for (int r = 0; r < rows; r++)
        {
            // Features from a small popular range (learnable) and the long tail.
            var chosen = new SortedSet<int>();
            int count = 1 + rng.Next(3);
            while (chosen.Count < count) chosen.Add(rng.NextDouble() < 0.8 ? rng.Next(200) : rng.Next(featureCount));
            double y = chosen.Sum(i => weights[i]);
            text.Append(y.ToString("R", CultureInfo.InvariantCulture));
            foreach (int i in chosen) text.Append(' ').Append(i.ToString(CultureInfo.InvariantCulture)).Append(":1");
            text.Append('\n');
        }
        string path = Path.Combine(Path.GetTempPath(), "fi-sparse-" + Guid.NewGuid().ToString("N") + ".libfm");
        File.WriteAllText(path, text.ToString());
        try
        {
            var ml = new MLContext(0);
            var data = ml.DeepRec().Data.LoadLibFm(path, new MLNet.DeepRec.Data.LibFmLoaderOptions { FeatureCount = featureCount });
            var read = FieldFeatureReader.Read(data, new[] { "Features" }, "Label", FieldFeatureReader.LabelKind.Regression, null);
            Assert.That(read.Layout.SlotCount, Is.EqualTo(3), "slots = the densest row's non-zeros, not the vector's length");
            Assert.That(read.Indices, Has.Length.EqualTo(rows * 3));
            Assert.That(read.Values, Has.Length.EqualTo(rows * 3));
            Assert.That(read.AllOnes, Is.False, "rows with fewer than three features have padding slots");

            var o = new NfmTrainer.Options { Factors = 16, HiddenLayers = Array.Empty<int>(), BatchNormalization = false, BiInteractionDropoutRate = 0, NumberOfEpochs = 8, LearningRate = 0.02, BatchSize = 64, Seed = 1, NumberOfThreads = 1 };
            using var model = ml.DeepRec().Trainers.Nfm(o).Fit(data);
            Assert.That(StepOptimizer.UseSparse(model.Module, model.Module.FeatureEmbedding, EmbeddingUpdateMode.Auto), Is.True, "3.4 M feature-table values: Auto updates the tables row-wise");
            Assert.That(StepOptimizer.UseSparse(model.Module, model.Module.FeatureBias, EmbeddingUpdateMode.Auto), Is.True, "one decision for all the model's tables");
            var losses = model.TrainingReport.Epochs.Select(e => e.Loss).ToArray();
            TestContext.Out.WriteLine($"loss per epoch: {string.Join(", ", losses.Select(l => l.ToString("F4", CultureInfo.InvariantCulture)))}");
            Assert.That(losses[^1], Is.LessThan(0.5 * losses[0]), "the model learns the popular features' weights");
            float[] scores = model.ScoreWithTorch(data);
            Assert.That(scores, Has.Length.EqualTo(rows));
            Assert.That(scores.All(float.IsFinite), Is.True);
        }
        finally { File.Delete(path); }
    }
}
