using Microsoft.ML;
using MLNet.DeepRec.Data;

namespace MLNet.DeepRec;

public sealed partial class DeepRecDataCatalog
{
    /// <summary>
    /// Generates synthetic implicit feedback with planted structure (see <see cref="SyntheticInteractionGenerator.Generate"/>):
    /// columns <c>UserId</c> (text "u0", "u1", …), <c>ItemId</c> (text "i0", …), <c>Label</c> = 1 and <c>Timestamp</c>
    /// (seconds, increasing within each user). Deterministic from <paramref name="options"/> (its seed included).
    /// </summary>
    /// <param name="options">Options; null for the defaults (600 users, 400 items, 8 factors, 40 interactions per user).</param>
    public IDataView GenerateSyntheticInteractions(SyntheticInteractionOptions? options = null)
    {
        var data = SyntheticInteractionGenerator.Generate(options);
        var userIds = new ReadOnlyMemory<char>[data.UserCount];
        var itemIds = new ReadOnlyMemory<char>[data.ItemCount];
        for (int u = 0; u < userIds.Length; u++) userIds[u] = ("u" + u.ToString(System.Globalization.CultureInfo.InvariantCulture)).AsMemory();
        for (int i = 0; i < itemIds.Length; i++) itemIds[i] = ("i" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).AsMemory();
        var users = new ReadOnlyMemory<char>[data.Count];
        var items = new ReadOnlyMemory<char>[data.Count];
        var labels = new float[data.Count];
        for (int r = 0; r < data.Count; r++) { users[r] = userIds[data.UserIndices[r]]; items[r] = itemIds[data.ItemIndices[r]]; labels[r] = 1; }
        return CreateInteractionView(users, items, labels, (double[])data.Timestamps.Clone());
    }
}
