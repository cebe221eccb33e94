using MLNet.DeepRec.Data;

namespace MLNet.DeepRec.Evaluation;

/// <summary>
/// The popularity baseline: every user gets the same scores, the number of training interactions of each item. Every
/// evaluation report should show it beside the model: a collaborative model that does not beat it clearly has learned
/// little beyond popularity.
/// </summary>
public sealed class PopularityScorer : IItemScorer
{
    private readonly float[] _frequency; // by item key; index 0 (unknown) is 0

    /// <summary>Counts item frequencies in <paramref name="training"/> (rows with item key 0 are ignored).</summary>
    /// <param name="training">The training interactions.</param>
    public PopularityScorer(KeyedInteractions training)
    {
        ArgumentNullException.ThrowIfNull(training);
        UserCount = training.UserCount;
        ItemCount = training.ItemCount;
        _frequency = new float[ItemCount + 1];
        foreach (int i in training.Items)
        {
            if ((uint)i > (uint)ItemCount) throw new ArgumentOutOfRangeException(nameof(training), i, $"Item key outside 0..{ItemCount}.");
            if (i != 0) _frequency[i]++;
        }
    }

    /// <inheritdoc/>
    public int UserCount { get; }

    /// <inheritdoc/>
    public int ItemCount { get; }

    /// <summary>Training frequency of an item key (0 for key 0).</summary>
    /// <param name="item">Item key, 0..<see cref="ItemCount"/>.</param>
    public float Frequency(int item)
    {
        if ((uint)item > (uint)ItemCount) throw new ArgumentOutOfRangeException(nameof(item), item, $"Item key must be in 0..{ItemCount}.");
        return _frequency[item];
    }

    /// <inheritdoc/>
    public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(items);
        if (candidatesPerUser < 0 || (long)users.Length * candidatesPerUser != items.Length)
            throw new ArgumentException($"items must have users.Length × candidatesPerUser = {(long)users.Length * candidatesPerUser} entries, but has {items.Length}.", nameof(items));
        var scores = new float[items.Length];
        for (int k = 0; k < items.Length; k++) scores[k] = Frequency(items[k]);
        return scores;
    }

    /// <inheritdoc/>
    public float[] ScoreAllItems(int[] users)
    {
        ArgumentNullException.ThrowIfNull(users);
        var scores = new float[(long)users.Length * ItemCount];
        for (int r = 0; r < users.Length; r++) _frequency.AsSpan(1).CopyTo(scores.AsSpan(r * ItemCount, ItemCount));
        return scores;
    }
}
