using System.IO.Compression;
using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Models;

public class CheckpointTests
{
    private string _dir = "";
    private static TestData.Keyed D => TestData.SmallSynthetic;

    [SetUp] public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "deeprec-ckpt-" + Guid.NewGuid().ToString("N")));
    [TearDown] public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static NeuMFTrainer.Options Options(int epochs = 2) => new()
    { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = epochs, Seed = 4, Factors = 4, MlpLayers = new[] { 16, 8 } };

    [Test]
    public void CheckpointRoundTripKeepsScoresRecommendationsAndOnnxScoring()
    {
        using var model = D.Context.DeepRec().Trainers.NeuMF(Options()).Fit(D.Train);
        string path = Path.Combine(_dir, "neumf.ckpt");
        model.SaveCheckpoint(path);
        using var loaded = CollaborativeFilteringTransformer.LoadCheckpoint(D.Context, path);
        int[] users = { 1, 2, 3, 0 }, items = { 5, 6, 7, 8, 9, 10, 11, 12 };
        Assert.That(loaded.ScoreCandidates(users, items, 2), Is.EqualTo(model.ScoreCandidates(users, items, 2)).Within(1e-6));
        Assert.That(loaded.Recommend(3u, 10).Select(r => r.ItemKey), Is.EqualTo(model.Recommend(3u, 10).Select(r => r.ItemKey)));
        Assert.That(loaded.Vocabulary.ItemId(5), Is.EqualTo(model.Vocabulary.ItemId(5)));
        var a = model.Transform(D.Test).GetColumn<float>("Score").ToArray();
        var b = loaded.Transform(D.Test).GetColumn<float>("Score").ToArray();
        Assert.That(b, Is.EqualTo(a).Within(1e-6));
    }

    [Test]
    public void ResumingWithTheSameVocabularyResumesAdam()
    {
        var messages = new List<string>();
        using var model = D.Context.DeepRec().Trainers.NeuMF(Options(1)).Fit(D.Train);
        string path = Path.Combine(_dir, "resume.ckpt");
        model.SaveCheckpoint(path);
        var ml = new MLContext(1);
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        using var loaded = CollaborativeFilteringTransformer.LoadCheckpoint(ml, path);
        var o = Options(1); o.InitialModel = loaded;
        using var resumed = ml.DeepRec().Trainers.NeuMF(o).Fit(D.Train);
        Assert.That(messages, Has.Some.Contains("Resuming Adam from step"));
        Assert.That(resumed.TrainingReport.Epochs[0].Loss, Is.LessThan(model.TrainingReport.Epochs[0].Loss), "continues from the trained weights");
    }

    private sealed class Row { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; }

    [Test]
    public void FineTuningOnNewInteractionsKeepsOldEmbeddingsAndAddsNewOnes()
    {
        var ml = new MLContext(2);
        var old = new List<Row>();
        var rng = new Random(1);
        for (int u = 0; u < 40; u++) for (int j = 0; j < 8; j++) old.Add(new Row { UserId = $"u{u}", ItemId = $"i{rng.Next(30)}" });
        IDataView Keyed(List<Row> rows, List<Row> vocabulary)
        {
            var keys = ml.Transforms.Conversion.MapValueToKey("UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemId")).Fit(ml.Data.LoadFromEnumerable(vocabulary));
            return keys.Transform(ml.Data.LoadFromEnumerable(rows));
        }
        var gmf = new GmfTrainer.Options { NumberOfEpochs = 2, Factors = 4, Seed = 1 };
        using var first = ml.DeepRec().Trainers.Gmf(gmf).Fit(Keyed(old, old));

        // New interactions, with a new user and a new item; the key mapping is refitted on everything (new rows first,
        // so every id gets a different key) and the model is fine-tuned on the new interactions only.
        var fresh = new List<Row> { new() { UserId = "new-user", ItemId = "i3" }, new() { UserId = "new-user", ItemId = "new-item" }, new() { UserId = "u7", ItemId = "new-item" } };
        fresh.AddRange(old.Take(50));
        fresh.Reverse();
        var tuned = new GmfTrainer.Options { NumberOfEpochs = 1, Factors = 4, Seed = 1, Optimizer = MLNet.DeepRec.Training.DeepRecOptimizer.Sgd, LearningRate = 1e-12, InitialModel = first };
        using var second = ml.DeepRec().Trainers.Gmf(tuned).Fit(Keyed(fresh, fresh.Concat(old).ToList()));

        Assert.That(second.UserCount, Is.EqualTo(41));
        Assert.That(second.ItemCount, Is.EqualTo(first.ItemCount + 1));
        foreach (var (user, item) in new[] { ("u7", "i3"), ("u0", "i12"), ("u39", "i29") })
        {
            uint ou = first.Vocabulary.UserKey(user), oi = first.Vocabulary.ItemKey(item);
            uint nu = second.Vocabulary.UserKey(user), ni = second.Vocabulary.ItemKey(item);
            if (oi == 0 || ni == 0) continue;
            Assert.That(second.ScoreCandidates(new[] { (int)nu }, new[] { (int)ni }, 1)[0],
                Is.EqualTo(first.ScoreCandidates(new[] { (int)ou }, new[] { (int)oi }, 1)[0]).Within(1e-4), $"{user}/{item} keeps its score");
        }
        // Old interactions stay "seen" under the new keys.
        var seenOld = old.Where(r => r.UserId == "u0").Select(r => r.ItemId).ToHashSet();
        var recs = second.Recommend("u0", second.ItemCount);
        Assert.That(recs.Select(r => r.ItemId), Has.None.AnyOf(seenOld.Cast<object>().ToArray()));
        Assert.That(second.Recommend("new-user", 3), Has.Count.EqualTo(3));
    }

    [Test]
    public void IncompatibleInitialModelIsRejected()
    {
        using var gmf = D.Context.DeepRec().Trainers.Gmf(new GmfTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1, Factors = 4 }).Fit(D.Train);
        var o = Options(1); o.InitialModel = gmf;
        var ex = Assert.Throws<ArgumentException>(() => D.Context.DeepRec().Trainers.NeuMF(o).Fit(D.Train));
        Assert.That(ex!.Message, Does.Contain("GMF"));
        var g = new GmfTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1, Factors = 8, InitialModel = gmf };
        Assert.That(Assert.Throws<ArgumentException>(() => D.Context.DeepRec().Trainers.Gmf(g).Fit(D.Train))!.Message, Does.Contain("factors"));
    }

    [Test]
    public void BadCheckpointFilesGiveClearErrorsAndAreNotModified()
    {
        using var model = D.Context.DeepRec().Trainers.NeuMF(Options(1)).Fit(D.Train);
        string good = Path.Combine(_dir, "good.ckpt");
        model.SaveCheckpoint(good);
        byte[] bytes = File.ReadAllBytes(good);

        void ExpectInvalid(string name, byte[] content, string fragment)
        {
            string path = Path.Combine(_dir, name);
            File.WriteAllBytes(path, content);
            var before = SHA256.HashData(File.ReadAllBytes(path));
            var ex = Assert.Throws<InvalidDataException>(() => CollaborativeFilteringTransformer.LoadCheckpoint(D.Context, path), name);
            Assert.That(ex!.Message, Does.Contain(fragment), name);
            Assert.That(SHA256.HashData(File.ReadAllBytes(path)), Is.EqualTo(before), name + " unchanged");
        }
        ExpectInvalid("truncated.ckpt", bytes[..(bytes.Length / 2)], "checkpoint");
        ExpectInvalid("garbage.ckpt", Enumerable.Range(0, 1000).Select(i => (byte)(i * 37)).ToArray(), "not a valid checkpoint");

        // An ML.NET model zip is a zip, but not a checkpoint.
        string mlnetZip = Path.Combine(_dir, "model.zip");
        D.Context.Model.Save(model, D.Train.Schema, mlnetZip);
        ExpectInvalid("mlnet.ckpt", File.ReadAllBytes(mlnetZip), "manifest.json");

        // Another format version, and corrupted weights.
        ExpectInvalid("v3.ckpt", Rewrite(bytes, "manifest.json", s => s.Replace("\"FormatVersion\":2", "\"FormatVersion\":3")), "format version 3");
        ExpectInvalid("kind.ckpt", Rewrite(bytes, "manifest.json", s => s.Replace("\"ModelKind\":\"NeuMF\"", "\"ModelKind\":\"Transformer\"")), "Unknown model kind");
        ExpectInvalid("weights.ckpt", RewriteBytes(bytes, "weights.bin", w => w[..(w.Length - 100)]), "truncated");
    }

    private static byte[] Rewrite(byte[] zip, string entry, Func<string, string> change) =>
        RewriteBytes(zip, entry, b => System.Text.Encoding.UTF8.GetBytes(change(System.Text.Encoding.UTF8.GetString(b))));

    private static byte[] RewriteBytes(byte[] zip, string entry, Func<byte[], byte[]> change)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var e in source.Entries)
            {
                using var r = e.Open();
                using var buffer = new MemoryStream();
                r.CopyTo(buffer);
                var content = e.FullName == entry ? change(buffer.ToArray()) : buffer.ToArray();
                using var w = target.CreateEntry(e.FullName).Open();
                w.Write(content);
            }
        }
        return output.ToArray();
    }
}
