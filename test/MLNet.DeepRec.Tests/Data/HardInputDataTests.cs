using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Data;

/// <summary>Hostile and careless inputs to the loaders and the negative samplers (issue #12).</summary>
public class HardInputDataTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "deeprec-hard-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [TestCase("")]
    [TestCase("\n  \n\t\n")]
    public void EveryLoaderRejectsAFileWithoutDataLinesLikeLoadMovieLens(string content)
    {
        string path = Path.Combine(_dir, "empty.txt");
        File.WriteAllText(path, content);
        var data = new MLContext(0).DeepRec().Data;
        var movieLens = Assert.Throws<FormatException>(() => data.LoadMovieLens(path));
        var sequences = Assert.Throws<FormatException>(() => data.LoadUserItemSequences(path));
        Assert.That(sequences!.Message, Does.Contain(path).And.Contain("no data lines"));
        Assert.That(movieLens!.Message, Does.Contain(path).And.Contain("no data lines"));
        foreach (var load in new Func<string, IDataView>[] { data.LoadMovieLens100K, data.LoadMovieLens1M, data.LoadMovieLensCsv })
            Assert.That(Assert.Throws<FormatException>(() => load(path))!.Message, Does.Contain(path));
    }

    [Test]
    public void ACsvWithOnlyItsHeaderHasNoDataLines()
    {
        string path = Path.Combine(_dir, "ratings.csv");
        File.WriteAllText(path, "userId,movieId,rating,timestamp\n");
        Assert.That(Assert.Throws<FormatException>(() => new MLContext(0).DeepRec().Data.LoadMovieLensCsv(path))!.Message, Does.Contain("no data lines"));
    }

    /// <summary>User 1 has seen items 1..900 of 1,000; user 2 items 1..10; user 3 nothing.</summary>
    private static UserItemSet DenseSet(int heavySeen = 900)
    {
        var users = new List<int>(); var items = new List<int>();
        for (int i = 1; i <= heavySeen; i++) { users.Add(1); items.Add(i); }
        for (int i = 1; i <= 10; i++) { users.Add(2); items.Add(i); }
        return new UserItemSet(users.ToArray(), items.ToArray(), 3, 1000);
    }

    [TestCase(NegativeSampling.Uniform)]
    [TestCase(NegativeSampling.Popularity)]
    public void TheTrainingSamplerDrawsADenseUserExactlyFromTheComplement(NegativeSampling strategy)
    {
        var seen = DenseSet();
        using var sampler = new TorchNegativeSampler(seen, strategy, CPU);
        Assert.That(sampler.DenseUserCount, Is.EqualTo(1), "only the user with 900 of 1,000 items is dense");
        using var generator = new Generator(7);
        using var users = cat(new[] { full(20_000, 1L, dtype: int64), full(20_000, 2L, dtype: int64), full(1000, 3L, dtype: int64) });
        using var drawn = sampler.Sample(users, generator);
        var u = users.data<long>().ToArray();
        var d = drawn.data<long>().ToArray();
        var counts = new int[1001];
        for (int n = 0; n < u.Length; n++)
        {
            Assert.That(d[n], Is.InRange(1, 1000));
            Assert.That(seen.Contains((int)u[n], (int)d[n]), Is.False, $"user {u[n]} drew a seen item {d[n]}");
            if (u[n] == 1) counts[d[n]]++;
        }
        // Every unseen item of the dense user is drawn (200 expected each under uniform; popularity weights are equal
        // among items no one has seen), and none of the seen ones.
        Assert.That(counts.Skip(901).Min(), Is.GreaterThan(100));
        Assert.That(counts.Skip(1).Take(900).Sum(), Is.Zero);
    }

    [Test]
    public void TheTrainingSamplerNamesAUserWhoHasSeenEveryItem()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new TorchNegativeSampler(DenseSet(heavySeen: 1000), NegativeSampling.Uniform, CPU));
        Assert.That(e!.Message, Does.Contain("User key 1").And.Contain("all 1000 items"));
    }

    [TestCase(NegativeSampling.Uniform)]
    [TestCase(NegativeSampling.Popularity)]
    public void TheEvaluationSamplerDrawsADenseUserExactlyFromTheComplement(NegativeSampling strategy)
    {
        var seen = DenseSet();
        var sampler = new NegativeSampler(seen, strategy, Enumerable.Range(0, 1001).Select(i => i == 0 ? 0 : 1 + i % 3).ToArray());
        var rng = new Random(3);
        var drawn = sampler.Sample(Enumerable.Repeat(1, 2000).ToArray(), 10, rng);
        Assert.That(drawn.All(i => i > 900 && i <= 1000), Is.True);
        Assert.That(drawn.Distinct().Count(), Is.EqualTo(100), "every unseen item can be drawn");
        // The evaluation protocol: 99 distinct negatives, the held-out item excluded, leaves exactly the 99 others.
        var distinct = sampler.Sample(new[] { 1 }, 99, rng, new[] { 1000 });
        Assert.That(distinct.OrderBy(i => i), Is.EqualTo(Enumerable.Range(901, 99)));
    }
}
