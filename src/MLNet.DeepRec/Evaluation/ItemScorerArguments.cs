namespace MLNet.DeepRec.Evaluation;

/// <summary>Argument checks and key clamping shared by the <see cref="IItemScorer"/> implementations.</summary>
internal static class ItemScorerArguments
{
    /// <summary>Validates <see cref="IItemScorer.ScoreCandidates"/>'s arguments (row-major [users, candidatesPerUser] items).</summary>
    public static void CheckCandidates(int[] users, int[] items, int candidatesPerUser)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(items);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(candidatesPerUser);
        if (items.Length != (long)users.Length * candidatesPerUser)
            throw new ArgumentException($"items must hold users.Length × candidatesPerUser = {(long)users.Length * candidatesPerUser} keys, not {items.Length}.", nameof(items));
    }

    /// <summary>Keys as int64, with keys outside 0..count (a larger key type than the trained one) mapped to 0 (unknown).</summary>
    public static long[] ClampKeys(ReadOnlySpan<int> keys, int count)
    {
        var r = new long[keys.Length];
        for (int n = 0; n < keys.Length; n++) r[n] = keys[n] < 0 || keys[n] > count ? 0 : keys[n];
        return r;
    }
}
