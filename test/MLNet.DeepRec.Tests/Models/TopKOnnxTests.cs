using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Models;

public class TopKOnnxTests
{
    private static TestData.Keyed D => TestData.SmallSynthetic;

    [TestCase("MF")]
    [TestCase("NeuMF")]
    public void TopKGraphInOnnxRuntimeMatchesRecommend(string kind)
    {
        var t = D.Context.DeepRec().Trainers;
        using CollaborativeFilteringTransformer model = kind == "MF"
            ? t.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 2, Seed = 1 }).Fit(D.Train)
            : t.NeuMF(new NeuMFTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 2, Seed = 1, Factors = 4, MlpLayers = new[] { 16, 8 } }).Fit(D.Train);
        uint[] users = { 1, 17, 0, 250 };
        const int k = 10;
        var seen = users.Select(u => u == 0 ? Array.Empty<int>() : model.Seen.ItemsOf((int)u).ToArray()).ToArray();
        int width = Math.Max(1, seen.Max(s => s.Length));
        var seenTensor = new DenseTensor<uint>(new[] { users.Length, width });
        for (int r = 0; r < users.Length; r++) for (int c = 0; c < seen[r].Length; c++) seenTensor[r, c] = (uint)seen[r][c];

        using var session = new InferenceSession(model.BuildTopKOnnx(k, withSeenItems: true));
        using var results = session.Run(new[]
        {
            NamedOnnxValue.CreateFromTensor("user_key", new DenseTensor<uint>(users, new[] { users.Length, 1 })),
            NamedOnnxValue.CreateFromTensor("seen_item_keys", seenTensor),
        });
        var keys = results.First(r => r.Name == "top_item_keys").AsTensor<long>();
        var scores = results.First(r => r.Name == "top_scores").AsTensor<float>();
        var expected = model.Recommend(users, k, excludeSeen: true);
        for (int r = 0; r < users.Length; r++)
        {
            Assert.That(Enumerable.Range(0, k).Select(c => (uint)keys[r, c]), Is.EqualTo(expected[r].Select(x => x.ItemKey)), $"user {users[r]}");
            Assert.That(Enumerable.Range(0, k).Select(c => scores[r, c]), Is.EqualTo(expected[r].Select(x => x.Score)).Within(1e-4), $"user {users[r]}");
        }

        // Without the seen input the graph ranks the whole catalogue.
        using var plain = new InferenceSession(model.BuildTopKOnnx(k, withSeenItems: false));
        using var plainResults = plain.Run(new[] { NamedOnnxValue.CreateFromTensor("user_key", new DenseTensor<uint>(users, new[] { users.Length, 1 })) });
        var all = model.Recommend(users, k, excludeSeen: false);
        var plainKeys = plainResults.First(r => r.Name == "top_item_keys").AsTensor<long>();
        Assert.That(Enumerable.Range(0, k).Select(c => (uint)plainKeys[1, c]), Is.EqualTo(all[1].Select(x => x.ItemKey)));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.BuildTopKOnnx(0, true));
    }
}
