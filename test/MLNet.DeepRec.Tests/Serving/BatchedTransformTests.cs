using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Tests.FeatureInteraction;
using MLNet.DeepRec.Tests.Sequential;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>
/// <c>Transform</c> over a data view scores in batches (in-memory transformers and models loaded with
/// <see cref="DeepRecServing.LoadModel(MLContext, string)"/>); its output must equal ML.NET's row-by-row scoring (the
/// inner chain's own <c>Transform</c>, or a plain <c>mlContext.Model.Load</c>) column for column, row for row.
/// </summary>
[TestFixture]
[NonParallelizable]
public class BatchedTransformTests
{
    private readonly TempFolder _dir = new("deeprec-batched");

    [OneTimeTearDown]
    public void TearDown() => _dir.Dispose();

    private static CollaborativeFilteringTransformer TrainCollaborative(string model, TestData.Keyed data) => ServingTestModels.TrainCollaborative(model, data, data.Train, epochs: 1, seed: 4);

    [TestCase("MF")]
    [TestCase("GMF")]
    [TestCase("MLP")]
    [TestCase("NeuMF")]
    public void CollaborativeTransformEqualsRowByRowInMemoryAndLoaded(string name)
    {
        TestData.Keyed data = TestData.SmallSynthetic;
        MLContext ml = data.Context;
        using CollaborativeFilteringTransformer model = TrainCollaborative(name, data);
        // More rows than one batch (4,096), so that batches follow each other and the last is partial.
        IDataView keyed = data.Train;
        Assert.That(keyed.GetRowCount() ?? keyed.GetColumn<uint>("UserKey").LongCount(), Is.GreaterThan(BatchedOnnxScorer.MaxBatchRows));
        AssertSameOutput(model.Transform(keyed), model.InnerChain.Transform(keyed), $"{name} in memory");

        // Raw ids in, through the saved chain (MapValueToKey steps + model), with unknown users and items.
        var chain = new TransformerChain<ITransformer>(data.Keys, model);
        string zip = _dir.File(name + ".zip");
        DeepRecServing.SaveModel(ml, chain, data.All.Schema, zip);
        var serving = new MLContext(1);
        using var loaded = (IDisposable)DeepRecServing.LoadModel(serving, zip, out DataViewSchema schema);
        var plain = new MLContext(1);
        DeepRecServing.RegisterForLoading(plain);
        ITransformer rowByRow = plain.Model.Load(zip, out _);
        IDataView raw = WithStrangers(ml, data.All);
        AssertSameOutput(((ITransformer)loaded).Transform(raw), rowByRow.Transform(raw), $"{name} loaded");
        (rowByRow as IDisposable)?.Dispose();
    }

    [Test]
    public void OnlySomeColumnsActiveAndTheScoreAlone()
    {
        TestData.Keyed data = TestData.SmallSynthetic;
        using CollaborativeFilteringTransformer model = TrainCollaborative("NeuMF", data);
        IDataView batched = model.Transform(data.Train), rowByRow = model.InnerChain.Transform(data.Train);
        Assert.That(batched.GetColumn<float>("Score").ToArray(), Is.EqualTo(rowByRow.GetColumn<float>("Score").ToArray()));
        Assert.That(batched.GetColumn<float>("Probability").ToArray(), Is.EqualTo(rowByRow.GetColumn<float>("Probability").ToArray()));
        Assert.That(batched.GetColumn<uint>("ItemKey").ToArray(), Is.EqualTo(rowByRow.GetColumn<uint>("ItemKey").ToArray()));
        Assert.That(batched.GetRowCount(), Is.EqualTo(data.Train.GetRowCount()));

        // Two columns, one passed through and one scored, read together; and a cursor set (one cursor is allowed).
        var columns = new[] { batched.Schema["UserKey"], batched.Schema["Score"] };
        DataViewRowCursor[] set = batched.GetRowCursorSet(columns, 4);
        Assert.That(set, Has.Length.GreaterThanOrEqualTo(1));
        foreach (var c in set) c.Dispose();
        using var cursor = batched.GetRowCursor(columns);
        Assert.That(cursor.IsColumnActive(batched.Schema["Probability"]), Is.False);
        var users = cursor.GetGetter<uint>(batched.Schema["UserKey"]);
        var scores = cursor.GetGetter<float>(batched.Schema["Score"]);
        var expectedUsers = data.Train.GetColumn<uint>("UserKey").ToArray();
        var expectedScores = rowByRow.GetColumn<float>("Score").ToArray();
        int n = 0;
        uint user = 0; float score = 0;
        while (cursor.MoveNext())
        {
            users(ref user); scores(ref score);
            Assert.That(user, Is.EqualTo(expectedUsers[n]));
            Assert.That(score, Is.EqualTo(expectedScores[n]), $"row {n}");
            n++;
        }
        Assert.That(n, Is.EqualTo(expectedScores.Length));
    }

    [Test]
    public void PredictionEngineOnTheLoadedModelMatchesBatchedTransformAndDisposalStopsCursors()
    {
        TestData.Keyed data = TestData.SmallSynthetic;
        MLContext ml = data.Context;
        CollaborativeFilteringTransformer model = TrainCollaborative("NeuMF", data);
        string zip = _dir.File("engine.zip");
        DeepRecServing.SaveModel(ml, new TransformerChain<ITransformer>(data.Keys, model), data.All.Schema, zip);
        var serving = new MLContext(4);
        ITransformer loaded = DeepRecServing.LoadModel(serving, zip);
        var pairs = data.All.GetColumn<string>("UserId").Zip(data.All.GetColumn<string>("ItemId")).Take(300).ToArray();
        IDataView view = serving.Data.LoadFromEnumerable(pairs.Select(p => new PairRow { UserId = p.First, ItemId = p.Second }));
        float[] batched = loaded.Transform(view).GetColumn<float>("Score").ToArray();
        using (var engine = serving.Model.CreatePredictionEngine<PairRow, ScoreRow>(loaded, new PredictionEngineOptions { OwnsTransformer = false }))
            for (int n = 0; n < pairs.Length; n++)
                Assert.That(engine.Predict(new PairRow { UserId = pairs[n].First, ItemId = pairs[n].Second }).Score, Is.EqualTo(batched[n]), $"row {n}");

        // A cursor opened before the model is disposed fails clearly on its next batch.
        using var cursor = model.Transform(data.Train).GetRowCursor(model.Transform(data.Train).Schema.Where(c => c.Name == "Score"));
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cursor.MoveNext());
        Assert.Throws<ObjectDisposedException>(() => model.Transform(data.Train));
        (loaded as IDisposable)?.Dispose();
    }

    public sealed class PairRow
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
    }

    public sealed class ScoreRow
    {
        public float Score { get; set; }
    }

    [Test]
    public void LoadedModelSavesExactlyAsBeforeAndLoadsWithPlainModelLoad()
    {
        TestData.Keyed data = TestData.SmallSynthetic;
        MLContext ml = data.Context;
        using CollaborativeFilteringTransformer model = TrainCollaborative("MF", data);
        string zip = _dir.File("resave-original.zip"), again = _dir.File("resave-again.zip");
        ml.Model.Save(new TransformerChain<ITransformer>(data.Keys, model), data.All.Schema, zip);
        var serving = new MLContext(2);
        ITransformer loaded = DeepRecServing.LoadModel(serving, zip, out DataViewSchema schema);
        Assert.That(loaded, Is.InstanceOf<TransformerChain<ITransformer>>());
        serving.Model.Save(loaded, schema, again);
        Assert.That(Entries(again), Is.EqualTo(Entries(zip)), "same entries, same bytes");
        var plain = new MLContext(3);
        DeepRecServing.RegisterForLoading(plain);
        ITransformer reloaded = plain.Model.Load(again, out _);
        Assert.That(reloaded.Transform(data.All).GetColumn<float>("Score").ToArray(),
            Is.EqualTo(loaded.Transform(data.All).GetColumn<float>("Score").ToArray()));
        (loaded as IDisposable)?.Dispose();
        (reloaded as IDisposable)?.Dispose();
    }

    [TestCase("NFM", FeatureInteractionTask.BinaryClassification)]
    [TestCase("AFM", FeatureInteractionTask.Regression)]
    public void FeatureInteractionTransformEqualsRowByRow(string name, FeatureInteractionTask task)
    {
        PlantedData.Set d = PlantedData.Default;
        string[] columns = ["AKey", "BVec", "CKey", "X"];
        string label = task == FeatureInteractionTask.Regression ? "Label" : "IsPositive";
        using FeatureInteractionTransformer model = name == "NFM"
            ? d.Context.DeepRec().Trainers.Nfm(new NfmTrainer.Options { FeatureColumnNames = columns, LabelColumnName = label, Task = task, Factors = 4, HiddenLayers = [8], NumberOfEpochs = 1, Seed = 1 }).Fit(d.Train)
            : d.Context.DeepRec().Trainers.Afm(new AfmTrainer.Options { FeatureColumnNames = columns, LabelColumnName = label, Task = task, Factors = 4, AttentionSize = 4, NumberOfEpochs = 1, Seed = 1 }).Fit(d.Train);
        AssertSameOutput(model.Transform(d.Train), model.InnerChain.Transform(d.Train), name);
        AssertSameOutput(model.Transform(d.Test), model.InnerChain.Transform(d.Test), name + " test");
    }

    [Test]
    public void SasRecTransformEqualsRowByRowInMemoryAndLoaded()
    {
        using SasRecTransformer model = ServingTestModels.TrainSasRec();
        MLContext ml = SequenceTestData.Data.Context;
        var rng = new Random(3);
        var rows = Enumerable.Range(0, 700).Select(n => new SequentialServingTests.HistoryRow
        {
            History = Enumerable.Range(0, rng.Next(0, 20)).Select(_ => (uint)rng.Next(0, model.ItemCount + 3)).ToArray(),
            ItemKey = (uint)rng.Next(0, model.ItemCount + 3),
        }).ToList();
        IDataView rawKeys = ml.Data.LoadFromEnumerable(rows);
        IDataView view = SequenceTestData.AsItemKeys(ml, rawKeys, model.ItemCount);
        AssertSameOutput(model.Transform(view), model.InnerChain.Transform(view), "SASRec in memory");

        string zip = _dir.File("sasrec.zip");
        DeepRecServing.SaveModel(ml, model, rawKeys.Schema, zip);
        var serving = new MLContext(1);
        ITransformer loaded = DeepRecServing.LoadModel(serving, zip);
        var plain = new MLContext(1);
        DeepRecServing.RegisterForLoading(plain);
        ITransformer rowByRow = plain.Model.Load(zip, out _);
        AssertSameOutput(loaded.Transform(rawKeys), rowByRow.Transform(rawKeys), "SASRec loaded");
        (loaded as IDisposable)?.Dispose();
        (rowByRow as IDisposable)?.Dispose();
    }

    /// <summary>The data plus rows with an unknown user, an unknown item and both.</summary>
    private static IDataView WithStrangers(MLContext ml, IDataView all)
    {
        var users = all.GetColumn<string>("UserId").ToList();
        var items = all.GetColumn<string>("ItemId").ToList();
        users.AddRange(["stranger", users[0], "stranger"]);
        items.AddRange([items[0], "no-such-item", "no-such-item"]);
        return new ColumnarDataView([("UserId", users.Select(u => u.AsMemory()).ToArray()), ("ItemId", items.Select(i => i.AsMemory()).ToArray())]);
    }

    private static SortedDictionary<string, string> Entries(string zip)
    {
        using var archive = ZipFile.OpenRead(zip);
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in archive.Entries)
        {
            using var s = e.Open();
            using var m = new MemoryStream();
            s.CopyTo(m);
            result[e.FullName] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(m.ToArray()));
        }
        return result;
    }

    /// <summary>Same schema (names, types, hidden flags, order), same row count, same value in every column of every row.</summary>
    internal static void AssertSameOutput(IDataView batched, IDataView rowByRow, string what)
    {
        long batchesBefore = BatchedOnnxScorer.t_batchesOnThisThread;
        Assert.That(batched.Schema.Count, Is.EqualTo(rowByRow.Schema.Count), what + ": column count");
        for (int c = 0; c < rowByRow.Schema.Count; c++)
        {
            var expected = rowByRow.Schema[c];
            var actual = batched.Schema[c];
            Assert.That((actual.Name, actual.IsHidden, actual.Type.ToString()), Is.EqualTo((expected.Name, expected.IsHidden, expected.Type.ToString())), $"{what}: column {c}");
            Assert.That(actual.Type, Is.EqualTo(expected.Type), $"{what}: column {c} ({expected.Name}) type");
        }
        List<object[]> a = ReadAll(batched);
        Assert.That(BatchedOnnxScorer.t_batchesOnThisThread, Is.GreaterThan(batchesBefore), what + $": scored in batches (not the row-by-row fallback, check {BatchedOnnxScorer.t_lastFallback})");
        List<object[]> e = ReadAll(rowByRow);
        Assert.That(a.Count, Is.EqualTo(e.Count), what + ": row count");
        Assert.That(a.Count, Is.GreaterThan(0));
        for (int r = 0; r < e.Count; r++)
            for (int c = 0; c < e[r].Length; c++)
            {
                string where = $"{what}: row {r}, column {rowByRow.Schema[c].Name}";
                // Floats: ONNX Runtime's kernels may round the last bit differently for a batch than for one row (seen
                // with AFM's attention softmax: 1 ulp); the documented tolerance is 1e-6 relative. Everything else exact.
                if (e[r][c] is float ef)
                    Assert.That((float)a[r][c], Is.EqualTo(ef).Within(FloatTolerance(ef)), where);
                else if (e[r][c] is float[] ev)
                {
                    var av = (float[])a[r][c];
                    Assert.That(av.Length, Is.EqualTo(ev.Length), where);
                    for (int k = 0; k < ev.Length; k++)
                        Assert.That(av[k], Is.EqualTo(ev[k]).Within(FloatTolerance(ev[k])), $"{where}[{k}]");
                }
                else
                    Assert.That(a[r][c], Is.EqualTo(e[r][c]), where);
            }
    }

    private static double FloatTolerance(float expected) => float.IsFinite(expected) ? 1e-6 * Math.Max(1, Math.Abs(expected)) : 0;

    private static List<object[]> ReadAll(IDataView view)
    {
        var rows = new List<object[]>();
        using var cursor = view.GetRowCursor(view.Schema);
        var readers = view.Schema.Select(c => Reader(cursor, c)).ToArray();
        while (cursor.MoveNext())
            rows.Add(readers.Select(r => r()).ToArray());
        return rows;
    }

    private static Func<object> Reader(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        Type raw = column.Type.RawType;
        if (raw == typeof(float)) return Scalar<float>(cursor, column);
        if (raw == typeof(double)) return Scalar<double>(cursor, column);
        if (raw == typeof(uint)) return Scalar<uint>(cursor, column);
        if (raw == typeof(bool)) return Scalar<bool>(cursor, column);
        if (raw == typeof(long)) return Scalar<long>(cursor, column);
        if (raw == typeof(ReadOnlyMemory<char>)) { var g = cursor.GetGetter<ReadOnlyMemory<char>>(column); return () => { ReadOnlyMemory<char> v = default; g(ref v); return v.ToString(); }; }
        if (raw == typeof(VBuffer<float>)) return Vector<float>(cursor, column);
        if (raw == typeof(VBuffer<uint>)) return Vector<uint>(cursor, column);
        if (raw == typeof(VBuffer<ReadOnlyMemory<char>>)) { var g = cursor.GetGetter<VBuffer<ReadOnlyMemory<char>>>(column); return () => { VBuffer<ReadOnlyMemory<char>> v = default; g(ref v); return v.DenseValues().Select(x => x.ToString()).ToArray(); }; }
        throw new NotSupportedException($"column {column.Name}: {column.Type}");
    }

    private static Func<object> Scalar<T>(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var g = cursor.GetGetter<T>(column);
        return () => { T v = default!; g(ref v); return v!; };
    }

    private static Func<object> Vector<T>(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var g = cursor.GetGetter<VBuffer<T>>(column);
        return () => { VBuffer<T> v = default; g(ref v); return v.DenseValues().ToArray(); };
    }
}
