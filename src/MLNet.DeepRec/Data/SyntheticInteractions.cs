using Microsoft.ML;

namespace MLNet.DeepRec.Data;

/// <summary>Options of the synthetic interaction generator (<see cref="SyntheticInteractionGenerator"/>).</summary>
public sealed class SyntheticInteractionOptions
{
    /// <summary>Number of users. Default 600.</summary>
    public int UserCount = 600;

    /// <summary>Number of items. Default 400.</summary>
    public int ItemCount = 400;

    /// <summary>Dimension of the planted latent user and item vectors. Default 8.</summary>
    public int Factors = 8;

    /// <summary>Mean number of (distinct) interactions per user; the per-user count is log-normal around it, at least
    /// 3 and at most ItemCount − 1. Default 40.</summary>
    public int InteractionsPerUser = 40;

    /// <summary>Zipf exponent of item popularity: popularity ∝ 1 / rank^PopularitySkew, ranks randomly assigned to
    /// items. 0 makes all items equally popular. Default 0.8.</summary>
    public double PopularitySkew = 0.8;

    /// <summary>Softmax temperature of the latent affinity: a user picks item i with probability ∝
    /// exp(dot(u, i) / Temperature) × popularity(i); the planted vectors are scaled so dot(u, i) has unit variance.
    /// Smaller is a stronger collaborative signal. Default 0.25.</summary>
    public double Temperature = 0.25;

    /// <summary>Fraction of interactions, in [0, 1], drawn from popularity alone instead of the latent affinity.
    /// Default 0.1.</summary>
    public double Noise = 0.1;

    /// <summary>Seed; the data are a deterministic function of the options. Default 0.</summary>
    public int Seed;

    /// <summary>Number of candidates drawn per affinity-driven interaction by the scalable algorithm (used only when
    /// UserCount × ItemCount exceeds <see cref="SyntheticInteractionGenerator.ExactSamplingMaxPairs"/>; see
    /// <see cref="SyntheticInteractionGenerator.Generate"/>). Larger values bring the sample closer to the exact softmax
    /// over all items (a stronger planted signal) at a proportional cost. Default 4.</summary>
    public int CandidatesPerInteraction = 4;

    /// <summary>When true, <c>mlContext.DeepRec().Data.GenerateSyntheticInteractions</c> returns <c>UserId</c> and
    /// <c>ItemId</c> as <see cref="uint"/> key-typed columns (key = index + 1, cardinality
    /// <see cref="UserCount"/> / <see cref="ItemCount"/>, no <c>KeyValues</c> annotation, so no vocabulary is built) instead
    /// of text ids, so that large data need no <c>MapValueToKey</c> and can be read directly by
    /// <see cref="KeyedInteractions.FromDataView"/>. Keys equal those of
    /// <see cref="SyntheticInteractions.ToKeyedInteractions"/>. Has no effect on the generated interactions.
    /// Default false.</summary>
    public bool KeyTypedIds;

    /// <summary>
    /// When true, <c>mlContext.DeepRec().Data.GenerateSyntheticInteractions</c> fills <c>Label</c> with a 1–5 star rating
    /// instead of 1: the user's taste for the item, dot(u, i), standardised over the generated interactions, as
    /// round(3.5 + b_u + 1.2 z + ε) clipped to 1..5, with a per-user rating bias b_u ~ N(0, 0.4²) and noise ε ~ N(0, 0.5²)
    /// (both from <see cref="Seed"/>). The planted taste is recoverable only by a collaborative model, so a rating model
    /// must beat a biases-only predictor; the interactions themselves are unchanged. Default false.
    /// </summary>
    public bool Ratings;
}

/// <summary>
/// Synthetic implicit-feedback interactions with planted structure, at the level of 0-based indices, with the planted
/// factors exposed so that tests can build an oracle. Produced by <see cref="SyntheticInteractionGenerator.Generate"/>.
/// </summary>
public sealed class SyntheticInteractions
{
    internal SyntheticInteractions(SyntheticInteractionOptions options, int[] users, int[] items, double[] timestamps,
        float[] userFactors, float[] itemFactors, double[] popularity)
    {
        UserCount = options.UserCount; ItemCount = options.ItemCount; Factors = options.Factors; Temperature = options.Temperature;
        UserIndices = users; ItemIndices = items; Timestamps = timestamps;
        UserFactors = userFactors; ItemFactors = itemFactors; ItemPopularity = popularity;
    }

    /// <summary>Number of users.</summary>
    public int UserCount { get; }
    /// <summary>Number of items.</summary>
    public int ItemCount { get; }
    /// <summary>Latent dimension.</summary>
    public int Factors { get; }
    /// <summary>Softmax temperature used.</summary>
    public double Temperature { get; }
    /// <summary>0-based user index per interaction (the id text is "u" + index). Interactions are grouped by user in
    /// time order.</summary>
    public int[] UserIndices { get; }
    /// <summary>0-based item index per interaction (the id text is "i" + index).</summary>
    public int[] ItemIndices { get; }
    /// <summary>Timestamp per interaction (seconds), increasing within a user.</summary>
    public double[] Timestamps { get; }
    /// <summary>Planted user vectors, row-major [UserCount, Factors].</summary>
    public float[] UserFactors { get; }
    /// <summary>Planted item vectors, row-major [ItemCount, Factors].</summary>
    public float[] ItemFactors { get; }
    /// <summary>Planted item popularity (sums to 1), by item index.</summary>
    public double[] ItemPopularity { get; }
    /// <summary>Number of interactions.</summary>
    public int Count => UserIndices.Length;

    /// <summary>The planted log-preference of a user for an item: dot(u, i) / Temperature + log popularity(i); the
    /// generator picks items with probability ∝ exp of it (up to the <see cref="SyntheticInteractionOptions.Noise"/>
    /// share; approximately so above <see cref="SyntheticInteractionGenerator.ExactSamplingMaxPairs"/> user–item pairs, see
    /// <see cref="SyntheticInteractionGenerator.Generate"/>). The best possible ranking model scores items by it.</summary>
    /// <param name="userIndex">0-based user index.</param>
    /// <param name="itemIndex">0-based item index.</param>
    public double PlantedScore(int userIndex, int itemIndex)
    {
        if ((uint)userIndex >= (uint)UserCount) throw new ArgumentOutOfRangeException(nameof(userIndex), userIndex, $"Must be in 0..{UserCount - 1}.");
        if ((uint)itemIndex >= (uint)ItemCount) throw new ArgumentOutOfRangeException(nameof(itemIndex), itemIndex, $"Must be in 0..{ItemCount - 1}.");
        double dot = 0;
        for (int f = 0; f < Factors; f++) dot += UserFactors[userIndex * Factors + f] * ItemFactors[itemIndex * Factors + f];
        return dot / Temperature + Math.Log(ItemPopularity[itemIndex]);
    }

    /// <summary>1–5 star ratings of the interactions from the planted taste (see <see cref="SyntheticInteractionOptions.Ratings"/>).</summary>
    internal float[] PlantedRatings(int seed)
    {
        var taste = new double[Count];
        System.Threading.Tasks.Parallel.For(0, Count, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, r =>
        {
            double dot = 0;
            int u = UserIndices[r] * Factors, i = ItemIndices[r] * Factors;
            for (int f = 0; f < Factors; f++) dot += UserFactors[u + f] * ItemFactors[i + f];
            taste[r] = dot;
        });
        double mean = taste.Average();
        double sd = Math.Sqrt(taste.Sum(t => (t - mean) * (t - mean)) / Math.Max(1, Count - 1));
        if (!(sd > 0)) sd = 1;
        var random = new Random(HashCode.Combine(seed, 0x5EED));
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var userBias = new double[UserCount];
        for (int u = 0; u < UserCount; u++) userBias[u] = 0.4 * Normal();
        var ratings = new float[Count];
        for (int r = 0; r < Count; r++)
            ratings[r] = (float)Math.Clamp(Math.Round(3.5 + userBias[UserIndices[r]] + 1.2 * (taste[r] - mean) / sd + 0.5 * Normal()), 1, 5);
        return ratings;
    }

    /// <summary>The interactions as key indices: user key = index + 1, item key = index + 1 (so key 0 stays "unknown").
    /// Note that <c>MapValueToKey</c> over the text ids of the data view assigns keys in order of first appearance
    /// instead.</summary>
    public KeyedInteractions ToKeyedInteractions()
    {
        var u = new int[Count];
        var i = new int[Count];
        var labels = new float[Count];
        for (int r = 0; r < Count; r++) { u[r] = UserIndices[r] + 1; i[r] = ItemIndices[r] + 1; labels[r] = 1; }
        return new KeyedInteractions(u, i, UserCount, ItemCount, labels, (double[])Timestamps.Clone());
    }
}

/// <summary>Generator of synthetic interactions with planted collaborative structure.</summary>
public static class SyntheticInteractionGenerator
{
    /// <summary>
    /// Largest UserCount × ItemCount generated by the exact algorithm (a full softmax over all items per user, cost
    /// O(users × items)); above it <see cref="Generate"/> switches to the scalable candidate-sampling algorithm, whose
    /// cost grows with the number of interactions only. 5,000,000.
    /// </summary>
    public const long ExactSamplingMaxPairs = 5_000_000;

    /// <summary>
    /// Generates interactions: planted user and item vectors (Gaussian, scaled so that dot products have unit variance),
    /// Zipf item popularity, and per user a log-normal number of distinct items drawn without replacement with
    /// probability ∝ exp(dot / Temperature) × popularity (a share <see cref="SyntheticInteractionOptions.Noise"/> of them
    /// ∝ popularity alone), in random time order. A collaborative model can therefore beat the popularity baseline
    /// clearly. Deterministic from the options (seed included).
    /// </summary>
    /// <remarks>
    /// <para><b>Exact algorithm</b> (UserCount × ItemCount ≤ <see cref="ExactSamplingMaxPairs"/>): every user ranks all
    /// items by Gumbel-perturbed log-preference (Gumbel-top-k, i.e. sampling without replacement ∝ exp(logit)). Cost
    /// O(users × items log items), single-threaded; the output for a given seed is the same as in earlier versions.</para>
    /// <para><b>Scalable algorithm</b> (above that size): items are grouped into 2^min(Factors, 8) strata by the signs of
    /// their first planted coordinates. Per user, <see cref="SyntheticInteractionOptions.CandidatesPerInteraction"/> ×
    /// (number of affinity-driven interactions) candidates are drawn from a proposal, each in O(1) with alias tables: a
    /// stratum ∝ its popularity mass × exp(dot(u, stratum mean) / Temperature), then an item of it ∝ popularity. The
    /// planted affinity is computed for the distinct candidates only, and the user's items are picked among them without
    /// replacement ∝ (times drawn) × exp((dot(u, i) − dot(u, stratum mean)) / Temperature): sampling importance resampling
    /// of the same target ∝ popularity × exp(dot / Temperature), with Efraimidis–Spirakis keys (equivalent to
    /// Gumbel-top-k). The noise share is drawn ∝ popularity alone. Users are generated in parallel, each from its own
    /// random stream derived from the seed and the user index, so the output is deterministic whatever the thread
    /// scheduling (but differs from what the exact algorithm would give for the same seed). Cost
    /// O(interactions × CandidatesPerInteraction × Factors + users × strata × Factors + items × Factors); memory 16 bytes
    /// per interaction (user index, item index, timestamp) plus about 90 bytes per item (at 8 factors) and 8 bytes per
    /// item per worker thread. With a finite candidate pool the realised preference is softer than the exact softmax (with
    /// the default 4 candidates the mean planted affinity of the chosen items is about three quarters of the exact
    /// algorithm's), but <see cref="SyntheticInteractions.PlantedScore"/> remains the oracle ranking and beats popularity
    /// clearly.</para>
    /// </remarks>
    /// <param name="options">Options; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the message names it).</exception>
    public static SyntheticInteractions Generate(SyntheticInteractionOptions? options = null)
    {
        options ??= new SyntheticInteractionOptions();
        Validate(options);
        return (long)options.UserCount * options.ItemCount <= ExactSamplingMaxPairs ? GenerateExact(options) : GenerateScalable(options);
    }

    private static SyntheticInteractions GenerateExact(SyntheticInteractionOptions options)
    {
        var rng = new Random(options.Seed);
        int nu = options.UserCount, ni = options.ItemCount, f = options.Factors;
        double scale = 1.0 / Math.Pow(f, 0.25);
        var uf = new float[nu * f];
        var itf = new float[ni * f];
        for (int k = 0; k < uf.Length; k++) uf[k] = (float)(Gaussian(rng) * scale);
        for (int k = 0; k < itf.Length; k++) itf[k] = (float)(Gaussian(rng) * scale);

        var ranks = new int[ni];
        for (int i = 0; i < ni; i++) ranks[i] = i + 1;
        rng.Shuffle(ranks);
        var pop = new double[ni];
        double total = 0;
        for (int i = 0; i < ni; i++) { pop[i] = Math.Pow(ranks[i], -options.PopularitySkew); total += pop[i]; }
        var logPop = new double[ni];
        for (int i = 0; i < ni; i++) { pop[i] /= total; logPop[i] = Math.Log(pop[i]); }

        var users = new List<int>(nu * options.InteractionsPerUser);
        var items = new List<int>(nu * options.InteractionsPerUser);
        var times = new List<double>(nu * options.InteractionsPerUser);
        var structuredKey = new double[ni];
        var popularKey = new double[ni];
        var structuredOrder = new int[ni];
        var popularOrder = new int[ni];
        var taken = new bool[ni];
        var chosen = new List<int>();
        int maxCount = ni - 1;
        for (int u = 0; u < nu; u++)
        {
            // Gumbel-top-k: sorting logit + Gumbel noise gives a draw without replacement ∝ exp(logit).
            for (int i = 0; i < ni; i++)
            {
                double dot = 0;
                for (int k = 0; k < f; k++) dot += uf[u * f + k] * itf[i * f + k];
                structuredKey[i] = -(dot / options.Temperature + logPop[i] + Gumbel(rng));
                popularKey[i] = -(logPop[i] + Gumbel(rng));
                structuredOrder[i] = i; popularOrder[i] = i;
            }
            Array.Sort((double[])structuredKey.Clone(), structuredOrder);
            Array.Sort((double[])popularKey.Clone(), popularOrder);

            int n = (int)Math.Round(options.InteractionsPerUser * Math.Exp(0.5 * Gaussian(rng) - 0.125));
            n = Math.Clamp(n, Math.Min(3, maxCount), maxCount);
            Array.Clear(taken);
            chosen.Clear();
            int sp = 0, pp = 0;
            for (int k = 0; k < n; k++)
            {
                bool noise = rng.NextDouble() < options.Noise;
                int item;
                if (noise) { while (taken[popularOrder[pp]]) pp++; item = popularOrder[pp]; }
                else { while (taken[structuredOrder[sp]]) sp++; item = structuredOrder[sp]; }
                taken[item] = true;
                chosen.Add(item);
            }
            // Random time order with random gaps.
            var order = chosen.ToArray();
            rng.Shuffle(order);
            double t = 1_000_000_000 + Math.Floor(rng.NextDouble() * 10_000_000);
            foreach (int item in order)
            {
                t += 1 + Math.Floor(rng.NextDouble() * 3600);
                users.Add(u); items.Add(item); times.Add(t);
            }
        }
        return new SyntheticInteractions(options, users.ToArray(), items.ToArray(), times.ToArray(), uf, itf, pop);
    }

    // Random streams of the scalable algorithm (each derived from the seed, a stream id and an index).
    private const ulong PopularityStream = 1, ItemFactorStream = 2, UserSetupStream = 3, UserItemsStream = 4;
    private const int ItemFactorBlock = 4096;
    private const int UserBlock = 64;
    private const int MaxStratumBits = 8;

    private static SyntheticInteractions GenerateScalable(SyntheticInteractionOptions options)
    {
        int nu = options.UserCount, ni = options.ItemCount, f = options.Factors;
        ulong seed = (ulong)(uint)options.Seed;
        float scale = (float)(1.0 / Math.Pow(f, 0.25));

        // Zipf popularity over randomly assigned ranks (rank 0 = most popular).
        var rankToItem = new int[ni];
        for (int i = 0; i < ni; i++) rankToItem[i] = i;
        var prng = new SplitRandom(seed, PopularityStream, 0);
        for (int i = ni - 1; i > 0; i--)
        {
            int j = prng.NextInt(i + 1);
            (rankToItem[i], rankToItem[j]) = (rankToItem[j], rankToItem[i]);
        }
        var pop = new double[ni];
        double total = 0;
        for (int r = 0; r < ni; r++) total += Math.Pow(r + 1, -options.PopularitySkew);
        for (int r = 0; r < ni; r++) pop[rankToItem[r]] = Math.Pow(r + 1, -options.PopularitySkew) / total;

        // Item factors by item index, in parallel blocks with one stream per block.
        var itf = new float[(long)ni * f];
        Parallel.For(0, (ni + ItemFactorBlock - 1) / ItemFactorBlock, b =>
        {
            var rng = new SplitRandom(seed, ItemFactorStream, (ulong)b);
            long end = Math.Min((long)(b + 1) * ItemFactorBlock, ni) * f;
            for (long k = (long)b * ItemFactorBlock * f; k < end; k++) itf[k] = (float)rng.NextGaussian() * scale;
        });
        var strata = new ItemStrata(rankToItem, pop, itf, f);
        rankToItem = null!;

        // Per user: planted vector and interaction count.
        var uf = new float[(long)nu * f];
        var counts = new int[nu];
        int maxCount = ni - 1, minCount = Math.Min(3, maxCount);
        Parallel.For(0, nu, u =>
        {
            var rng = new SplitRandom(seed, UserSetupStream, (ulong)u);
            for (int k = 0; k < f; k++) uf[(long)u * f + k] = (float)rng.NextGaussian() * scale;
            double n = Math.Round(options.InteractionsPerUser * Math.Exp(0.5 * rng.NextGaussian() - 0.125));
            counts[u] = (int)Math.Clamp(n, minCount, maxCount);
        });
        var offsets = new int[nu + 1];
        long sum = 0;
        for (int u = 0; u < nu; u++)
        {
            offsets[u] = (int)sum;
            sum += counts[u];
            if (sum > Array.MaxLength)
                throw new ArgumentOutOfRangeException(nameof(options.InteractionsPerUser), options.InteractionsPerUser,
                    $"UserCount × InteractionsPerUser gives more than {Array.MaxLength} interactions; use fewer users or interactions per user.");
        }
        offsets[nu] = (int)sum;
        counts = null!;

        var users = new int[sum];
        var items = new int[sum];
        var times = new double[sum];
        var job = new ScalableJob(options, seed, uf, strata, offsets, users, items, times);
        int workers = (int)Math.Max(1, Math.Min(Environment.ProcessorCount, (nu + UserBlock - 1) / UserBlock));
        int nextBlock = 0;
        Parallel.For(0, workers, _ =>
        {
            var scratch = new ScalableScratch(ni, strata.Count);
            int start;
            while ((start = Interlocked.Add(ref nextBlock, UserBlock) - UserBlock) < nu)
            {
                int end = Math.Min(nu, start + UserBlock);
                for (int u = start; u < end; u++) job.GenerateUser(u, scratch);
            }
        });
        return new SyntheticInteractions(options, users, items, times, uf, itf, pop);
    }

    /// <summary>
    /// The items of the scalable algorithm, grouped into strata by the signs of their first min(Factors, 8) planted
    /// coordinates and numbered by "slot": stratum by stratum, most popular first. Per stratum: its popularity mass, its
    /// popularity-weighted mean vector, and an alias table drawing its items ∝ popularity in O(1).
    /// </summary>
    private sealed class ItemStrata
    {
        public readonly int Count;
        public readonly int Factors;
        public readonly int[] Start;          // slots of stratum k: Start[k] .. Start[k + 1] − 1
        public readonly double[] Mass;         // popularity of stratum k
        public readonly double[] LogMass;      // its log (−∞ when 0)
        public readonly AliasEntry[] MassAlias; // draws a stratum ∝ Mass
        public readonly float[] Centroids;     // [Count, Factors]
        public readonly int[] SlotToItem;
        public readonly float[] FactorsBySlot; // [items, Factors]
        private readonly AliasEntry[] _alias;  // per stratum, draws its slots ∝ popularity (aliases are absolute slots)

        public ItemStrata(int[] rankToItem, double[] pop, float[] itemFactors, int f)
        {
            int ni = rankToItem.Length, bits = Math.Min(f, MaxStratumBits);
            Count = 1 << bits;
            Factors = f;
            var stratumOfRank = new byte[ni];
            Start = new int[Count + 1];
            for (int r = 0; r < ni; r++)
            {
                long o = (long)rankToItem[r] * f;
                int code = 0;
                for (int k = 0; k < bits; k++) if (itemFactors[o + k] > 0) code |= 1 << k;
                stratumOfRank[r] = (byte)code;
                Start[code + 1]++;
            }
            for (int k = 0; k < Count; k++) Start[k + 1] += Start[k];
            SlotToItem = new int[ni];
            var fill = (int[])Start.Clone();
            for (int r = 0; r < ni; r++) SlotToItem[fill[stratumOfRank[r]]++] = rankToItem[r]; // ranks ascending within a stratum

            FactorsBySlot = new float[(long)ni * f];
            Mass = new double[Count];
            Centroids = new float[Count * f];
            var centroid = new double[f];
            var popBySlot = new double[ni];
            for (int k = 0; k < Count; k++)
            {
                Array.Clear(centroid);
                double mass = 0;
                for (int s = Start[k]; s < Start[k + 1]; s++)
                {
                    int item = SlotToItem[s];
                    Array.Copy(itemFactors, (long)item * f, FactorsBySlot, (long)s * f, f);
                    popBySlot[s] = pop[item];
                    mass += pop[item];
                    for (int j = 0; j < f; j++) centroid[j] += pop[item] * itemFactors[(long)item * f + j];
                }
                Mass[k] = mass;
                if (mass > 0) for (int j = 0; j < f; j++) Centroids[k * f + j] = (float)(centroid[j] / mass);
            }
            _alias = new AliasEntry[ni];
            var work = new AliasWork(ni);
            for (int k = 0; k < Count; k++)
                BuildAlias(popBySlot.AsSpan(Start[k], Start[k + 1] - Start[k]), _alias.AsSpan(Start[k], Start[k + 1] - Start[k]), Start[k], work);
            LogMass = Array.ConvertAll(Mass, m => Math.Log(m));
            MassAlias = new AliasEntry[Count];
            BuildAlias(Mass, MassAlias, 0, work);
        }

        /// <summary>A slot of stratum k (which must be non-empty), drawn ∝ popularity.</summary>
        public int Sample(int k, ref SplitRandom rng) => DrawAlias(_alias, Start[k], Start[k + 1] - Start[k], ref rng);
    }

    /// <summary>An entry of an alias table (Walker/Vose): O(1) draws from a discrete distribution.</summary>
    private struct AliasEntry
    {
        public uint Threshold; // keep the slot when the 32 low random bits are below it, else take Alias
        public int Alias;      // absolute index of the alias
    }

    private sealed class AliasWork(int capacity)
    {
        public readonly double[] Scaled = new double[capacity];
        public readonly int[] Small = new int[capacity];
        public readonly int[] Large = new int[capacity];
    }

    /// <summary>Vose's alias method: fills entries (one per weight) so that <see cref="DrawAlias"/> draws index i with
    /// probability weights[i] / Σ weights (uniformly when all are 0); aliases are stored as indexBase + i.</summary>
    private static void BuildAlias(ReadOnlySpan<double> weights, Span<AliasEntry> entries, int indexBase, AliasWork work)
    {
        int n = weights.Length, ns = 0, nl = 0, heaviest = 0;
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            total += weights[i];
            if (weights[i] > weights[heaviest]) heaviest = i;
        }
        var scaled = work.Scaled; var small = work.Small; var large = work.Large;
        for (int i = 0; i < n; i++)
        {
            scaled[i] = total > 0 ? weights[i] / total * n : 1;
            if (scaled[i] < 1) small[ns++] = i; else large[nl++] = i;
        }
        while (ns > 0 && nl > 0)
        {
            int sm = small[--ns], lg = large[nl - 1];
            entries[sm] = new AliasEntry { Threshold = (uint)(scaled[sm] * 4294967296.0), Alias = indexBase + lg };
            scaled[lg] -= 1 - scaled[sm];
            if (scaled[lg] < 1) { nl--; small[ns++] = lg; }
        }
        // Leftovers (probability 1 up to rounding) keep their own index.
        while (nl > 0) { int lg = large[--nl]; entries[lg] = new AliasEntry { Threshold = uint.MaxValue, Alias = indexBase + lg }; }
        while (ns > 0)
        {
            int sm = small[--ns];
            entries[sm] = total > 0 && weights[sm] == 0
                ? new AliasEntry { Threshold = 0, Alias = indexBase + heaviest } // never draw a weight-0 index
                : new AliasEntry { Threshold = uint.MaxValue, Alias = indexBase + sm };
        }
    }

    /// <summary>An index in start..start + count − 1 drawn from the alias table entries[start..start + count).</summary>
    private static int DrawAlias(AliasEntry[] entries, int start, int count, ref SplitRandom rng)
    {
        ulong r = rng.NextUInt64();
        int i = start + (int)(((r >> 32) * (ulong)(uint)count) >> 32);
        ref readonly var e = ref entries[i];
        return (uint)r < e.Threshold ? i : e.Alias;
    }

    /// <summary>Shared read-only state and outputs of the scalable algorithm; <see cref="GenerateUser"/> writes only the
    /// user's own slice of the outputs. Candidates and marks are slots of <see cref="ItemStrata"/>, mapped to items on
    /// output.</summary>
    private sealed class ScalableJob(SyntheticInteractionOptions options, ulong seed, float[] userFactors, ItemStrata strata,
        int[] offsets, int[] users, int[] items, double[] times)
    {
        private readonly int _f = options.Factors;
        private readonly int _itemCount = options.ItemCount;
        private readonly double _invTemperature = 1.0 / options.Temperature;
        private readonly double _noise = options.Noise;
        private readonly int _candidatesPerInteraction = options.CandidatesPerInteraction;

        public void GenerateUser(int u, ScalableScratch scratch)
        {
            var rng = new SplitRandom(seed, UserItemsStream, (ulong)u);
            int off = offsets[u], n = offsets[u + 1] - off;
            int stamp = u + 1; // marks this user's candidates / items in the scratch (stamps of other users differ)
            var mark = scratch.Mark;
            int noiseCount = 0;
            for (int k = 0; k < n; k++) if (rng.NextDouble() < _noise) noiseCount++;
            int structured = n - noiseCount;

            if (structured > 0)
            {
                // Proposal: stratum k ∝ mass(k) × exp(dot(u, centroid(k)) / T), then an item of it ∝ popularity.
                var centroidLogit = scratch.CentroidLogit;
                var weight = scratch.StratumWeight;
                int strataCount = strata.Count;
                long uo = (long)u * _f;
                double maxLogit = double.NegativeInfinity;
                for (int k = 0; k < strataCount; k++)
                {
                    float dot = 0;
                    for (int j = 0; j < _f; j++) dot += userFactors[uo + j] * strata.Centroids[k * _f + j];
                    centroidLogit[k] = dot * _invTemperature;
                    double logWeight = centroidLogit[k] + strata.LogMass[k];
                    weight[k] = logWeight;
                    if (logWeight > maxLogit) maxLogit = logWeight;
                }
                for (int k = 0; k < strataCount; k++) weight[k] = Math.Exp(weight[k] - maxLogit); // 0 for empty strata
                var stratumAlias = scratch.StratumAlias;
                BuildAlias(weight, stratumAlias, 0, scratch.AliasWork);

                long target = Math.Min((long)structured * _candidatesPerInteraction, int.MaxValue / 8);
                target = Math.Max(target, structured);
                long maxDraws = 4 * target + 1024;
                scratch.Ensure((int)Math.Min(maxDraws, _itemCount)); // distinct candidates ≤ min(draws, items)
                var cand = scratch.Candidates;
                var candStratum = scratch.CandidateStrata;
                var drawn = scratch.Drawn;
                int distinct = 0;
                long draws = 0;
                while (draws < target || (distinct < structured && draws < maxDraws))
                {
                    int k = DrawAlias(stratumAlias, 0, strataCount, ref rng);
                    int slot = strata.Sample(k, ref rng);
                    draws++;
                    ref var m = ref mark[slot];
                    if (m.Stamp != stamp)
                    {
                        m.Stamp = stamp; m.Slot = distinct;
                        cand[distinct] = slot; candStratum[distinct] = k; drawn[distinct] = 1; distinct++;
                    }
                    else drawn[m.Slot]++;
                }
                // Degenerate shapes (a few items hold nearly all the weight): fill up with uniform unmarked items.
                while (distinct < structured)
                {
                    int slot = UnmarkedSlot(ref rng, mark, stamp);
                    mark[slot].Stamp = stamp; mark[slot].Slot = distinct;
                    cand[distinct] = slot; candStratum[distinct] = -1; drawn[distinct] = 1; distinct++;
                }
                if (distinct > structured)
                {
                    // Sampling importance resampling: the target ∝ popularity × exp(dot / T) over the proposal gives each
                    // distinct candidate the weight drawn × exp((dot(u, i) − dot(u, centroid)) / T); its items are drawn
                    // without replacement ∝ weight (Efraimidis–Spirakis: the largest log(U) / weight, the same order as
                    // Gumbel-top-k), relative to the largest log-weight for stability.
                    var keys = scratch.Keys;
                    double maxWeight = double.NegativeInfinity;
                    for (int d = 0; d < distinct; d++)
                    {
                        long io = (long)cand[d] * _f;
                        float dot = 0;
                        for (int j = 0; j < _f; j++) dot += userFactors[uo + j] * strata.FactorsBySlot[io + j];
                        double logWeight = dot * _invTemperature - (candStratum[d] >= 0 ? centroidLogit[candStratum[d]] : 0);
                        keys[d] = logWeight;
                        if (logWeight > maxWeight) maxWeight = logWeight;
                    }
                    for (int d = 0; d < distinct; d++)
                        keys[d] = Math.Log(rng.NextOpenDouble()) * Math.Exp(maxWeight - keys[d]) / drawn[d];
                    SelectLargest(keys, cand, distinct, structured);
                    for (int d = structured; d < distinct; d++) mark[cand[d]].Stamp = 0; // not chosen
                }
                for (int d = 0; d < structured; d++) items[off + d] = strata.SlotToItem[cand[d]];
            }

            // The noise share: popularity alone (stratum ∝ mass, then item ∝ popularity), distinct from the items chosen.
            for (int k = structured; k < n; k++)
            {
                int slot = strata.Sample(DrawAlias(strata.MassAlias, 0, strata.Count, ref rng), ref rng);
                for (int tries = 1; mark[slot].Stamp == stamp && tries < 64; tries++)
                    slot = strata.Sample(DrawAlias(strata.MassAlias, 0, strata.Count, ref rng), ref rng);
                if (mark[slot].Stamp == stamp) slot = UnmarkedSlot(ref rng, mark, stamp);
                mark[slot].Stamp = stamp;
                items[off + k] = strata.SlotToItem[slot];
            }

            // Random time order with random gaps.
            for (int k = n - 1; k > 0; k--)
            {
                int j = rng.NextInt(k + 1);
                (items[off + k], items[off + j]) = (items[off + j], items[off + k]);
            }
            double t = 1_000_000_000 + Math.Floor(rng.NextDouble() * 10_000_000);
            for (int k = 0; k < n; k++)
            {
                t += 1 + Math.Floor(rng.NextDouble() * 3600);
                users[off + k] = u;
                times[off + k] = t;
            }
        }

        /// <summary>A uniformly placed slot not marked for this user (linear probing from a random start); one exists
        /// because a user has at most ItemCount − 1 items.</summary>
        private int UnmarkedSlot(ref SplitRandom rng, Mark[] mark, int stamp)
        {
            int slot = rng.NextInt(_itemCount);
            while (mark[slot].Stamp == stamp) slot = slot + 1 == _itemCount ? 0 : slot + 1;
            return slot;
        }
    }

    private struct Mark
    {
        public int Stamp;
        public int Slot;
    }

    /// <summary>Per-worker buffers of the scalable algorithm.</summary>
    private sealed class ScalableScratch(int itemCount, int strataCount)
    {
        public readonly Mark[] Mark = new Mark[itemCount];
        public readonly double[] CentroidLogit = new double[strataCount];
        public readonly double[] StratumWeight = new double[strataCount];
        public readonly AliasEntry[] StratumAlias = new AliasEntry[strataCount];
        public readonly AliasWork AliasWork = new(strataCount);
        public int[] Candidates = new int[1024];
        public int[] CandidateStrata = new int[1024];
        public int[] Drawn = new int[1024];
        public double[] Keys = new double[1024];

        public void Ensure(int capacity)
        {
            if (Candidates.Length >= capacity) return;
            int size = Math.Max(capacity, 2 * Candidates.Length);
            Candidates = new int[size]; CandidateStrata = new int[size]; Drawn = new int[size]; Keys = new double[size];
        }
    }

    /// <summary>Reorders keys[0..count) (and items alongside) so that the first k hold the k largest keys (quickselect).</summary>
    private static void SelectLargest(double[] keys, int[] items, int count, int k)
    {
        int lo = 0, hi = count - 1, target = k - 1;
        while (lo < hi)
        {
            int mid = lo + ((hi - lo) >> 1);
            // Median of three as pivot.
            double a = keys[lo], b = keys[mid], c = keys[hi];
            double pivot = a < b ? (b < c ? b : Math.Max(a, c)) : (a < c ? a : Math.Max(b, c));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (keys[i] > pivot) i++;
                while (keys[j] < pivot) j--;
                if (i <= j)
                {
                    (keys[i], keys[j]) = (keys[j], keys[i]);
                    (items[i], items[j]) = (items[j], items[i]);
                    i++; j--;
                }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else break;
        }
    }

    /// <summary>xoshiro256** generator seeded by SplitMix64 from (seed, stream, index): independent, reproducible streams
    /// per user and per block, whatever thread runs them.</summary>
    private struct SplitRandom
    {
        private ulong _s0, _s1, _s2, _s3;

        public SplitRandom(ulong seed, ulong stream, ulong index)
        {
            ulong x = SplitMix(seed ^ 0x5851F42D4C957F2DUL) ^ SplitMix(stream * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL);
            x = SplitMix(x ^ SplitMix(index + 0xD1B54A32D192ED03UL));
            _s0 = SplitMix(x += 0x9E3779B97F4A7C15UL);
            _s1 = SplitMix(x += 0x9E3779B97F4A7C15UL);
            _s2 = SplitMix(x += 0x9E3779B97F4A7C15UL);
            _s3 = SplitMix(x + 0x9E3779B97F4A7C15UL);
        }

        private static ulong SplitMix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public ulong NextUInt64()
        {
            ulong result = System.Numerics.BitOperations.RotateLeft(_s1 * 5, 7) * 9;
            ulong t = _s1 << 17;
            _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
            _s2 ^= t;
            _s3 = System.Numerics.BitOperations.RotateLeft(_s3, 45);
            return result;
        }

        /// <summary>Uniform in [0, 1).</summary>
        public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

        /// <summary>Uniform in [0, n), n ≤ int.MaxValue.</summary>
        public int NextInt(int n) => (int)(((NextUInt64() >> 32) * (ulong)n) >> 32);

        public double NextGaussian()
        {
            double u1 = NextOpenDouble(), u2 = NextDouble();
            return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }

        /// <summary>Uniform in (0, 1).</summary>
        public double NextOpenDouble() => ((NextUInt64() >> 11) + 0.5) * (1.0 / (1UL << 53));
    }

    private static void Validate(SyntheticInteractionOptions o)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(o.UserCount, nameof(o.UserCount));
        if (o.ItemCount < 2) throw new ArgumentOutOfRangeException(nameof(o.ItemCount), o.ItemCount, "ItemCount must be at least 2.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(o.Factors, nameof(o.Factors));
        if ((long)o.UserCount * o.Factors > Array.MaxLength || (long)o.ItemCount * o.Factors > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(o.Factors), o.Factors, $"UserCount × Factors and ItemCount × Factors must be at most {Array.MaxLength}.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(o.InteractionsPerUser, nameof(o.InteractionsPerUser));
        if (!double.IsFinite(o.PopularitySkew) || o.PopularitySkew < 0) throw new ArgumentOutOfRangeException(nameof(o.PopularitySkew), o.PopularitySkew, "PopularitySkew must be finite and >= 0.");
        if (!double.IsFinite(o.Temperature) || o.Temperature <= 0) throw new ArgumentOutOfRangeException(nameof(o.Temperature), o.Temperature, "Temperature must be finite and > 0.");
        if (!(o.Noise >= 0 && o.Noise <= 1)) throw new ArgumentOutOfRangeException(nameof(o.Noise), o.Noise, "Noise must be in [0, 1].");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(o.CandidatesPerInteraction, nameof(o.CandidatesPerInteraction));
    }

    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    private static double Gumbel(Random rng) => -Math.Log(-Math.Log(1.0 - rng.NextDouble() * (1 - 1e-12)));
}
