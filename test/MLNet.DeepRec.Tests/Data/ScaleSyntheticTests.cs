using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Tests.Evaluation;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Data;

/// <summary>The scalable path of the synthetic generator (above <see cref="SyntheticInteractionGenerator.ExactSamplingMaxPairs"/>
/// user–item pairs), the unchanged exact path below it, and the lazily formatted / key-typed data view.</summary>
public class ScaleSyntheticTests
{
    // 2,000 × 200,000 = 4e8 pairs: far above the exact algorithm's limit.
    private static SyntheticInteractionOptions Large(int seed = 5) =>
        new() { UserCount = 2_000, ItemCount = 200_000, InteractionsPerUser = 40, Seed = seed };

    private static readonly Lazy<SyntheticInteractions> LargeData = new(() => SyntheticInteractionGenerator.Generate(Large()));

    [Test]
    public void ScalablePath_IsDeterministic_DistinctPerUser_AndNearTheRequestedMean()
    {
        Assert.That((long)Large().UserCount * Large().ItemCount, Is.GreaterThan(SyntheticInteractionGenerator.ExactSamplingMaxPairs));
        var a = LargeData.Value;
        var b = SyntheticInteractionGenerator.Generate(Large());
        var c = SyntheticInteractionGenerator.Generate(Large(seed: 6));
        Assert.That(b.UserIndices, Is.EqualTo(a.UserIndices));
        Assert.That(b.ItemIndices, Is.EqualTo(a.ItemIndices));
        Assert.That(b.Timestamps, Is.EqualTo(a.Timestamps));
        Assert.That(b.UserFactors, Is.EqualTo(a.UserFactors));
        Assert.That(b.ItemFactors, Is.EqualTo(a.ItemFactors));
        Assert.That(b.ItemPopularity, Is.EqualTo(a.ItemPopularity));
        Assert.That(c.ItemIndices, Is.Not.EqualTo(a.ItemIndices));

        Assert.That(a.UserCount, Is.EqualTo(2_000));
        Assert.That(a.ItemCount, Is.EqualTo(200_000));
        Assert.That(a.UserFactors, Has.Length.EqualTo(2_000 * 8));
        Assert.That(a.ItemFactors, Has.Length.EqualTo(200_000 * 8));
        Assert.That(a.ItemPopularity.Sum(), Is.EqualTo(1).Within(1e-9));
        Assert.That(a.ItemPopularity.Min(), Is.GreaterThan(0));
        Assert.That(a.Count / 2000.0, Is.EqualTo(40).Within(3));
        Assert.That(a.ItemIndices.All(i => i >= 0 && i < 200_000), Is.True);

        // Grouped by user 0, 1, … (every user present, at least 3 items), distinct items per user, time increasing.
        var seenOfUser = new HashSet<int>();
        int start = 0;
        for (int r = 0; r <= a.Count; r++)
        {
            if (r < a.Count && a.UserIndices[r] == a.UserIndices[start])
            {
                Assert.That(seenOfUser.Add(a.ItemIndices[r]), Is.True, $"user {a.UserIndices[r]} has item {a.ItemIndices[r]} twice");
                if (r > start) Assert.That(a.Timestamps[r], Is.GreaterThan(a.Timestamps[r - 1]));
                continue;
            }
            Assert.That(r - start, Is.GreaterThanOrEqualTo(3));
            if (r == a.Count) break;
            Assert.That(a.UserIndices[r], Is.EqualTo(a.UserIndices[start] + 1));
            seenOfUser.Clear();
            seenOfUser.Add(a.ItemIndices[r]);
            start = r;
        }
        Assert.That(a.UserIndices[0], Is.EqualTo(0));
        Assert.That(a.UserIndices[^1], Is.EqualTo(1_999));

        // Popularity is planted: the most popular tenth of the items gets far more than a tenth of the interactions.
        var byPopularity = Enumerable.Range(0, a.ItemCount).OrderByDescending(i => a.ItemPopularity[i]).ToArray();
        var top = byPopularity.Take(a.ItemCount / 10).ToHashSet();
        double topShare = a.ItemIndices.Count(top.Contains) / (double)a.Count;
        TestContext.Out.WriteLine($"interactions {a.Count}, share of the top 10% items {topShare:F3}");
        Assert.That(topShare, Is.GreaterThan(0.3));
    }

    [Test]
    public void ScalablePath_PlantedPreference_BeatsPopularity_OnHeldOutLastItems()
    {
        var a = LargeData.Value;
        int nu = a.UserCount, ni = a.ItemCount;
        var keyed = a.ToKeyedInteractions();
        var last = new Dictionary<int, int>();
        for (int r = 0; r < keyed.Count; r++) last[keyed.Users[r]] = r;
        var testRows = last.Values.ToHashSet();
        var trainRows = Enumerable.Range(0, keyed.Count).Where(r => !testRows.Contains(r)).ToArray();
        var train = new KeyedInteractions(trainRows.Select(r => keyed.Users[r]).ToArray(), trainRows.Select(r => keyed.Items[r]).ToArray(), nu, ni);
        var test = new KeyedInteractions(testRows.Select(r => keyed.Users[r]).ToArray(), testRows.Select(r => keyed.Items[r]).ToArray(), nu, ni);
        var seen = new UserItemSet(train);
        var options = new TopKEvaluationOptions();
        var pop = TopKEvaluator.Evaluate(new PopularityScorer(train), test, seen, options);
        var plantedPop = TopKEvaluator.Evaluate(new FuncScorer(nu, ni, (u, i) => (float)Math.Log(a.ItemPopularity[i - 1])), test, seen, options);
        var oracle = TopKEvaluator.Evaluate(new FuncScorer(nu, ni, (u, i) => (float)a.PlantedScore(u - 1, i - 1)), test, seen, options);
        TestContext.Out.WriteLine($"popularity:         {pop}\nplanted popularity: {plantedPop}\noracle:             {oracle}");
        // Measured for this seed: HR@10 popularity ≈ 0.46, planted popularity ≈ 0.56, oracle ≈ 0.87 (NDCG 0.36, 0.40, 0.66).
        Assert.That(pop.HitRate, Is.GreaterThan(0.3)); // popularity itself is informative (planted skew)
        Assert.That(oracle.HitRate, Is.GreaterThan(pop.HitRate + 0.25));
        Assert.That(oracle.Ndcg, Is.GreaterThan(pop.Ndcg + 0.15));
        Assert.That(oracle.HitRate, Is.GreaterThan(plantedPop.HitRate + 0.15)); // the affinity adds to popularity
    }

    [Test]
    public void ScalablePath_PlantedAffinity_GrowsWithCandidates_AndApproachesTheExactAlgorithm()
    {
        // Mean planted affinity dot(u, i) of the chosen items (Noise 0): the exact algorithm just below the size limit
        // versus the scalable one just above it, and the scalable one with more candidates.
        static double MeanDot(int users, int candidates)
        {
            var d = SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions
            {
                UserCount = users, ItemCount = 20_000, InteractionsPerUser = 40, Noise = 0, Seed = 1, CandidatesPerInteraction = candidates,
            });
            double sum = 0;
            for (int r = 0; r < d.Count; r++)
                sum += (d.PlantedScore(d.UserIndices[r], d.ItemIndices[r]) - Math.Log(d.ItemPopularity[d.ItemIndices[r]])) * d.Temperature;
            return sum / d.Count;
        }
        Assert.That(250L * 20_000, Is.LessThanOrEqualTo(SyntheticInteractionGenerator.ExactSamplingMaxPairs));
        Assert.That(251L * 20_000, Is.GreaterThan(SyntheticInteractionGenerator.ExactSamplingMaxPairs));
        double exact = MeanDot(250, 4), one = MeanDot(251, 1), four = MeanDot(251, 4), sixteen = MeanDot(251, 16);
        TestContext.Out.WriteLine($"mean dot of chosen items: exact {exact:F3}; scalable with 1 candidate {one:F3}, 4: {four:F3}, 16: {sixteen:F3}");
        // Measured: exact ≈ 2.56; scalable ≈ 1.5, 1.9, 2.3 (a random item: 0).
        Assert.That(exact, Is.GreaterThan(2.2));
        Assert.That(one, Is.GreaterThan(1.0));
        Assert.That(four, Is.GreaterThan(one + 0.2));
        Assert.That(sixteen, Is.GreaterThan(four + 0.15));
        Assert.That(four, Is.GreaterThan(0.65 * exact));
        Assert.That(sixteen, Is.LessThan(exact + 0.1));
    }

    [Test]
    public void ScalablePath_DegenerateSkew_StillGivesDistinctItems()
    {
        // Extreme popularity skew: almost all draws hit a handful of items, so the fill-up paths are exercised.
        var o = new SyntheticInteractionOptions { UserCount = 60, ItemCount = 200_000, InteractionsPerUser = 500, PopularitySkew = 6, Noise = 0.5, Seed = 2 };
        var a = SyntheticInteractionGenerator.Generate(o);
        var b = SyntheticInteractionGenerator.Generate(o);
        Assert.That(b.ItemIndices, Is.EqualTo(a.ItemIndices));
        Assert.That(a.UserIndices.Zip(a.ItemIndices).Distinct().Count(), Is.EqualTo(a.Count));
        Assert.That(a.Count / 60.0, Is.EqualTo(500).Within(75));
    }

    [Test]
    public void ExactPath_KeepsTheDataOfEarlierVersions()
    {
        // Fingerprints of the data produced before the scalable path existed (same seeds, same options).
        Assert.That(Fingerprint(new SyntheticInteractionOptions { Seed = 3 }), Is.EqualTo((24341, 0x1519EA094852A5EBUL)));
        Assert.That(Fingerprint(new SyntheticInteractionOptions { UserCount = 300, ItemCount = 200, InteractionsPerUser = 30, Seed = 7 }),
            Is.EqualTo((8999, 0x750BBBD99B7030BAUL)));
        Assert.That(Fingerprint(new SyntheticInteractionOptions { UserCount = 20, ItemCount = 5, InteractionsPerUser = 10, Noise = 0.5, Seed = 9 }),
            Is.EqualTo((80, 0xB3745F595CA263F5UL)));
    }

    private static (int Count, ulong Hash) Fingerprint(SyntheticInteractionOptions o)
    {
        var d = SyntheticInteractionGenerator.Generate(o);
        ulong h = 1469598103934665603UL;
        void Mix(long x) { h ^= (ulong)x; h *= 1099511628211UL; }
        for (int r = 0; r < d.Count; r++) { Mix(d.UserIndices[r]); Mix(d.ItemIndices[r]); Mix(BitConverter.DoubleToInt64Bits(d.Timestamps[r])); }
        foreach (var x in d.UserFactors) Mix(BitConverter.SingleToInt32Bits(x));
        foreach (var x in d.ItemFactors) Mix(BitConverter.SingleToInt32Bits(x));
        foreach (var x in d.ItemPopularity) Mix(BitConverter.DoubleToInt64Bits(x));
        return (d.Count, h);
    }

    [Test]
    public void KeyTypedIds_GiveUInt32KeyColumns_WithoutVocabulary_ReadableAsKeyedInteractions()
    {
        var ml = new MLContext(1);
        var options = Large();
        options.KeyTypedIds = true;
        var view = ml.DeepRec().Data.GenerateSyntheticInteractions(options);
        var expected = LargeData.Value.ToKeyedInteractions();

        var userType = view.Schema["UserId"].Type as KeyDataViewType;
        var itemType = view.Schema["ItemId"].Type as KeyDataViewType;
        Assert.That(userType, Is.Not.Null);
        Assert.That(itemType, Is.Not.Null);
        Assert.That(userType!.RawType, Is.EqualTo(typeof(uint)));
        Assert.That(userType.Count, Is.EqualTo(2_000UL));
        Assert.That(itemType!.Count, Is.EqualTo(200_000UL));
        Assert.That(view.Schema["UserId"].Annotations.Schema.GetColumnOrNull("KeyValues"), Is.Null);
        Assert.That(view.Schema["ItemId"].Annotations.Schema.GetColumnOrNull("KeyValues"), Is.Null);
        Assert.That(view.Schema["Label"].Type, Is.EqualTo(NumberDataViewType.Single));
        Assert.That(view.Schema["Timestamp"].Type, Is.EqualTo(NumberDataViewType.Double));
        Assert.That(view.GetRowCount(), Is.EqualTo(expected.Count));

        var keyed = KeyedInteractions.FromDataView(view, "UserId", "ItemId", "Label", "Timestamp");
        Assert.That(keyed.UserCount, Is.EqualTo(2_000));
        Assert.That(keyed.ItemCount, Is.EqualTo(200_000));
        Assert.That(keyed.Users, Is.EqualTo(expected.Users));
        Assert.That(keyed.Items, Is.EqualTo(expected.Items));
        Assert.That(keyed.Timestamps, Is.EqualTo(expected.Timestamps));
        Assert.That(keyed.Labels!.All(l => l == 1f), Is.True);

        // The getters check the requested type, and a cursor not on a row refuses to read.
        using var cursor = view.GetRowCursor(view.Schema);
        Assert.That(() => cursor.GetGetter<ReadOnlyMemory<char>>(view.Schema["UserId"]), Throws.InvalidOperationException);
        var getter = cursor.GetGetter<uint>(view.Schema["ItemId"]);
        uint key = 0;
        Assert.That(() => getter(ref key), Throws.InvalidOperationException);
        Assert.That(cursor.MoveNext(), Is.True);
        getter(ref key);
        Assert.That(key, Is.EqualTo((uint)expected.Items[0]));
        Assert.That(cursor.Position, Is.EqualTo(0));

        // After the last row (ML.NET's contract): position −1, MoveNext stays false, getters refuse; the same after Dispose.
        while (cursor.MoveNext()) { }
        Assert.That(cursor.Position, Is.EqualTo(-1));
        Assert.That(cursor.MoveNext(), Is.False);
        Assert.That(() => getter(ref key), Throws.InvalidOperationException);
        var idGetter = cursor.GetIdGetter();
        DataViewRowId id = default;
        Assert.That(() => idGetter(ref id), Throws.InvalidOperationException);
        using var second = view.GetRowCursor(view.Schema);
        Assert.That(second.MoveNext(), Is.True);
        second.GetIdGetter()(ref id);
        Assert.That(id, Is.EqualTo(new DataViewRowId(0, 0)));
        second.Dispose();
        Assert.That(second.Position, Is.EqualTo(-1));
        Assert.That(second.MoveNext(), Is.False);
    }

    [Test]
    public void KeyTypedIds_OnTheExactPath_MatchTextIdsAndToKeyedInteractions()
    {
        var ml = new MLContext(1);
        var o = new SyntheticInteractionOptions { UserCount = 80, ItemCount = 150, InteractionsPerUser = 12, Seed = 11 };
        var expected = SyntheticInteractionGenerator.Generate(o).ToKeyedInteractions();
        var text = ml.DeepRec().Data.GenerateSyntheticInteractions(o);
        o.KeyTypedIds = true;
        var keys = ml.DeepRec().Data.GenerateSyntheticInteractions(o);
        var keyed = KeyedInteractions.FromDataView(keys, "UserId", "ItemId");
        Assert.That(keyed.Users, Is.EqualTo(expected.Users));
        Assert.That(keyed.Items, Is.EqualTo(expected.Items));

        // The key-typed view goes through the splitter without MapValueToKey: one test row (the latest) per user.
        var split = ml.DeepRec().Data.LeaveOneOutSplit(keys);
        var train = KeyedInteractions.FromDataView(split.Train, "UserId", "ItemId");
        var test = KeyedInteractions.FromDataView(split.Test, "UserId", "ItemId", timestampColumnName: "Timestamp");
        Assert.That(train.Count + test.Count, Is.EqualTo(expected.Count));
        Assert.That(test.Users, Is.EqualTo(Enumerable.Range(1, 80).ToArray()));
        Assert.That(train.ItemCount, Is.EqualTo(150));

        Assert.That(text.Schema["UserId"].Type, Is.EqualTo(TextDataViewType.Instance));
        using var cursor = text.GetRowCursor(text.Schema);
        var users = cursor.GetGetter<ReadOnlyMemory<char>>(text.Schema["UserId"]);
        var items = cursor.GetGetter<ReadOnlyMemory<char>>(text.Schema["ItemId"]);
        var labels = cursor.GetGetter<float>(text.Schema["Label"]);
        Assert.That(() => cursor.GetGetter<uint>(text.Schema["ItemId"]), Throws.InvalidOperationException);
        ReadOnlyMemory<char> u = default, i = default;
        float l = 0;
        int r = 0;
        while (cursor.MoveNext())
        {
            users(ref u); items(ref i); labels(ref l);
            Assert.That(u.ToString(), Is.EqualTo("u" + (expected.Users[r] - 1)));
            Assert.That(i.ToString(), Is.EqualTo("i" + (expected.Items[r] - 1)));
            Assert.That(l, Is.EqualTo(1f));
            r++;
        }
        Assert.That(r, Is.EqualTo(expected.Count));
    }

    [Test]
    public void CandidatesPerInteraction_IsValidated()
    {
        Assert.That(() => SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { CandidatesPerInteraction = 0 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("CandidatesPerInteraction"));
    }
}
