using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Tests.FeatureInteraction;
using MLNet.DeepRec.Tests.Sequential;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Stress;

/// <summary>
/// Garbage collections forced continuously on another thread while the library works: no native call may read a
/// tensor or Scalar that nothing references any more, because the collection can finalize it meanwhile
/// (docs/reliability.md, section 5). A failure here is a segfault or libtorch error in the test host, not an assertion;
/// the results must equal those of a quiet run. Measured before the fix (2026-12-05): the scorer loop crashed the test
/// host ("Test host process crashed", segfault in repeat_interleave / flatten), and so did a 25-minute benchmark.
/// </summary>
[NonParallelizable]
public class CollectionDuringNativeCallsTests
{
    /// <summary>Runs <paramref name="work"/> while another thread collects and waits for finalizers without pause.</summary>
    private static T WhileCollecting<T>(Func<T> work)
    {
        using var stop = new CancellationTokenSource();
        var collector = Task.Run(() => { while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); } });
        try { return work(); }
        finally { stop.Cancel(); collector.Wait(); }
    }

    /// <summary>Repeats <paramref name="check"/> up to <paramref name="times"/> times or for <paramref name="seconds"/>,
    /// whichever ends first, so that a slow machine keeps the test's time bounded.</summary>
    private static void Repeat(int times, double seconds, Action check)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int n = 0; n < times && clock.Elapsed.TotalSeconds < seconds; n++) check();
    }

    [Test]
    public void CollaborativeScorerWhileAnotherThreadCollects()
    {
        random.manual_seed(9);
        using var m = new NeuMFModule(50, 60, 8, new[] { 16 });
        var scorer = new CollaborativeScorer(m, CPU);
        int[] users = Enumerable.Range(1, 20).ToArray();
        int[] items = Enumerable.Range(0, 20 * 30).Select(n => 1 + n % 60).ToArray();
        float[] quiet = scorer.ScoreCandidates(users, items, 30);
        float[] quietAll = scorer.ScoreAllItems(users);
        WhileCollecting(() =>
        {
            Repeat(10000, 6, () => Assert.That(scorer.ScoreCandidates(users, items, 30), Is.EqualTo(quiet)));
            Repeat(2000, 3, () => Assert.That(scorer.ScoreAllItems(users), Is.EqualTo(quietAll)));
            return 0;
        });
    }

    /// <summary>Recommend with a candidate list (its mask), the parameter accessors and the global bias.</summary>
    [Test]
    public void RecommendAndParameterAccessorsWhileAnotherThreadCollects()
    {
        var d = TestData.SmallSynthetic;
        using var model = d.Context.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 2, Seed = 4,
        }).Fit(d.Train);
        uint[] users = [1, 2, 3, 4, 5];
        uint[] candidates = Enumerable.Range(1, 80).Select(k => (uint)k).ToArray();
        string Snapshot() =>
            string.Join(";", model.Recommend(users, 10, candidateItems: candidates).SelectMany(r => r).Select(r => $"{r.ItemKey}:{r.Score}")) +
            "|" + string.Join(",", model.Model.GetEmbeddingTables().Select(t => t.Values.Span[t.Dimension + 1])) +
            "|" + model.Model.GlobalBias;
        string quiet = Snapshot();
        WhileCollecting(() =>
        {
            Repeat(2000, 6, () => Assert.That(Snapshot(), Is.EqualTo(quiet)));
            return 0;
        });
    }

    /// <summary>Whole fits: validation snapshots, optimizer state, unknown rows, warm start from pre-trained models,
    /// LightGCN's graph with edge dropout, checkpoints, sequential windows and scorer, and a batch-norm ONNX export.</summary>
    [Test]
    public void FitsWhileAnotherThreadCollectGiveTheQuietResults()
    {
        var d = TestData.SmallSynthetic;
        var trainers = d.Context.DeepRec().Trainers;
        using var checkpoints = new TempFolder("stress");
        int[] users = [1, 2, 3], items = [1, 2, 3, 4, 5, 6];
        float[] Collaborative(int run)
        {
            var common = (CollaborativeTrainerOptions o) => { o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.NumberOfEpochs = 3; o.Seed = 5; return o; };
            using var gmf = trainers.Gmf((GmfTrainer.Options)common(new GmfTrainer.Options { Factors = 8 })).Fit(d.Train, d.Validation);
            using var mlp = trainers.Mlp((MlpTrainer.Options)common(new MlpTrainer.Options { MlpLayers = [16, 8] })).Fit(d.Train, d.Validation);
            using var neuMf = trainers.NeuMF((NeuMFTrainer.Options)common(new NeuMFTrainer.Options { Factors = 8, MlpLayers = [16, 8], PretrainedGmf = gmf, PretrainedMlp = mlp })).Fit(d.Train, d.Validation);
            var lightOptions = (LightGcnTrainer.Options)common(new LightGcnTrainer.Options { Factors = 16, EdgeDropout = 0.2, LearningRate = 0.02 });
            using var lightGcn = trainers.LightGcn(lightOptions).Fit(d.Train, d.Validation);
            string path = Path.Combine(checkpoints.Path, $"lightgcn-{run}.ckpt");
            lightGcn.SaveCheckpoint(path);
            lightOptions.InitialModel = lightGcn;
            using var continued = trainers.LightGcn(lightOptions).Fit(d.Train);
            return [.. neuMf.ScoreCandidates(users, items, 2), .. continued.ScoreCandidates(users, items, 2)];
        }
        float[] quiet = Collaborative(0);
        Assert.That(WhileCollecting(() => Collaborative(1)), Is.EqualTo(quiet), "collaborative fits");
        // The checkpoint written while collecting holds the quiet run's tables (the zip entries' dates differ, not the data).
        float[] Stored(int run) => WhileCollecting(() =>
        {
            using var loaded = CollaborativeFilteringTransformer.LoadCheckpoint(new MLContext(1), Path.Combine(checkpoints.Path, $"lightgcn-{run}.ckpt"));
            return loaded.Model.GetEmbeddingTables().SelectMany(t => t.Values.ToArray()).ToArray();
        });
        Assert.That(Stored(1), Is.EqualTo(Stored(0)), "checkpoint contents");

        var s = SequenceTestData.Data;
        float[] Sequential() =>
        [
            .. SequentialTestModels.SasRec.Fit(s, SequentialLoss.BinaryCrossEntropy, epochs: 2).Recommend([1u, 2u, 3u], 5).Select(r => r.Score),
            .. SequentialTestModels.Gru4Rec.Fit(s, SequentialLoss.CrossEntropy, epochs: 2).Recommend([4u, 5u], 5).Select(r => r.Score),
        ];
        float[] quietSequential = Sequential();
        Assert.That(WhileCollecting(Sequential), Is.EqualTo(quietSequential), "sequential fits");

        var p = PlantedData.Default;
        var deepFmWithBatchNorm = FeatureInteractionModels.All.Single(m => m.Name == "DeepFM+BN");
        float[] FeatureInteraction()
        {
            var model = deepFmWithBatchNorm.Create(p.Context.DeepRec().Trainers, o =>
            {
                o.FeatureColumnNames = ["AKey", "BVec", "CKey", "X"]; o.NumberOfEpochs = 2; o.Seed = 1; o.LabelColumnName = "Label";
            }).Fit(p.Train);
            return model.Transform(p.Test).GetColumn<float>("Score").Take(50).ToArray(); // scored by the exported ONNX graph
        }
        float[] quietFeatures = FeatureInteraction();
        Assert.That(WhileCollecting(FeatureInteraction), Is.EqualTo(quietFeatures), "feature-interaction fit and ONNX export");
    }
}
