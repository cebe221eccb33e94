using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// An in-memory <see cref="IDataView"/> with a label column (Single or Boolean) and sparse known-size
/// <c>Vector&lt;Single&gt;</c> columns stored as compressed rows: what the libFM loader produces, without one object per row.
/// </summary>
internal sealed class LibFmDataView : IDataView
{
    internal sealed record SparseColumn(string Name, int Size, int[] RowStarts, int[] Indices, float[] Values);

    private readonly float[]? _floatLabels;
    private readonly bool[]? _boolLabels;
    private readonly SparseColumn[] _columns;
    private readonly int _rows;

    public LibFmDataView(string labelName, float[]? floatLabels, bool[]? boolLabels, SparseColumn[] columns)
    {
        _floatLabels = floatLabels; _boolLabels = boolLabels; _columns = columns;
        _rows = floatLabels?.Length ?? boolLabels!.Length;
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(labelName, floatLabels != null ? NumberDataViewType.Single : BooleanDataViewType.Instance);
        foreach (var c in columns) builder.AddColumn(c.Name, new VectorDataViewType(NumberDataViewType.Single, c.Size));
        Schema = builder.ToSchema();
    }

    public bool CanShuffle => false;
    public DataViewSchema Schema { get; }
    public long? GetRowCount() => _rows;
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => new DataViewRowCursor[] { new Cursor(this) };

    private sealed class Cursor(LibFmDataView parent) : InMemoryRowCursor(parent.Schema, parent._rows)
    {
        private readonly LibFmDataView _parent = parent;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == 0)
            {
                if (_parent._floatLabels is TValue[] f) return (ref TValue value) => value = f[Row];
                if (_parent._boolLabels is TValue[] b) return (ref TValue value) => value = b[Row];
                throw new InvalidOperationException($"Column '{column.Name}' is of type {column.Type}, not {typeof(TValue).Name}.");
            }
            if (column.Index < 0 || column.Index > _parent._columns.Length)
                throw new ArgumentOutOfRangeException(nameof(column), $"Column index {column.Index} is not in this data view.");
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"Column '{column.Name}' is of type {column.Type}, not {typeof(TValue).Name}.");
            var c = _parent._columns[column.Index - 1];
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
            {
                long r = Row;
                int s = c.RowStarts[r], e = c.RowStarts[r + 1];
                var editor = VBufferEditor.Create(ref value, c.Size, e - s);
                for (int k = s; k < e; k++) { editor.Indices[k - s] = c.Indices[k]; editor.Values[k - s] = c.Values[k]; }
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }
    }
}
