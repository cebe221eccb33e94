using System.Diagnostics;
using Microsoft.ML;
using MLNet.DeepRec.Evaluation;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Evaluation;

public class MovieLensPopularityTests
{
    [Test]
    public void MovieLens100K_LeaveOneOut_PopularityBaseline_BothProtocols()
    {
        string path = Path.Combine("/work/shared/datasets/ml-100k", "u.data");
        Assume.That(File.Exists(path), "MovieLens 100K is not available on this machine.");
        var sw = Stopwatch.StartNew();
        var ml = new MLContext(seed: 0);
        var raw = ml.DeepRec().Data.LoadMovieLens(path);
        var keyed = ml.Transforms.Conversion.MapValueToKey("UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemId")).Fit(raw).Transform(raw);
        var split = ml.DeepRec().Data.LeaveOneOutSplit(keyed);
        var pop = ml.DeepRec().Evaluation.PopularityBaseline(split.Train);
        var sampled = ml.DeepRec().Evaluation.EvaluateTopK(pop, split.Test, split.Train);
        var full = ml.DeepRec().Evaluation.EvaluateTopK(pop, split.Test, split.Train, new TopKEvaluationOptions { Protocol = RankingProtocol.FullRanking });
        TestContext.Out.WriteLine($"{sampled}\n{full}\n({sw.ElapsedMilliseconds} ms)");
        Assert.That(sampled.UserCount, Is.EqualTo(943));
        Assert.That(split.Test.GetRowCount(), Is.EqualTo(943));
        Assert.That(sampled.HitRate, Is.GreaterThan(full.HitRate)); // sampled numbers are always the optimistic ones
        Assert.That(sampled.HitRate, Is.InRange(0.3, 0.7));
    }
}
