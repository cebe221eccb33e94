using Microsoft.ML;
using MLNet.DeepRec.Data;

namespace MLNet.DeepRec;

public sealed partial class DeepRecDataCatalog
{
    /// <summary>
    /// Generates synthetic implicit feedback with planted structure (see <see cref="SyntheticInteractionGenerator.Generate"/>,
    /// which switches from the exact to a scalable algorithm above
    /// <see cref="SyntheticInteractionGenerator.ExactSamplingMaxPairs"/> user–item pairs): columns <c>UserId</c> (text
    /// "u0", "u1", …), <c>ItemId</c> (text "i0", …), <c>Label</c> = 1 (or a 1–5 rating with
    /// <see cref="SyntheticInteractionOptions.Ratings"/>) and <c>Timestamp</c> (seconds, increasing within
    /// each user), rows grouped by user in time order. Deterministic from <paramref name="options"/> (its seed included).
    /// With <see cref="SyntheticInteractionOptions.KeyTypedIds"/> the id columns are instead <see cref="uint"/> keys
    /// (user/item index + 1, no <c>KeyValues</c> annotation), ready for the trainers without <c>MapValueToKey</c>.
    /// </summary>
    /// <remarks>The view reads the generator's index arrays directly (16 bytes per interaction); text ids are looked up
    /// in a table of one string per user and per item, built on first use.</remarks>
    /// <param name="options">Options; null for the defaults (600 users, 400 items, 8 factors, 40 interactions per user).</param>
    public IDataView GenerateSyntheticInteractions(SyntheticInteractionOptions? options = null)
    {
        options ??= new SyntheticInteractionOptions();
        var data = SyntheticInteractionGenerator.Generate(options);
        return new IndexedInteractionDataView(data.UserIndices, data.ItemIndices, data.Timestamps, data.UserCount, data.ItemCount,
            options.KeyTypedIds, UserIdColumnName, ItemIdColumnName, LabelColumnName, TimestampColumnName,
            labels: options.Ratings ? data.PlantedRatings(options.Seed) : null);
    }
}
