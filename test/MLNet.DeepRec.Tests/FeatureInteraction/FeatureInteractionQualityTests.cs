using Microsoft.ML;
using Microsoft.ML.Trainers;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.FeatureInteraction;

public class FeatureInteractionQualityTests
{
    private static PlantedData.Set D => PlantedData.Default;
    private static readonly string[] Keys = { "AKey", "BKey", "CKey" };
    private static readonly string[] Vectors = { "AVec", "BVec", "CVec" };

    private static T Quick<T>(T o, string[] columns, FeatureInteractionTask task, int epochs = 15) where T : FeatureInteractionTrainerOptions
    {
        o.FeatureColumnNames = columns; o.Task = task; o.NumberOfEpochs = epochs; o.Seed = 4; o.BatchSize = 128; o.LearningRate = 0.01; o.NumberOfThreads = 1;
        o.LabelColumnName = task == FeatureInteractionTask.Regression ? "Label" : "IsPositive";
        return o;
    }

    private static readonly Lazy<double> LinearRmse = new(() =>
    {
        var ml = D.Context;
        var linear = ml.Transforms.Concatenate("Features", "AVec", "BVec", "CVec", "X").Append(ml.Regression.Trainers.Sdca(new SdcaRegressionTrainer.Options { MaximumNumberOfIterations = 50 })).Fit(D.Train);
        return ml.Regression.Evaluate(linear.Transform(D.Test)).RootMeanSquaredError;
    });

    // The target is a pairwise A×B interaction: every feature-interaction model must recover it, which a linear model cannot.
    [TestCaseSource(typeof(FeatureInteractionModels), nameof(FeatureInteractionModels.All))]
    public void RegressionRecoversAPlantedPairwiseInteractionThatALinearModelCannot(FeatureInteractionModels.Model model)
    {
        var columns = Keys.Append("X").ToArray();
        using FeatureInteractionTransformer fitted = model.Create(D.Context.DeepRec().Trainers, o => Quick(o, columns, FeatureInteractionTask.Regression)).Fit(D.Train);
        var metrics = D.Context.Regression.Evaluate(fitted.Transform(D.Test));
        TestContext.Out.WriteLine($"{model}: test RMSE {metrics.RootMeanSquaredError:F4}; linear (SDCA on one-hot) {LinearRmse.Value:F4}; loss {fitted.TrainingReport.Epochs[0].Loss:F4} → {fitted.TrainingReport.Epochs[^1].Loss:F4}");
        Assert.That(metrics.RootMeanSquaredError, Is.LessThan(0.5 * LinearRmse.Value), "far better than a linear model");
        Assert.That(metrics.RootMeanSquaredError, Is.LessThan(0.3));
        Assert.That(fitted.TrainingReport.Epochs[^1].Loss, Is.LessThan(fitted.TrainingReport.Epochs[0].Loss));
    }

    // Binary objective: every model ranks the planted positives well (the Bayes-optimal AUC is about 0.87).
    [TestCaseSource(typeof(FeatureInteractionModels), nameof(FeatureInteractionModels.All))]
    public void BinaryClassificationRanksThePlantedPositives(FeatureInteractionModels.Model model)
    {
        using FeatureInteractionTransformer fitted = model.Create(D.Context.DeepRec().Trainers, o => Quick(o, Vectors, FeatureInteractionTask.BinaryClassification, 8)).Fit(D.Train);
        var metrics = D.Context.BinaryClassification.Evaluate(fitted.Transform(D.Test), "IsPositive");
        TestContext.Out.WriteLine($"{model}: AUC {metrics.AreaUnderRocCurve:F4}, log-loss {metrics.LogLoss:F4}; training loss {string.Join(" → ", fitted.TrainingReport.Epochs.Select(e => e.Loss.ToString("F3")))}");
        Assert.That(metrics.AreaUnderRocCurve, Is.GreaterThan(0.8));
        Assert.That(metrics.LogLoss, Is.LessThan(0.75), "better than the 1-bit prior");
    }

    // The same one-hot Vector<Single> columns drive NFM, AFM and ML.NET's FieldAwareFactorizationMachine in one
    // pipeline shape; all are scored by mlContext.BinaryClassification.Evaluate.
    [Test]
    public void BinaryNfmAfmAndMlNetFfmTrainSideBySideOnTheSameColumns()
    {
        var ml = D.Context;
        var nfm = ml.DeepRec().Trainers.Nfm(Quick(new NfmTrainer.Options { Factors = 16, BiInteractionDropoutRate = 0.1, HiddenDropoutRate = 0 }, Vectors, FeatureInteractionTask.BinaryClassification, 8));
        var afm = ml.DeepRec().Trainers.Afm(Quick(new AfmTrainer.Options { Factors = 16, AttentionSize = 8, DropoutRate = 0 }, Vectors, FeatureInteractionTask.BinaryClassification, 8));
        var ffm = ml.BinaryClassification.Trainers.FieldAwareFactorizationMachine(Vectors, "IsPositive");
        var results = new Dictionary<string, Microsoft.ML.Data.CalibratedBinaryClassificationMetrics>();
        using (var n = nfm.Fit(D.Train)) results["NFM"] = ml.BinaryClassification.Evaluate(n.Transform(D.Test), "IsPositive");
        using (var a = afm.Fit(D.Train)) results["AFM"] = ml.BinaryClassification.Evaluate(a.Transform(D.Test), "IsPositive");
        results["FFM"] = ml.BinaryClassification.Evaluate(ffm.Fit(D.Train).Transform(D.Test), "IsPositive");
        foreach (var (name, m) in results) TestContext.Out.WriteLine($"{name}: AUC {m.AreaUnderRocCurve:F4}, log-loss {m.LogLoss:F4}, accuracy {m.Accuracy:F4}");
        // Bayes-optimal AUC of the planted model is about 0.87.
        Assert.That(results["NFM"].AreaUnderRocCurve, Is.GreaterThan(0.8));
        Assert.That(results["AFM"].AreaUnderRocCurve, Is.GreaterThan(0.8));
        Assert.That(results["NFM"].LogLoss, Is.LessThan(0.75), "better than the 1-bit prior");
        Assert.That(results["FFM"].AreaUnderRocCurve, Is.GreaterThan(0.5));
    }

    [Test]
    public void EarlyStoppingOnValidationKeepsTheBestEpoch()
    {
        var o = Quick(new NfmTrainer.Options { HiddenLayers = Array.Empty<int>(), Factors = 8, BatchNormalization = false, BiInteractionDropoutRate = 0 }, Keys, FeatureInteractionTask.Regression, 30);
        o.EarlyStoppingPatience = 2; o.LearningRate = 0.05;
        using var model = D.Context.DeepRec().Trainers.Nfm(o).Fit(D.Train, D.Validation);
        var report = model.TrainingReport;
        Assert.That(report.ValidationMetricName, Is.EqualTo("-RMSE"));
        Assert.That(report.BestEpoch, Is.Not.Null);
        double best = report.Epochs.Max(e => e.ValidationMetric!.Value);
        Assert.That(report.Epochs[report.BestEpoch!.Value - 1].ValidationMetric, Is.EqualTo(best));
        var rmse = D.Context.Regression.Evaluate(model.Transform(D.Validation)).RootMeanSquaredError;
        Assert.That(-rmse, Is.EqualTo(best).Within(1e-4), "the kept weights are the best epoch's");
    }

    [Test]
    public void SameSeedSameModel()
    {
        var o = Quick(new NfmTrainer.Options { Factors = 8 }, Keys, FeatureInteractionTask.Regression, 2);
        using var a = D.Context.DeepRec().Trainers.Nfm(o).Fit(D.Train);
        using var b = D.Context.DeepRec().Trainers.Nfm(o).Fit(D.Train);
        Assert.That(b.ScoreWithTorch(D.Test), Is.EqualTo(a.ScoreWithTorch(D.Test)));
    }

    // NFM §4 / AFM §4.1: the feature embeddings (and linear part, global bias) start from a trained FM's.
    [Test]
    public void PretrainedModelInitialisesTheFeatureWeightsFromATrainedFm()
    {
        var trainers = D.Context.DeepRec().Trainers;
        var columns = Keys.Append("X").ToArray();
        using var fm = trainers.Nfm(Quick(new NfmTrainer.Options { HiddenLayers = Array.Empty<int>(), Factors = 16, BiInteractionDropoutRate = 0, BatchNormalization = false }, columns, FeatureInteractionTask.Regression)).Fit(D.Train);

        // A (practically) zero step size: after one epoch the copied weights are still the FM's.
        var frozen = Quick(new AfmTrainer.Options { Factors = 16, AttentionSize = 8, DropoutRate = 0, PretrainedModel = fm }, columns, FeatureInteractionTask.Regression, 1);
        frozen.Optimizer = DeepRecOptimizer.Sgd; frozen.LearningRate = 1e-12;
        using (var copy = trainers.Afm(frozen).Fit(D.Train))
        {
            using var a = copy.Module.FeatureEmbedding.Weight.detach().cpu();
            using var b = fm.Module.FeatureEmbedding.Weight.detach().cpu();
            Assert.That(a.allclose(b, rtol: 0, atol: 1e-6), Is.True, "embeddings copied");
            Assert.That(copy.Module.ParameterCount, Is.Not.EqualTo(fm.Module.ParameterCount), "the rest of the network is AFM's own");
        }

        // Starting from the FM, the first epoch already fits far better than from a random start.
        using var fromFm = trainers.Afm(Quick(new AfmTrainer.Options { Factors = 16, AttentionSize = 8, DropoutRate = 0, PretrainedModel = fm }, columns, FeatureInteractionTask.Regression, 1)).Fit(D.Train);
        using var fromScratch = trainers.Afm(Quick(new AfmTrainer.Options { Factors = 16, AttentionSize = 8, DropoutRate = 0 }, columns, FeatureInteractionTask.Regression, 1)).Fit(D.Train);
        TestContext.Out.WriteLine($"first-epoch loss: from FM {fromFm.TrainingReport.Epochs[0].Loss:F4}, from scratch {fromScratch.TrainingReport.Epochs[0].Loss:F4}");
        Assert.That(fromFm.TrainingReport.Epochs[0].Loss, Is.LessThan(fromScratch.TrainingReport.Epochs[0].Loss));
    }

    [Test]
    public void PretrainedModelWithOtherFactorsOrColumnsIsRejected()
    {
        var trainers = D.Context.DeepRec().Trainers;
        var columns = Keys.Append("X").ToArray();
        using var fm = trainers.Nfm(Quick(new NfmTrainer.Options { HiddenLayers = Array.Empty<int>(), Factors = 8, BatchNormalization = false }, columns, FeatureInteractionTask.Regression, 1)).Fit(D.Train);
        var otherFactors = trainers.Nfm(Quick(new NfmTrainer.Options { Factors = 16, PretrainedModel = fm }, columns, FeatureInteractionTask.Regression, 1));
        Assert.That(() => otherFactors.Fit(D.Train), Throws.ArgumentException.With.Message.Contains("factors"));
        var otherColumns = trainers.Nfm(Quick(new NfmTrainer.Options { Factors = 8, PretrainedModel = fm }, Keys, FeatureInteractionTask.Regression, 1));
        Assert.That(() => otherColumns.Fit(D.Train), Throws.ArgumentException.With.Message.Contains("columns"));
    }

    [Test]
    public void FastDropoutDropsAFractionPAndKeepsTheMeanInTrainingAndIsTheIdentityInEval()
    {
        using var dropout = new MLNet.DeepRec.Models.FastDropout(0.3);
        using var x = TorchSharp.torch.ones(1000, 100);
        dropout.train();
        using var y = dropout.call(x);
        double zeroFraction = y.eq(0).to(TorchSharp.torch.float32).mean().item<float>();
        double mean = y.mean().item<float>();
        Assert.That(zeroFraction, Is.EqualTo(0.3).Within(0.01));
        Assert.That(mean, Is.EqualTo(1.0).Within(0.02));
        dropout.eval();
        using var z = dropout.call(x);
        Assert.That(z.allclose(x, rtol: 0, atol: 0), Is.True);
    }
}
