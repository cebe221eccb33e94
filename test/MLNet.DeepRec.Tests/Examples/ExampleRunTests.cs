using System.Globalization;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Examples;

/// <summary>
/// Runs the examples on their generated default data, in child processes, and checks what their READMEs promise: the
/// models beat their baselines, the saved and reloaded model predicts like the in-memory one, and the planted
/// structure shows up in the output.
/// </summary>
[TestFixture]
[NonParallelizable] // each example uses the machine's cores; running them one at a time keeps each well under a minute
public class ExampleRunTests
{
    // A guard against a hung child, not a speed check: each runs in well under a minute on an idle 2-core machine, but
    // MovieRecommendation took over 2 minutes while a benchmark kept one core busy (2026-12-05).
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(6);

    private static string RunExample(string example, params string[] arguments)
    {
        var (exitCode, stdout, stderr, elapsed) = ExampleProcess.Run(ExampleProcess.Dll(example), arguments, Timeout);
        TestContext.Out.WriteLine($"{string.Join(' ', arguments.Prepend(example))}: {elapsed.TotalSeconds:F1} s\n{stdout}");
        Assert.That(exitCode, Is.EqualTo(0), $"{example} failed.\nstdout:\n{stdout}\nstderr:\n{stderr}");
        return stdout;
    }

    /// <summary>The numbers after <paramref name="name"/> on the output line that starts with it (a results table row).</summary>
    private static double[] Row(string stdout, string name)
    {
        var match = Regex.Match(stdout, $@"^ +{Regex.Escape(name)} +(?<values>[-0-9. ]+)$", RegexOptions.Multiline);
        Assert.That(match.Success, Is.True, $"No table row '{name}' in:\n{stdout}");
        return match.Groups["values"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
    }

    private static string Line(string stdout, string prefix)
    {
        string? line = stdout.Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(l => l.TrimStart().StartsWith(prefix, StringComparison.Ordinal));
        Assert.That(line, Is.Not.Null, $"No line starting with '{prefix}' in:\n{stdout}");
        return line!;
    }

    [Test]
    public void ContextAwareRecommendation_FactorizationMachinesBeatTheLinearBaseline_AndTheReloadedModelPredictsTheSame()
    {
        string stdout = RunExample("ContextAwareRecommendation");

        // Table rows: AUC, LogLoss, Accuracy, train s.
        double linear = Row(stdout, "Logistic regression")[0];
        double ffm = Row(stdout, "ML.NET FFM")[0];
        foreach (string model in new[] { "FM", "NFM", "AFM" })
        {
            double auc = Row(stdout, model)[0];
            Assert.That(auc, Is.GreaterThan(linear + 0.1), $"{model} learns the planted pairwise interactions a linear model cannot");
            Assert.That(auc, Is.GreaterThan(ffm), $"{model} beats ML.NET's field-aware FM with its defaults");
        }

        // AFM's attention: the planted pairs come first; the noise field (Weekday) contributes least.
        string[] pairs = Regex.Matches(stdout, @"^  (?<pair>\w+ × \w+) +[0-9.]+  \(", RegexOptions.Multiline).Select(m => m.Groups["pair"].Value).ToArray();
        Assert.That(pairs, Has.Length.EqualTo(10), stdout);
        Assert.That(pairs[0], Is.EqualTo("User × App"));
        Assert.That(pairs[1..3], Is.EquivalentTo(new[] { "App × DayTime", "App × Weather" }));
        Assert.That(pairs.TakeLast(4).Count(p => p.Contains("Weekday", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(3), "the noise field's pairs rank last");

        // Save → load in a fresh context → the same probabilities, in bulk and through the consumption code.
        var reload = Regex.Match(Line(stdout, "Saved NFM to"), @"= (?<diff>\S+)$");
        Assert.That(double.Parse(reload.Groups["diff"].Value, CultureInfo.InvariantCulture), Is.LessThan(1e-6));
        var predict = Regex.Match(Line(stdout, "Predict("), @"probability (?<loaded>[0-9.]+) \(in-memory model: (?<memory>[0-9.]+);");
        Assert.That(predict.Success, Is.True, stdout);
        Assert.That(predict.Groups["loaded"].Value, Is.EqualTo(predict.Groups["memory"].Value));

        // Context matters: the same user's top apps differ between a sunny Monday morning and a rainy Saturday night.
        string[] tops = stdout.Split('\n').Where(l => l.StartsWith("Top 5 apps for", StringComparison.Ordinal)).Select(l => l[l.IndexOf("):", StringComparison.Ordinal)..]).ToArray();
        Assert.That(tops, Has.Length.EqualTo(2), stdout);
        Assert.That(tops[0], Is.Not.EqualTo(tops[1]));
    }

    [Test]
    public void NextItemRecommendation_SasRecBeatsPopularity_AndTheReloadedModelRecommendsTheSame()
    {
        string stdout = RunExample("NextItemRecommendation");

        // Table rows: sampled HR@10, NDCG@10, full-ranking HR@10, NDCG@10, train s.
        double[] popularity = Row(stdout, "Popularity"), sasrec = Row(stdout, "SASRec");
        Assert.That(sasrec[0], Is.GreaterThan(popularity[0] + 0.3), "sampled HR@10");
        Assert.That(sasrec[1], Is.GreaterThan(popularity[1] + 0.3), "sampled NDCG@10");
        Assert.That(sasrec[3], Is.GreaterThan(popularity[3] + 0.2), "full-ranking NDCG@10");

        Assert.That(Line(stdout, "In-memory model.Recommend gives the same top 10:"), Does.EndWith("True"));
        // The planted successor of the history's last item is among the reloaded model's top 5.
        string planted = Line(stdout, "Planted successor of")[^"item-000".Length..];
        Assert.That(Line(stdout, "Predict → top 5 next items:"), Does.Contain(planted + " ("));
    }

    [Test]
    public void MovieRecommendation_NeuMFAndMfBeatPopularity_AndTheReloadedModelScores()
    {
        string stdout = RunExample("MovieRecommendation", "--quick");

        // Table rows: HR@10, NDCG@10, train s.
        double popularity = Row(stdout, "Popularity")[1];
        Assert.That(Row(stdout, "MF")[1], Is.GreaterThan(popularity + 0.2), "MF NDCG@10");
        Assert.That(Row(stdout, "NeuMF")[1], Is.GreaterThan(popularity + 0.2), "NeuMF NDCG@10");
        Assert.That(Line(stdout, "Saved model reloaded from MovieRecommendation.zip:"), Does.Match(@"Probability 0\.\d{3}$"));
    }

    // The rating mode of ML.NET's movie tutorial: both models predict ratings well below the mean-rating predictor's error.
    [Test]
    public void MovieRecommendationRatings_ModelsBeatTheMeanRating_AndPredictARating()
    {
        string stdout = RunExample("MovieRecommendation", "--ratings", "--quick");

        // Table rows: RMSE, MAE, R², train s; the mean-rating row has the RMSE only.
        double mean = Row(stdout, "Mean rating")[0];
        Assert.That(Row(stdout, "MF")[0], Is.LessThan(mean - 0.1), "MF RMSE");
        Assert.That(Row(stdout, "NeuMF")[0], Is.LessThan(mean - 0.1), "NeuMF RMSE");
        Assert.That(Line(stdout, "MF predicts user"), Does.Match(@"rate movie \S+ [1-5]\.\d\d stars\.$"));
    }
}
