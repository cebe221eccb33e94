using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.FeatureInteraction;

public class FeatureInteractionServingTests
{
    private static PlantedData.Set D => PlantedData.Default;

    // Mixed inputs: key columns, a sparse one-hot vector (TopK path in ONNX) and a dense numeric vector.
    private static readonly string[] Mixed = { "AKey", "BVec", "CKey", "X" };

    private static FeatureInteractionTransformer Train(FeatureInteractionModels.Model model, FeatureInteractionTask task) =>
        model.Create(D.Context.DeepRec().Trainers, o =>
        {
            o.FeatureColumnNames = Mixed; o.Task = task; o.NumberOfEpochs = 2; o.Seed = 1;
            o.LabelColumnName = task == FeatureInteractionTask.Regression ? "Label" : "IsPositive";
        }).Fit(D.Train);

    private static IEnumerable<TestCaseData> EveryModelAndTask() =>
        from model in FeatureInteractionModels.All
        from task in new[] { FeatureInteractionTask.Regression, FeatureInteractionTask.BinaryClassification }
        select new TestCaseData(model, task).SetArgDisplayNames(model.Name, task.ToString());

    private static void AssertClose(float[] actual, float[] expected, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length));
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5 * Math.Max(1, Math.Abs(expected[i]))), $"{what}, row {i}");
    }

    [TestCaseSource(nameof(EveryModelAndTask))]
    public void OnnxRuntimeMatchesTorchSharpAndSurvivesSaveLoad(FeatureInteractionModels.Model model, FeatureInteractionTask task)
    {
        var ml = D.Context;
        using var fitted = Train(model, task);
        float[] torchScores = fitted.ScoreWithTorch(D.Test);
        var scored = fitted.Transform(D.Test);
        float[] onnxScores = scored.GetColumn<float>("Score").ToArray();
        AssertClose(onnxScores, torchScores, "ONNX Runtime vs TorchSharp");
        if (task == FeatureInteractionTask.BinaryClassification)
        {
            var probabilities = scored.GetColumn<float>("Probability").ToArray();
            var predicted = scored.GetColumn<bool>("PredictedLabel").ToArray();
            for (int i = 0; i < probabilities.Length; i++)
            {
                Assert.That(probabilities[i], Is.EqualTo(1 / (1 + MathF.Exp(-torchScores[i]))).Within(1e-5));
                Assert.That(predicted[i], Is.EqualTo(probabilities[i] > 0.5f));
            }
            Assert.DoesNotThrow(() => ml.BinaryClassification.Evaluate(scored, "IsPositive"));
        }
        else Assert.DoesNotThrow(() => ml.Regression.Evaluate(scored));

        // Featurizer + model saved as one ML.NET model, loaded in a fresh context: same scores from raw rows.
        string path = Path.Combine(Path.GetTempPath(), $"fi-{model.Name.Replace(' ', '-')}-{task}-{Guid.NewGuid():N}.zip");
        try
        {
            var chain = new TransformerChain<ITransformer>(D.Featurizer, fitted);
            var raw = ml.Data.LoadFromEnumerable(PlantedData.Rows(200, 3));
            ml.Model.Save(chain, raw.Schema, path);
            var loadContext = new MLContext();
            DeepRecServing.RegisterForLoading(loadContext);
            var loaded = loadContext.Model.Load(path, out _);
            float[] reloaded = loaded.Transform(loadContext.Data.LoadFromEnumerable(PlantedData.Rows(200, 3))).GetColumn<float>("Score").ToArray();
            AssertClose(reloaded, onnxScores.Take(200).ToArray(), "loaded model vs in-memory model");
            using (var engine = loadContext.Model.CreatePredictionEngine<PlantedData.Row, ScoreOnly>(loaded))
                Assert.That(engine.Predict(PlantedData.Rows(1, 3)[0]).Score, Is.EqualTo(onnxScores[0]).Within(1e-5 * Math.Max(1, Math.Abs(onnxScores[0]))));
            (loaded as IDisposable)?.Dispose();
        }
        finally { File.Delete(path); }
    }

    public sealed class ScoreOnly { public float Score { get; set; } }

    // Documented behaviour: an unseen value is "no feature" (x = 0). So two different unseen values score the same row
    // identically, the TorchSharp network agrees with ONNX Runtime, and a known value does change the score.
    [TestCaseSource(typeof(FeatureInteractionModels), nameof(FeatureInteractionModels.All))]
    public void UnseenCategoricalValuesContributeNothingAndScoreFinitely(FeatureInteractionModels.Model model)
    {
        var ml = D.Context;
        using var fitted = model.Create(ml.DeepRec().Trainers, o =>
        {
            o.FeatureColumnNames = ["AKey", "BKey", "CKey"]; o.NumberOfEpochs = 3; o.Seed = 2;
        }).Fit(D.Train);
        float[] Score(PlantedData.Row[] rows) => fitted.Transform(D.Featurizer.Transform(ml.Data.LoadFromEnumerable(rows))).GetColumn<float>("Score").ToArray();
        var rows = PlantedData.Rows(3, 7);
        rows[1].C = "never-seen";
        float[] first = Score(rows);
        Assert.That(first.All(float.IsFinite), Is.True);
        float[] torch = fitted.ScoreWithTorch(D.Featurizer.Transform(ml.Data.LoadFromEnumerable(rows)));
        Assert.That(first[1], Is.EqualTo(torch[1]).Within(1e-5 * Math.Max(1, Math.Abs(torch[1]))), "ONNX Runtime and TorchSharp agree on the unseen value");
        rows[1].C = "another-never-seen-value";
        Assert.That(Score(rows)[1], Is.EqualTo(first[1]), "every unseen value is the same 'no feature'");
        rows[1].C = rows[0].C;
        Assert.That(Score(rows)[1], Is.Not.EqualTo(first[1]).Within(1e-7), "a known value does contribute");
    }

    [Test]
    public void AfmExplanationsPutTheAttentionOnThePlantedPair()
    {
        var ml = D.Context;
        using var afm = ml.DeepRec().Trainers.Afm(new AfmTrainer.Options
        {
            FeatureColumnNames = new[] { "AKey", "BKey", "CKey" }, Factors = 16, AttentionSize = 8, DropoutRate = 0, NumberOfEpochs = 15, BatchSize = 128, LearningRate = 0.01, Seed = 4,
        }).Fit(D.Train);
        var explanations = afm.Explain(D.Test, maxRows: 300);
        Assert.That(explanations, Has.Count.EqualTo(300));
        var first = explanations[0];
        Assert.That(first.Pairs, Has.Count.EqualTo(3));
        Assert.That(first.Pairs.Sum(p => p.Weight), Is.EqualTo(1).Within(1e-4));
        Assert.That(first.Pairs[0].FirstFeature, Does.StartWith(first.Pairs[0].FirstColumn + "="), "readable names from KeyValues");
        float[] scores = afm.Transform(D.Test).GetColumn<float>("Score").Take(300).ToArray();
        Assert.That(first.Score, Is.EqualTo(scores[0]).Within(1e-5 * Math.Max(1, Math.Abs(scores[0]))));
        double ab = explanations.Average(e => e.Pairs.Single(p => p.FirstColumn == "AKey" && p.SecondColumn == "BKey").Weight);
        double others = explanations.Average(e => e.Pairs.Where(p => !(p.FirstColumn == "AKey" && p.SecondColumn == "BKey")).Average(p => p.Weight));
        TestContext.Out.WriteLine($"mean attention on A×B: {ab:F3}; on pairs with C: {others:F3}. Row 0: {string.Join("; ", first.Pairs.Select(p => $"{p.FirstFeature} × {p.SecondFeature}: {p.Weight:F3} ({p.Contribution:+0.000;-0.000})"))}");
        double abContribution = explanations.Average(e => Math.Abs(e.Pairs.Single(p => p.FirstColumn == "AKey" && p.SecondColumn == "BKey").Contribution));
        double otherContribution = explanations.Average(e => e.Pairs.Where(p => !(p.FirstColumn == "AKey" && p.SecondColumn == "BKey")).Average(p => Math.Abs(p.Contribution)));
        TestContext.Out.WriteLine($"mean |contribution| of A×B: {abContribution:F3}; of pairs with C: {otherContribution:F3}");
        Assert.That(ab, Is.GreaterThan(others), "the planted A×B interaction gets the most attention");
        Assert.That(abContribution, Is.GreaterThan(4 * otherContribution), "and dominates the interaction part of the score");
    }
}
