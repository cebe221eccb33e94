using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Tests.Evaluation;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Data;

public class SamplerAndSyntheticTests
{
    [Test]
    public void UserItemSet_SortsDeduplicatesAndIgnoresUnknownKeys()
    {
        var set = new UserItemSet(new[] { 2, 2, 1, 2, 0, 1 }, new[] { 5, 3, 4, 5, 1, 0 }, 3, 6);
        Assert.That(set.ItemsOf(2).ToArray(), Is.EqualTo(new[] { 3, 5 }));
        Assert.That(set.ItemsOf(1).ToArray(), Is.EqualTo(new[] { 4 }));
        Assert.That(set.ItemsOf(3).Length, Is.EqualTo(0));
        Assert.That(set.ItemsOf(0).Length, Is.EqualTo(0));
        Assert.That(set.Contains(2, 5) && set.Contains(1, 4) && !set.Contains(1, 5) && !set.Contains(9, 1), Is.True);
        Assert.That(set.PairCount, Is.EqualTo(3));
        Assert.That(() => new UserItemSet(new[] { 4 }, new[] { 1 }, 3, 6),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("users"));
    }

    [TestCase(NegativeSampling.Uniform)]
    [TestCase(NegativeSampling.Popularity)]
    public void Sampler_NeverReturnsPositivesTargetOrKeyZero(NegativeSampling strategy)
    {
        int users = 50, items = 40;
        var rng = new Random(2);
        var u = new List<int>(); var it = new List<int>();
        for (int user = 1; user <= users; user++)
        {
            int n = user <= 5 ? 37 : rng.Next(1, 20); // users 1..5 have seen almost everything (fallback path)
            foreach (int i in Enumerable.Range(1, items).OrderBy(_ => rng.Next()).Take(n)) { u.Add(user); it.Add(i); }
        }
        var set = new UserItemSet(u.ToArray(), it.ToArray(), users, items);
        var sampler = new NegativeSampler(set, strategy);
        var batch = Enumerable.Range(1, users).ToArray();
        var targets = batch.Select(x => (x % items) + 1).ToArray();
        for (int round = 0; round < 20; round++)
        {
            var plain = sampler.Sample(batch, 8, rng);
            var excl = sampler.Sample(batch, 2, rng, targets, distinct: true);
            for (int r = 0; r < users; r++)
            {
                for (int k = 0; k < 8; k++)
                {
                    int item = plain[r * 8 + k];
                    Assert.That(item, Is.InRange(1, items));
                    Assert.That(set.Contains(batch[r], item), Is.False);
                }
                Assert.That(excl[r * 2], Is.Not.EqualTo(excl[r * 2 + 1]));
                foreach (int item in excl.AsSpan(r * 2, 2).ToArray())
                {
                    Assert.That(item, Is.InRange(1, items));
                    Assert.That(item, Is.Not.EqualTo(targets[r]));
                    Assert.That(set.Contains(batch[r], item), Is.False);
                }
            }
        }
    }

    [Test]
    public void PopularitySampler_FrequenciesMatchSmoothedPopularity()
    {
        int items = 20;
        var freq = new int[items + 1];
        for (int i = 1; i <= items; i++) freq[i] = i * i; // item 0 ignored
        var set = new UserItemSet(new[] { 1 }, new[] { 20 }, 2, items);
        foreach (double exponent in new[] { 1.0, 0.5 })
        {
            var sampler = new NegativeSampler(set, NegativeSampling.Popularity, freq, exponent);
            var counts = new int[items + 1];
            var draws = sampler.Sample(new int[200_000].Select(_ => 2).ToArray(), 1, new Random(9)); // user 2 has no positives
            foreach (int d in draws) counts[d]++;
            double total = Enumerable.Range(1, items).Sum(i => Math.Pow(freq[i], exponent));
            Assert.That(counts[0], Is.EqualTo(0));
            for (int i = 1; i <= items; i++)
            {
                double p = Math.Pow(freq[i], exponent) / total;
                double sd = Math.Sqrt(200_000 * p * (1 - p));
                Assert.That(counts[i], Is.EqualTo(200_000 * p).Within(5 * sd + 1), $"item {i}, exponent {exponent}");
            }
            // For user 1, item 20 is a positive: its mass is redistributed, never drawn.
            Assert.That(sampler.Sample(new int[5000].Select(_ => 1).ToArray(), 1, new Random(1)), Has.None.EqualTo(20));
        }
    }

    [Test]
    public void Sampler_ThrowsClearly_ForBadCountsAndSaturatedUsers()
    {
        var set = new UserItemSet(new[] { 1, 1, 1 }, new[] { 1, 2, 3 }, 2, 3);
        var sampler = new NegativeSampler(set);
        Assert.That(() => sampler.Sample(new[] { 1 }, -1, new Random()),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("negativesPerUser"));
        Assert.That(() => sampler.Sample(new[] { 1 }, 1, new Random()),
            Throws.InvalidOperationException.With.Message.Contains("user key 1"));
        Assert.That(() => sampler.Sample(new[] { 2 }, 1, new Random(), new[] { 1 }, distinct: true), Throws.Nothing);
        Assert.That(() => sampler.Sample(new[] { 2 }, 3, new Random(), new[] { 1 }, distinct: true),
            Throws.InvalidOperationException.With.Message.Contains("distinct"));
        Assert.That(() => sampler.Sample(new[] { 3 }, 1, new Random()),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("users"));
        Assert.That(sampler.Sample(new[] { 1, 2 }, 0, new Random()), Is.Empty);
    }

    [Test]
    public void Synthetic_IsDeterministic_AndHasPlantedStructure()
    {
        var o = new SyntheticInteractionOptions { Seed = 3 };
        var a = SyntheticInteractionGenerator.Generate(o);
        var b = SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { Seed = 3 });
        var c = SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { Seed = 4 });
        Assert.That(a.UserIndices, Is.EqualTo(b.UserIndices));
        Assert.That(a.ItemIndices, Is.EqualTo(b.ItemIndices));
        Assert.That(a.Timestamps, Is.EqualTo(b.Timestamps));
        Assert.That(a.ItemIndices, Is.Not.EqualTo(c.ItemIndices));
        Assert.That(a.Count / 600.0, Is.EqualTo(40).Within(4));
        Assert.That(a.ItemIndices.Distinct().Count(), Is.GreaterThan(300));
        // No duplicate (user, item) pairs; timestamps increase within a user.
        Assert.That(a.UserIndices.Zip(a.ItemIndices).Distinct().Count(), Is.EqualTo(a.Count));
        for (int r = 1; r < a.Count; r++)
            if (a.UserIndices[r] == a.UserIndices[r - 1]) Assert.That(a.Timestamps[r], Is.GreaterThan(a.Timestamps[r - 1]));

        // Popularity baseline < oracle built from the planted factors (leave-one-out, sampled protocol).
        var keyed = a.ToKeyedInteractions();
        var last = new Dictionary<int, int>();
        for (int r = 0; r < keyed.Count; r++) last[keyed.Users[r]] = r;
        var testRows = last.Values.ToHashSet();
        var trainRows = Enumerable.Range(0, keyed.Count).Where(r => !testRows.Contains(r)).ToArray();
        var train = new KeyedInteractions(trainRows.Select(r => keyed.Users[r]).ToArray(), trainRows.Select(r => keyed.Items[r]).ToArray(), 600, 400);
        var test = new KeyedInteractions(testRows.Select(r => keyed.Users[r]).ToArray(), testRows.Select(r => keyed.Items[r]).ToArray(), 600, 400);
        var seen = new UserItemSet(train);
        var pop = TopKEvaluator.Evaluate(new PopularityScorer(train), test, seen, new TopKEvaluationOptions());
        var oracle = TopKEvaluator.Evaluate(new FuncScorer(600, 400, (u, i) => (float)a.PlantedScore(u - 1, i - 1)), test, seen, new TopKEvaluationOptions());
        TestContext.Out.WriteLine($"popularity: {pop}\noracle:     {oracle}");
        Assert.That(oracle.HitRate, Is.GreaterThan(pop.HitRate + 0.2));
        Assert.That(oracle.Ndcg, Is.GreaterThan(pop.Ndcg + 0.15));
        Assert.That(pop.HitRate, Is.GreaterThan(0.15)); // popularity itself is informative (planted skew)
    }

    [Test]
    public void Synthetic_ValidatesOptions()
    {
        Assert.That(() => SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { Noise = 2 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("Noise"));
        Assert.That(() => SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { UserCount = 0 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("UserCount"));
    }
}
