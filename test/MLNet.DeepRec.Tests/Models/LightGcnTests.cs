using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;
using MLNet.DeepRec.Training;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Models;

/// <summary>LightGCN's own behaviour; the registry-driven tests (checkpoints, serving, bad checkpoints) cover it too.</summary>
public class LightGcnTests
{
    private static TestData.Keyed D => TestData.SmallSynthetic;

    private static LightGcnTrainer.Options Quick(int epochs = 10, int seed = 3) => new()
    {
        UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = epochs, Seed = seed,
        Factors = 32, LearningRate = 0.05, BatchSize = 2048,
    };

    private static TopKMetrics Evaluate(IItemScorer scorer, RankingProtocol protocol) =>
        D.Context.DeepRec().Evaluation.EvaluateTopK(scorer, D.Test, D.Train,
            new TopKEvaluationOptions { K = 10, Protocol = protocol, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Seed = 5 });

    // ---- propagation --------------------------------------------------------------------------------------------

    // A 3-user, 4-item graph with a repeated interaction (the graph has distinct edges) and a user and an item without any.
    private static readonly int[] TinyUsers = [1, 1, 2, 2, 3, 1], TinyItems = [1, 2, 2, 4, 4, 1];
    private const int TinyUserCount = 4, TinyItemCount = 5;

    /// <summary>The dense reference: Â = D^-½AD^-½ as a dense matrix over nodes 0..U (users), U+1.. (items), and the
    /// mean of Âᵏ X for k = 0..K, computed with dense autograd operations. <paramref name="edgeScale"/>, when given,
    /// multiplies each distinct edge (in (user, item) order) after normalising by the whole graph's degrees: what edge
    /// dropout does.</summary>
    private static Tensor DenseLayerMean(Tensor x, int layers, float[]? edgeScale = null)
    {
        long n = TinyUserCount + 1 + TinyItemCount + 1;
        var a = new float[n * n];
        foreach (var (u, i) in TinyUsers.Zip(TinyItems)) { a[u * n + TinyUserCount + 1 + i] = 1; a[(TinyUserCount + 1 + i) * n + u] = 1; }
        var adjacency = tensor(a).view(n, n);
        var scale = adjacency.sum(1).rsqrt().nan_to_num(0, 0, 0);      // isolated nodes have degree 0
        var normalized = scale.unsqueeze(1) * adjacency * scale.unsqueeze(0);
        if (edgeScale != null)
        {
            var edges = TinyUsers.Zip(TinyItems).Distinct().OrderBy(e => e.First).ThenBy(e => e.Second).ToArray();
            var m = new float[n * n];
            for (int e = 0; e < edges.Length; e++)
                m[edges[e].First * n + TinyUserCount + 1 + edges[e].Second] = m[(TinyUserCount + 1 + edges[e].Second) * n + edges[e].First] = edgeScale[e];
            normalized = normalized * tensor(m).view(n, n);
        }
        Tensor layer = x, sum = x;
        for (int k = 0; k < layers; k++) sum = sum + (layer = normalized.mm(layer));
        return sum / (layers + 1);
    }

    /// <summary>Both ways of multiplying by Â (the CPU CSR loop in a custom autograd function, libtorch's sparse COO
    /// product) give the dense reference's values and gradients.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public void TheGraphsLayerMeanAndItsGradientEqualADenseReference(bool torchSparse)
    {
        using var scope = NewDisposeScope();
        using var graph = InteractionGraph.Build(TinyUsers, TinyItems, TinyUserCount, TinyItemCount, CPU, torchSparse);
        Assert.That(graph.UsesTorchSparse, Is.EqualTo(torchSparse));
        Assert.That(graph.Nodes, Is.EqualTo(TinyUserCount + 1 + TinyItemCount + 1));
        var generator = new Generator(3);
        var x = randn(graph.Nodes, 16, generator: generator).requires_grad_(true);
        var reference = x.detach().clone().requires_grad_(true);
        var upstream = randn(graph.Nodes, 16, generator: generator);
        var y = graph.LayerMean(x, 3);
        var expected = DenseLayerMean(reference, 3);
        Assert.That(y.detach().data<float>().ToArray(), Is.EqualTo(expected.detach().data<float>().ToArray()).Within(1e-5));
        (y * upstream).sum().backward();
        (expected * upstream).sum().backward();
        Assert.That(x.grad, Is.Not.Null, "the gradient flows through the sparse product");
        Assert.That(x.grad!.data<float>().ToArray(), Is.EqualTo(reference.grad!.data<float>().ToArray()).Within(1e-5));
        using (no_grad())
            Assert.That(graph.LayerMean(x, 2).data<float>().ToArray(), Is.EqualTo(DenseLayerMean(reference, 2).detach().data<float>().ToArray()).Within(1e-5), "without autograd");
    }

    /// <summary>Edge dropout: one mask per call, drawn per distinct edge in (user, item) order, drops both directions of an
    /// edge and scales the kept ones by 1/(1 − rate) on the whole graph's normalisation; values and gradients (the CPU
    /// backward relies on the dropped matrix staying symmetric) equal the dense reference with those edges removed.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public void DroppedEdgesEqualTheDenseReferenceWithThoseEdgesRemovedAndTheRestRescaled(bool torchSparse)
    {
        const double Rate = 0.4;
        using var scope = NewDisposeScope();
        using var graph = InteractionGraph.Build(TinyUsers, TinyItems, TinyUserCount, TinyItemCount, CPU, torchSparse);
        Assert.That(graph.Pairs, Is.EqualTo(5), "repeated interactions count once");
        Assert.That(graph.WithDroppedEdges(0, new Random(1)), Is.SameAs(graph), "rate 0 is the graph itself");
        var generator = new Generator(4);
        int droppedSomewhere = 0, keptSomewhere = 0;
        for (int seed = 1; seed <= 6; seed++)
        {
            var random = new Random(seed);
            var replay = new Random(seed);
            var dropped = graph.WithDroppedEdges(Rate, random);
            var edgeScale = Enumerable.Range(0, 5).Select(_ => replay.NextDouble() < Rate ? 0f : (float)(1 / (1 - Rate))).ToArray();
            droppedSomewhere += edgeScale.Count(v => v == 0); keptSomewhere += edgeScale.Count(v => v != 0);
            var x = randn(graph.Nodes, 8, generator: generator).requires_grad_(true);
            var reference = x.detach().clone().requires_grad_(true);
            var upstream = randn(graph.Nodes, 8, generator: generator);
            var y = dropped.LayerMean(x, 2);
            var expected = DenseLayerMean(reference, 2, edgeScale);
            Assert.That(y.detach().data<float>().ToArray(), Is.EqualTo(expected.detach().data<float>().ToArray()).Within(1e-5), $"seed {seed}");
            (y * upstream).sum().backward();
            (expected * upstream).sum().backward();
            Assert.That(x.grad!.data<float>().ToArray(), Is.EqualTo(reference.grad!.data<float>().ToArray()).Within(1e-5), $"seed {seed} gradient");
        }
        Assert.That(droppedSomewhere, Is.GreaterThan(0), "some edge was dropped");
        Assert.That(keptSomewhere, Is.GreaterThan(0), "some edge was kept");
        // The graph itself is untouched: still the full Â.
        using var full = randn(graph.Nodes, 8, generator: generator);
        using (no_grad()) Assert.That(graph.LayerMean(full, 2).data<float>().ToArray(), Is.EqualTo(DenseLayerMean(full, 2).data<float>().ToArray()).Within(1e-5));
    }

    /// <summary>In the module: the materialised final tables and the gradient of the BPR difference reaching E⁽⁰⁾ equal
    /// the dense reference.</summary>
    [Test]
    public void PropagationAndItsGradientInTheModuleEqualADenseReference()
    {
        const int K = 3;
        using var module = SeededInitialization.Create(7, () => new LightGcnModule(TinyUserCount, TinyItemCount, 5, K));
        using var lease = module.UseInteractions(TinyUsers, TinyItems, CPU);
        var ego = module.KeyedTables.Where(t => !t.Table.Derived).Select(t => t.Table.Weight.detach().clone().requires_grad_(true)).ToArray();
        var expected = DenseLayerMean(cat(ego, 0), K);

        // Materialised by leaving training mode; row 0 of each table is then the mean of the others.
        module.train();
        module.eval();
        var final = module.KeyedTables.Where(t => t.Table.Derived).Select(t => t.Table.Weight.detach()).ToArray();
        Assert.That(final[0].narrow(0, 1, TinyUserCount).data<float>().ToArray(), Is.EqualTo(expected.narrow(0, 1, TinyUserCount).detach().data<float>().ToArray()).Within(1e-6), "users");
        Assert.That(final[1].narrow(0, 1, TinyItemCount).data<float>().ToArray(), Is.EqualTo(expected.narrow(0, TinyUserCount + 2, TinyItemCount).detach().data<float>().ToArray()).Within(1e-6), "items");
        Assert.That(final[0][0].data<float>().ToArray(), Is.EqualTo(final[0].narrow(0, 1, TinyUserCount).mean([0]).data<float>().ToArray()).Within(1e-6), "unknown user = mean");

        using var u = tensor(new long[] { 1, 2, 3 });
        using var pos = tensor(new long[] { 2, 4, 4 });
        using var neg = tensor(new long[] { 3, 1, 5 });
        module.train();
        module.PairwiseDifference(u, pos, neg).sum().backward();
        var eu = expected.narrow(0, 0, TinyUserCount + 1);
        var ei = expected.narrow(0, TinyUserCount + 1, TinyItemCount + 1);
        (eu.index_select(0, u) * (ei.index_select(0, pos) - ei.index_select(0, neg))).sum().backward();
        var trained = module.KeyedTables.Where(t => !t.Table.Derived).Select(t => t.Table.Weight).ToArray();
        for (int t = 0; t < 2; t++)
        {
            Assert.That(trained[t].grad, Is.Not.Null, $"table {t} gets a gradient");
            Assert.That(trained[t].grad!.abs().sum().item<float>(), Is.GreaterThan(0));
            Assert.That(trained[t].grad!.data<float>().ToArray(), Is.EqualTo(ego[t].grad!.data<float>().ToArray()).Within(1e-6), $"table {t} gradient");
        }
        Assert.That(module.KeyedTables.Where(t => t.Table.Derived).All(t => t.Table.Weight.grad is null), "the final tables are not trained");
    }

    [Test]
    public void WithoutAGraphTrainingModeSaysWhyAndEvalKeepsTheStoredTables()
    {
        using var module = new LightGcnModule(3, 4, 2, 2);
        using var u = tensor(new long[] { 1 });
        using var i = tensor(new long[] { 2 });
        module.train();
        var e = Assert.Throws<InvalidOperationException>(() => module.call(u, i));
        Assert.That(e!.Message, Does.Contain("graph"));
        module.eval();
        Assert.That(module.call(u, i).item<float>(), Is.EqualTo(0f), "untouched final tables (zeros) are scored, not recomputed");
    }

    // ---- training ------------------------------------------------------------------------------------------------

    [Test]
    public void BeatsPopularityByAClearMarginOnPlantedData()
    {
        using var model = D.Context.DeepRec().Trainers.LightGcn(Quick()).Fit(D.Train);
        var popularity = D.Context.DeepRec().Evaluation.PopularityBaseline(D.Train, "UserKey", "ItemKey");
        var sampled = Evaluate(model, RankingProtocol.Sampled);
        var full = Evaluate(model, RankingProtocol.FullRanking);
        var popSampled = Evaluate(popularity, RankingProtocol.Sampled);
        var popFull = Evaluate(popularity, RankingProtocol.FullRanking);
        TestContext.Out.WriteLine($"LightGCN: {sampled} | {full}\nPopularity: {popSampled} | {popFull}");
        Assert.That(sampled.HitRate, Is.GreaterThan(popSampled.HitRate + 0.15), "sampled HR@10 margin");
        Assert.That(sampled.Ndcg, Is.GreaterThan(popSampled.Ndcg + 0.10), "sampled NDCG@10 margin");
        Assert.That(full.HitRate, Is.GreaterThan(popFull.HitRate * 1.5), "full-ranking HR@10: 1.5× popularity");
        Assert.That(model.TrainingReport.Epochs[^1].Loss, Is.LessThan(model.TrainingReport.Epochs[0].Loss), "loss decreases");
    }

    /// <summary>Also with edge dropout, which only training steps see: the served tables use the whole graph.</summary>
    [TestCase(0.0)]
    [TestCase(0.3)]
    public void TheServedTablesAreThePropagationOfTheTrainedLayerZeroTables(double edgeDropout)
    {
        var options = Quick(3);
        options.EdgeDropout = edgeDropout;
        using var model = D.Context.DeepRec().Trainers.LightGcn(options).Fit(D.Train);
        int[] users = [1, 2, 3, 0], items = [5, 6, 7, 8, 9, 10, 11, 12];
        float[] served = model.ScoreCandidates(users, items, 2);

        // Propagating the trained E⁽⁰⁾ again over the training interactions gives the same scores.
        var module = model.Module;
        var (u, i) = (new List<int>(), new List<int>());
        for (int user = 1; user <= model.Seen.UserCount; user++) foreach (int item in model.Seen.ItemsOf(user)) { u.Add(user); i.Add(item); }
        using (module.UseInteractions([.. u], [.. i], CPU)) { module.train(); module.eval(); }
        Assert.That(model.ScoreCandidates(users, items, 2), Is.EqualTo(served).Within(1e-5));

        // The exported embeddings are the ones scored with: one 32-wide table per role, dot product = score.
        var userEmbeddings = model.Model.GetUserEmbeddings();
        var itemEmbeddings = model.Model.GetItemEmbeddings();
        Assert.That(userEmbeddings.Dimension, Is.EqualTo(32));
        Assert.That(model.Model.GetEmbeddingTables().Select(t => t.Name), Is.EquivalentTo(new[] { "user_embedding", "item_embedding", "user_final", "item_final" }));
        for (int n = 0; n < items.Length; n++)
        {
            var p = userEmbeddings.GetVector((uint)users[n / 2]);
            var q = itemEmbeddings.GetVector((uint)items[n]);
            double dot = 0;
            for (int f = 0; f < p.Length; f++) dot += p[f] * q[f];
            Assert.That(served[n], Is.EqualTo(dot).Within(1e-4), $"pair {n}");
        }

        // ONNX (the saved model's graph) scores as the network.
        var scored = model.Transform(D.Test);
        var su = scored.GetColumn<uint>("UserKey").Select(k => (int)k).ToArray();
        var si = scored.GetColumn<uint>("ItemKey").Select(k => (int)k).ToArray();
        var onnx = scored.GetColumn<float>("Score").ToArray();
        var torch = model.ScoreCandidates(su, si, 1);
        for (int n = 0; n < onnx.Length; n++) Assert.That(onnx[n], Is.EqualTo(torch[n]).Within(1e-5 * Math.Max(1, Math.Abs(torch[n]))), $"row {n}");
    }

    /// <summary>Every step reads every row of E⁽⁰⁾, so row-wise (lazy) Adam touches every row each step and equals dense
    /// Adam; the derived tables stay out of both optimizers.</summary>
    [Test]
    public void RowWiseUpdatesGiveTheDenseModel()
    {
        float[] Scores(EmbeddingUpdateMode mode)
        {
            var o = Quick(2);
            o.EmbeddingUpdates = mode;
            using var m = D.Context.DeepRec().Trainers.LightGcn(o).Fit(D.Train);
            return m.ScoreCandidates([1, 2, 3, 0], [1, 2, 3, 4, 5, 6, 7, 8], 2);
        }
        Assert.That(Scores(EmbeddingUpdateMode.Sparse), Is.EqualTo(Scores(EmbeddingUpdateMode.Dense)).Within(1e-4));
    }

    [Test]
    public void AnUnknownUserGetsTheAverageUsersFiniteRecommendations()
    {
        using var model = D.Context.DeepRec().Trainers.LightGcn(Quick(2)).Fit(D.Train);
        var unknown = model.Recommend("no-such-user", 10);
        Assert.That(unknown.Select(r => r.ItemKey), Is.EqualTo(model.Recommend(0u, 10).Select(r => r.ItemKey)));
        Assert.That(unknown.All(r => float.IsFinite(r.Score)));
        var users = model.Model.GetUserEmbeddings();
        var mean = Enumerable.Range(0, users.Dimension).Select(f => Enumerable.Range(1, model.TrainedUserCount).Average(k => users.GetVector((uint)k)[f])).ToArray();
        Assert.That(users.GetVector(0).ToArray(), Is.EqualTo(mean).Within(1e-5), "the unknown user is the mean of the trained users");
    }

    /// <summary>With edge dropout too: the masks come from the fit's seed.</summary>
    [TestCase(0.0)]
    [TestCase(0.3)]
    public void SameSeedGivesTheSameModelAndAnotherSeedAnother(double edgeDropout)
    {
        float[] Scores(int seed)
        {
            var options = Quick(2, seed);
            options.EdgeDropout = edgeDropout;
            using var m = D.Context.DeepRec().Trainers.LightGcn(options).Fit(D.Train);
            return m.ScoreCandidates([1, 2, 3], [1, 2, 3, 4, 5, 6], 2);
        }
        Assert.That(Scores(11), Is.EqualTo(Scores(11)));
        Assert.That(Scores(11), Is.Not.EqualTo(Scores(12)));
    }

    /// <summary>Edge dropout changes training (another model from the same seed), and the dropped model still learns.</summary>
    [Test]
    public void EdgeDropoutChangesTrainingAndStillBeatsPopularity()
    {
        var options = Quick(10);
        options.EdgeDropout = 0.2;
        using var dropped = D.Context.DeepRec().Trainers.LightGcn(options).Fit(D.Train);
        using var plain = D.Context.DeepRec().Trainers.LightGcn(Quick(10)).Fit(D.Train);
        Assert.That(dropped.ScoreCandidates([1, 2, 3], [1, 2, 3, 4, 5, 6], 2), Is.Not.EqualTo(plain.ScoreCandidates([1, 2, 3], [1, 2, 3, 4, 5, 6], 2)));
        var popularity = Evaluate(D.Context.DeepRec().Evaluation.PopularityBaseline(D.Train, "UserKey", "ItemKey"), RankingProtocol.FullRanking);
        Assert.That(Evaluate(dropped, RankingProtocol.FullRanking).Ndcg, Is.GreaterThan(popularity.Ndcg * 1.2));
    }

    /// <summary>K = 0 is the LightGCN paper's MF baseline (BPR, no biases): the served tables are E⁽⁰⁾ itself.</summary>
    [Test]
    public void ZeroLayersServeTheLayerZeroTables()
    {
        var options = Quick(3);
        options.NumberOfLayers = 0;
        using var model = D.Context.DeepRec().Trainers.LightGcn(options).Fit(D.Train);
        var tables = model.Model.GetEmbeddingTables().ToDictionary(t => t.Name);
        foreach (var (ego, final) in new[] { ("user_embedding", "user_final"), ("item_embedding", "item_final") })
            for (uint k = 1; k <= 5; k++)
                Assert.That(tables[final].GetVector(k).ToArray(), Is.EqualTo(tables[ego].GetVector(k).ToArray()).Within(1e-6), $"{final} row {k}");
    }

    [Test]
    public void EarlyStoppingRestoresTheBestEpochWithItsPropagatedTables()
    {
        var o = Quick(12);
        o.EarlyStoppingPatience = 2;
        using var model = D.Context.DeepRec().Trainers.LightGcn(o).Fit(D.Train, D.Validation);
        var report = model.TrainingReport;
        double best = report.Epochs.Max(e => e.ValidationMetric!.Value);
        Assert.That(report.BestEpoch, Is.Not.Null);
        var again = D.Context.DeepRec().Evaluation.EvaluateTopK(model, D.Validation, D.Train,
            new TopKEvaluationOptions { K = o.ValidationK, NegativesPerPositive = o.ValidationNegativesPerPositive, Seed = o.Seed, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" });
        Assert.That(again.Ndcg, Is.EqualTo(best).Within(1e-9), "the kept tables reproduce the best validation metric");
    }

    [Test]
    public void FullRankingValidationStopsOnTheFullRankingMetricOfTheKeptTables()
    {
        var o = Quick(12);
        (o.EarlyStoppingPatience, o.ValidationProtocol, o.ValidationK) = (2, RankingProtocol.FullRanking, 20);
        using var model = D.Context.DeepRec().Trainers.LightGcn(o).Fit(D.Train, D.Validation);
        var report = model.TrainingReport;
        Assert.That(report.ValidationMetricName, Is.EqualTo("NDCG@20 (full ranking)"));
        double best = report.Epochs.Max(e => e.ValidationMetric!.Value);
        var again = D.Context.DeepRec().Evaluation.EvaluateTopK(model, D.Validation, D.Train,
            new TopKEvaluationOptions { K = 20, Protocol = RankingProtocol.FullRanking, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" });
        Assert.That(again.Ndcg, Is.EqualTo(best).Within(1e-9), "the kept tables reproduce the best full-ranking validation NDCG@20");
        var sampled = D.Context.DeepRec().Evaluation.EvaluateTopK(model, D.Validation, D.Train,
            new TopKEvaluationOptions { K = 20, NegativesPerPositive = o.ValidationNegativesPerPositive, Seed = o.Seed, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" });
        Assert.That(sampled.Ndcg, Is.Not.EqualTo(best).Within(1e-6), "the sampled metric is another number: the option changed the protocol");
    }

    [Test]
    public void CancellationDuringTrainingStopsFit()
    {
        using var cts = new CancellationTokenSource();
        var ml = new MLContext(1);
        ml.Log += (_, e) => { if (e.Message.Contains("Epoch 1/", StringComparison.Ordinal)) cts.Cancel(); };
        var o = Quick(50);
        o.CancellationToken = cts.Token;
        Assert.Throws<OperationCanceledException>(() => ml.DeepRec().Trainers.LightGcn(o).Fit(D.Train));
        Assert.That(cts.IsCancellationRequested);
    }

    [Test]
    public void ACheckpointContinuesTrainingAndResumesAdam()
    {
        using var dir = new TempFolder("deeprec-lightgcn");
        using var model = D.Context.DeepRec().Trainers.LightGcn(Quick(2)).Fit(D.Train);
        string path = dir.File("lightgcn.ckpt");
        model.SaveCheckpoint(path);
        var messages = new List<string>();
        var ml = new MLContext(1);
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        using var loaded = CollaborativeFilteringTransformer.LoadCheckpoint(ml, path);
        Assert.That(loaded.ModelName, Is.EqualTo("LightGCN"));
        var o = Quick(1); o.InitialModel = loaded;
        using var resumed = ml.DeepRec().Trainers.LightGcn(o).Fit(D.Train);
        Assert.That(messages, Has.Some.Contains("Resuming Adam from step"));
        Assert.That(resumed.TrainingReport.Epochs[0].Loss, Is.LessThan(model.TrainingReport.Epochs[0].Loss), "continues from the trained weights");

        var other = Quick(1); other.Factors = 16; other.InitialModel = loaded;
        var e = Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.LightGcn(other).Fit(D.Train));
        Assert.That(e!.Message, Does.Contain("factors"));
        using var mf = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 1 }).Fit(D.Train);
        var wrongKind = Quick(1); wrongKind.InitialModel = mf;
        Assert.That(Assert.Throws<ArgumentException>(() => ml.DeepRec().Trainers.LightGcn(wrongKind).Fit(D.Train))!.Message, Does.Contain("MF").And.Contain("LightGCN"));
    }

    // ---- bad input -----------------------------------------------------------------------------------------------

    private static IEnumerable<TestCaseData> BadOptions()
    {
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.NumberOfLayers = -1), "NumberOfLayers").SetName("NumberOfLayers -1");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.EdgeDropout = 1), "EdgeDropout").SetName("EdgeDropout 1");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.EdgeDropout = -0.1), "EdgeDropout").SetName("EdgeDropout negative");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.EdgeDropout = double.NaN), "EdgeDropout").SetName("EdgeDropout NaN");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.NumberOfLayers = 65), "NumberOfLayers").SetName("NumberOfLayers 65");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.Loss = CollaborativeLoss.BinaryCrossEntropy), "Loss").SetName("Loss BCE");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => { o.Loss = CollaborativeLoss.SquaredError; o.LabelColumnName = "Label"; }), "Loss").SetName("Loss SquaredError");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.Factors = 0), "Factors").SetName("Factors 0");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.EmbeddingRegularization = -1e-4), "EmbeddingRegularization").SetName("EmbeddingRegularization negative");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.NegativesPerPositive = 0), "NegativesPerPositive").SetName("NegativesPerPositive 0");
        yield return new TestCaseData((Action<LightGcnTrainer.Options>)(o => o.ValidationProtocol = (RankingProtocol)7), "ValidationProtocol").SetName("ValidationProtocol undefined");
    }

    [TestCaseSource(nameof(BadOptions))]
    public void EveryBadOptionIsRejectedAtCreationAndAtFitNamingIt(Action<LightGcnTrainer.Options> change, string option)
    {
        var options = Quick(1);
        options.CancellationToken = new CancellationToken(canceled: true);
        change(options);
        var atCreation = Assert.Catch<ArgumentException>(() => D.Context.DeepRec().Trainers.LightGcn(options));
        Assert.That(atCreation!.ParamName, Is.EqualTo(option));
        Assert.That(atCreation.Message, Does.Contain(option));

        // Set after creation: rejected by Fit before any epoch (the token is already cancelled).
        var fresh = Quick(1);
        fresh.CancellationToken = new CancellationToken(canceled: true);
        var trainer = D.Context.DeepRec().Trainers.LightGcn(fresh);
        change(fresh);
        Assert.That(Assert.Catch<ArgumentException>(() => trainer.Fit(D.Train))!.ParamName, Is.EqualTo(option));
    }

    [Test]
    public void BadColumnsAreRejectedNamingTheColumn()
    {
        var trainers = D.Context.DeepRec().Trainers;
        var missing = Quick(1); missing.UserIdColumnName = "NoSuchColumn";
        Assert.That(Assert.Throws<ArgumentException>(() => trainers.LightGcn(missing).Fit(D.Train))!.Message, Does.Contain("NoSuchColumn"));
        var notKey = Quick(1); notKey.ItemIdColumnName = "ItemId";   // the raw string ids, not keys
        Assert.That(Assert.Throws<ArgumentException>(() => trainers.LightGcn(notKey).Fit(D.Train))!.Message, Does.Contain("ItemId").And.Contain("key"));
    }
}
