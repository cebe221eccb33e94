using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// Every user's item keys in time order, as compressed rows (one offsets array and one items array; no object per
/// user). Built once from an interaction log: rows are ordered by (user, timestamp, row index) with one sort, so ties of
/// timestamp keep the log's row order and a log without timestamps (<c>user item</c> lines) keeps its own order.
/// Rows with user key 0 or item key 0 (unknown) are dropped.
/// </summary>
internal sealed class UserSequences
{
    private readonly int[] _offsets; // items of user u: _items[_offsets[u] .. _offsets[u + 1]]
    private readonly int[] _items;

    private UserSequences(int userCount, int itemCount, int[] offsets, int[] items)
    {
        UserCount = userCount; ItemCount = itemCount; _offsets = offsets; _items = items;
    }

    public int UserCount { get; }
    public int ItemCount { get; }

    /// <summary>Number of (user, item) events kept.</summary>
    public int EventCount => _items.Length;

    /// <summary>The user's items, oldest first (empty for key 0 or a user without events).</summary>
    public ReadOnlySpan<int> ItemsOf(int user) =>
        (uint)user > (uint)UserCount ? ReadOnlySpan<int>.Empty : _items.AsSpan(_offsets[user], _offsets[user + 1] - _offsets[user]);

    /// <summary>Orders the events of one or more logs (read in the given order, so later logs win timestamp ties).</summary>
    public static UserSequences Build(IReadOnlyList<KeyedInteractions> logs)
    {
        if (logs.Count == 0) throw new ArgumentException("At least one interaction log is needed.", nameof(logs));
        int userCount = logs[0].UserCount, itemCount = logs[0].ItemCount;
        int total = 0;
        foreach (var log in logs)
        {
            if (log.UserCount != userCount || log.ItemCount != itemCount)
                throw new ArgumentException($"The interaction logs use different key types ({log.UserCount} users, {log.ItemCount} items vs {userCount}, {itemCount}); transform them with the same fitted MapValueToKey.");
            total += log.Count;
        }
        var users = new int[total];
        var items = new int[total];
        var times = new double[total];
        int n = 0;
        foreach (var log in logs)
        {
            for (int r = 0; r < log.Count; r++)
            {
                int u = log.Users[r], i = log.Items[r];
                if (u == 0 || i == 0 || (uint)u > (uint)userCount || (uint)i > (uint)itemCount) continue;
                users[n] = u; items[n] = i; times[n] = log.Timestamps?[r] ?? 0; n++;
            }
        }
        // One sort of row indices by (user, timestamp, row): stable in effect, deterministic.
        var order = new int[n];
        for (int r = 0; r < n; r++) order[r] = r;
        Array.Sort(order, (a, b) =>
        {
            int c = users[a].CompareTo(users[b]);
            if (c != 0) return c;
            c = times[a].CompareTo(times[b]);
            return c != 0 ? c : a.CompareTo(b);
        });
        var offsets = new int[userCount + 2];
        var sorted = new int[n];
        for (int k = 0; k < n; k++) { sorted[k] = items[order[k]]; offsets[users[order[k]] + 1]++; }
        for (int u = 0; u <= userCount; u++) offsets[u + 1] += offsets[u];
        return new UserSequences(userCount, itemCount, offsets, sorted);
    }

    /// <summary>
    /// The last <paramref name="length"/> items of every user key 0..UserCount, left-padded with 0: row-major
    /// [(UserCount + 1), length] (row 0, the unknown user, is all padding).
    /// </summary>
    public long[] PaddedTails(int length)
    {
        var result = new long[(long)(UserCount + 1) * length];
        for (int u = 1; u <= UserCount; u++) WriteTail(ItemsOf(u), result.AsSpan(u * length, length));
        return result;
    }

    /// <summary>Writes the last <c>row.Length</c> items of <paramref name="history"/> right-aligned into
    /// <paramref name="row"/>, zeros before (left padding, truncation to the most recent items).</summary>
    public static void WriteTail(ReadOnlySpan<int> history, Span<long> row)
    {
        row.Clear();
        int take = Math.Min(history.Length, row.Length);
        var tail = history[^take..];
        for (int k = 0; k < take; k++) row[row.Length - take + k] = tail[k];
    }

    /// <summary>Reads the key-typed user and item columns (and the optional numeric timestamp) of each log.</summary>
    public static UserSequences FromDataViews(IReadOnlyList<IDataView> logs, string userIdColumnName, string itemIdColumnName, string? timestampColumnName)
    {
        var keyed = new List<KeyedInteractions>(logs.Count);
        foreach (var log in logs)
        {
            ArgumentNullException.ThrowIfNull(log);
            string? time = timestampColumnName != null && log.Schema.GetColumnOrNull(timestampColumnName) != null ? timestampColumnName : null;
            keyed.Add(KeyedInteractions.FromDataView(log, userIdColumnName, itemIdColumnName, null, time));
        }
        return Build(keyed);
    }
}

/// <summary>
/// One row per user key 1..UserCount that has at least one event: the user key column (the log's key type and
/// annotations) and a variable-length vector of item keys in time order (the item column's key type and KeyValues).
/// </summary>
internal sealed class SequenceDataView : IDataView
{
    private readonly UserSequences _sequences;
    private readonly int[] _users;

    public SequenceDataView(UserSequences sequences, DataViewSchema.Column userIdColumnName, DataViewSchema.Column itemIdColumnName, string historyColumn)
    {
        _sequences = sequences;
        _users = Enumerable.Range(1, sequences.UserCount).Where(u => sequences.ItemsOf(u).Length > 0).ToArray();
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(userIdColumnName.Name, userIdColumnName.Type, userIdColumnName.Annotations);
        builder.AddColumn(historyColumn, new VectorDataViewType((PrimitiveDataViewType)itemIdColumnName.Type), itemIdColumnName.Annotations);
        Schema = builder.ToSchema();
    }

    public bool CanShuffle => false;
    public DataViewSchema Schema { get; }
    public long? GetRowCount() => _users.Length;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [new Cursor(this)];

    private sealed class Cursor(SequenceDataView parent) : InMemoryRowCursor(parent.Schema, parent._users.Length)
    {
        private readonly SequenceDataView _parent = parent;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == 0 && typeof(TValue) == typeof(uint))
            {
                ValueGetter<uint> user = (ref uint value) => value = (uint)_parent._users[Row];
                return (ValueGetter<TValue>)(Delegate)user;
            }
            if (column.Index == 1 && typeof(TValue) == typeof(VBuffer<uint>))
            {
                ValueGetter<VBuffer<uint>> history = (ref VBuffer<uint> value) =>
                {
                    var items = _parent._sequences.ItemsOf(_parent._users[Row]);
                    var editor = VBufferEditor.Create(ref value, items.Length);
                    for (int k = 0; k < items.Length; k++) editor.Values[k] = (uint)items[k];
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)history;
            }
            throw new InvalidOperationException($"Column '{column.Name}' of type {column.Type} cannot be read as {typeof(TValue).Name}.");
        }
    }
}
