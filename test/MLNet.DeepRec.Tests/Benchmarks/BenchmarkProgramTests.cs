using System.Globalization;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Tests.Examples;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Benchmarks;

/// <summary>
/// The benchmark program that writes docs/benchmarks.md, run end to end in a child process on a small synthetic
/// rating file in MovieLens u.data format: report structure, summary, plots (PNG through ScottPlot/SkiaSharp on this
/// machine) and the progress bar. Guards the report machinery without the shared datasets; the figures themselves
/// come from the real runs recorded in docs/benchmarks.md.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class BenchmarkProgramTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "deeprec-bench-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public void QuickRun_OnSyntheticRatings_WritesReportWithSummaryTablesAndPlots()
    {
        string ratings = Path.Combine(_dir, "u.data");
        WriteSyntheticRatings(ratings);
        string report = Path.Combine(_dir, "report", "benchmarks.md");

        var (exitCode, stdout, stderr) = Run("--quick", "--suite", "ml-100k", "--ml100k", ratings, "--threads", "1", "--ml100k-graph-seeds", "2026,1", "--output", report);

        Assert.That(exitCode, Is.EqualTo(0), $"benchmark program failed.\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.That(File.Exists(report), Is.True, "no report written");
        string text = File.ReadAllText(report);
        Assert.Multiple(() =>
        {
            Assert.That(text, Does.StartWith("# Benchmarks"));
            Assert.That(text, Does.Contain("## Machine and run"));
            Assert.That(text, Does.Contain("--quick --suite ml-100k"), "the exact command must be in the report");
            Assert.That(text, Does.Contain("## Summary"));
            Assert.That(text, Does.Contain("<!-- begin ml-100k"));
            Assert.That(text, Does.Contain("<!-- end ml-100k -->"));
            foreach (string model in new[] { "| Popularity |", "| MF |", "| GMF |", "| MLP |", "| NeuMF |", "| NeuMF (pre-trained) |" })
                Assert.That(text, Does.Contain(model), $"quality table lacks {model}");
            Assert.That(text, Does.Contain("Minimal loop, TorchSharp Adam"));
            Assert.That(text, Does.Contain("### LightGCN beside MF trained with BPR"));
            foreach (string model in new[] { "| MF-BPR |", "| MF-BPR (no biases) |", "| LightGCN |" })
                Assert.That(text, Does.Contain(model), $"graph comparison lacks {model}");
            Assert.That(text, Does.Match(@"LightGCN against MF-BPR, mean over 2 seeds: Recall@20 [+-]\d+\.\d% relative"));
            Assert.That(text, Does.Match(@"LightGCN against MF-BPR \(no biases\), mean over 2 seeds: Recall@20 [+-]\d+\.\d% relative"));
            Assert.That(text, Does.Contain("| Recall@20 full, mean (sd) |").And.Contain("random per user"), "the comparison's seeds table and its split");
            Assert.That(text, Does.Contain("peak resident memory"));
        });

        // Every linked plot exists beside the report and is a real PNG with drawn content.
        var links = text.Split('\n').Where(l => l.StartsWith("![", StringComparison.Ordinal)).Select(l => l[(l.IndexOf("](", StringComparison.Ordinal) + 2)..l.LastIndexOf(')')]).ToList();
        Assert.That(links, Has.Some.Contains("training-curves.png").And.Some.Contains("quality-vs-training-time.png"));
        foreach (string link in links)
        {
            string png = Path.Combine(Path.GetDirectoryName(report)!, link);
            Assert.That(File.Exists(png), Is.True, $"{link} is linked but missing");
            byte[] bytes = File.ReadAllBytes(png);
            Assert.That(bytes.Take(8), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), $"{link} is not a PNG");
            Assert.That(bytes.Length, Is.GreaterThan(10_000), $"{link} looks empty");
        }

        // Redirected output: the progress bar prints one line per step instead of redrawing.
        Assert.That(stdout, Does.Contain("suite 1/1 ml-100k"));
        Assert.That(stdout, Does.Match(@"\[#*-*\]\s+\d+% \|"));
    }

    [Test]
    public void UnknownSuite_IsRejectedWithTheAvailableNames()
    {
        var (exitCode, _, stderr) = Run("--suite", "nope", "--output", Path.Combine(_dir, "b.md"));
        Assert.That(exitCode, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("Unknown suite 'nope'").And.Contain("ml-100k, ml-100k-ratings, serving, frappe, sasrec"));
    }

    /// <summary>The games-graph suite on the same synthetic interactions written as a <c>user item</c> sequence file: the
    /// comparison's rows, the lead line and the summary rows.</summary>
    [Test]
    public void QuickGamesGraphRun_OnSyntheticSequences_WritesTheComparison()
    {
        var data = SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { UserCount = 200, ItemCount = 500, InteractionsPerUser = 20, Seed = 7 });
        string sequences = Path.Combine(_dir, "sequences.txt");
        using (var writer = new StreamWriter(sequences))
            for (int n = 0; n < data.UserIndices.Length; n++)
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{data.UserIndices[n] + 1} {data.ItemIndices[n] + 1}"));
        string report = Path.Combine(_dir, "report", "benchmarks.md");

        var (exitCode, stdout, stderr) = Run("--quick", "--suite", "games-graph", "--games", sequences, "--threads", "1", "--output", report);

        Assert.That(exitCode, Is.EqualTo(0), $"benchmark program failed.\nstdout:\n{stdout}\nstderr:\n{stderr}");
        string text = File.ReadAllText(report);
        Assert.Multiple(() =>
        {
            Assert.That(text, Does.Contain("<!-- begin games-graph").And.Contain("<!-- end games-graph -->"));
            Assert.That(text, Does.Contain("### LightGCN beside MF trained with BPR on sparse data"));
            foreach (string model in new[] { "| MF-BPR |", "| LightGCN |" })
                Assert.That(text, Does.Contain(model), $"the comparison lacks {model}");
            Assert.That(text, Does.Match(@"LightGCN against MF-BPR: Recall@20 [+-]\d+\.\d% relative"));
            Assert.That(text, Does.Contain("| Amazon Games, random 70/10/20 per user | LightGCN |"), "summary row");
            Assert.That(text, Does.Contain("Popularity (training frequency): Recall@20 0."));
        });
    }

    /// <summary>A u.data-style file (user, item, rating, timestamp; tab-separated) from the planted-structure generator.</summary>
    private static void WriteSyntheticRatings(string path)
    {
        var data = SyntheticInteractionGenerator.Generate(new SyntheticInteractionOptions { UserCount = 200, ItemCount = 500, InteractionsPerUser = 20, Seed = 7 });
        using var writer = new StreamWriter(path);
        for (int n = 0; n < data.UserIndices.Length; n++)
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{data.UserIndices[n] + 1}\t{data.ItemIndices[n] + 1}\t4\t{880000000 + n}"));
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        string dll = ExampleProcess.ProjectDll(Path.Combine("test", "MLNet.DeepRec.Benchmarks"), "MLNet.DeepRec.Benchmarks");
        var (exitCode, stdout, stderr, _) = ExampleProcess.Run(dll, args, TimeSpan.FromMinutes(4));
        return (exitCode, stdout, stderr);
    }
}
