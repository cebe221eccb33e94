using System.Globalization;

namespace MLNet.DeepRec.Evaluation;

/// <summary>
/// Top-K metrics of a recommender, averaged over ranking cases: (user, target) pairs under
/// <see cref="RankingProtocol.Sampled"/>, users under <see cref="RankingProtocol.FullRanking"/>. Always report them with
/// their <see cref="Protocol"/>: the two protocols give very different numbers for the same model.
/// </summary>
public sealed class TopKMetrics
{
    /// <summary>The ranking protocol.</summary>
    public RankingProtocol Protocol { get; init; }
    /// <summary>The cut-off K.</summary>
    public int K { get; init; }
    /// <summary>Sampled negatives per target (0 under full ranking).</summary>
    public int NegativesPerPositive { get; init; }
    /// <summary>Number of item keys of the catalogue.</summary>
    public int ItemCount { get; init; }
    /// <summary>Number of distinct users evaluated.</summary>
    public int UserCount { get; init; }
    /// <summary>Number of ranking lists averaged: (user, target) pairs under Sampled, users under FullRanking.</summary>
    public int CaseCount { get; init; }
    /// <summary>Test rows skipped because their user key is 0 (unknown user; such rows cannot be told apart, so each
    /// counts once).</summary>
    public int SkippedUsers { get; init; }
    /// <summary>Test rows of known users skipped because their item key is 0 (an item unknown to the model).</summary>
    public int SkippedItems { get; init; }
    /// <summary>HR@K: fraction of cases with at least one held-out item in the top K.</summary>
    public double HitRate { get; init; }
    /// <summary>NDCG@K with binary relevance: Σ over hits of 1/log2(position + 2), divided by the ideal
    /// Σ_{j &lt; min(K, relevant)} 1/log2(j + 2) (positions 0-based).</summary>
    public double Ndcg { get; init; }
    /// <summary>MRR: 1 / (1 + position of the best-ranked held-out item), over the whole candidate list (not truncated at K).</summary>
    public double Mrr { get; init; }
    /// <summary>Recall@K: hits / number of held-out items of the case.</summary>
    public double Recall { get; init; }
    /// <summary>Precision@K: hits / K.</summary>
    public double Precision { get; init; }
    /// <summary>MAP@K: Σ over hits of precision at the hit's position, divided by min(K, number of held-out items).</summary>
    public double Map { get; init; }
    /// <summary>Catalogue coverage@K: fraction of item keys 1..ItemCount appearing in at least one case's top K.</summary>
    public double Coverage { get; init; }

    /// <summary>A one-line report that always names the protocol, e.g.
    /// <c>Sampled (99 negatives) @10: HR=0.6512 NDCG=0.3712 …</c>.</summary>
    public override string ToString()
    {
        string protocol = Protocol == RankingProtocol.Sampled
            ? $"Sampled ({NegativesPerPositive} negatives)"
            : $"FullRanking (all {ItemCount} items, seen excluded)";
        return string.Create(CultureInfo.InvariantCulture,
            $"{protocol} @{K}: HR={HitRate:F4} NDCG={Ndcg:F4} MRR={Mrr:F4} Recall={Recall:F4} Precision={Precision:F4} MAP={Map:F4} Coverage={Coverage:F4} (users={UserCount}, cases={CaseCount}, skipped users={SkippedUsers}, skipped items={SkippedItems})");
    }
}
