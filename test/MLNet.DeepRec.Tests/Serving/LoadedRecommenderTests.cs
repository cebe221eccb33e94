using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Tests.Sequential;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>
/// Top-K from a zip written by <see cref="DeepRecServing.SaveModel"/> (<see cref="DeepRecServing.LoadRecommender"/>, ONNX
/// Runtime only) equals the in-memory transformer's <c>Recommend</c>: same items in the same order, scores within 1e-5;
/// with declared-but-unseen users and items (key compaction) and unknown users.
/// </summary>
[TestFixture]
[NonParallelizable]
public class LoadedRecommenderTests
{
    private readonly TempFolder _dir = new("deeprec-recommender");

    [OneTimeTearDown]
    public void TearDown() => _dir.Dispose();

    private static CollaborativeFilteringTransformer Train(string model, TestData.Keyed data, IDataView train) => ServingTestModels.TrainCollaborative(model, data, train, epochs: 2, seed: 5);

    /// <summary>
    /// Same items in the same order, scores within 1e-5. Items whose scores tie (within 1e-5, e.g. behind dead ReLUs or
    /// with near-untrained embeddings) have no defined order: TorchSharp's topk breaks ties arbitrarily, the loaded
    /// recommender by item. A run of tied scores is compared as a set, and a tied run that reaches the end of the list as
    /// a run of equal scores (which of the tied items made the cut is arbitrary too).
    /// </summary>
    /// <param name="actual">The loaded recommender's top k.</param>
    /// <param name="longer">The in-memory top k + 1 (the extra item tells whether the k-th ties with the next).</param>
    /// <param name="k">The k asked for.</param>
    /// <param name="what">For the messages.</param>
    private static void AssertSame(IReadOnlyList<Recommendation> actual, IReadOnlyList<Recommendation> longer, int k, string what)
    {
        var expected = longer.Take(k).ToList();
        Assert.That(actual, Has.Count.EqualTo(expected.Count), what + ": count");
        for (int n = 0; n < expected.Count; n++)
            Assert.That(actual[n].Score, Is.EqualTo(expected[n].Score).Within(1e-5), $"{what}: score {n}");
        for (int start = 0; start < expected.Count;)
        {
            int end = start + 1;
            while (end < longer.Count && longer[end - 1].Score - longer[end].Score <= 1e-5f) end++;
            if (end > expected.Count) break; // tied across the cut: which tied items made it is arbitrary (scores compared above)
            var a = actual.Skip(start).Take(end - start).Select(r => (r.ItemKey, r.ItemId)).ToList();
            var e = expected.Skip(start).Take(end - start).Select(r => (r.ItemKey, r.ItemId)).ToList();
            if (end - start == 1) Assert.That(a, Is.EqualTo(e), $"{what}: item {start}");
            else Assert.That(a, Is.EquivalentTo(e), $"{what}: tied items {start}..{end - 1}");
            start = end;
        }
    }

    [TestCase("MF")]
    [TestCase("GMF")]
    [TestCase("MLP")]
    [TestCase("NeuMF")]
    public void CollaborativeTopKFromTheZipEqualsInMemoryRecommend(string name)
    {
        TestData.Keyed data = TestData.SmallSynthetic;
        MLContext ml = data.Context;
        // Users and items of the top keys never occur in training: declared but unseen (key compaction), average user/item.
        IDataView train = ml.Data.FilterRowsByKeyColumnFraction(ml.Data.FilterRowsByKeyColumnFraction(data.Train, "UserKey", 0, 0.9), "ItemKey", 0, 0.93);
        using CollaborativeFilteringTransformer model = Train(name, data, train);
        Assert.That(model.TrainedUserCount, Is.LessThan(model.UserCount));
        Assert.That(model.TrainedItemCount, Is.LessThan(model.ItemCount));
        string zip = _dir.File(name + ".zip");
        DeepRecServing.SaveModel(ml, new TransformerChain<ITransformer>(data.Keys, model), data.All.Schema, zip);

        using DeepRecRecommender recommender = DeepRecServing.LoadRecommender(new MLContext(1), zip);
        Assert.That(recommender.ModelKind, Is.EqualTo(name));
        Assert.That(recommender.IsSequential, Is.False);
        var ids = Enumerable.Range(1, model.UserCount).Select(k => model.Vocabulary.UserId((uint)k)!).Append("stranger").ToArray();
        var batched = recommender.Recommend(ids, 10);
        Assert.That(batched, Has.Count.EqualTo(ids.Length));
        for (int n = 0; n < ids.Length; n++)
            AssertSame(batched[n], model.Recommend(ids[n], 11), 10, $"{name}, user {ids[n]}");

        // Seen items kept, a candidate list (with an unknown id and an item that never occurred), a long k.
        string[] candidates = [.. Enumerable.Range(1, 40).Select(k => model.Vocabulary.ItemId((uint)k)!), "no-such-item", model.Vocabulary.ItemId((uint)model.ItemCount)!];
        foreach (string id in new[] { ids[0], ids[5], ids[^2], "stranger" })
        {
            AssertSame(recommender.Recommend(id, 7, excludeSeen: false), model.Recommend(id, 8, excludeSeen: false), 7, $"{name}, {id}, seen kept");
            AssertSame(recommender.Recommend(id, 5, candidateItemIds: candidates), model.Recommend(id, 6, candidateItemIds: candidates), 5, $"{name}, {id}, candidates");
            AssertSame(recommender.Recommend(id, 5000), model.Recommend(id, 5001), 5000, $"{name}, {id}, k beyond the catalogue");
        }
        Assert.Throws<InvalidOperationException>(() => recommender.RecommendFromHistory(["i1"], 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => recommender.Recommend(ids[0], 0));

        // The zip still loads with plain ML.NET, which ignores the recommender entries, and with LoadModel (which checks them).
        var plain = new MLContext(2);
        DeepRecServing.RegisterForLoading(plain);
        ITransformer reloaded = plain.Model.Load(zip, out _);
        float[] scores = reloaded.Transform(data.All).GetColumn<float>("Score").ToArray();
        Assert.That(scores, Is.EqualTo(model.Transform(data.Keys.Transform(data.All)).GetColumn<float>("Score").ToArray()));
        (reloaded as IDisposable)?.Dispose();
        (DeepRecServing.LoadModel(new MLContext(3), zip) as IDisposable)?.Dispose();
    }

    [Test]
    public void SequentialTopKFromTheZipEqualsInMemoryRecommend([ValueSource(typeof(SequentialTestModels), nameof(SequentialTestModels.All))] SequentialTestModels.Model sequential)
    {
        using SequentialTransformer model = ServingTestModels.TrainSequential(sequential);
        MLContext ml = SequenceTestData.Data.Context;
        string zip = _dir.File("sasrec.zip");
        DeepRecServing.SaveModel(ml, model, ml.Data.LoadFromEnumerable(new List<SequentialServingTests.HistoryRow>()).Schema, zip);
        using DeepRecRecommender recommender = DeepRecServing.LoadRecommender(new MLContext(1), zip);
        Assert.That(recommender.IsSequential, Is.True);
        Assert.That(recommender.ModelKind, Is.EqualTo(model.ModelName));
        var rng = new Random(4);
        var histories = new List<string[]> { Array.Empty<string>(), new[] { "no-such-item" } };
        for (int n = 0; n < 60; n++)
            histories.Add(Enumerable.Range(0, rng.Next(1, 3 * model.MaxLength)).Select(_ => rng.Next(8) == 0 ? "unknown" : model.Vocabulary.ItemId((uint)rng.Next(1, model.ItemCount + 1))!).ToArray());
        var batched = recommender.RecommendFromHistories(histories, 10);
        for (int n = 0; n < histories.Count; n++)
        {
            string what = $"history [{string.Join(",", histories[n])}]";
            AssertSame(batched[n], model.Recommend(histories[n], 11), 10, what);
            AssertSame(recommender.RecommendFromHistory(histories[n], 4, excludeHistory: false), model.Recommend(histories[n], 5, excludeHistory: false), 4, what + ", history kept");
        }
        Assert.Throws<InvalidOperationException>(() => recommender.Recommend("u1", 3));
    }

    [Test]
    public void ZipWithoutRecommenderAndMalformedEntriesAreRejected()
    {
        TestData.Keyed data = TestData.SmallSynthetic;
        MLContext ml = data.Context;
        using CollaborativeFilteringTransformer model = Train("MF", data, data.Train);
        var chain = new TransformerChain<ITransformer>(data.Keys, model);
        string plain = _dir.File("plain.zip");
        ml.Model.Save(chain, data.All.Schema, plain);
        var e = Assert.Throws<InvalidDataException>(() => DeepRecServing.LoadRecommender(new MLContext(), plain));
        Assert.That(e!.Message, Does.Contain("holds no recommender"));

        string good = _dir.File("good.zip");
        DeepRecServing.SaveModel(ml, chain, data.All.Schema, good);
        byte[] original;
        using (var zip = ZipFile.OpenRead(good))
        using (var s = zip.GetEntry(RecommenderStore.DataEntry)!.Open())
        using (var m = new MemoryStream()) { s.CopyTo(m); original = m.ToArray(); }

        // A huge user-vocabulary count, a truncated entry, a seen item beyond the catalogue: each named, nothing allocated.
        int vocabularyAt = FindVocabularyCount(original, model.UserCount);
        var huge = (byte[])original.Clone();
        BitConverter.GetBytes(int.MaxValue - 1).CopyTo(huge, vocabularyAt);
        var badSeen = (byte[])original.Clone();
        BitConverter.GetBytes(model.ItemCount + 5).CopyTo(badSeen, badSeen.Length - 4);
        foreach (var (label, bytes) in new[] { ("huge count", huge), ("truncated", original[..(original.Length / 2)]), ("bad seen item", badSeen) })
        {
            string bad = _dir.File($"bad-{label.Replace(' ', '-')}.zip");
            File.Copy(good, bad, overwrite: true);
            using (var zip = ZipFile.Open(bad, ZipArchiveMode.Update))
            {
                zip.GetEntry(RecommenderStore.DataEntry)!.Delete();
                using var s = zip.CreateEntry(RecommenderStore.DataEntry).Open();
                s.Write(bytes);
            }
            var x = Assert.Throws<InvalidDataException>(() => DeepRecServing.LoadRecommender(new MLContext(), bad), label);
            Assert.That(x!.Message, Does.Contain(RecommenderStore.DataEntry), label);
            Assert.Throws<InvalidDataException>(() => DeepRecServing.LoadModel(new MLContext(), bad), label + " (LoadModel checks the entry too)");
        }
    }

    /// <summary>Offset of the user vocabulary's count: after magic, version, "MF", max length and the two key maps (identity here).</summary>
    private static int FindVocabularyCount(byte[] data, int users)
    {
        int at = 4 + 4 + 3 + 4 + 12 + 12;
        Assert.That(BitConverter.ToInt32(data, at), Is.EqualTo(users), "layout of the test's identity-keyed MF entry");
        return at;
    }
}
