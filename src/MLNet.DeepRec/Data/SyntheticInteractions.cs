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
    /// share). The best possible ranking model scores items by it.</summary>
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
    /// Generates interactions: planted user and item vectors (Gaussian, scaled so that dot products have unit variance),
    /// Zipf item popularity, and per user a log-normal number of distinct items drawn without replacement with
    /// probability ∝ exp(dot / Temperature) × popularity (a share <see cref="SyntheticInteractionOptions.Noise"/> of them
    /// ∝ popularity alone), in random time order. A collaborative model can therefore beat the popularity baseline
    /// clearly. Deterministic from the options (seed included).
    /// </summary>
    /// <param name="options">Options; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the message names it).</exception>
    public static SyntheticInteractions Generate(SyntheticInteractionOptions? options = null)
    {
        options ??= new SyntheticInteractionOptions();
        Validate(options);
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

    private static void Validate(SyntheticInteractionOptions o)
    {
        if (o.UserCount <= 0) throw new ArgumentOutOfRangeException(nameof(o.UserCount), o.UserCount, "UserCount must be positive.");
        if (o.ItemCount < 2) throw new ArgumentOutOfRangeException(nameof(o.ItemCount), o.ItemCount, "ItemCount must be at least 2.");
        if (o.Factors <= 0) throw new ArgumentOutOfRangeException(nameof(o.Factors), o.Factors, "Factors must be positive.");
        if (o.InteractionsPerUser <= 0) throw new ArgumentOutOfRangeException(nameof(o.InteractionsPerUser), o.InteractionsPerUser, "InteractionsPerUser must be positive.");
        if (!double.IsFinite(o.PopularitySkew) || o.PopularitySkew < 0) throw new ArgumentOutOfRangeException(nameof(o.PopularitySkew), o.PopularitySkew, "PopularitySkew must be finite and >= 0.");
        if (!double.IsFinite(o.Temperature) || o.Temperature <= 0) throw new ArgumentOutOfRangeException(nameof(o.Temperature), o.Temperature, "Temperature must be finite and > 0.");
        if (!(o.Noise >= 0 && o.Noise <= 1)) throw new ArgumentOutOfRangeException(nameof(o.Noise), o.Noise, "Noise must be in [0, 1].");
    }

    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    private static double Gumbel(Random rng) => -Math.Log(-Math.Log(1.0 - rng.NextDouble() * (1 - 1e-12)));
}
