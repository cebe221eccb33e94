using NUnit.Framework;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;

namespace MLNet.DeepRec.Tests.Evaluation;

public class TopKEvaluatorTests
{
    private static readonly float[] HandScores = { 0.9f, 0.5f, 0.3f, 0.1f, 0.7f, 0.2f, 5f, 6f }; // items 1..8

    [Test]
    public void FullRanking_HandComputedCase_ExactValues_AndSeenItemsExcluded()
    {
        // User 1 saw items 7 and 8 (the highest scores): they must not be ranked. Held out: items 5 and 6.
        // Ranking of the rest: 1 (0.9), 5 (0.7), 2 (0.5), 3 (0.3), 6 (0.2), 4 (0.1) -> held-out positions 1 and 4.
        var scorer = new FuncScorer(1, 8, (u, i) => HandScores[i - 1]);
        var seen = new UserItemSet(new[] { 1, 1 }, new[] { 7, 8 }, 1, 8);
        var test = new KeyedInteractions(new[] { 1, 1 }, new[] { 5, 6 }, 1, 8);
        var m = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { K = 3, Protocol = RankingProtocol.FullRanking });

        double idcg = 1 + 1 / Math.Log2(3);
        Assert.That(m.HitRate, Is.EqualTo(1.0));
        Assert.That(m.Ndcg, Is.EqualTo((1 / Math.Log2(3)) / idcg).Within(1e-12));
        Assert.That(m.Mrr, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(m.Recall, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(m.Precision, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(m.Map, Is.EqualTo(0.5 / 2).Within(1e-12));          // (1 hit / position 2) / min(K, 2)
        Assert.That(m.Coverage, Is.EqualTo(3.0 / 8).Within(1e-12));     // top 3 = items 1, 5, 2
        Assert.That(m.UserCount, Is.EqualTo(1));
        Assert.That(m.CaseCount, Is.EqualTo(1));
        Assert.That(scorer.Calls, Is.EqualTo(1));

        // K = 5: both held-out items are hits (positions 1 and 4).
        var m5 = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { K = 5, Protocol = RankingProtocol.FullRanking });
        Assert.That(m5.Recall, Is.EqualTo(1.0));
        Assert.That(m5.Precision, Is.EqualTo(2.0 / 5).Within(1e-12));
        Assert.That(m5.Ndcg, Is.EqualTo((1 / Math.Log2(3) + 1 / Math.Log2(6)) / idcg).Within(1e-12));
        Assert.That(m5.Map, Is.EqualTo((1.0 / 2 + 2.0 / 5) / 2).Within(1e-12));
    }

    [Test]
    public void Sampled_HandComputedCase_ExactValues()
    {
        // 5 items, nothing seen, target 3, 4 negatives -> the negatives are exactly {1, 2, 4, 5}.
        // Scores 5, 4, 3, 2, 1 for items 1..5: the target is at position 2 (0-based).
        var scorer = new FuncScorer(1, 5, (u, i) => 6 - i);
        var seen = new UserItemSet(Array.Empty<int>(), Array.Empty<int>(), 1, 5);
        var test = new KeyedInteractions(new[] { 1 }, new[] { 3 }, 1, 5);
        var k2 = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { K = 2, NegativesPerPositive = 4 });
        Assert.That(k2.HitRate, Is.EqualTo(0.0));
        Assert.That(k2.Ndcg, Is.EqualTo(0.0));
        Assert.That(k2.Mrr, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(k2.Coverage, Is.EqualTo(2.0 / 5).Within(1e-12));
        var k3 = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { K = 3, NegativesPerPositive = 4 });
        Assert.That(k3.HitRate, Is.EqualTo(1.0));
        Assert.That(k3.Ndcg, Is.EqualTo(0.5).Within(1e-12)); // 1 / log2(4)
        Assert.That(k3.Mrr, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(k3.Recall, Is.EqualTo(1.0));
        Assert.That(k3.Precision, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(k3.Map, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(k3.ToString(), Does.StartWith("Sampled (4 negatives) @3: HR=1.0000 NDCG=0.5000"));
    }

    [Test]
    public void Ties_ArePessimistic()
    {
        var scorer = new FuncScorer(5, 200, (u, i) => 1f);
        var seen = new UserItemSet(Array.Empty<int>(), Array.Empty<int>(), 5, 200);
        var test = new KeyedInteractions(new[] { 1, 2, 3 }, new[] { 10, 20, 30 }, 5, 200);
        var m = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions());
        Assert.That(m.HitRate, Is.EqualTo(0.0));
        Assert.That(m.Mrr, Is.EqualTo(1.0 / 100).Within(1e-12)); // all 99 negatives ranked above the target
        var full = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { Protocol = RankingProtocol.FullRanking });
        Assert.That(full.HitRate, Is.EqualTo(0.0));
        Assert.That(full.Mrr, Is.EqualTo(1.0 / 200).Within(1e-12));
    }

    [TestCase(RankingProtocol.Sampled)]
    [TestCase(RankingProtocol.FullRanking)]
    public void OracleScorer_GetsPerfectScores(RankingProtocol protocol)
    {
        int users = 300, items = 500;
        var test = new KeyedInteractions(Enumerable.Range(1, users).ToArray(), Enumerable.Range(1, users).Select(u => u % items + 1).ToArray(), users, items);
        var targets = new HashSet<(int, int)>(test.Users.Zip(test.Items));
        var seenUsers = Enumerable.Range(1, users).SelectMany(u => new[] { u, u }).ToArray();
        var seenItems = Enumerable.Range(1, users).SelectMany(u => new[] { (u + 7) % items + 1, (u + 50) % items + 1 }).ToArray();
        var seen = new UserItemSet(seenUsers, seenItems, users, items);
        // The oracle also gives seen items a top score: they must be excluded or the oracle would lose.
        var scorer = new FuncScorer(users, items, (u, i) => targets.Contains((u, i)) || seen.Contains(u, i) ? 1f : 0f);
        var m = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { Protocol = protocol, UserBatchSize = 64 });
        Assert.That(m.HitRate, Is.EqualTo(1.0));
        Assert.That(m.Ndcg, Is.EqualTo(1.0));
        Assert.That(m.Mrr, Is.EqualTo(1.0));
        Assert.That(m.UserCount, Is.EqualTo(users));
        Assert.That(scorer.Calls, Is.EqualTo(5)); // ceil(300 / 64) batched calls, never one per item
    }

    [Test]
    public void FullRanking_OverALargeCatalogue_ScoresFewerUsersPerCallThanUserBatchSize()
    {
        // 2²¹ items: 8 users per call keep one call's scores at 2²⁴ floats (64 MB), whatever UserBatchSize asks for.
        int users = 20, items = 1 << 21;
        var test = new KeyedInteractions(Enumerable.Range(1, users).ToArray(), Enumerable.Range(1, users).Select(u => u * 1000).ToArray(), users, items);
        var seen = new UserItemSet(Array.Empty<int>(), Array.Empty<int>(), users, items);
        var scorer = new BatchRecordingScorer(users, items, (u, i) => i == u * 1000 ? 1f : 0f);
        var m = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { Protocol = RankingProtocol.FullRanking, UserBatchSize = 256 });
        Assert.That(scorer.BatchSizes, Is.EqualTo(new[] { 8, 8, 4 }));
        Assert.That(m.HitRate, Is.EqualTo(1.0));
        Assert.That(m.UserCount, Is.EqualTo(users));
    }

    /// <summary>Scores by a function of (user, item) where it is non-zero only for one item per user, and records the
    /// users per full-ranking call.</summary>
    private sealed class BatchRecordingScorer(int userCount, int itemCount, Func<int, int, float> score) : IItemScorer
    {
        public List<int> BatchSizes { get; } = new();
        public int UserCount => userCount;
        public int ItemCount => itemCount;
        public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser) => throw new NotSupportedException();
        public float[] ScoreAllItems(int[] users)
        {
            BatchSizes.Add(users.Length);
            var s = new float[(long)users.Length * itemCount];
            for (int r = 0; r < users.Length; r++) s[(long)r * itemCount + users[r] * 1000 - 1] = score(users[r], users[r] * 1000);
            return s;
        }
    }

    [Test]
    public void RandomScorer_HitRateIsAboutTenPercent_Under99Negatives()
    {
        int users = 4000, items = 2000;
        var rng = new Random(1);
        var test = new KeyedInteractions(Enumerable.Range(1, users).ToArray(), Enumerable.Range(0, users).Select(_ => rng.Next(1, items + 1)).ToArray(), users, items);
        var seen = new UserItemSet(Array.Empty<int>(), Array.Empty<int>(), users, items);
        var scorer = new FuncScorer(users, items, (u, i) => FuncScorer.Hash(u, i));
        var m = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions());
        // HR@10 ~ Binomial(4000, 0.1)/4000: standard deviation 0.0047; 4 sigma tolerance.
        Assert.That(m.HitRate, Is.EqualTo(0.10).Within(0.02));
        double expectedNdcg = Enumerable.Range(0, 10).Sum(p => 0.01 / Math.Log2(p + 2));
        Assert.That(m.Ndcg, Is.EqualTo(expectedNdcg).Within(0.01));
        Assert.That(m.ToString(), Does.StartWith("Sampled (99 negatives) @10:"));
    }

    [TestCase(5)]
    [TestCase(10)]
    public void Ndcg_EqualsMlNetRankingEvaluator(int k)
    {
        // Binary relevance: ML.NET's gain (2^rel - 1, scaled by its label-gain table) is the same constant for every
        // relevant item and zero otherwise, so it cancels in DCG / ideal DCG; both use a log2(position + 2) discount and
        // truncate the ideal DCG at K. With distinct scores (no ties) the two NDCG@K values are therefore identical.
        int users = 40, items = 60;
        var rng = new Random(3);
        var seenU = new List<int>(); var seenI = new List<int>();
        var testU = new List<int>(); var testI = new List<int>();
        for (int u = 1; u <= users; u++)
        {
            var perm = Enumerable.Range(1, items).OrderBy(_ => rng.Next()).ToArray();
            int nTest = 1 + u % 4;
            for (int j = 0; j < nTest; j++) { testU.Add(u); testI.Add(perm[j]); }
            for (int j = nTest; j < nTest + 8; j++) { seenU.Add(u); seenI.Add(perm[j]); }
        }
        var seen = new UserItemSet(seenU.ToArray(), seenI.ToArray(), users, items);
        var test = new KeyedInteractions(testU.ToArray(), testI.ToArray(), users, items);
        var scorer = new FuncScorer(users, items, (u, i) => FuncScorer.Hash(u, i, 7));
        var ours = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { K = k, Protocol = RankingProtocol.FullRanking });

        var targets = new HashSet<(int, int)>(testU.Zip(testI));
        var rows = new List<RankRow>();
        for (int u = 1; u <= users; u++)
            for (int i = 1; i <= items; i++)
                if (!seen.Contains(u, i) || targets.Contains((u, i)))
                    rows.Add(new RankRow { GroupId = (uint)u, Label = targets.Contains((u, i)) ? 1 : 0, Score = FuncScorer.Hash(u, i, 7) });
        var ml = new MLContext(seed: 0);
        var view = ml.Data.LoadFromEnumerable(rows);
        var metrics = ml.Ranking.Evaluate(view, new RankingEvaluatorOptions { DcgTruncationLevel = k });
        Assert.That(ours.Ndcg, Is.EqualTo(metrics.NormalizedDiscountedCumulativeGains[k - 1]).Within(1e-9));
    }

    private sealed class RankRow
    {
        [KeyType(40)] public uint GroupId { get; set; }
        public float Label { get; set; }
        public float Score { get; set; }
    }

    [Test]
    public void UnknownUsersAndItems_AreSkippedAndCounted()
    {
        var scorer = new FuncScorer(3, 200, (u, i) => i == 5 ? 1 : 0);
        var seen = new UserItemSet(Array.Empty<int>(), Array.Empty<int>(), 3, 200);
        var test = new KeyedInteractions(new[] { 0, 1, 0, 2 }, new[] { 5, 5, 7, 0 }, 3, 200);
        var m = TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions());
        Assert.That(m.SkippedUsers, Is.EqualTo(2));
        Assert.That(m.SkippedItems, Is.EqualTo(1));
        Assert.That(m.CaseCount, Is.EqualTo(1));
        Assert.That(m.HitRate, Is.EqualTo(1.0));
    }

    [Test]
    public void InvalidOptions_ThrowNamingTheParameter()
    {
        var scorer = new FuncScorer(1, 10, (u, i) => 0);
        var seen = new UserItemSet(Array.Empty<int>(), Array.Empty<int>(), 1, 10);
        var test = new KeyedInteractions(new[] { 1 }, new[] { 1 }, 1, 10);
        Assert.That(() => TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { K = 0 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("K"));
        Assert.That(() => TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { NegativesPerPositive = 0 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("NegativesPerPositive"));
        Assert.That(() => TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions { UserBatchSize = -1 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("UserBatchSize"));
        // 9 allowed items cannot give 99 distinct negatives.
        Assert.That(() => TopKEvaluator.Evaluate(scorer, test, seen, new TopKEvaluationOptions()),
            Throws.InvalidOperationException.With.Message.Contains("user key 1"));
        var wrongItems = new KeyedInteractions(new[] { 1 }, new[] { 1 }, 1, 11);
        Assert.That(() => TopKEvaluator.Evaluate(scorer, wrongItems, seen, new TopKEvaluationOptions()),
            Throws.ArgumentException.With.Message.Contains("item keys"));
    }

    [Test]
    public void Catalog_EvaluateTopK_ReadsKeyColumns_AndPopularityLosesToPlantedOracle()
    {
        var ml = new MLContext(seed: 1);
        var synthetic = SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { UserCount = 300, ItemCount = 300, Seed = 5 });
        var data = ml.DeepRec().Data.GenerateSyntheticInteractions(new SyntheticInteractionOptions { UserCount = 300, ItemCount = 300, Seed = 5 });
        var keyed = ml.Transforms.Conversion.MapValueToKey("UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemId")).Fit(data).Transform(data);
        var split = ml.DeepRec().Data.LeaveOneOutSplit(keyed);

        // Map keys back to the planted indices ("u12" -> 12) through the key-value annotations.
        int[] userIndexOfKey = KeyToIndex(keyed, "UserId");
        int[] itemIndexOfKey = KeyToIndex(keyed, "ItemId");
        var oracle = new FuncScorer(userIndexOfKey.Length - 1, itemIndexOfKey.Length - 1,
            (u, i) => (float)synthetic.PlantedScore(userIndexOfKey[u], itemIndexOfKey[i]));
        var popularity = ml.DeepRec().Evaluation.PopularityBaseline(split.Train);

        foreach (var protocol in new[] { RankingProtocol.Sampled, RankingProtocol.FullRanking })
        {
            var options = new TopKEvaluationOptions { Protocol = protocol };
            var pop = ml.DeepRec().Evaluation.EvaluateTopK(popularity, split.Test, split.Train, options);
            var best = ml.DeepRec().Evaluation.EvaluateTopK(oracle, split.Test, split.Train, options);
            TestContext.Out.WriteLine($"popularity {pop}\noracle     {best}");
            Assert.That(pop.UserCount, Is.EqualTo(300));
            Assert.That(best.HitRate, Is.GreaterThan(pop.HitRate + 0.15));
            Assert.That(best.Ndcg, Is.GreaterThan(pop.Ndcg + 0.1));
        }
    }

    private static int[] KeyToIndex(IDataView keyed, string column)
    {
        VBuffer<ReadOnlyMemory<char>> values = default;
        keyed.Schema[column].GetKeyValues(ref values);
        var dense = values.DenseValues().ToArray();
        var map = new int[dense.Length + 1];
        for (int k = 0; k < dense.Length; k++) map[k + 1] = int.Parse(dense[k].Span[1..]);
        return map;
    }
}
