using MLNet.DeepRec.Evaluation;

namespace MLNet.DeepRec.Tests.Evaluation;

/// <summary>A scorer defined by a function of (user key, item key); counts its calls to prove batching.</summary>
internal sealed class FuncScorer : IItemScorer
{
    private readonly Func<int, int, float> _score;

    public FuncScorer(int userCount, int itemCount, Func<int, int, float> score)
    {
        UserCount = userCount; ItemCount = itemCount; _score = score;
    }

    public int UserCount { get; }
    public int ItemCount { get; }
    public int Calls { get; private set; }

    public float[] ScoreCandidates(int[] users, int[] items, int candidatesPerUser)
    {
        Calls++;
        var s = new float[items.Length];
        for (int r = 0; r < users.Length; r++)
            for (int c = 0; c < candidatesPerUser; c++)
                s[r * candidatesPerUser + c] = _score(users[r], items[r * candidatesPerUser + c]);
        return s;
    }

    public float[] ScoreAllItems(int[] users)
    {
        Calls++;
        var s = new float[users.Length * ItemCount];
        for (int r = 0; r < users.Length; r++)
            for (int i = 1; i <= ItemCount; i++)
                s[r * ItemCount + i - 1] = _score(users[r], i);
        return s;
    }

    /// <summary>A deterministic pseudo-random score in [0, 1) per (user, item), distinct with high probability.</summary>
    public static float Hash(int user, int item, int salt = 0)
    {
        ulong x = (ulong)(uint)user * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)item * 0xC2B2AE3D27D4EB4FUL ^ (ulong)(uint)salt * 0x165667B19E3779F9UL;
        x ^= x >> 33; x *= 0xFF51AFD7ED558CCDUL; x ^= x >> 33; x *= 0xC4CEB9FE1A85EC53UL; x ^= x >> 33;
        return (float)((x >> 40) / (double)(1UL << 24));
    }
}
