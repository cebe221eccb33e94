using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Sequential;

/// <summary>
/// SASRec at catalogue scale: the item table is an <see cref="EmbeddingTable"/> (row-wise updates apply), the sampled
/// losses train with a million declared items, and the full cross-entropy computes its logits in chunks of items when a
/// step's would be too large, with the single pass's loss and gradients.
/// </summary>
public class SasRecScaleTests
{
    private const int CatalogueSize = 1_000_000, Users = 300, UsedItems = 3000;

    public sealed class KeyedEvent
    {
        [KeyType(Users)] public uint UserKey { get; set; }
        [KeyType(CatalogueSize)] public uint ItemKey { get; set; }
        public float Timestamp { get; set; }
    }

    private sealed record Large(MLContext Context, IDataView Train, IDataView Validation);

    /// <summary>Short sequences (4–9 events) over 3,000 items spread across a declared catalogue of a million item
    /// keys, along a planted successor chain.</summary>
    private static Large CreateLarge(int users)
    {
        var rng = new Random(11);
        var events = new List<KeyedEvent>();
        for (int u = 0; u < users; u++)
        {
            int length = rng.Next(4, 10), j = rng.Next(UsedItems);
            for (int t = 0; t < length; t++)
            {
                events.Add(new KeyedEvent { UserKey = (uint)u, ItemKey = (uint)(j * 333), Timestamp = t });
                j = rng.NextDouble() < 0.9 ? (j * 7 + 3) % UsedItems : rng.Next(UsedItems);
            }
        }
        var ml = new MLContext(1);
        var all = ml.Data.LoadFromEnumerable(events);
        var split = ml.DeepRec().Data.LeaveOneOutSplit(all, "UserKey", "Timestamp", holdOutValidation: true);
        return new Large(ml, split.Train, split.Validation!);
    }

    private static readonly Lazy<Large> LargeData = new(() => CreateLarge(Users));

    private static SasRecTrainer.Options LargeOptions(SequentialLoss loss, int epochs) => new()
    {
        UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", TimestampColumnName = "Timestamp",
        MaxLength = 10, HiddenSize = 16, NumberOfBlocks = 1, NumberOfHeads = 1, DropoutRate = 0.1,
        LearningRate = 0.01, BatchSize = 64, NumberOfEpochs = epochs, Loss = loss, NegativesPerPositive = 20, Seed = 4, TopK = 10,
        ValidationNegativesPerPositive = 50,
    };

    private static uint[] ItemKeysOf(IDataView log) => log.GetColumn<uint>("ItemKey").ToArray();

    [TestCase(SequentialLoss.BinaryCrossEntropy)]
    [TestCase(SequentialLoss.SampledSoftmax)]
    public void SampledLossesTrainWithAMillionItemsAndRecommend(SequentialLoss loss)
    {
        var d = LargeData.Value;
        using var model = d.Context.DeepRec().Trainers.SasRec(LargeOptions(loss, epochs: 3)).Fit(d.Train, d.Validation);
        Assert.That(model.ItemCount, Is.EqualTo(CatalogueSize));
        var epochs = model.TrainingReport.Epochs;
        TestContext.Out.WriteLine($"{loss}: {string.Join("; ", epochs.Select(e => $"loss {e.Loss:F4}, {e.ValidationMetric:F4}, {e.TrainSeconds:F2} s"))}");
        Assert.That(epochs.All(e => double.IsFinite(e.Loss)), Is.True);
        Assert.That(epochs[^1].Loss, Is.LessThan(epochs[0].Loss), "loss decreases");
        Assert.That(epochs.All(e => e.ValidationMetric is >= 0 and <= 1), Is.True, "sampled validation NDCG");
        Assert.That(StepOptimizer.UseSparse(model.Module, model.Module.ItemTable, EmbeddingUpdateMode.Auto), Is.True, "Auto trains the million-row item table row-wise");

        // Recommend in TorchSharp and the ONNX top-K agree over the whole catalogue.
        var history = ItemKeysOf(d.Train).Take(5).ToArray();
        var recommended = model.Recommend(history, 10);
        Assert.That(recommended.Count, Is.EqualTo(10));
        Assert.That(recommended.Select(r => r.ItemKey).Distinct().Count(), Is.EqualTo(10));
        Assert.That(recommended.All(r => r.ItemKey is >= 1 and <= CatalogueSize && !history.Contains(r.ItemKey) && float.IsFinite(r.Score)), Is.True);
        var rows = d.Context.Data.LoadFromEnumerable(new[] { new SequentialServingTests.HistoryRow { History = history, ItemKey = history[0] } });
        var prediction = d.Context.Data.CreateEnumerable<SequentialServingTests.Prediction>(model.Transform(SequenceTestData.AsItemKeys(d.Context, rows, model.ItemCount)), reuseRowObject: false).Single();
        Assert.That(prediction.TopKItems, Is.EqualTo(recommended.Select(r => r.ItemKey).ToArray()));
        Assert.That(prediction.TopKScores, Is.EqualTo(recommended.Select(r => r.Score).ToArray()).Within(1e-3f));
    }

    [Test]
    public void FullCrossEntropyWithAMillionItemsRunsInChunksOfItems()
    {
        // One step of 60 sequences × ~5 positions × 10⁶ items ≈ 3·10⁸ logits, over the single-pass limit of 2²⁷.
        var d = CreateLarge(users: 60);
        var options = LargeOptions(SequentialLoss.CrossEntropy, epochs: 1);
        using var model = d.Context.DeepRec().Trainers.SasRec(options).Fit(d.Train);
        var epoch = model.TrainingReport.Epochs.Single();
        TestContext.Out.WriteLine($"full cross-entropy, 10⁶ items: loss {epoch.Loss:F4}, {epoch.TrainSeconds:F2} s");
        Assert.That(epoch.Loss, Is.GreaterThan(0).And.LessThan(Math.Log(CatalogueSize) + 1), "about log(items) after one epoch");
        Assert.That(StepOptimizer.UseSparse(model.Module, model.Module.ItemTable, EmbeddingUpdateMode.Auto), Is.False, "the full softmax prefers a dense item update");
        var history = ItemKeysOf(d.Train).Take(3).ToArray();
        Assert.That(model.Recommend(history, 5).Count, Is.EqualTo(5));
    }

    [Test]
    public void ChunkedCrossEntropyHasTheSinglePassLossAndGradients()
    {
        const int items = 53, length = 6, users = 5;
        random.manual_seed(1);
        using var module = new SasRecModule(items, length, hiddenSize: 8, blocks: 1, heads: 2, feedForwardSize: 8, dropout: 0);
        module.train();
        var rng = new Random(2);
        var inputs = new long[users * length];
        var targets = new long[users * length];
        for (int u = 0; u < users; u++)
        {
            int start = rng.Next(0, length - 1); // left padding
            for (int t = start; t < length; t++) inputs[u * length + t] = rng.Next(1, items + 1);
            for (int t = start; t < length; t++) targets[u * length + t] = t + 1 < length ? inputs[u * length + t + 1] : rng.Next(1, items + 1);
        }
        using var scope = NewDisposeScope();
        var batch = new SequentialBatch(arange(users, dtype: int64), tensor(inputs, dtype: int64).view(users, length), tensor(targets, dtype: int64).view(users, length), null);

        (float Loss, Dictionary<string, float[]> Gradients) Run(SequentialObjective objective)
        {
            foreach (var p in module.parameters()) p.grad?.zero_();
            var loss = objective.ComputeLoss(batch);
            loss.backward();
            return (loss.item<float>(), module.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.cpu().data<float>().ToArray()));
        }

        var single = Run(new SequentialObjective(module, SequentialLoss.CrossEntropy));
        // 0 logits in one pass forces the chunked path; 40 logits per chunk means 1–2 items per chunk here.
        var chunked = Run(new SequentialObjective(module, SequentialLoss.CrossEntropy, singlePassLogits: 0, chunkLogits: 40));
        Assert.That(chunked.Loss, Is.EqualTo(single.Loss).Within(1e-5f * single.Loss));
        // Relative to the largest gradient: some are zero up to rounding (the key bias cannot change a softmax).
        float scale = single.Gradients.Values.Max(g => g.Max(Math.Abs));
        foreach (var (name, expected) in single.Gradients)
            Assert.That(chunked.Gradients[name], Is.EqualTo(expected).Within(1e-5f * scale), name);
    }

    [TestCase(EmbeddingUpdateMode.Dense)]
    [TestCase(EmbeddingUpdateMode.Sparse)]
    public void ChunkedCrossEntropyTrainsLikeTheSinglePass(EmbeddingUpdateMode mode)
    {
        var data = SequenceTestData.Data;
        SasRecTrainer.Options Options(bool chunked)
        {
            var o = SasRecTrainingTests.Small(SequentialLoss.CrossEntropy, epochs: 2);
            o.EmbeddingUpdates = mode;
            if (chunked) { o.CrossEntropySinglePassLogits = 0; o.CrossEntropyChunkLogits = 16384; }
            return o;
        }
        using var single = data.Context.DeepRec().Trainers.SasRec(Options(false)).Fit(data.Train);
        using var chunked = data.Context.DeepRec().Trainers.SasRec(Options(true)).Fit(data.Train);
        var expected = single.TrainingReport.Epochs.Select(e => e.Loss).ToArray();
        var actual = chunked.TrainingReport.Epochs.Select(e => e.Loss).ToArray();
        TestContext.Out.WriteLine($"{mode}: single pass {string.Join(", ", expected)}; chunked {string.Join(", ", actual)}");
        Assert.That(actual, Is.EqualTo(expected).Within(1e-3).Percent);
        Assert.That(chunked.Recommend(new uint[] { 1, 2, 3 }, 5).Select(r => r.ItemKey),
            Is.EqualTo(single.Recommend(new uint[] { 1, 2, 3 }, 5).Select(r => r.ItemKey)));
    }
}
