using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Tests.Examples;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Models;

/// <summary>
/// Key types may declare far more keys than occur in training: the network gets rows only for occurring keys, and the
/// declared-but-unseen ones score exactly as the unknown key 0, in TorchSharp and in ONNX.
/// </summary>
public class DeclaredKeyTests
{
    private sealed class Row
    {
        [KeyType(1000)] public uint UserId { get; set; }
        [KeyType(5000)] public uint ItemId { get; set; }
    }

    private sealed class Scored
    {
        public uint UserId { get; set; }
        public uint ItemId { get; set; }
        public float Score { get; set; }
    }

    // Users 101..160 and items 2001..2100 occur (every 7th item skipped); everything else is declared only.
    private static Row[] Interactions()
    {
        var random = new Random(3);
        var rows = new List<Row>();
        for (uint u = 101; u <= 160; u++)
            for (int n = 0; n < 15; n++)
            {
                uint item = (uint)random.Next(2001, 2101);
                if (item % 7 != 0) rows.Add(new Row { UserId = u, ItemId = item });
            }
        return rows.ToArray();
    }

    [TestCase("MF")]
    [TestCase("NeuMF")]
    public void UnseenDeclaredKeysScoreAsTheUnknownRowInTorchSharpAndOnnx(string kind)
    {
        var ml = new MLContext(0);
        var train = ml.Data.LoadFromEnumerable(Interactions());
        using CollaborativeFilteringTransformer model = kind == "MF"
            ? ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { NumberOfEpochs = 3, Seed = 1 }).Fit(train)
            : ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options { NumberOfEpochs = 3, Seed = 1 }).Fit(train);
        Assert.That(model.UserCount, Is.EqualTo(1000));
        Assert.That(model.ItemCount, Is.EqualTo(5000));
        Assert.That(model.TrainedUserCount, Is.EqualTo(60));
        int occurringItems = Interactions().Select(r => r.ItemId).Distinct().Count();
        Assert.That(model.TrainedItemCount, Is.EqualTo(occurringItems));

        // (user, item) pairs: known × known, known × declared-unseen (2002 % 7 = 0, 4000), unseen × known, unknown key 0.
        var pairs = new (uint User, uint Item)[] { (101, 2001), (101, 2002), (101, 4000), (101, 0), (999, 2001), (0, 2001), (999, 4000), (0, 0) };
        var view = ml.Data.LoadFromEnumerable(pairs.Select(p => new Row { UserId = p.User, ItemId = p.Item }));
        var onnx = ml.Data.CreateEnumerable<Scored>(model.Transform(view), reuseRowObject: false).Select(s => s.Score).ToArray();
        // ML.NET stores a [KeyType] property value v as key v + 1 (0 stays "missing"): score the keys the view holds.
        var userKeys = view.GetColumn<uint>(nameof(Row.UserId)).Select(k => (int)k).ToArray();
        var itemKeys = view.GetColumn<uint>(nameof(Row.ItemId)).Select(k => (int)k).ToArray();
        var torch = model.ScoreCandidates(userKeys, itemKeys, 1);

        Assert.That(onnx, Is.EqualTo(torch).Within(1e-5), "ONNX and TorchSharp agree");
        Assert.That(torch[1], Is.EqualTo(torch[3]).Within(1e-6), "a declared item that never occurred scores as item key 0");
        Assert.That(torch[2], Is.EqualTo(torch[3]).Within(1e-6));
        Assert.That(torch[4], Is.EqualTo(torch[5]).Within(1e-6), "a declared user that never occurred scores as user key 0");
        Assert.That(torch[6], Is.EqualTo(torch[7]).Within(1e-6));
        Assert.That(torch[0], Is.Not.EqualTo(torch[3]), "known pairs have their own score");

        // Full-catalogue scoring speaks declared keys: column j is item key j + 1.
        var all = model.ScoreAllItems(new[] { userKeys[0] });
        Assert.That(all, Has.Length.EqualTo(5000));
        Assert.That(all[itemKeys[0] - 1], Is.EqualTo(torch[0]).Within(1e-5));
        Assert.That(all[itemKeys[2] - 1], Is.EqualTo(torch[3]).Within(1e-5));

        // Recommendations rank trained items only and return declared keys.
        var top = model.Recommend((uint)userKeys[0], 5, excludeSeen: false);
        Assert.That(top, Has.Count.EqualTo(5));
        Assert.That(top.All(r => r.ItemKey - 1 >= 2001 && r.ItemKey - 1 <= 2100 && (r.ItemKey - 1) % 7 != 0), Is.True, string.Join(",", top.Select(r => r.ItemKey)));
        Assert.That(top[0].Score, Is.EqualTo(all.Max()).Within(1e-5).Or.LessThan(all.Max()));
    }

    [Test]
    public void CheckpointsKeepTheKeyMap()
    {
        var ml = new MLContext(0);
        var train = ml.Data.LoadFromEnumerable(Interactions());
        using var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { NumberOfEpochs = 2, Seed = 1 }).Fit(train);
        string path = Path.Combine(Path.GetTempPath(), $"deeprec-keys-{Guid.NewGuid():N}.zip");
        try
        {
            model.SaveCheckpoint(path);
            using var loaded = CollaborativeFilteringTransformer.LoadCheckpoint(ml, path);
            Assert.That(loaded.ItemCount, Is.EqualTo(5000));
            Assert.That(loaded.TrainedItemCount, Is.EqualTo(model.TrainedItemCount));
            int[] users = { 102, 102, 151, 999 }, items = { 2002, 4001, 2051, 2004 };
            Assert.That(loaded.ScoreCandidates(users, items, 1), Is.EqualTo(model.ScoreCandidates(users, items, 1)).Within(1e-6));

            // Continued training on new interactions keeps the rows of users absent from them.
            using var continued = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
            {
                NumberOfEpochs = 1, Seed = 1, InitialModel = loaded,
            }).Fit(ml.Data.LoadFromEnumerable(new[] { new Row { UserId = 500, ItemId = 4000 }, new Row { UserId = 101, ItemId = 2001 } }));
            Assert.That(continued.TrainedUserCount, Is.EqualTo(61));
            Assert.That(continued.TrainedItemCount, Is.EqualTo(model.TrainedItemCount + 1));
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void FitWithFiveMillionDeclaredKeysAndTwoHundredRowsStaysSmall()
    {
        // A child process, so that the peak resident memory is this fit's alone (plus the libraries, measured apart).
        string dll = ExampleProcess.ProjectDll(Path.Combine("test", "MLNet.DeepRec.Probes"), "MLNet.DeepRec.Probes");
        string model = Path.Combine(Path.GetTempPath(), $"deeprec-probe-{Guid.NewGuid():N}.zip");
        try
        {
            var baseline = Parse(ExampleProcess.Run(dll, new[] { "baseline" }, TimeSpan.FromMinutes(2)));
            var run = Parse(ExampleProcess.Run(dll, new[] { "declared-keys", "200", model }, TimeSpan.FromMinutes(3)));
            TestContext.Out.WriteLine($"baseline {baseline["peak_mb"]} MB, fit {run["peak_mb"]} MB, model {run["model_bytes"]} bytes");
            Assert.That(run["peak_mb"], Is.LessThan(300), "peak resident memory of the whole process (MB); before row compaction it was 11,700");
            Assert.That(run["trained_items"], Is.LessThanOrEqualTo(200));
            Assert.That(run["model_bytes"], Is.LessThan(1_000_000), "the saved model holds rows for occurring keys only (it was 593 MB)");
        }
        finally { File.Delete(model); }
    }

    private static Dictionary<string, double> Parse((int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed) result)
    {
        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr + result.Stdout);
        return result.Stdout.Trim().Split('\n')[^1].Split(' ')
            .Select(kv => kv.Split('='))
            .ToDictionary(kv => kv[0], kv => double.Parse(kv[1], CultureInfo.InvariantCulture));
    }
}

/// <summary><c>Recommend</c> over a wide catalogue (the two-stage top-k over item slices) equals a brute-force ranking.</summary>
public class WideCatalogueRecommendTests
{
    private sealed class Row
    {
        [KeyType(20_000)] public uint UserId { get; set; }
        [KeyType(20_000)] public uint ItemId { get; set; }
    }

    [Test]
    public void RecommendEqualsBruteForceTopKOverTwentyThousandItems()
    {
        var ml = new MLContext(0);
        var random = new Random(5);
        // 20,000 items, each seen at least once (so every declared item has a row), 300 users.
        var rows = Enumerable.Range(0, 20_000).Select(i => new Row { UserId = (uint)random.Next(0, 300), ItemId = (uint)i })
            .Concat(Enumerable.Range(0, 3_000).Select(_ => new Row { UserId = (uint)random.Next(0, 300), ItemId = (uint)random.Next(0, 2_000) }))
            .ToArray();
        using var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { NumberOfEpochs = 2, Seed = 1, Factors = 8 })
            .Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.That(model.TrainedItemCount, Is.EqualTo(20_000));
        uint[] users = { 1, 2, 17, 150, 299 };
        foreach (bool excludeSeen in new[] { false, true })
        {
            var lists = model.Recommend(users, 10, excludeSeen);
            for (int n = 0; n < users.Length; n++)
            {
                var all = model.ScoreAllItems(new[] { (int)users[n] });
                var seen = excludeSeen ? model.Seen.ItemsOf(model.UserKeys.ToRow((int)users[n])).ToArray().Select(r => model.ItemKeys.ToKey(r)).ToHashSet() : new HashSet<int>();
                var expected = Enumerable.Range(1, all.Length).Where(key => !seen.Contains(key)).OrderByDescending(key => all[key - 1]).Take(10).ToArray();
                Assert.That(lists[n].Select(r => r.Score), Is.EqualTo(expected.Select(key => all[key - 1])).Within(1e-5), $"user {users[n]}, excludeSeen {excludeSeen}");
                Assert.That(lists[n].Select(r => (int)r.ItemKey), Is.EquivalentTo(expected), $"user {users[n]}, excludeSeen {excludeSeen}");
            }
        }
    }
}
