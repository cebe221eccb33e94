// The example's default data: users' item histories with a planted sequential pattern, written in the format of the
// SASRec repository's data files so that they are loaded exactly like a real file.
using System.Text;

namespace NextItemRecommendation;

/// <summary>
/// Writes <c>user item</c> lines, each user's lines in time order. Item popularity is skewed (Zipf), and every item has
/// a planted successor: after item i a user moves on to <c>Successor(i)</c> 70% of the time, otherwise picks an item by
/// popularity. A popularity ranking therefore gets some next items right; a sequential model that reads the history
/// can get most of them.
/// </summary>
internal static class SyntheticSequences
{
    /// <summary>Item id "item-042".</summary>
    public static string ItemId(int item) => $"item-{item:000}";

    /// <summary>Writes the file and returns the planted successor of each item id (to check what the model learnt).</summary>
    public static IReadOnlyDictionary<string, string> Write(string path, int users = 1000, int items = 300, int seed = 1)
    {
        var rng = new Random(seed);
        // Popularity ∝ 1 / rank^0.8, ranks shuffled over the items; sampled through the cumulative distribution.
        int[] rank = Permutation(items, rng);
        double[] cumulative = new double[items];
        double total = 0;
        for (int i = 0; i < items; i++) cumulative[i] = total += Math.Pow(rank[i] + 1, -0.8);
        int ByPopularity() => Math.Min(Array.BinarySearch(cumulative, rng.NextDouble() * total) is int k && k < 0 ? ~k : k, items - 1);

        int[] successor = Permutation(items, rng);
        var lines = new StringBuilder();
        for (int u = 0; u < users; u++)
        {
            int length = rng.Next(5, 31), item = ByPopularity();
            for (int t = 0; t < length; t++)
            {
                lines.Append($"user-{u} {ItemId(item)}\n");
                item = rng.NextDouble() < 0.7 ? successor[item] : ByPopularity();
            }
        }
        File.WriteAllText(path, lines.ToString());
        return Enumerable.Range(0, items).ToDictionary(ItemId, i => ItemId(successor[i]));
    }

    private static int[] Permutation(int n, Random rng)
    {
        int[] p = Enumerable.Range(0, n).ToArray();
        rng.Shuffle(p);
        return p;
    }
}
