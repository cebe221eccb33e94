using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Tests.Sequential;

/// <summary>
/// Generated sequences with planted sequential structure: after item i a user usually (90%) consumes item f(i), a fixed
/// permutation, otherwise a random item. Item popularity is uniform, so a popularity model cannot predict the next item
/// while a sequential model can.
/// </summary>
internal static class SequenceTestData
{
    public sealed class Event
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
        public double Timestamp { get; set; }
    }

    public sealed record Keyed(MLContext Context, ITransformer Keys, IDataView All, IDataView Train, IDataView Validation, IDataView Test, int ItemCount);

    public const int Users = 500, Items = 100;

    private sealed class KeyValue { public uint Value { get; set; } }

    /// <summary>
    /// Raw item keys in plain UInt32 columns (scalars or vectors; default "History" and "ItemKey") as keys of an item key
    /// type of <paramref name="itemCount"/>: v stays key v for v in 1..itemCount, anything else becomes key 0 (unknown).
    /// MapValueToKey with the values 1..itemCount in order as its key data does exactly that.
    /// </summary>
    public static IDataView AsItemKeys(MLContext ml, IDataView view, int itemCount, params string[] columns)
    {
        if (columns.Length == 0) columns = new[] { "History", "ItemKey" };
        var keyData = ml.Data.LoadFromEnumerable(Enumerable.Range(1, itemCount).Select(i => new KeyValue { Value = (uint)i }));
        foreach (string c in columns)
            view = ml.Transforms.Conversion.MapValueToKey(c, c, keyData: keyData).Fit(view).Transform(view);
        return view;
    }

    /// <summary>The planted successor of item number i (0-based item numbers; ids are "i{n}").</summary>
    public static int Next(int i) => (i * 7 + 3) % Items;

    private static readonly Lazy<Keyed> Shared = new(() => Create(Users, 7));

    public static Keyed Data => Shared.Value;

    public static Keyed Create(int users, int seed)
    {
        var rng = new Random(seed);
        var events = new List<Event>();
        for (int u = 0; u < users; u++)
        {
            int length = rng.Next(8, 25);
            int item = rng.Next(Items);
            var seen = new HashSet<int>();
            for (int t = 0; t < length; t++)
            {
                events.Add(new Event { UserId = $"u{u}", ItemId = $"i{item}", Timestamp = t });
                seen.Add(item);
                item = rng.NextDouble() < 0.9 ? Next(item) : rng.Next(Items);
            }
        }
        // Shuffle the rows: grouping and ordering must come from the timestamps, not from the row order.
        var shuffled = events.OrderBy(_ => rng.Next()).ToList();
        var ml = new MLContext(1);
        var all = ml.Data.LoadFromEnumerable(shuffled);
        var split = ml.DeepRec().Data.LeaveOneOutSplit(all, holdOutValidation: true);
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
            .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(all);
        var itemCount = (int)((KeyDataViewType)keys.GetOutputSchema(all.Schema)["ItemKey"].Type).Count;
        return new Keyed(ml, keys, all, keys.Transform(split.Train), keys.Transform(split.Validation!), keys.Transform(split.Test), itemCount);
    }
}
