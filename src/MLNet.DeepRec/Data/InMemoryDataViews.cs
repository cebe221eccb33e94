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

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ColumnarDataView _parent;
        private long _position = -1;

        public Cursor(ColumnarDataView parent) { _parent = parent; }

        public override DataViewSchema Schema => _parent.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override bool MoveNext()
        {
            if (_position + 1 >= _parent._rowCount) { _position = _parent._rowCount; return false; }
            _position++;
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId value) => value = new DataViewRowId((ulong)_position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < 0 || column.Index >= _parent._columns.Length)
                throw new ArgumentOutOfRangeException(nameof(column), $"Column index {column.Index} is not in this data view.");
            if (_parent._columns[column.Index] is not TValue[] values)
                throw new InvalidOperationException($"Column '{column.Name}' is of type {column.Type}, not {typeof(TValue).Name}.");
            return (ref TValue value) =>
            {
                if (_position < 0 || _position >= values.Length) throw new InvalidOperationException("The cursor is not on a row.");
                value = values[_position];
            };
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
