namespace MLNet.DeepRec.Evaluation;

/// <summary>How the held-out items of a user are ranked by <see cref="TopKEvaluator"/>.</summary>
public enum RankingProtocol
{
    /// <summary>
    /// Each (user, held-out target) is ranked among <see cref="TopKEvaluationOptions.NegativesPerPositive"/> negatives sampled
    /// uniformly (distinct, excluding the user's training items and the target), as in the NCF and SASRec papers.
    /// Gives much higher numbers than <see cref="FullRanking"/>.
    /// </summary>
    Sampled,

    /// <summary>
    /// Each user's held-out items are ranked among all item keys 1..ItemCount except the items the user has seen in
    /// training (a held-out item that also appears in training is still ranked).
    /// </summary>
    FullRanking,
}

/// <summary>Options of <see cref="TopKEvaluator"/> and <c>mlContext.DeepRec().Evaluation.EvaluateTopK</c>.</summary>
public sealed class TopKEvaluationOptions
{
    /// <summary>Cut-off of the top-K list. Default 10.</summary>
    public int K = 10;

    /// <summary>Ranking protocol. Default <see cref="RankingProtocol.Sampled"/>.</summary>
    public RankingProtocol Protocol = RankingProtocol.Sampled;

    /// <summary>Number of sampled negatives per target under <see cref="RankingProtocol.Sampled"/>. Default 99 (the
    /// NCF protocol; SASRec uses 100). Ignored under full ranking.</summary>
    public int NegativesPerPositive = 99;

    /// <summary>Seed of the negative sampling. Default 0.</summary>
    public int Seed;

    /// <summary>Number of users (sampled: ranking cases) scored per call of the <see cref="IItemScorer"/>. Default 256. Under
    /// full ranking fewer when the catalogue is large: one call scores at most 2²⁴ user–item pairs (64 MB of scores).</summary>
    public int UserBatchSize = 256;

    /// <summary>Key-typed user column read by the catalog method (from <c>MapValueToKey</c>). Default "UserId".</summary>
    public string UserIdColumnName = "UserId";

    /// <summary>Key-typed item column read by the catalog method (from <c>MapValueToKey</c>). Default "ItemId".</summary>
    public string ItemIdColumnName = "ItemId";

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(K);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(NegativesPerPositive);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(UserBatchSize);
        if (Protocol is not (RankingProtocol.Sampled or RankingProtocol.FullRanking))
            throw new ArgumentOutOfRangeException(nameof(Protocol), Protocol, "Unknown ranking protocol.");
    }
}
