// <doc:feature-interaction-minimal>
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
// </doc:feature-interaction-minimal>
// <doc:feature-interaction-libfm>
using MLNet.DeepRec.Data;   // LibFmLoaderOptions
// </doc:feature-interaction-libfm>
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.DocSamples.FeatureInteraction;

/// <summary>The samples of docs/models/feature-interaction.md, run as written on small generated data.</summary>
[NonParallelizable]
public class FeatureInteractionSampleTests
{
    [Test]
    public void NfmRegressionTrainsEvaluatesSavesAndReloads()
    {
        using var directory = new SampleDirectory();
        // <doc:feature-interaction-minimal>
        var ml = new MLContext(seed: 0);
        // Context-aware data: who (User), what (Item), when (Daytime) and a numeric target (Label, e.g. a rating).
        IDataView data = ml.Data.LoadFromEnumerable(ContextData.Generate(rows: 3000, seed: 1));
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.2, seed: 1);

        // Each categorical column becomes a key column; every feature column is one field of the model.
        string[] fields = { "UserKey", "ItemKey", "DaytimeKey" };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("UserKey", "User")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "Item"))
            .Append(ml.Transforms.Conversion.MapValueToKey("DaytimeKey", "Daytime"))
            .Append(ml.DeepRec().Trainers.Nfm(fields, labelColumnName: "Label", factors: 16, numberOfEpochs: 40));
        var model = pipeline.Fit(split.TrainSet);

        // ML.NET's regression evaluator reads the Label and Score columns.
        RegressionMetrics metrics = ml.Regression.Evaluate(model.Transform(split.TestSet));
        Console.WriteLine($"NFM: test RMSE {metrics.RootMeanSquaredError:F3}");

        // Save the whole chain, reload it in a fresh context (libtorch is not needed) and predict one row.
        ml.Model.Save(model, data.Schema, "nfm.zip");
        var serving = new MLContext();
        ITransformer loaded = DeepRecServing.LoadModel(serving, "nfm.zip");
        var engine = serving.Model.CreatePredictionEngine<ContextRow, RatingPrediction>(loaded);
        RatingPrediction prediction = engine.Predict(new ContextRow { User = "u3", Item = "i5", Daytime = "evening" });
        Console.WriteLine($"u3, i5, evening: {prediction.Score:F2}");
        // </doc:feature-interaction-minimal>

        double labelStd = StandardDeviation(ml.Data.CreateEnumerable<ContextRow>(split.TestSet, reuseRowObject: false).Select(r => (double)r.Label));
        TestContext.Out.WriteLine($"RMSE {metrics.RootMeanSquaredError:F3}, predicting the mean would give about {labelStd:F3}");
        Assert.That(metrics.RootMeanSquaredError, Is.LessThan(0.6 * labelStd), "NFM must learn the planted interaction");
        var inMemory = ml.Model.CreatePredictionEngine<ContextRow, RatingPrediction>(model).Predict(new ContextRow { User = "u3", Item = "i5", Daytime = "evening" });
        Assert.That(prediction.Score, Is.EqualTo(inMemory.Score).Within(1e-4f), "reloaded prediction equals the in-memory one");
        Assert.That(loaded, Is.Not.InstanceOf<FeatureInteractionTransformer>());
        model.LastTransformer.Dispose();
    }

    [Test]
    public void DeepFmDcnV2AndWideAndDeepTrainSideBySide()
    {
        // <doc:feature-interaction-deep>
        var ml = new MLContext(seed: 0);
        IDataView data = ml.Data.LoadFromEnumerable(ContextData.Generate(rows: 3000, seed: 1));
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.2, seed: 1);
        string[] fields = { "UserKey", "ItemKey", "DaytimeKey" };
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "User")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "Item"))
            .Append(ml.Transforms.Conversion.MapValueToKey("DaytimeKey", "Daytime"));

        // Three models with a deep component over the same field embeddings; each is one catalog call.
        var results = new Dictionary<string, double>();
        var trainers = new (string Name, IEstimator<ITransformer> Trainer)[]
        {
            ("DeepFM", ml.DeepRec().Trainers.DeepFm(new DeepFmTrainer.Options
                { FeatureColumnNames = fields, Factors = 16, HiddenLayers = [64, 32], HiddenDropoutRate = 0.1, NumberOfEpochs = 30 })),
            ("DCN-V2", ml.DeepRec().Trainers.DcnV2(new DcnV2Trainer.Options
                { FeatureColumnNames = fields, Factors = 16, CrossLayers = 2, HiddenLayers = [64, 32], NumberOfEpochs = 30 })),
            ("Wide&Deep", ml.DeepRec().Trainers.WideAndDeep(new WideAndDeepTrainer.Options
                { FeatureColumnNames = fields, Factors = 16, HiddenLayers = [64, 32], HiddenDropoutRate = 0.1, NumberOfEpochs = 30 })),
        };
        foreach (var (name, trainer) in trainers)
        {
            var model = keys.Append(trainer).Fit(split.TrainSet);
            RegressionMetrics metrics = ml.Regression.Evaluate(model.Transform(split.TestSet));
            Console.WriteLine($"{name}: test RMSE {metrics.RootMeanSquaredError:F3}");
            results[name] = metrics.RootMeanSquaredError;
            (model.LastTransformer as IDisposable)?.Dispose(); // frees the TorchSharp network now, not at the next GC
        }
        // </doc:feature-interaction-deep>

        double labelStd = StandardDeviation(ml.Data.CreateEnumerable<ContextRow>(split.TestSet, reuseRowObject: false).Select(r => (double)r.Label));
        foreach (var (name, rmse) in results)
        {
            TestContext.Out.WriteLine($"{name}: RMSE {rmse:F3}, predicting the mean would give about {labelStd:F3}");
            Assert.That(rmse, Is.LessThan(0.6 * labelStd), $"{name} must learn the planted interaction");
        }
    }

    private static double StandardDeviation(IEnumerable<double> values)
    {
        var v = values.ToArray();
        double mean = v.Average();
        return Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / v.Length);
    }

    [Test]
    public void AfmBinaryClassificationOverOneHotVectorsExplainsItsScores()
    {
        var ml = new MLContext(seed: 0);
        var split = ml.Data.TrainTestSplit(ml.Data.LoadFromEnumerable(ContextData.Generate(rows: 3000, seed: 1)), testFraction: 0.2, seed: 1);
        // <doc:feature-interaction-afm>
        // Binary target (Clicked) over one-hot vectors: the columns ML.NET's FieldAwareFactorizationMachine takes too.
        var oneHot = ml.Transforms.Categorical.OneHotEncoding("UserVec", "User")
            .Append(ml.Transforms.Categorical.OneHotEncoding("ItemVec", "Item"))
            .Append(ml.Transforms.Categorical.OneHotEncoding("DaytimeVec", "Daytime"))
            .Fit(split.TrainSet);
        IDataView train = oneHot.Transform(split.TrainSet), test = oneHot.Transform(split.TestSet);
        string[] vectors = { "UserVec", "ItemVec", "DaytimeVec" };

        AfmTransformer afm = ml.DeepRec().Trainers.Afm(new AfmTrainer.Options
        {
            FeatureColumnNames = vectors, LabelColumnName = "Clicked", Task = FeatureInteractionTask.BinaryClassification,
            Factors = 16, AttentionSize = 16, NumberOfEpochs = 40,
        }).Fit(train);
        var ffm = ml.BinaryClassification.Trainers.FieldAwareFactorizationMachine(vectors, "Clicked").Fit(train);

        CalibratedBinaryClassificationMetrics afmMetrics = ml.BinaryClassification.Evaluate(afm.Transform(test), "Clicked");
        CalibratedBinaryClassificationMetrics ffmMetrics = ml.BinaryClassification.Evaluate(ffm.Transform(test), "Clicked");
        Console.WriteLine($"AFM: AUC {afmMetrics.AreaUnderRocCurve:F3}, log-loss {afmMetrics.LogLoss:F3}");
        Console.WriteLine($"FFM: AUC {ffmMetrics.AreaUnderRocCurve:F3}, log-loss {ffmMetrics.LogLoss:F3}");
        // </doc:feature-interaction-afm>

        // <doc:feature-interaction-explain>
        foreach (AfmExplanation row in afm.Explain(test, maxRows: 3))
        {
            Console.WriteLine($"row {row.Row}: score {row.Score:F3}");
            foreach (FeaturePairAttention pair in row.Pairs.Take(3))   // pairs by decreasing attention weight
                Console.WriteLine($"  {pair.FirstFeature} × {pair.SecondFeature}: attention {pair.Weight:F3}, contribution {pair.Contribution:+0.000;-0.000}");
        }
        // </doc:feature-interaction-explain>

        TestContext.Out.WriteLine($"AFM AUC {afmMetrics.AreaUnderRocCurve:F3}, FFM AUC {ffmMetrics.AreaUnderRocCurve:F3}");
        Assert.That(afmMetrics.AreaUnderRocCurve, Is.GreaterThan(0.75), "AFM learns the planted interaction");
        Assert.That(ffmMetrics.AreaUnderRocCurve, Is.GreaterThan(0.6));
        var explanations = afm.Explain(test, maxRows: 3);
        Assert.That(explanations, Has.Count.EqualTo(3));
        foreach (var row in explanations)
        {
            Assert.That(row.Pairs, Has.Count.EqualTo(3), "three fields, three pairs");
            Assert.That(row.Pairs.Sum(p => p.Weight), Is.EqualTo(1).Within(1e-4));
            Assert.That(row.Pairs.Select(p => p.Weight), Is.Ordered.Descending);
        }
        afm.Dispose();
    }

    [Test]
    public void LibFmFilesLoadIntoFieldColumns()
    {
        using var directory = new SampleDirectory();
        WriteLibFm("train.libfm", 400, 1);
        WriteLibFm("validation.libfm", 100, 2);
        WriteLibFm("test.libfm", 100, 3);
        var ml = new MLContext(seed: 0);
        // <doc:feature-interaction-libfm>
        var data = ml.DeepRec().Data;
        // Files with one feature per field per line, in field order (as the NFM/AFM papers' files): infer the field ranges.
        LibFmLoaderOptions layout = data.InferLibFmFields("train.libfm", "validation.libfm", "test.libfm");
        IDataView train = data.LoadLibFm("train.libfm", layout);           // Label (Single) + Field0, Field1, … sparse vectors
        IDataView validation = data.LoadLibFm("validation.libfm", layout);

        var nfm = ml.DeepRec().Trainers.Nfm(new NfmTrainer.Options
        {
            FeatureColumnNames = Enumerable.Range(0, layout.FieldStarts!.Length).Select(f => $"Field{f}").ToArray(),
            NumberOfEpochs = 20, EarlyStoppingPatience = 3,
        }).Fit(train, validation);

        layout.BooleanLabel = true;                                        // Label = label > 0: for binary tasks and ML.NET's FFM
        IDataView trainBinary = data.LoadLibFm("train.libfm", layout);
        IDataView single = data.LoadLibFm("train.libfm");                  // no field layout: one sparse "Features" vector
        // </doc:feature-interaction-libfm>

        Assert.That(layout.FieldStarts, Is.EqualTo(new[] { 0, 20, 35 }));
        Assert.That(layout.FeatureCount, Is.EqualTo(40));
        Assert.That(train.Schema.Select(c => c.Name), Is.EqualTo(new[] { "Label", "Field0", "Field1", "Field2" }));
        Assert.That(trainBinary.Schema["Label"].Type, Is.EqualTo(BooleanDataViewType.Instance));
        Assert.That(single.Schema.Select(c => c.Name), Is.EquivalentTo(new[] { "Label", "Features" }));
        Assert.That(nfm.FeatureCount, Is.EqualTo(41), "40 features and the padding row");
        Assert.That(nfm.TrainingReport.BestEpoch, Is.Not.Null);
        nfm.Dispose();
    }

    // Three fields (20 users, 15 items, 5 contexts) with a planted user×item effect, one feature per field per line.
    private static void WriteLibFm(string path, int rows, int seed)
    {
        var rng = new Random(seed);
        var lines = new List<string>();
        for (int n = 0; n < rows; n++)
        {
            int u = rng.Next(20), i = rng.Next(15), c = rng.Next(5);
            double y = (u % 3 == i % 3 ? 1 : -1) * (rng.NextDouble() < 0.9 ? 1 : -1);
            lines.Add(FormattableString.Invariant($"{y} {u}:1 {20 + i}:1 {35 + c}:1"));
        }
        // Make sure every index occurs, so that the inferred layout covers all of them.
        for (int u = 0; u < 20; u++) lines.Add(FormattableString.Invariant($"1 {u}:1 {20 + u % 15}:1 {35 + u % 5}:1"));
        File.WriteAllLines(path, lines);
    }

    [Test]
    public void AfmStartsFromATrainedFm()
    {
        var ml = new MLContext(seed: 0);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "User")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "Item"))
            .Append(ml.Transforms.Conversion.MapValueToKey("DaytimeKey", "Daytime"));
        var rows = ml.Data.LoadFromEnumerable(ContextData.Generate(rows: 3000, seed: 2));
        var split = ml.Data.TrainTestSplit(rows, testFraction: 0.2, seed: 2);
        var fitted = keys.Fit(split.TrainSet);
        IDataView train = fitted.Transform(split.TrainSet), validation = fitted.Transform(split.TestSet);
        string[] fields = { "UserKey", "ItemKey", "DaytimeKey" };
        // <doc:feature-interaction-pretraining>
        // The papers' FM: NFM without hidden layers and without batch norm.
        var fm = ml.DeepRec().Trainers.Nfm(new NfmTrainer.Options
        {
            FeatureColumnNames = fields, HiddenLayers = Array.Empty<int>(), BatchNormalization = false,
            Factors = 16, BiInteractionDropoutRate = 0.5, LearningRate = 0.005, NumberOfEpochs = 30, EarlyStoppingPatience = 3,
        }).Fit(train, validation);

        // AFM over the same columns with the same Factors, starting from the FM's embeddings and linear weights.
        var afm = ml.DeepRec().Trainers.Afm(new AfmTrainer.Options
        {
            FeatureColumnNames = fields, Factors = 16, AttentionSize = 16, DropoutRate = 0.5,
            NumberOfEpochs = 15, EarlyStoppingPatience = 3, PretrainedModel = fm,
        }).Fit(train, validation);
        // </doc:feature-interaction-pretraining>

        var fmRmse = ml.Regression.Evaluate(fm.Transform(validation)).RootMeanSquaredError;
        var afmRmse = ml.Regression.Evaluate(afm.Transform(validation)).RootMeanSquaredError;
        TestContext.Out.WriteLine($"FM RMSE {fmRmse:F3}, AFM from FM RMSE {afmRmse:F3}");
        Assert.That(fm.ModelName, Is.EqualTo("NFM"));
        Assert.That(afm.ModelName, Is.EqualTo("AFM"));
        Assert.That(afmRmse, Is.LessThan(0.5), "well below the label's standard deviation (about 0.75)");
        // The head start: after one epoch the pre-trained AFM is ahead of one trained from scratch.
        var scratch = ml.DeepRec().Trainers.Afm(new AfmTrainer.Options
            { FeatureColumnNames = fields, Factors = 16, AttentionSize = 16, DropoutRate = 0.5, NumberOfEpochs = 1 }).Fit(train, validation);
        TestContext.Out.WriteLine($"epoch 1 validation {afm.TrainingReport.ValidationMetricName}: pre-trained {afm.TrainingReport.Epochs[0].ValidationMetric:F3}, from scratch {scratch.TrainingReport.Epochs[0].ValidationMetric:F3}");
        Assert.That(afm.TrainingReport.Epochs[0].ValidationMetric, Is.GreaterThan(scratch.TrainingReport.Epochs[0].ValidationMetric!.Value));
        scratch.Dispose();
        var other = new AfmTrainer.Options { FeatureColumnNames = fields, Factors = 8, PretrainedModel = fm, NumberOfEpochs = 1 };
        Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.Afm(other).Fit(train), "another Factors is rejected");
        fm.Dispose(); afm.Dispose();
    }
}

// <doc:feature-interaction-minimal>
public sealed class ContextRow
{
    public string User { get; set; } = "";
    public string Item { get; set; } = "";
    public string Daytime { get; set; } = "";
    public float Label { get; set; }
    public bool Clicked { get; set; }
}

public sealed class RatingPrediction { public float Score { get; set; } }

public static class ContextData
{
    // Made-up data with a planted structure: the target depends on how the user's taste matches the item,
    // and in the evening even-numbered items do better.
    public static IEnumerable<ContextRow> Generate(int rows, int seed)
    {
        var rng = new Random(seed);
        string[] daytimes = { "morning", "afternoon", "evening" };
        for (int n = 0; n < rows; n++)
        {
            int user = rng.Next(50), item = rng.Next(40), daytime = rng.Next(3);
            double taste = Math.Cos(0.7 * user - 1.3 * item);
            double target = 3 + taste + (daytime == 2 && item % 2 == 0 ? 0.5 : 0) + 0.2 * (rng.NextDouble() - 0.5);
            yield return new ContextRow
            {
                User = $"u{user}", Item = $"i{item}", Daytime = daytimes[daytime],
                Label = (float)target, Clicked = target > 3.2,
            };
        }
    }
}
// </doc:feature-interaction-minimal>
