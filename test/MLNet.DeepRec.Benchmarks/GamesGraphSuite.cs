using System.Globalization;
using System.Text;
using Microsoft.ML;
using MLNet.DeepRec.Evaluation;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// LightGCN beside MF trained with BPR on Amazon Games taken as implicit feedback (the SASRec suite's file, order
/// ignored): sparse data like the LightGCN paper's (Gowalla, Yelp2018, Amazon-Book), where ML-100K is small and dense.
/// The same comparison as the ml-100k suite's (<see cref="GraphComparison"/>), random 70/10/20 split per user.
/// </summary>
internal sealed class GamesGraphSuite : IBenchmarkSuite
{
    public string Name => "games-graph";

    public string PlotPrefix => "collaborative-graph";

    public int PlannedSteps(bool quick) => 3;

    public SuiteResult? Run(BenchmarkContext context)
    {
        if (context.AmazonGamesFile() is not string data) return null;
        bool quick = context.Quick;
        const int seed = 2026;
        var ml = new MLContext(seed);
        context.EchoTrainingProgress(ml);
        var all = ml.DeepRec().Data.LoadUserItemSequences(data);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(all);
        var split = ml.DeepRec().Data.RandomSplit(all, testFraction: 0.2, validationFraction: 0.1, seed: seed, userIdColumnName: "UserId");
        var (train, valid, test) = (keys.Transform(split.Train), keys.Transform(split.Validation!), keys.Transform(split.Test));

        context.Progress.Step("Popularity");
        var popularity = ml.DeepRec().Evaluation.EvaluateTopK(ml.DeepRec().Evaluation.PopularityBaseline(train, "UserKey", "ItemKey"), test, train,
            new TopKEvaluationOptions { K = 20, Protocol = RankingProtocol.FullRanking, Seed = seed, UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey" });
        Console.WriteLine($"Popularity: {popularity}");

        var only = context.Arg("--games-graph-models")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var overrides = TrainerOptionOverrides.Parse(context.Arg("--games-graph-set"));
        int[] seeds = (context.Arg("--games-graph-seeds") ?? "2026").Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        // Settings chosen on this split's validation Recall@20 (full ranking), seed 2026, 2026-12-05: tables in
        // docs/models/collaborative.md#lightgcn. MF's tables (3.5M values) are past the automatic sparse-update threshold, so
        // MF-BPR trains with row-wise Adam here, LightGCN with dense Adam (every step propagates every row). The ML-100K
        // suite's "MF-BPR (no biases)" row (LightGCN with K = 0, dense Adam at batch 256) is left out: about an hour here.
        var models = new GraphComparison.Model[]
        {
            new("MF-BPR", () => new BiasedMatrixFactorizationTrainer.Options { Factors = 64, BatchSize = 256, LearningRate = 0.005, EmbeddingRegularization = 0.005 },
                o => GraphComparison.Settings(o, $"{((BiasedMatrixFactorizationTrainer.Options)o).Factors} factors, row-wise Adam")),
            new("LightGCN", () => new LightGcnTrainer.Options { LearningRate = 0.01, EmbeddingRegularization = 1e-3 },
                o => GraphComparison.Settings(o, $"{((LightGcnTrainer.Options)o).Factors} factors, {((LightGcnTrainer.Options)o).NumberOfLayers} layers")),
        };
        // Early stopping on sampled validation NDCG@20: full ranking over ~31k users × ~24k items would cost about 15 s
        // per epoch on this machine, more than a LightGCN epoch; the test figures are full ranking all the same.
        var rows = GraphComparison.Run(context, ml, train, valid, test, models, seeds, name => only == null || only.Contains(name), overrides,
            new GraphComparison.Validation(RankingProtocol.Sampled, 20), quick ? GraphComparison.Epochs / 20 : GraphComparison.Epochs, seed);
        if (rows.Count == 0) return null;

        var sb = new StringBuilder();
        sb.AppendLine($"- Data: `{Path.GetFileName(data)}` (Amazon Games, the SASRec suite's file), every interaction taken as implicit feedback, order ignored: {popularity.UserCount:N0} test users. Split: random per user (seed {seed}), 70% training, 10% validation, 20% test, as for ML-100K. Popularity (training frequency): Recall@20 {popularity.Recall.ToString("F4", CultureInfo.InvariantCulture)}, NDCG@20 {popularity.Ndcg.ToString("F4", CultureInfo.InvariantCulture)}.");
        if (quick) sb.AppendLine("- Quick mode: epoch budget divided by 20; quality far below the full run's.");
        sb.AppendLine();
        GraphComparison.Append(sb, "LightGCN beside MF trained with BPR on sparse data (full ranking)",
            $"Recall@20 and NDCG@20 over all items (the user's training items excluded). Early stopping on validation NDCG@20 under the sampled protocol (99 negatives; patience 10), for time: full-ranking validation over this catalogue costs more than a LightGCN epoch. All models: 64 factors, BPR with one fresh negative per positive, up to {(quick ? GraphComparison.Epochs / 20 : GraphComparison.Epochs)} epochs, best epoch kept; settings chosen on the validation split (search in [models/collaborative.md](models/collaborative.md#lightgcn)).", rows);
        return new SuiteResult("Amazon Games: LightGCN and MF-BPR on sparse data", sb.ToString(), [], [], "", GraphComparison.Summary(rows, "Amazon Games, random 70/10/20 per user").ToList());
    }
}
