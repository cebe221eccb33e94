using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// A read-only, column-major in-memory <see cref="IDataView"/> with scalar columns of text
/// (<see cref="ReadOnlyMemory{T}"/> of char), <see cref="float"/> or <see cref="double"/>. Used by the loaders and the
/// synthetic generator so that a million-row file becomes a data view without one object per row.
/// </summary>
internal sealed class ColumnarDataView : IDataView
{
    private readonly Array[] _columns;
    private readonly int _rowCount;

    public ColumnarDataView(IReadOnlyList<(string Name, Array Values)> columns)
    {
        var builder = new DataViewSchema.Builder();
        _columns = new Array[columns.Count];
        _rowCount = columns.Count == 0 ? 0 : columns[0].Values.Length;
        for (int c = 0; c < columns.Count; c++)
        {
            var (name, values) = columns[c];
            if (values.Length != _rowCount) throw new ArgumentException($"Column '{name}' has {values.Length} values, expected {_rowCount}.");
            DataViewType type = values switch
            {
                ReadOnlyMemory<char>[] => TextDataViewType.Instance,
                float[] => NumberDataViewType.Single,
                double[] => NumberDataViewType.Double,
                _ => throw new ArgumentException($"Unsupported column array type {values.GetType()} for column '{name}'."),
            };
            builder.AddColumn(name, type);
            _columns[c] = values;
        }
        Schema = builder.ToSchema();
    }

    public bool CanShuffle => false;
    public DataViewSchema Schema { get; }
    public long? GetRowCount() => _rowCount;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new DataViewRowCursor[] { new Cursor(this) };

    private sealed class Cursor(ColumnarDataView parent) : InMemoryRowCursor(parent.Schema, parent._rowCount)
    {
        private readonly ColumnarDataView _parent = parent;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < 0 || column.Index >= _parent._columns.Length)
                throw new ArgumentOutOfRangeException(nameof(column), $"Column index {column.Index} is not in this data view.");
            if (_parent._columns[column.Index] is not TValue[] values)
                throw new InvalidOperationException($"Column '{column.Name}' is of type {column.Type}, not {typeof(TValue).Name}.");
            return (ref TValue value) => value = values[Row];
        }
    }
}

/// <summary>
/// Passes through the rows of a source view whose row index (its position in an unshuffled cursor) is assigned to one
/// partition. The schema (column names, types, key types and annotations) is the source's own, unchanged. The source
/// must return its rows in the same order on every unshuffled cursor, as every ML.NET data view does.
/// </summary>
internal sealed class RowSubsetDataView : IDataView
{
    private readonly IDataView _source;
    private readonly byte[] _partitionOfRow;
    private readonly byte _partition;
    private readonly long _rowCount;

    public RowSubsetDataView(IDataView source, byte[] partitionOfRow, byte partition)
    {
        _source = source;
        _partitionOfRow = partitionOfRow;
        _partition = partition;
        long n = 0;
        foreach (var p in partitionOfRow) if (p == partition) n++;
        _rowCount = n;
    }

    public bool CanShuffle => false;
    public DataViewSchema Schema => _source.Schema;
    public long? GetRowCount() => _rowCount;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new Cursor(this, _source.GetRowCursor(columnsNeeded, null));

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new DataViewRowCursor[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly RowSubsetDataView _parent;
        private readonly DataViewRowCursor _inner;
        private long _sourceRow = -1;
        private long _position = -1;

        public Cursor(RowSubsetDataView parent, DataViewRowCursor inner) { _parent = parent; _inner = inner; }

        public override DataViewSchema Schema => _inner.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => _inner.IsColumnActive(column);
        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => _inner.GetGetter<TValue>(column);
        public override ValueGetter<DataViewRowId> GetIdGetter() => _inner.GetIdGetter();

        public override bool MoveNext()
        {
            var map = _parent._partitionOfRow;
            while (_inner.MoveNext())
            {
                _sourceRow++;
                if (_sourceRow >= map.Length)
                    throw new InvalidOperationException($"The source data view returned more rows than the {map.Length} it had when it was split; it must not change between cursors.");
                if (map[_sourceRow] == _parent._partition) { _position++; return true; }
            }
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _inner.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// A read-only <see cref="IDataView"/> of interactions held as 0-based index arrays (as produced by the synthetic
/// generator): user and item columns are produced on the fly from the indices, either as text ids (prefix + index,
/// looked up in a per-id string table built on first use, never a per-row array) or as <see cref="uint"/> keys
/// (index + 1, cardinality = user / item count, no <c>KeyValues</c> annotation); the label column is the constant 1 (or
/// the given labels) and
/// the timestamp column reads the given array. The arrays are shared, not copied, and must not change.
/// </summary>
internal sealed class IndexedInteractionDataView : IDataView
{
    private const int UserColumnIndex = 0, ItemColumnIndex = 1, LabelColumnIndex = 2;
    private readonly int[] _users;
    private readonly int[] _items;
    private readonly double[] _timestamps;
    private readonly float[]? _labels;
    private readonly bool _keyTyped;
    private readonly Lazy<ReadOnlyMemory<char>[]> _userIds;
    private readonly Lazy<ReadOnlyMemory<char>[]> _itemIds;

    public IndexedInteractionDataView(int[] users, int[] items, double[] timestamps, int userCount, int itemCount, bool keyTyped,
        string userIdColumnName, string itemIdColumnName, string labelColumn, string timestampColumnName, string userPrefix = "u", string itemPrefix = "i",
        float[]? labels = null)
    {
        if (items.Length != users.Length || timestamps.Length != users.Length)
            throw new ArgumentException($"users ({users.Length}), items ({items.Length}) and timestamps ({timestamps.Length}) must have the same length.");
        if (labels is not null && labels.Length != users.Length)
            throw new ArgumentException($"labels ({labels.Length}) must have one value per interaction ({users.Length}).");
        _users = users; _items = items; _timestamps = timestamps; _labels = labels; _keyTyped = keyTyped;
        _userIds = new Lazy<ReadOnlyMemory<char>[]>(() => IdTable(userPrefix, userCount));
        _itemIds = new Lazy<ReadOnlyMemory<char>[]>(() => IdTable(itemPrefix, itemCount));
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(userIdColumnName, keyTyped ? new KeyDataViewType(typeof(uint), userCount) : TextDataViewType.Instance);
        builder.AddColumn(itemIdColumnName, keyTyped ? new KeyDataViewType(typeof(uint), itemCount) : TextDataViewType.Instance);
        builder.AddColumn(labelColumn, NumberDataViewType.Single);
        builder.AddColumn(timestampColumnName, NumberDataViewType.Double);
        Schema = builder.ToSchema();
    }

    private static ReadOnlyMemory<char>[] IdTable(string prefix, int count)
    {
        var ids = new ReadOnlyMemory<char>[count];
        for (int k = 0; k < count; k++) ids[k] = (prefix + k.ToString(System.Globalization.CultureInfo.InvariantCulture)).AsMemory();
        return ids;
    }

    public bool CanShuffle => false;
    public DataViewSchema Schema { get; }
    public long? GetRowCount() => _users.Length;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new DataViewRowCursor[] { new Cursor(this) };

    private sealed class Cursor(IndexedInteractionDataView parent) : InMemoryRowCursor(parent.Schema, parent._users.Length)
    {
        private readonly IndexedInteractionDataView _parent = parent;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < 0 || column.Index >= _parent.Schema.Count)
                throw new ArgumentOutOfRangeException(nameof(column), $"Column index {column.Index} is not in this data view.");
            Type expected = _parent.Schema[column.Index].Type.RawType;
            if (typeof(TValue) != expected)
                throw new InvalidOperationException($"Column '{column.Name}' is of type {_parent.Schema[column.Index].Type}, not {typeof(TValue).Name}.");
            Delegate getter;
            switch (column.Index)
            {
                case UserColumnIndex or ItemColumnIndex:
                    var indices = column.Index == UserColumnIndex ? _parent._users : _parent._items;
                    if (_parent._keyTyped)
                        getter = (ValueGetter<uint>)((ref uint value) => value = (uint)indices[Row] + 1);
                    else
                    {
                        var ids = (column.Index == UserColumnIndex ? _parent._userIds : _parent._itemIds).Value;
                        getter = (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> value) => value = ids[indices[Row]]);
                    }
                    break;
                case LabelColumnIndex:
                    var labels = _parent._labels;
                    getter = labels is null
                        ? (ValueGetter<float>)((ref float value) => { _ = Row; value = 1; })
                        : (ValueGetter<float>)((ref float value) => value = labels[Row]);
                    break;
                default:
                    var times = _parent._timestamps;
                    getter = (ValueGetter<double>)((ref double value) => value = times[Row]);
                    break;
            }
            return (ValueGetter<TValue>)getter;
        }
    }
}
