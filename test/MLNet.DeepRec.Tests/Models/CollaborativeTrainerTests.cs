using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Models;

public class CollaborativeTrainerTests
{
    private static TestData.Keyed D => TestData.SmallSynthetic;

    private static T Quick<T>(T o, int epochs = 8) where T : CollaborativeTrainerOptions
    {
        o.UserIdColumnName = "UserKey"; o.ItemIdColumnName = "ItemKey"; o.NumberOfEpochs = epochs; o.Seed = 3; o.BatchSize = 256;
        return o;
    }

    private static TopKMetrics Sampled(IItemScorer scorer) =>
        D.Context.DeepRec().Evaluation.EvaluateTopK(scorer, D.Test, D.Train,
            new TopKEvaluationOptions { K = 10, NegativesPerPositive = 99, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Seed = 5 });

    private static readonly Lazy<TopKMetrics> Popularity = new(() =>
        Sampled(D.Context.DeepRec().Evaluation.PopularityBaseline(D.Train, "UserKey", "ItemKey")));

    // The planted taste structure is strong: a collaborative model must beat a popularity ranking clearly.
    [TestCase("MF")]
    [TestCase("GMF")]
    [TestCase("MLP")]
    [TestCase("NeuMF")]
    public void EveryModelBeatsPopularityByAClearMarginOnPlantedData(string model)
    {
        var trainers = D.Context.DeepRec().Trainers;
        CollaborativeFilteringTransformer fitted = model switch
        {
            "MF" => trainers.MatrixFactorization(Quick(new BiasedMatrixFactorizationTrainer.Options { LearningRate = 0.005 })).Fit(D.Train),
            "GMF" => trainers.Gmf(Quick(new GmfTrainer.Options { Factors = 16, LearningRate = 0.005 })).Fit(D.Train),
            "MLP" => trainers.Mlp(Quick(new MlpTrainer.Options { LearningRate = 0.003 }, 10)).Fit(D.Train),
            _ => trainers.NeuMF(Quick(new NeuMFTrainer.Options { Factors = 16, LearningRate = 0.003 })).Fit(D.Train),
        };
        using (fitted)
        {
            var metrics = Sampled(fitted);
            TestContext.Out.WriteLine($"{model}: {metrics}; popularity: {Popularity.Value}");
            Assert.That(metrics.HitRate, Is.GreaterThan(Popularity.Value.HitRate + 0.15), "HR@10 margin over popularity");
            Assert.That(metrics.Ndcg, Is.GreaterThan(Popularity.Value.Ndcg + 0.10), "NDCG@10 margin over popularity");
            Assert.That(fitted.TrainingReport.Epochs[^1].Loss, Is.LessThan(fitted.TrainingReport.Epochs[0].Loss), "loss decreases");
        }
    }

    // libtorch's thread count is process-wide: NumberOfThreads applies while Fit trains and the caller's setting comes back.
    [Test]
    [NonParallelizable]
    public void NumberOfThreadsAppliesDuringFitOnlyAndRestoresTheProcessSetting()
    {
        int before = TorchSharp.torch.get_num_threads();
        int wanted = before == 1 ? 2 : 1;
        var seen = new List<int>();
        var ml = D.Context;
        EventHandler<Microsoft.ML.LoggingEventArgs> watch = (_, e) => { if (e.Message.Contains("Epoch 1/", StringComparison.Ordinal)) seen.Add(TorchSharp.torch.get_num_threads()); };
        ml.Log += watch;
        try
        {
            using var mf = ml.DeepRec().Trainers.MatrixFactorization(Quick(new BiasedMatrixFactorizationTrainer.Options { NumberOfThreads = wanted }, epochs: 1)).Fit(D.Train);
        }
        finally
        {
            ml.Log -= watch;
        }
        Assert.That(seen, Is.Not.Empty.And.All.EqualTo(wanted), "threads during training");
        Assert.That(TorchSharp.torch.get_num_threads(), Is.EqualTo(before), "threads after Fit");
    }

    [Test]
    public void BprLossTrainsMatrixFactorization()
    {
        using var mf = D.Context.DeepRec().Trainers.MatrixFactorization(Quick(new BiasedMatrixFactorizationTrainer.Options { Loss = CollaborativeLoss.Bpr, LearningRate = 0.005, NegativesPerPositive = 2 })).Fit(D.Train);
        Assert.That(Sampled(mf).HitRate, Is.GreaterThan(Popularity.Value.HitRate + 0.15));
    }

    [Test]
    public void SameSeedGivesTheSameModelAndAnotherSeedAnother()
    {
        float[] Scores(int seed)
        {
            var o = Quick(new GmfTrainer.Options(), 2); o.Seed = seed;
            using var m = D.Context.DeepRec().Trainers.Gmf(o).Fit(D.Train);
            return m.ScoreCandidates(new[] { 1, 2, 3 }, new[] { 1, 2, 3, 4, 5, 6 }, 2);
        }
        Assert.That(Scores(11), Is.EqualTo(Scores(11)));
        Assert.That(Scores(11), Is.Not.EqualTo(Scores(12)));
    }

    [Test]
    public void EarlyStoppingKeepsTheBestEpochAndLogsThroughMLContext()
    {
        var messages = new List<string>();
        var ml = D.Context;
        void OnLog(object? s, Microsoft.ML.LoggingEventArgs e) { lock (messages) messages.Add(e.Message); }
        ml.Log += OnLog;
        try
        {
            // A high learning rate over-fits quickly, so the validation metric peaks early.
            var o = Quick(new BiasedMatrixFactorizationTrainer.Options { LearningRate = 0.05, Factors = 64, EarlyStoppingPatience = 2 }, 30);
            using var model = ml.DeepRec().Trainers.MatrixFactorization(o).Fit(D.Train, D.Validation);
            var report = model.TrainingReport;
            Assert.That(report.BestEpoch, Is.Not.Null);
            double best = report.Epochs.Max(e => e.ValidationMetric!.Value);
            Assert.That(report.Epochs[report.BestEpoch!.Value - 1].ValidationMetric, Is.EqualTo(best));
            Assert.That(report.Epochs.Count, Is.LessThanOrEqualTo(Math.Min(30, report.BestEpoch.Value + 2)), "stopped after patience ran out");
            // The restored weights reproduce the best validation metric.
            var again = ml.DeepRec().Evaluation.EvaluateTopK(model, D.Validation, D.Train,
                new TopKEvaluationOptions { K = o.ValidationK, NegativesPerPositive = o.ValidationNegativesPerPositive, Seed = o.Seed, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" });
            Assert.That(again.Ndcg, Is.EqualTo(best).Within(1e-9));
        }
        finally { ml.Log -= OnLog; }
        Assert.That(messages, Has.Some.Contains("Epoch 1/30: loss ="));
        Assert.That(messages, Has.Some.Contains("validation NDCG@10"));
    }

    [Test]
    public void CancellationStopsTraining()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var o = Quick(new GmfTrainer.Options()); o.CancellationToken = cts.Token;
        Assert.Throws<OperationCanceledException>(() => D.Context.DeepRec().Trainers.Gmf(o).Fit(D.Train));
    }

    [Test]
    public void GpuRequestFallsBackToCpuOrFailsAsMLContextSays()
    {
        var ml = new MLContext(1) { GpuDeviceId = 0, FallbackToCpu = true };
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        using var model = ml.DeepRec().Trainers.Gmf(Quick(new GmfTrainer.Options(), 1)).Fit(D.Train);
        if (cuda.is_available()) Assert.Ignore("A CUDA device is present; the CPU fallback path is not exercised.");
        Assert.That(warnings, Has.Some.Contains("training on the CPU"));

        var strict = new MLContext(1) { GpuDeviceId = 0, FallbackToCpu = false };
        var ex = Assert.Throws<InvalidOperationException>(() => strict.DeepRec().Trainers.Gmf(Quick(new GmfTrainer.Options(), 1)).Fit(D.Train));
        Assert.That(ex!.Message, Does.Contain("GpuDeviceId"));
    }

    [Test]
    public void OnnxScoresMatchTheTorchNetworkForEveryModel()
    {
        var trainers = D.Context.DeepRec().Trainers;
        var models = new CollaborativeFilteringTransformer[]
        {
            trainers.MatrixFactorization(Quick(new BiasedMatrixFactorizationTrainer.Options(), 1)).Fit(D.Train),
            trainers.Gmf(Quick(new GmfTrainer.Options(), 1)).Fit(D.Train),
            trainers.Mlp(Quick(new MlpTrainer.Options { MlpLayers = new[] { 32, 16 } }, 1)).Fit(D.Train),
            trainers.NeuMF(Quick(new NeuMFTrainer.Options(), 1)).Fit(D.Train),
        };
        foreach (var model in models)
        {
            using (model)
            {
                var scored = model.Transform(D.Test);
                var users = scored.GetColumn<uint>("UserKey").Select(u => (int)u).ToArray();
                var items = scored.GetColumn<uint>("ItemKey").Select(i => (int)i).ToArray();
                var onnx = scored.GetColumn<float>("Score").ToArray();
                var probability = scored.GetColumn<float>("Probability").ToArray();
                var torchScores = new float[users.Length];
                for (int n = 0; n < users.Length; n++) torchScores[n] = model.ScoreCandidates(new[] { users[n] }, new[] { items[n] }, 1)[0];
                for (int n = 0; n < users.Length; n++)
                {
                    Assert.That(onnx[n], Is.EqualTo(torchScores[n]).Within(1e-5 * Math.Max(1, Math.Abs(torchScores[n]))), $"{model.ModelName} row {n}");
                    Assert.That(probability[n], Is.EqualTo(1 / (1 + Math.Exp(-torchScores[n]))).Within(1e-5), $"{model.ModelName} probability row {n}");
                }
            }
        }
    }

    [Test]
    public void NeuMFInitialisedFromGmfAndMlpStartsAsTheirWeightedSum()
    {
        random.manual_seed(1);
        using var gmf = new GmfModule(20, 30, 4);
        using var mlp = new MlpModule(20, 30, new[] { 16, 8 });
        using var neumf = new NeuMFModule(20, 30, 4, new[] { 16, 8 });
        neumf.InitializeFrom(gmf, mlp, 0.3);
        using var u = tensor(new long[] { 1, 5, 7, 19 });
        using var i = tensor(new long[] { 2, 29, 3, 11 });
        using var expected = gmf.call(u, i) * 0.3 + mlp.call(u, i) * 0.7;
        using var actual = neumf.call(u, i);
        Assert.That(actual.data<float>().ToArray(), Is.EqualTo(expected.data<float>().ToArray()).Within(1e-5));
    }

    [Test]
    public void NeuMFWithPretrainingTrainsEndToEnd()
    {
        var t = D.Context.DeepRec().Trainers;
        using var gmf = t.Gmf(Quick(new GmfTrainer.Options { Factors = 8, LearningRate = 0.005 }, 4)).Fit(D.Train);
        using var mlp = t.Mlp(Quick(new MlpTrainer.Options { MlpLayers = new[] { 32, 16, 8 }, LearningRate = 0.003 }, 4)).Fit(D.Train);
        using var neumf = t.NeuMF(Quick(new NeuMFTrainer.Options { Factors = 8, MlpLayers = new[] { 32, 16, 8 }, PretrainedGmf = gmf, PretrainedMlp = mlp, Optimizer = MLNet.DeepRec.Training.DeepRecOptimizer.Sgd, LearningRate = 0.05 }, 2)).Fit(D.Train);
        Assert.That(Sampled(neumf).HitRate, Is.GreaterThan(Popularity.Value.HitRate + 0.15));
        Assert.Throws<ArgumentException>(() => t.NeuMF(Quick(new NeuMFTrainer.Options { Factors = 16, MlpLayers = new[] { 32, 16, 8 }, PretrainedGmf = gmf, PretrainedMlp = mlp })).Fit(D.Train));
    }
}
