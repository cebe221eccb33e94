using MLNet.DeepRec.Data;

namespace MLNet.DeepRec.Evaluation;

/// <summary>
/// Computes top-K metrics (HR, NDCG, MRR, Recall, Precision, MAP, coverage) of an <see cref="IItemScorer"/> on held-out
/// interactions under the sampled or the full-ranking protocol (see <see cref="RankingProtocol"/>).
/// </summary>
/// <remarks>
/// <para>Scoring goes through the scorer in batches of <see cref="TopKEvaluationOptions.UserBatchSize"/> users
/// (<see cref="IItemScorer.ScoreCandidates"/> under Sampled, <see cref="IItemScorer.ScoreAllItems"/> under full
/// ranking), never one call per item.</para>
/// <para>Ties are pessimistic: a non-relevant candidate whose score equals a held-out item's score is ranked above it,
/// so a constant scorer gets no credit. (For coverage, non-relevant items tied with each other are ordered by key.)</para>
/// <para>Test rows with user key 0 (unknown) are skipped and counted in <see cref="TopKMetrics.SkippedUsers"/>; rows with
/// item key 0 in <see cref="TopKMetrics.SkippedItems"/>. Under Sampled each test row is a case (duplicates included);
/// under full ranking a user's distinct held-out items form one case.</para>
/// </remarks>
public static class TopKEvaluator
{
    /// <summary>Evaluates <paramref name="scorer"/> on <paramref name="test"/>, excluding each user's
    /// <paramref name="seen"/> (training) items from the candidates.</summary>
    /// <param name="scorer">The model.</param>
    /// <param name="test">Held-out interactions (key indices matching the scorer's).</param>
    /// <param name="seen">Each user's training items, excluded from negatives / from the full ranking.</param>
    /// <param name="options">Options; null for the defaults (Sampled, 99 negatives, K = 10).</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the message names it).</exception>
    /// <exception cref="ArgumentException">Key cardinalities of the test data, seen set and scorer disagree, or a key is
    /// out of range.</exception>
    /// <exception cref="InvalidOperationException">The scorer returns a wrong number of scores or a NaN score, or a user
    /// has fewer allowed items than <see cref="TopKEvaluationOptions.NegativesPerPositive"/>.</exception>
    public static TopKMetrics Evaluate(IItemScorer scorer, KeyedInteractions test, UserItemSet seen, TopKEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(seen);
        options ??= new TopKEvaluationOptions();
        options.Validate();
        int itemCount = scorer.ItemCount;
        if (test.ItemCount != itemCount)
            throw new ArgumentException($"The test data has {test.ItemCount} item keys but the scorer has {itemCount}: they must share the item key mapping.", nameof(test));
        if (seen.ItemCount != itemCount)
            throw new ArgumentException($"The seen set has {seen.ItemCount} item keys but the scorer has {itemCount}: they must share the item key mapping.", nameof(seen));

        // Collect the cases.
        int skippedUsers = 0, skippedItems = 0;
        var caseUsers = new List<int>(test.Count);
        var caseItems = new List<int>(test.Count);
        for (int r = 0; r < test.Count; r++)
        {
            int u = test.Users[r], i = test.Items[r];
            if (u == 0) { skippedUsers++; continue; }
            if (i == 0) { skippedItems++; continue; }
            if ((uint)u > (uint)scorer.UserCount || (uint)u > (uint)seen.UserCount)
                throw new ArgumentException($"Test row {r} has user key {u}, outside the scorer's 1..{scorer.UserCount} or the seen set's 1..{seen.UserCount}.", nameof(test));
            if ((uint)i > (uint)itemCount)
                throw new ArgumentException($"Test row {r} has item key {i}, outside 1..{itemCount}.", nameof(test));
            caseUsers.Add(u); caseItems.Add(i);
        }

        var acc = new Accumulator(options.K, itemCount);
        if (options.Protocol == RankingProtocol.Sampled)
            EvaluateSampled(scorer, seen, options, caseUsers, caseItems, acc);
        else
            EvaluateFull(scorer, seen, options, caseUsers, caseItems, acc);

        var distinctUsers = new HashSet<int>(caseUsers).Count;
        double c = Math.Max(1, acc.Cases);
        return new TopKMetrics
        {
            Protocol = options.Protocol,
            K = options.K,
            NegativesPerPositive = options.Protocol == RankingProtocol.Sampled ? options.NegativesPerPositive : 0,
            ItemCount = itemCount,
            UserCount = distinctUsers,
            CaseCount = acc.Cases,
            SkippedUsers = skippedUsers,
            SkippedItems = skippedItems,
            HitRate = acc.Hit / c,
            Ndcg = acc.Ndcg / c,
            Mrr = acc.Mrr / c,
            Recall = acc.Recall / c,
            Precision = acc.Precision / c,
            Map = acc.Map / c,
            Coverage = acc.CoveredCount / (double)itemCount,
        };
    }

    private static void EvaluateSampled(IItemScorer scorer, UserItemSet seen, TopKEvaluationOptions options,
        List<int> caseUsers, List<int> caseItems, Accumulator acc)
    {
        int n = options.NegativesPerPositive, width = n + 1;
        var sampler = new NegativeSampler(seen);
        var rng = new Random(options.Seed);
        var relScore = new float[1];
        var relItem = new int[1];
        for (int start = 0; start < caseUsers.Count; start += options.UserBatchSize)
        {
            int b = Math.Min(options.UserBatchSize, caseUsers.Count - start);
            var users = caseUsers.GetRange(start, b).ToArray();
            var targets = caseItems.GetRange(start, b).ToArray();
            var negatives = new int[b * n];
            sampler.Sample(users, n, rng, negatives, targets, distinct: true);
            var candidates = new int[b * width];
            for (int r = 0; r < b; r++)
            {
                candidates[r * width] = targets[r];
                negatives.AsSpan(r * n, n).CopyTo(candidates.AsSpan(r * width + 1, n));
            }
            var scores = scorer.ScoreCandidates(users, candidates, width);
            if (scores == null || scores.Length != candidates.Length)
                throw new InvalidOperationException($"The scorer returned {scores?.Length ?? 0} scores for {candidates.Length} candidates.");
            for (int r = 0; r < b; r++)
            {
                relScore[0] = scores[r * width];
                relItem[0] = targets[r];
                CheckFinite(relScore[0], users[r]);
                acc.AddCase(relScore, relItem, scores.AsSpan(r * width + 1, n), candidates.AsSpan(r * width + 1, n), users[r]);
            }
        }
    }

    private static void EvaluateFull(IItemScorer scorer, UserItemSet seen, TopKEvaluationOptions options,
        List<int> caseUsers, List<int> caseItems, Accumulator acc)
    {
        int itemCount = scorer.ItemCount;
        // Distinct held-out items per user, users in ascending key order.
        var byUser = new SortedDictionary<int, List<int>>();
        for (int r = 0; r < caseUsers.Count; r++)
        {
            if (!byUser.TryGetValue(caseUsers[r], out var list)) byUser[caseUsers[r]] = list = new List<int>();
            if (!list.Contains(caseItems[r])) list.Add(caseItems[r]);
        }
        var allUsers = byUser.Keys.ToArray();
        var nonScores = new float[itemCount];
        var nonItems = new int[itemCount];
        var isTarget = new bool[itemCount + 1];
        int batchSize = FullRankingBatchSize(options.UserBatchSize, itemCount);
        for (int start = 0; start < allUsers.Length; start += batchSize)
        {
            int b = Math.Min(batchSize, allUsers.Length - start);
            var users = allUsers.AsSpan(start, b).ToArray();
            var scores = scorer.ScoreAllItems(users);
            if (scores == null || scores.Length != (long)b * itemCount)
                throw new InvalidOperationException($"The scorer returned {scores?.Length ?? 0} scores for {b} users × {itemCount} items.");
            for (int r = 0; r < b; r++)
            {
                int user = users[r];
                var targets = byUser[user];
                var row = scores.AsSpan(r * itemCount, itemCount);
                var relScores = new float[targets.Count];
                var relItems = targets.ToArray();
                foreach (int t in relItems) isTarget[t] = true;
                for (int j = 0; j < relItems.Length; j++) { relScores[j] = row[relItems[j] - 1]; CheckFinite(relScores[j], user); }
                var seenItems = seen.ItemsOf(user);
                int m = 0, p = 0;
                for (int item = 1; item <= itemCount; item++)
                {
                    while (p < seenItems.Length && seenItems[p] < item) p++;
                    if (isTarget[item] || (p < seenItems.Length && seenItems[p] == item)) continue;
                    nonScores[m] = row[item - 1];
                    nonItems[m] = item;
                    m++;
                }
                foreach (int t in relItems) isTarget[t] = false;
                acc.AddCase(relScores, relItems, nonScores.AsSpan(0, m), nonItems.AsSpan(0, m), user);
            }
        }
    }

    /// <summary>Full-ranking score matrices hold users × items floats; at most <see cref="MaxFullRankingScores"/> per call
    /// (64 MB) whatever <see cref="TopKEvaluationOptions.UserBatchSize"/> says, so a large catalogue cannot ask for
    /// gigabytes (or an array past .NET's length limit) in one batch.</summary>
    internal static int FullRankingBatchSize(int userBatchSize, int itemCount) =>
        (int)Math.Clamp(MaxFullRankingScores / Math.Max(1, itemCount), 1, userBatchSize);

    /// <summary>Scores per full-ranking call of the scorer: 2²⁴ floats.</summary>
    internal const long MaxFullRankingScores = 1L << 24;

    private static void CheckFinite(float score, int user)
    {
        if (float.IsNaN(score)) throw new InvalidOperationException($"The scorer returned NaN for user key {user}.");
    }

    /// <summary>Accumulates per-case metrics. Internal so that tests can check the arithmetic on hand-built cases.</summary>
    internal sealed class Accumulator
    {
        private readonly int _k;
        private readonly bool[] _covered;
        private readonly double[] _idcg; // _idcg[r] = Σ_{j<r} 1/log2(j+2)
        private readonly float[] _heapScores;
        private readonly int[] _heapItems;

        public Accumulator(int k, int itemCount)
        {
            _k = k;
            _covered = new bool[itemCount + 1];
            _idcg = new double[k + 1];
            for (int j = 0; j < k; j++) _idcg[j + 1] = _idcg[j] + 1.0 / Math.Log2(j + 2);
            _heapScores = new float[k];
            _heapItems = new int[k];
        }

        public int Cases { get; private set; }
        public double Hit, Ndcg, Mrr, Recall, Precision, Map;
        public int CoveredCount { get; private set; }

        /// <summary>Adds one ranking case: relevant items with their scores, and the non-relevant candidates.</summary>
        public void AddCase(Span<float> relScores, Span<int> relItems, ReadOnlySpan<float> nonScores, ReadOnlySpan<int> nonItems, int user)
        {
            int k = _k, r = relScores.Length;
            // Relevant items by descending score.
            if (r > 1)
            {
                for (int j = 0; j < r; j++) relScores[j] = -relScores[j];
                relScores.Sort(relItems);
                for (int j = 0; j < r; j++) relScores[j] = -relScores[j];
            }

            // Top-K non-relevant candidates (min-heap on (score, -item)), and the exact count above the best relevant.
            float best = relScores[0];
            int aboveBest = 0, heapCount = 0;
            for (int c = 0; c < nonScores.Length; c++)
            {
                float s = nonScores[c];
                if (float.IsNaN(s)) throw new InvalidOperationException($"The scorer returned NaN for user key {user}, item key {nonItems[c]}.");
                if (s >= best) aboveBest++;
                if (heapCount < k) { _heapScores[heapCount] = s; _heapItems[heapCount] = nonItems[c]; SiftUp(heapCount++); }
                else if (Better(s, nonItems[c], _heapScores[0], _heapItems[0])) { _heapScores[0] = s; _heapItems[0] = nonItems[c]; SiftDown(0, heapCount); }
            }
            // Sort the heap descending (best first).
            var topScores = _heapScores.AsSpan(0, heapCount);
            var topItems = _heapItems.AsSpan(0, heapCount);
            for (int end = heapCount - 1; end > 0; end--)
            {
                (topScores[0], topScores[end]) = (topScores[end], topScores[0]);
                (topItems[0], topItems[end]) = (topItems[end], topItems[0]);
                SiftDown(0, end);
            }

            int hits = 0;
            double dcg = 0, ap = 0;
            for (int j = 0; j < r && j < k; j++)
            {
                // Non-relevant candidates with score >= relScores[j]: exact when below K (all of them are in the top K).
                int count = 0;
                while (count < heapCount && topScores[count] >= relScores[j]) count++;
                if (count >= k) break;
                int position = j + count;
                if (position >= k) break;
                hits++;
                dcg += 1.0 / Math.Log2(position + 2);
                ap += (double)hits / (position + 1);
            }

            Cases++;
            if (hits > 0) Hit++;
            Ndcg += dcg / _idcg[Math.Min(k, r)];
            Mrr += 1.0 / (aboveBest + 1);
            Recall += (double)hits / r;
            Precision += (double)hits / k;
            Map += ap / Math.Min(k, r);

            // Coverage: merge the top non-relevant and the relevant lists (non-relevant first on ties), take K.
            int a = 0, b2 = 0;
            for (int taken = 0; taken < k && (a < heapCount || b2 < r); taken++)
            {
                int item;
                if (b2 >= r || (a < heapCount && topScores[a] >= relScores[b2])) item = topItems[a++];
                else item = relItems[b2++];
                if (!_covered[item]) { _covered[item] = true; CoveredCount++; }
            }
        }

        // "Better" = ranks higher: larger score, ties to the smaller item key.
        private static bool Better(float s1, int i1, float s2, int i2) => s1 > s2 || (s1 == s2 && i1 < i2);

        private void SiftUp(int i)
        {
            while (i > 0)
            {
                int parent = (i - 1) / 2;
                if (!Better(_heapScores[parent], _heapItems[parent], _heapScores[i], _heapItems[i])) break;
                Swap(i, parent);
                i = parent;
            }
        }

        private void SiftDown(int i, int count)
        {
            while (true)
            {
                int l = 2 * i + 1, rr = l + 1, worst = i;
                if (l < count && Better(_heapScores[worst], _heapItems[worst], _heapScores[l], _heapItems[l])) worst = l;
                if (rr < count && Better(_heapScores[worst], _heapItems[worst], _heapScores[rr], _heapItems[rr])) worst = rr;
                if (worst == i) return;
                Swap(i, worst);
                i = worst;
            }
        }

        private void Swap(int a, int b)
        {
            (_heapScores[a], _heapScores[b]) = (_heapScores[b], _heapScores[a]);
            (_heapItems[a], _heapItems[b]) = (_heapItems[b], _heapItems[a]);
        }
    }
}
