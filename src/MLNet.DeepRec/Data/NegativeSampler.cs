namespace MLNet.DeepRec.Data;

/// <summary>How negative items are drawn: by the collaborative trainers (<c>NegativeSampling</c> option), by
/// <see cref="NegativeSampler"/> and by the sampled evaluation protocol.</summary>
public enum NegativeSampling
{
    /// <summary>Every item key 1..ItemCount with equal probability (the NCF paper's choice).</summary>
    Uniform,

    /// <summary>
    /// Probability proportional to frequency^exponent, where frequency is the item's number of interactions in the
    /// training data (items never seen in training are never drawn). Exponent 1 is proportional to popularity, 0 is
    /// uniform over trained items, 0.75 is word2vec's smoothing.
    /// </summary>
    Popularity,
}

/// <summary>
/// Draws negative items for users at the level of key indices: a negative is never key 0, never one of the user's
/// positives (from the <see cref="UserItemSet"/> given at construction) and, in the overload for evaluation, never the
/// user's held-out target. Uniform draws are <c>rng.Next</c>; popularity draws use Walker's alias method (O(1) per draw).
/// Collisions with positives are rejected and redrawn while at least half of the probability mass is allowed for the
/// user; a <i>dense</i> user, whose positives (and excluded item) cover more than half of it (uniform: who has seen more
/// than half of the items), is sampled exactly from an explicit list of their allowed items instead, so the cost stays
/// bounded and sampling never fails while an allowed item exists.
/// </summary>
/// <remarks>Thread-safe for concurrent calls with distinct <see cref="Random"/> instances. Users with key 0 (unknown)
/// have no positives. A user with no allowed item (every item, or all the popularity mass, is a positive or excluded)
/// cannot be sampled: <see cref="InvalidOperationException"/> naming the user.</remarks>
public sealed class NegativeSampler
{
    private readonly UserItemSet _positives;
    private readonly double[]? _weights;   // popularity weight per item key (index 0 = 0), null for uniform
    private readonly double[]? _aliasProb;  // alias table over keys 0..ItemCount
    private readonly int[]? _alias;
    private readonly double _totalWeight;

    /// <summary>Creates a sampler over the positives of <paramref name="positives"/>.</summary>
    /// <param name="positives">Each user's positive items (never returned as negatives for that user).</param>
    /// <param name="strategy">Uniform or popularity-proportional drawing.</param>
    /// <param name="itemFrequencies">For <see cref="NegativeSampling.Popularity"/>: the training frequency of
    /// each item key (length ItemCount + 1, index 0 ignored). When null, the number of distinct users with the item in
    /// <paramref name="positives"/> is used. Ignored for uniform sampling.</param>
    /// <param name="popularityExponent">Smoothing exponent applied to the frequencies (default 1.0: proportional to
    /// popularity; 0.75 flattens, 0 is uniform over items with a non-zero frequency). Must be finite and ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">The exponent is negative or not finite, or a frequency is negative.</exception>
    /// <exception cref="ArgumentException"><paramref name="itemFrequencies"/> has the wrong length, or no item has a
    /// positive frequency.</exception>
    public NegativeSampler(UserItemSet positives, NegativeSampling strategy = NegativeSampling.Uniform,
        int[]? itemFrequencies = null, double popularityExponent = 1.0)
    {
        ArgumentNullException.ThrowIfNull(positives);
        if (!double.IsFinite(popularityExponent) || popularityExponent < 0)
            throw new ArgumentOutOfRangeException(nameof(popularityExponent), popularityExponent, "popularityExponent must be finite and >= 0.");
        if (strategy is not (NegativeSampling.Uniform or NegativeSampling.Popularity))
            throw new ArgumentOutOfRangeException(nameof(strategy), strategy, "Unknown negative sampling strategy.");
        _positives = positives;
        Strategy = strategy;
        PopularityExponent = popularityExponent;
        if (strategy == NegativeSampling.Uniform) return;

        var freq = itemFrequencies ?? positives.ItemUserCounts();
        if (freq.Length != positives.ItemCount + 1)
            throw new ArgumentException($"itemFrequencies must have ItemCount + 1 = {positives.ItemCount + 1} entries (index = item key), but has {freq.Length}.", nameof(itemFrequencies));
        _weights = new double[freq.Length];
        for (int i = 1; i < freq.Length; i++)
        {
            if (freq[i] < 0) throw new ArgumentOutOfRangeException(nameof(itemFrequencies), freq[i], $"Frequency of item key {i} is negative.");
            _weights[i] = freq[i] == 0 ? 0 : Math.Pow(freq[i], popularityExponent);
            _totalWeight += _weights[i];
        }
        if (!(_totalWeight > 0)) throw new ArgumentException("No item has a positive frequency: popularity sampling is impossible.", nameof(itemFrequencies));
        (_aliasProb, _alias) = BuildAlias(_weights, _totalWeight);
    }

    /// <summary>The sampling strategy.</summary>
    public NegativeSampling Strategy { get; }

    /// <summary>The smoothing exponent of popularity sampling.</summary>
    public double PopularityExponent { get; }

    /// <summary>Number of item keys.</summary>
    public int ItemCount => _positives.ItemCount;

    /// <summary>
    /// Draws <paramref name="negativesPerUser"/> negatives for each user, with replacement (a negative may repeat within
    /// a user; the training use). Returns row-major [users.Length, negativesPerUser].
    /// </summary>
    /// <param name="users">User keys (0..UserCount).</param>
    /// <param name="negativesPerUser">Negatives per user, ≥ 0.</param>
    /// <param name="rng">Random source; results are deterministic for a given seed.</param>
    public int[] Sample(int[] users, int negativesPerUser, Random rng)
    {
        ArgumentNullException.ThrowIfNull(users);
        CheckCount(negativesPerUser, users.Length);
        var result = new int[users.Length * negativesPerUser];
        Sample(users, negativesPerUser, rng, result, default, distinct: false);
        return result;
    }

    /// <summary>
    /// Draws negatives for each user excluding, besides the user's positives, one extra item per user (the held-out
    /// target of an evaluation). Returns row-major [users.Length, negativesPerUser].
    /// </summary>
    /// <param name="users">User keys (0..UserCount).</param>
    /// <param name="negativesPerUser">Negatives per user, ≥ 0.</param>
    /// <param name="rng">Random source.</param>
    /// <param name="excludedItems">One item key per user that must not be drawn (0 = none).</param>
    /// <param name="distinct">When true, a user's negatives are all different (sampling without replacement, the
    /// evaluation protocol); the user must then have at least <paramref name="negativesPerUser"/> allowed items.</param>
    /// <exception cref="InvalidOperationException">A user has no allowed item, or fewer than
    /// <paramref name="negativesPerUser"/> with <paramref name="distinct"/>.</exception>
    public int[] Sample(int[] users, int negativesPerUser, Random rng, int[] excludedItems, bool distinct = true)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(excludedItems);
        if (excludedItems.Length != users.Length)
            throw new ArgumentException($"excludedItems must have one item per user ({users.Length}), but has {excludedItems.Length}.", nameof(excludedItems));
        CheckCount(negativesPerUser, users.Length);
        var result = new int[users.Length * negativesPerUser];
        Sample(users, negativesPerUser, rng, result, excludedItems, distinct);
        return result;
    }

    /// <summary>
    /// Span form of the samplers, writing row-major negatives into <paramref name="destination"/>
    /// (length users.Length × <paramref name="negativesPerUser"/>) without allocating per call.
    /// </summary>
    /// <param name="users">User keys.</param>
    /// <param name="negativesPerUser">Negatives per user.</param>
    /// <param name="rng">Random source.</param>
    /// <param name="destination">Output buffer.</param>
    /// <param name="excludedItems">Empty, or one excluded item key per user (0 = none).</param>
    /// <param name="distinct">Whether a user's negatives must all differ.</param>
    public void Sample(ReadOnlySpan<int> users, int negativesPerUser, Random rng, Span<int> destination,
        ReadOnlySpan<int> excludedItems, bool distinct)
    {
        ArgumentNullException.ThrowIfNull(rng);
        CheckCount(negativesPerUser, users.Length);
        if (destination.Length != (long)users.Length * negativesPerUser)
            throw new ArgumentException($"destination must have users.Length × negativesPerUser = {(long)users.Length * negativesPerUser} entries, but has {destination.Length}.", nameof(destination));
        if (!excludedItems.IsEmpty && excludedItems.Length != users.Length)
            throw new ArgumentException($"excludedItems must be empty or have one item per user ({users.Length}).", nameof(excludedItems));
        if (negativesPerUser == 0) return;
        HashSet<int>? chosen = distinct && negativesPerUser > 1 ? new HashSet<int>(negativesPerUser) : null;
        for (int r = 0; r < users.Length; r++)
        {
            int user = users[r];
            if ((uint)user > (uint)_positives.UserCount)
                throw new ArgumentOutOfRangeException(nameof(users), user, $"User key at index {r} is outside 0..{_positives.UserCount}.");
            int excluded = excludedItems.IsEmpty ? 0 : excludedItems[r];
            SampleUser(user, excluded, negativesPerUser, rng, destination.Slice(r * negativesPerUser, negativesPerUser), chosen);
        }
    }

    private void SampleUser(int user, int excluded, int n, Random rng, Span<int> dest, HashSet<int>? chosen)
    {
        var pos = _positives.ItemsOf(user);
        bool excludedIsExtra = excluded > 0 && excluded <= ItemCount && pos.BinarySearch(excluded) < 0;
        double allowedFraction;
        int allowedCount; // number of items with non-zero probability that may be drawn
        if (_weights == null)
        {
            allowedCount = ItemCount - pos.Length - (excludedIsExtra ? 1 : 0);
            allowedFraction = (double)allowedCount / ItemCount;
        }
        else
        {
            double blocked = 0;
            int blockedWithMass = 0;
            foreach (int i in pos) if (_weights[i] > 0) { blocked += _weights[i]; blockedWithMass++; }
            if (excludedIsExtra && _weights[excluded] > 0) { blocked += _weights[excluded]; blockedWithMass++; }
            allowedCount = CountPositiveWeights() - blockedWithMass;
            allowedFraction = allowedCount == 0 ? 0 : Math.Max(0, (_totalWeight - blocked) / _totalWeight);
        }
        if (allowedCount <= 0)
            throw new InvalidOperationException($"Cannot sample negatives for user key {user}: every item that can be drawn ({Strategy} sampling over {ItemCount} items) is one of the user's {pos.Length} positives or the excluded item.");
        if (chosen != null && allowedCount < n)
            throw new InvalidOperationException($"Cannot sample {n} distinct negatives for user key {user}: only {allowedCount} items are allowed (not a positive, not excluded).");
        chosen?.Clear();

        // Rejection sampling while at least half of the mass is allowed (about two draws per negative); otherwise, and
        // for whatever the attempts left undrawn, exactly from the explicit allowed list.
        if (allowedFraction >= 0.5)
        {
            int k = 0, attempts = 0, maxAttempts = 64 + 32 * n;
            while (k < n && attempts++ < maxAttempts)
            {
                int item = Draw(rng);
                if (item == excluded || pos.BinarySearch(item) >= 0) continue;
                if (chosen != null && !chosen.Add(item)) continue;
                dest[k++] = item;
            }
            if (k == n) return;
            dest = dest[k..];
            n -= k;
        }
        SampleFromAllowedList(pos, excluded, n, rng, dest, chosen);
    }

    private int _positiveWeightCount = -1;
    private int CountPositiveWeights()
    {
        if (_positiveWeightCount >= 0) return _positiveWeightCount;
        int c = 0;
        foreach (double w in _weights!) if (w > 0) c++;
        return _positiveWeightCount = c;
    }

    private void SampleFromAllowedList(ReadOnlySpan<int> pos, int excluded, int n, Random rng, Span<int> dest, HashSet<int>? chosen)
    {
        var allowed = new List<int>();
        var cumulative = new List<double>();
        double acc = 0;
        int p = 0;
        for (int item = 1; item <= ItemCount; item++)
        {
            while (p < pos.Length && pos[p] < item) p++;
            if ((p < pos.Length && pos[p] == item) || item == excluded) continue;
            if (chosen != null && chosen.Contains(item)) continue;
            double w = _weights == null ? 1 : _weights[item];
            if (w <= 0) continue;
            acc += w;
            allowed.Add(item);
            cumulative.Add(acc);
        }
        for (int k = 0; k < n; k++)
        {
            if (allowed.Count == 0)
                throw new InvalidOperationException("Ran out of allowed items while sampling distinct negatives.");
            double x = rng.NextDouble() * acc;
            int idx = cumulative.BinarySearch(x);
            idx = idx < 0 ? ~idx : idx + 1;
            if (idx >= allowed.Count) idx = allowed.Count - 1;
            int item = allowed[idx];
            dest[k] = item;
            if (chosen != null)
            {
                // Remove the drawn item and rebuild the running sums (n is small relative to the allowed list here).
                allowed.RemoveAt(idx);
                cumulative.Clear();
                acc = 0;
                foreach (int a in allowed) { acc += _weights == null ? 1 : _weights[a]; cumulative.Add(acc); }
            }
        }
    }

    private int Draw(Random rng)
    {
        if (_alias == null) return rng.Next(1, ItemCount + 1);
        int bucket = rng.Next(_alias.Length);
        return rng.NextDouble() < _aliasProb![bucket] ? bucket : _alias[bucket];
    }

    private static (double[] Prob, int[] Alias) BuildAlias(double[] weights, double total)
    {
        int n = weights.Length;
        var prob = new double[n];
        var alias = new int[n];
        var scaled = new double[n];
        var small = new Stack<int>();
        var large = new Stack<int>();
        for (int i = 0; i < n; i++)
        {
            scaled[i] = weights[i] * n / total;
            (scaled[i] < 1 ? small : large).Push(i);
        }
        while (small.Count > 0 && large.Count > 0)
        {
            int s = small.Pop(), l = large.Pop();
            prob[s] = scaled[s];
            alias[s] = l;
            scaled[l] = scaled[l] + scaled[s] - 1;
            (scaled[l] < 1 ? small : large).Push(l);
        }
        while (large.Count > 0) { int l = large.Pop(); prob[l] = 1; alias[l] = l; }
        // Left-overs of round-off: point them at themselves only if they have weight, otherwise at a weighted item.
        int fallback = Array.FindIndex(weights, w => w > 0);
        while (small.Count > 0) { int s = small.Pop(); prob[s] = weights[s] > 0 ? 1 : 0; alias[s] = weights[s] > 0 ? s : fallback; }
        return (prob, alias);
    }

    private static void CheckCount(int negativesPerUser, int userCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(negativesPerUser);
        if ((long)negativesPerUser * userCount > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(negativesPerUser), negativesPerUser, "users.Length × negativesPerUser is too large for one array.");
    }
}
