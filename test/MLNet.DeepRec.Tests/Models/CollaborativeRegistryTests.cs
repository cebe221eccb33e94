using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Models;

/// <summary>
/// Tests that run for every collaborative model in the registry (<see cref="CollaborativeModels.All"/>), on a network the
/// registry builds from small hyper-parameters: checkpoint save/load, saving for serving, and bad checkpoints. A model
/// registered there gets them without a test of its own.
/// </summary>
[TestFixture]
public class CollaborativeRegistryTests
{
    private static TestData.Keyed D => TestData.SmallSynthetic;
    private readonly TempFolder _dir = new("deeprec-registry");

    [OneTimeTearDown]
    public void TearDown() => _dir.Dispose();

    /// <summary>The names of the registered kinds (the test cases).</summary>
    public static IEnumerable<string> Kinds => CollaborativeModels.All.Select(k => k.Name);

    /// <summary>Small values for the kind's hyper-parameters: 4 for a single width, {8, 6, 4} for a tower.</summary>
    internal static Dictionary<string, int[]> SmallHyperParameters(CollaborativeModelKind kind) =>
        kind.HyperParameters.ToDictionary(p => p.Name, p => p.MaxLength == 1 ? new[] { 4 } : new[] { 8, 6, 4 });

    /// <summary>
    /// A network of the kind, built by the registry for the training data's keys and wrapped as a trained model would be.
    /// Its weights are drawn wider than a fresh initialisation (N(0, 0.3²)) so that its scores are far apart and a
    /// ranking has no near-ties; the unknown rows are set as after training.
    /// </summary>
    private static CollaborativeFilteringTransformer Model(string kind)
    {
        var entry = CollaborativeModels.Get(kind, "test");
        var train = KeyedInteractions.FromDataView(D.Train, "UserKey", "ItemKey");
        var module = SeededInitialization.Create(3, () =>
        {
            var m = entry.Create(train.UserCount, train.ItemCount, SmallHyperParameters(entry));
            using (no_grad())
                foreach (var p in m.parameters()) nn.init.normal_(p, 0, 0.3);
            return m;
        });
        module.SetUnknownRowsToMean();
        module.eval();
        var vocabulary = new KeyVocabulary(KeyVocabulary.Read(D.Train.Schema["UserKey"]), KeyVocabulary.Read(D.Train.Schema["ItemKey"]));
        return new CollaborativeFilteringTransformer(D.Context, kind, module, CPU, "UserKey", "ItemKey", new UserItemSet(train),
            vocabulary, new TrainingReport([], null, null, 0));
    }

    private static string Text(IReadOnlyDictionary<string, int[]> hp) =>
        string.Join("; ", hp.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} = {string.Join(",", p.Value)}"));

    [TestCaseSource(nameof(Kinds))]
    public void CheckpointRoundTrip_KeepsTheKindScoresRecommendationsAndOnnxScores(string kind)
    {
        using var model = Model(kind);
        string path = _dir.File(kind + ".ckpt");
        model.SaveCheckpoint(path);
        using var loaded = CollaborativeFilteringTransformer.LoadCheckpoint(D.Context, path);

        Assert.That(loaded.ModelName, Is.EqualTo(kind));
        Assert.That(loaded.Module.Kind, Is.EqualTo(kind));
        Assert.That(Text(loaded.Module.HyperParameters), Is.EqualTo(Text(model.Module.HyperParameters)));
        int[] users = [1, 2, 3, 0], items = [5, 6, 7, 8, 9, 10, 11, 12];
        float[] torchScores = model.ScoreCandidates(users, items, 2);
        Assert.That(loaded.ScoreCandidates(users, items, 2), Is.EqualTo(torchScores).Within(1e-6));
        Assert.That(loaded.Recommend(3u, 10).Select(r => r.ItemKey), Is.EqualTo(model.Recommend(3u, 10).Select(r => r.ItemKey)));

        // ONNX (ML.NET's OnnxTransformer) scores of the loaded model equal the TorchSharp network's.
        var scored = loaded.Transform(D.Test);
        var u = scored.GetColumn<uint>("UserKey").Select(k => (int)k).ToArray();
        var i = scored.GetColumn<uint>("ItemKey").Select(k => (int)k).ToArray();
        var onnx = scored.GetColumn<float>("Score").ToArray();
        var expected = model.ScoreCandidates(u, i, 1);
        for (int n = 0; n < onnx.Length; n++)
            Assert.That(onnx[n], Is.EqualTo(expected[n]).Within(1e-5 * Math.Max(1, Math.Abs(expected[n]))), $"{kind} row {n}");
    }

    [TestCaseSource(nameof(Kinds))]
    public void SavedForServing_TheLoadedRecommenderScoresAsTheNetwork(string kind)
    {
        using var model = Model(kind);
        string path = _dir.File(kind + ".zip");
        DeepRecServing.SaveModel(D.Context, new TransformerChain<ITransformer>(D.Keys, model), D.All.Schema, path);
        using var recommender = DeepRecServing.LoadRecommender(new MLContext(), path);

        Assert.That(recommender.ModelKind, Is.EqualTo(kind));
        foreach (string user in new[] { "u1", "u7", "no-such-user" })
        {
            var recs = recommender.Recommend(user, 20);
            Assert.That(recs, Has.Count.EqualTo(20), user);
            Assert.That(recs.Select(r => r.Score), Is.Ordered.Descending, user);
            // Each item's score is the network's score for the pair, and the best one is the network's best: compared by
            // score, so that ties in the order cannot fail the test.
            int key = (int)model.Vocabulary.UserKey(user);
            var expected = model.ScoreCandidates([key], recs.Select(r => (int)r.ItemKey).ToArray(), recs.Count);
            for (int n = 0; n < recs.Count; n++)
                Assert.That(recs[n].Score, Is.EqualTo(expected[n]).Within(1e-5 * Math.Max(1, Math.Abs(expected[n]))), $"{kind} {user} item {n}");
            Assert.That(recs[0].Score, Is.EqualTo(model.Recommend(user, 1)[0].Score).Within(1e-5 * Math.Max(1, Math.Abs(recs[0].Score))), $"{kind} {user} best");
        }
    }

    [TestCaseSource(nameof(Kinds))]
    public void BadCheckpoints_AreRejectedNamingTheFieldAndLeftUnchanged(string kind)
    {
        var entry = CollaborativeModels.Get(kind, "test");
        using var model = Model(kind);
        string good = _dir.File(kind + "-good.ckpt");
        model.SaveCheckpoint(good);
        byte[] bytes = File.ReadAllBytes(good);

        void Expect(string name, byte[] content, params string[] fragments)
        {
            string path = _dir.File($"{kind}-{name}.ckpt");
            File.WriteAllBytes(path, content);
            byte[] before = SHA256.HashData(content);
            var e = Assert.Throws<InvalidDataException>(() => CollaborativeFilteringTransformer.LoadCheckpoint(D.Context, path).Dispose(), name)!;
            TestContext.Out.WriteLine($"{kind} {name}: {e.Message}");
            Assert.That(e.Message, Does.Contain(path), name);
            foreach (string fragment in fragments) Assert.That(e.Message, Does.Contain(fragment), name);
            Assert.That(SHA256.HashData(File.ReadAllBytes(path)), Is.EqualTo(before), name + " unchanged");
        }
        byte[] Manifest(Action<JsonObject> edit) => RewriteEntry(bytes, "manifest.json", b =>
        {
            var manifest = JsonNode.Parse(b)!.AsObject();
            edit(manifest);
            return System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString());
        });
        JsonArray Widths(IEnumerable<int> widths) => new(widths.Select(w => (JsonNode?)w).ToArray());

        foreach (var p in entry.HyperParameters)
        {
            int[] stored = model.Module.HyperParameters[p.Name];
            Expect($"no-{p.Name}", Manifest(m => m["HyperParameters"]!.AsObject().Remove(p.Name)), $"lacks the hyper-parameter '{p.Name}'");
            Expect($"zero-{p.Name}", Manifest(m => m["HyperParameters"]![p.Name] = Widths(stored.Select(_ => 0))), $"hyper-parameter '{p.Name}'", "= 0");
            Expect($"huge-{p.Name}", Manifest(m => m["HyperParameters"]![p.Name] = Widths(stored.Select(_ => LoadLimits.MaxWidth + 1))), $"hyper-parameter '{p.Name}'");
            // Within the limits but not what the stored tensors hold: caught by the shapes, before any network exists.
            Expect($"other-{p.Name}", Manifest(m => m["HyperParameters"]![p.Name] = Widths(stored.Select(w => 2 * w))), "needs weights", "but the file stores");
        }
        int users = model.Module.UserCount, items = model.Module.ItemCount;
        Expect("more-users", Manifest(m => { m["UserCount"] = users + 1; m["DeclaredUserCount"] = users + 1; m["Users"] = null; }), $"UserCount + 1 = {users + 2} rows");
        Expect("more-items", Manifest(m => { m["ItemCount"] = items + 1; m["DeclaredItemCount"] = items + 1; m["Items"] = null; }), $"ItemCount + 1 = {items + 2} rows");
        Expect("kind", Manifest(m => m["ModelKind"] = kind + "2"), "Unknown model kind", $"'{kind}2'");
        Expect("truncated-weights", RewriteEntry(bytes, "weights.bin", w => w[..(w.Length - 100)]), "truncated");
    }

    private static byte[] RewriteEntry(byte[] zip, string entry, Func<byte[], byte[]> change)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var e in source.Entries)
            {
                using var buffer = new MemoryStream();
                using (var r = e.Open()) r.CopyTo(buffer);
                using var w = target.CreateEntry(e.FullName).Open();
                w.Write(e.FullName == entry ? change(buffer.ToArray()) : buffer.ToArray());
            }
        }
        return output.ToArray();
    }
}
