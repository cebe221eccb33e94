using Microsoft.ML;
using MLNet.DeepRec.Data;

namespace MLNet.DeepRec;

public sealed partial class DeepRecDataCatalog
{
    /// <summary>
    /// Groups an interaction log into one row per user: the user key column and <paramref name="historyColumnName"/>, a
    /// variable-length vector of the user's item keys in time order (oldest first) — the input a sequential model
    /// (<c>SasRec</c>) scores. Pass several logs (e.g. the training and validation splits) to concatenate each user's events.
    /// </summary>
    /// <remarks>
    /// Events are ordered by timestamp when <paramref name="timestampColumnName"/> is present in a log, and by row order
    /// otherwise (ties keep row order; a later log's rows come after an earlier log's on ties). Rows whose user or item
    /// key is 0 (unknown) are dropped; users without events get no row. The history column has the item column's key
    /// type and KeyValues annotation, so <c>MapKeyToValue</c> turns it back into ids.
    /// </remarks>
    /// <param name="interactions">The log(s): key-typed (UInt32, from <c>MapValueToKey</c>) user and item columns, all with the same key types.</param>
    /// <param name="userIdColumnName">Key-typed user column.</param>
    /// <param name="itemIdColumnName">Key-typed item column.</param>
    /// <param name="timestampColumnName">Optional numeric timestamp column; null or absent: row order is time order.</param>
    /// <param name="historyColumnName">Name of the output history column.</param>
    /// <returns>An in-memory view with columns <paramref name="userIdColumnName"/> and <paramref name="historyColumnName"/>.</returns>
    /// <exception cref="ArgumentException">A column is missing or not key-typed, or the logs' key types differ.</exception>
    public IDataView GroupSequences(IReadOnlyList<IDataView> interactions, string userIdColumnName = "UserId", string itemIdColumnName = "ItemId",
        string? timestampColumnName = TimestampColumnName, string historyColumnName = "History")
    {
        ArgumentNullException.ThrowIfNull(interactions);
        if (interactions.Count == 0) throw new ArgumentException("At least one interaction log is needed.", nameof(interactions));
        ArgumentException.ThrowIfNullOrWhiteSpace(historyColumnName);
        if (historyColumnName == userIdColumnName) throw new ArgumentException($"The history column name '{historyColumnName}' must differ from the user column.", nameof(historyColumnName));
        var sequences = UserSequences.FromDataViews(interactions, userIdColumnName, itemIdColumnName, timestampColumnName);
        var schema = interactions[0].Schema;
        return new SequenceDataView(sequences, schema[userIdColumnName], schema[itemIdColumnName], historyColumnName);
    }

    /// <summary>Groups one interaction log into per-user histories; see <see cref="GroupSequences(IReadOnlyList{IDataView}, string, string, string?, string)"/>.</summary>
    /// <param name="interactions">The log with key-typed user and item columns.</param>
    /// <param name="userIdColumnName">Key-typed user column.</param>
    /// <param name="itemIdColumnName">Key-typed item column.</param>
    /// <param name="timestampColumnName">Optional numeric timestamp column; null or absent: row order is time order.</param>
    /// <param name="historyColumnName">Name of the output history column.</param>
    public IDataView GroupSequences(IDataView interactions, string userIdColumnName = "UserId", string itemIdColumnName = "ItemId",
        string? timestampColumnName = TimestampColumnName, string historyColumnName = "History") =>
        GroupSequences(new[] { interactions ?? throw new ArgumentNullException(nameof(interactions)) }, userIdColumnName, itemIdColumnName, timestampColumnName, historyColumnName);
}
