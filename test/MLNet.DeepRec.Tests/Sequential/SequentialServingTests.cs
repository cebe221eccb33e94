using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Sequential;

/// <summary>Serving of every model of <see cref="SequentialTestModels"/>: ONNX parity with TorchSharp at the edges, input
/// rules, save/load and PredictionEngine on a live history, GroupSequences, bad input.</summary>
[TestFixtureSource(typeof(SequentialTestModels), nameof(SequentialTestModels.Fixtures))]
public class SequentialServingTests(SequentialTestModels.Model model)
{
    public sealed class HistoryRow
    {
        public uint[] History { get; set; } = [];
        public uint ItemKey { get; set; }
    }

    public sealed class Prediction
    {
        public float Score { get; set; }
        public float Probability { get; set; }
        public uint[] TopKItems { get; set; } = [];
        public float[] TopKScores { get; set; } = [];
    }

    private static SequenceTestData.Keyed D => SequenceTestData.Data;
    private const int MaxLength = 8, TopK = 5;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<SequentialTransformer>> Shared = new();

    /// <summary>The model trained once per test run (full cross-entropy, 6 epochs, L = 8, top 5), shared by the tests of
    /// several fixtures; never disposed (the process ends with the run).</summary>
    internal static SequentialTransformer Trained(SequentialTestModels.Model model) =>
        Shared.GetOrAdd(model.Name, _ => new Lazy<SequentialTransformer>(() =>
            model.Fit(D, SequentialLoss.CrossEntropy, epochs: 6, o => { o.MaxLength = MaxLength; o.TopK = TopK; o.HistoryColumnName = "History"; }))).Value;

    private SequentialTransformer Model => Trained(model);

    // Raw item keys as plain UInt32 (a variable-length vector and a scalar), for the loaded ML.NET chain. Not POCO
    // [KeyType] members (nor key types in a schema definition): ML.NET turns a scalar key member's value v into key
    // v + 1 (see MlNetFactsTests), which would shift the candidate. The SequentialTransformer itself rejects plain UInt32:
    // it is given the same keys through SequenceTestData.AsItemKeys.
    private static SchemaDefinition InputDefinition(int itemCount) => SchemaDefinition.Create(typeof(HistoryRow));

    /// <summary>Histories around the edges: empty, shorter than, equal to and longer than L, with unknown keys.</summary>
    private static List<HistoryRow> EdgeRows(int itemCount)
    {
        var rng = new Random(9);
        var rows = new List<HistoryRow>();
        foreach (int length in new[] { 0, 1, 3, MaxLength - 1, MaxLength, MaxLength + 1, MaxLength + 7, 3 * MaxLength })
        {
            for (int r = 0; r < 3; r++)
            {
                var h = Enumerable.Range(0, length).Select(_ => (uint)rng.Next(1, itemCount + 1)).ToArray();
                if (r == 2 && length > 2) { h[0] = 0; h[length / 2] = (uint)itemCount + 17; } // unknown keys inside
                rows.Add(new HistoryRow { History = h, ItemKey = (uint)rng.Next(0, itemCount + 3) });           // includes unknown candidates
            }
        }
        return rows;
    }

    /// <summary>The TorchSharp network's score of (history, item), with the documented input handling.</summary>
    internal static float TorchScore(SequentialTransformer model, uint[] history, uint item)
    {
        var row = new long[model.MaxLength];
        UserSequences.WriteTail(history.Select(h => h > model.ItemCount ? 0 : (int)h).ToArray(), row);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var hidden = model.Module.LastHidden(tensor(row, dtype: int64).view(1, model.MaxLength));
        long key = item > model.ItemCount ? 0 : item;
        return (hidden * model.Module.ItemWeights[key]).sum().item<float>();
    }

    [Test]
    public void OnnxScoresAndTopKMatchTheTorchSharpNetworkAtEveryEdge()
    {
        var rows = EdgeRows(Model.ItemCount);
        var view = SequenceTestData.AsItemKeys(D.Context, D.Context.Data.LoadFromEnumerable(rows, InputDefinition(Model.ItemCount)), Model.ItemCount);
        var predictions = D.Context.Data.CreateEnumerable<Prediction>(Model.Transform(view), reuseRowObject: false).ToList();
        for (int n = 0; n < rows.Count; n++)
        {
            var row = rows[n];
            var p = predictions[n];
            string what = $"history [{string.Join(",", row.History)}], item {row.ItemKey}";
            float expected = TorchScore(Model, row.History, row.ItemKey);
            Assert.That(float.IsFinite(p.Score), Is.True, what);
            Assert.That(p.Score, Is.EqualTo(expected).Within(1e-4f + 1e-4f * Math.Abs(expected)), what);
            Assert.That(p.Probability, Is.EqualTo(1f / (1f + MathF.Exp(-p.Score))).Within(1e-5f), what);
            var recommended = Model.Recommend(row.History, TopK);
            Assert.That(p.TopKItems, Is.EqualTo(recommended.Select(r => r.ItemKey).ToArray()), what);
            Assert.That(p.TopKScores, Is.EqualTo(recommended.Select(r => r.Score).ToArray()).Within(1e-3f), what);
            var known = row.History.Where(h => h >= 1 && h <= Model.ItemCount).ToHashSet();
            Assert.That(p.TopKItems.Any(known.Contains), Is.False, "history items are excluded from the top K: " + what);
        }
    }

    [Test]
    public void TruncationPaddingAndUnknownKeysFollowTheDocumentedRules()
    {
        int n = Model.ItemCount;
        var longHistory = Enumerable.Range(1, 3 * MaxLength).Select(i => (uint)(i % n + 1)).ToArray();
        // Longer than L: only the most recent L items count.
        Assert.That(TorchScore(Model, longHistory, 3), Is.EqualTo(TorchScore(Model, longHistory[^MaxLength..], 3)).Within(1e-5f));
        // Unknown keys keep their slot but are masked like padding.
        Assert.That(TorchScore(Model, new uint[] { 0, 4, (uint)n + 9, 7 }, 3), Is.EqualTo(TorchScore(Model, new uint[] { 0, 4, 0, 7 }, 3)).Within(1e-5f));
        // Empty history: finite, and the same whatever the (empty) user.
        var emptyA = Model.Recommend(Array.Empty<uint>(), TopK);
        var emptyB = Model.Recommend(new uint[] { 0, (uint)n + 1 }, TopK);
        Assert.That(emptyA.Count, Is.EqualTo(TopK));
        Assert.That(emptyA.Select(r => r.ItemKey), Is.EqualTo(emptyB.Select(r => r.ItemKey)));
        Assert.That(emptyA.All(r => float.IsFinite(r.Score)), Is.True);
        // k larger than the catalogue through Recommend: every eligible item, once.
        var all = Model.Recommend(new uint[] { 1, 2 }, n + 50);
        Assert.That(all.Count, Is.EqualTo(n - 2));
        Assert.That(all.Select(r => r.ItemKey).Distinct().Count(), Is.EqualTo(n - 2));
    }

    [Test]
    public void SavedModelLoadsInAFreshContextAndServesOneLiveHistoryInPredictionEngine()
    {
        string path = Path.Combine(Path.GetTempPath(), $"sequential-{Guid.NewGuid():N}.zip");
        try
        {
            var def = InputDefinition(Model.ItemCount);
            var schema = D.Context.Data.LoadFromEnumerable(new List<HistoryRow>(), def).Schema;
            D.Context.Model.Save(Model, schema, path);
            var fresh = new MLContext(5);
            DeepRecServing.RegisterForLoading(fresh);
            var loaded = fresh.Model.Load(path, out _);
            Assert.That(loaded, Is.Not.InstanceOf<SequentialTransformer>(), "the saved model is ML.NET's own chain");
            using var engine = fresh.Model.CreatePredictionEngine<HistoryRow, Prediction>(loaded, inputSchemaDefinition: def);
            foreach (var row in EdgeRows(Model.ItemCount))
            {
                var p = engine.Predict(row);
                string what = $"history [{string.Join(",", row.History)}], item {row.ItemKey}";
                Assert.That(p.Score, Is.EqualTo(TorchScore(Model, row.History, row.ItemKey)).Within(1e-4f), what);
                Assert.That(p.TopKItems, Is.EqualTo(Model.Recommend(row.History, TopK).Select(r => r.ItemKey).ToArray()), what);
            }
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void GroupSequencesOrdersByTimestampAndFeedsTheModel()
    {
        var ml = D.Context;
        var histories = ml.DeepRec().Data.GroupSequences(new[] { D.Train, D.Validation }, "UserKey", "ItemKey", "Timestamp", "History");
        Assert.That(histories.Schema["History"].Type, Is.InstanceOf<VectorDataViewType>());
        Assert.That(((VectorDataViewType)histories.Schema["History"].Type).ItemType, Is.InstanceOf<KeyDataViewType>());
        // Events were generated along the planted successor chain and the rows shuffled: in time order, consecutive
        // items mostly follow the chain.
        var itemIds = D.Keys.GetOutputSchema(D.All.Schema)["ItemKey"];
        VBuffer<ReadOnlyMemory<char>> names = default;
        itemIds.GetKeyValues(ref names);
        var ids = names.DenseValues().Select(v => int.Parse(v.ToString()[1..])).ToArray();
        int follows = 0, pairs = 0, rows = 0;
        using (var cursor = histories.GetRowCursor(histories.Schema))
        {
            var getter = cursor.GetGetter<VBuffer<uint>>(histories.Schema["History"]);
            VBuffer<uint> h = default;
            while (cursor.MoveNext())
            {
                rows++;
                getter(ref h);
                var items = h.DenseValues().ToArray();
                for (int k = 1; k < items.Length; k++, pairs++)
                    if (ids[items[k] - 1] == SequenceTestData.Next(ids[items[k - 1] - 1])) follows++;
            }
        }
        Assert.That(rows, Is.EqualTo(SequenceTestData.Users));
        Assert.That(follows / (double)pairs, Is.GreaterThan(0.85), "time order restored from the timestamps");

        // The grouped view is a valid scoring input (candidate item: key 0, i.e. only the top-K columns matter).
        var withCandidate = ml.Transforms.CustomMapping<NoItem, WithItem>((_, o) => o.ItemKey = 1, null).Fit(histories).Transform(histories);
        var scored = Model.Transform(SequenceTestData.AsItemKeys(ml, withCandidate, Model.ItemCount, "ItemKey"));
        var first = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).First();
        Assert.That(first.TopKItems.Length, Is.EqualTo(TopK));
        Assert.That(scored.Schema.GetColumnOrNull(SequentialTransformer.TopKItemsColumnName), Is.Not.Null);
    }

    public sealed class NoItem { }
    public sealed class WithItem { public uint ItemKey { get; set; } }

    [Test]
    public void BadInputGivesClearErrors()
    {
        var trainers = D.Context.DeepRec().Trainers;
        IEstimator<SequentialTransformer> With(Action<SequentialTrainerOptions> change) =>
            model.Create(trainers, o => { SequentialTestModels.Common(o, SequentialLoss.BinaryCrossEntropy, 1); change(o); });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => With(o => o.TopK = D.ItemCount + 1).Fit(D.Train));
        Assert.That(e!.Message, Does.Contain("TopK").And.Contain(D.ItemCount.ToString()));
        Assert.That(Assert.Throws<ArgumentException>(() => With(o => o.ItemIdColumnName = "NoSuchColumn").Fit(D.Train))!.Message, Does.Contain("NoSuchColumn"));
        // Text, not a key.
        Assert.That(Assert.Throws<ArgumentException>(() => With(o => o.ItemIdColumnName = "ItemId").Fit(D.Train))!.Message, Does.Contain("MapValueToKey"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => With(o => o.MaxLength = 1025))!.ParamName, Is.EqualTo("MaxLength"));
        Assert.That(Assert.Throws<ArgumentException>(() => With(o => o.HistoryColumnName = o.ItemIdColumnName))!.ParamName, Is.EqualTo("ItemIdColumnName"));
        // A log in which no user has two events has nothing to learn from.
        var single = D.Context.Data.TakeRows(D.Context.Data.FilterRowsByColumn(D.Train, "Timestamp", upperBound: 1), 40);
        Assert.That(Assert.Throws<InvalidOperationException>(() => With(_ => { }).Fit(single))!.Message, Does.Contain("No user has two or more training events"));

        Assert.Throws<ArgumentOutOfRangeException>(() => Model.Recommend(new uint[] { 1 }, 0));

        // The scoring schema is checked by the estimator.
        Assert.That(Assert.Throws<ArgumentException>(() => With(_ => { }).GetOutputSchema(new SchemaShape(Enumerable.Empty<SchemaShape.Column>())))!.Message, Does.Contain("History"));
    }
}

/// <summary>Every model's ONNX graph run by ONNX Runtime directly (no ML.NET) against the TorchSharp network.</summary>
[TestFixtureSource(typeof(SequentialTestModels), nameof(SequentialTestModels.Fixtures))]
public class SequentialOnnxRuntimeTests(SequentialTestModels.Model model)
{
    /// <summary>Straight ONNX Runtime (no ML.NET): a batch of rows whose histories have T columns, T = 0 included.</summary>
    private static float[] OrtScores(byte[] model, uint[] history, int rows, int t, uint[] items)
    {
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model);
        using var h = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(history, new long[] { rows, t });
        using var i = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(items, new long[] { rows, 1 });
        using var run = new Microsoft.ML.OnnxRuntime.RunOptions();
        using var results = session.Run(run, new[] { "history", "item_key" }, new[] { h, i }, new[] { "Score" });
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    [Test]
    public void OnnxGraphPadsAndTruncatesBatchedHistoriesOfAnyWidth()
    {
        var trained = SequentialServingTests.Trained(model);
        int l = trained.MaxLength;
        foreach (int t in new[] { 0, 1, l - 1, l, l + 5 })
        {
            var rng = new Random(t);
            int rows = 3;
            var history = Enumerable.Range(0, rows * t).Select(_ => (uint)rng.Next(0, trained.ItemCount + 1)).ToArray();
            int w = SequentialHistoryWindowMapping.Width;
            var window = new uint[rows * w];
            for (int r = 0; r < rows; r++) history.AsSpan(r * t, t).CopyTo(window.AsSpan(r * w + w - t, t));
            var items = new uint[] { 1, 2, (uint)trained.ItemCount };
            var scores = OrtScores(trained.OnnxModel, window, rows, w, items);
            for (int r = 0; r < rows; r++)
            {
                float expected = SequentialServingTests.TorchScore(trained, history.AsSpan(r * t, t).ToArray(), items[r]);
                Assert.That(scores[r], Is.EqualTo(expected).Within(1e-5f * Math.Max(1f, Math.Abs(expected))), $"T = {t}, row {r}");
            }
        }
    }
}
