using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// A cursor over rows 0..rowCount−1 of an in-memory data view, in order: the position, the row ids and the "not on a
/// row" check that the library's in-memory views share. A subclass supplies the getters
/// and reads the current row through <see cref="Row"/>.
/// </summary>
internal abstract class InMemoryRowCursor(DataViewSchema schema, long rowCount) : DataViewRowCursor
{
    private long _position = -1;

    public override DataViewSchema Schema => schema;
    public override long Position => _position;
    public override long Batch => 0;
    public override bool IsColumnActive(DataViewSchema.Column column) => true;

    public override bool MoveNext()
    {
        if (_position + 1 >= rowCount) { _position = rowCount; return false; }
        _position++;
        return true;
    }

    public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId value) => value = new DataViewRowId((ulong)_position, 0);

    /// <summary>The current row; an <see cref="InvalidOperationException"/> before the first row or after the last.</summary>
    protected int Row => _position >= 0 && _position < rowCount ? (int)_position : throw new InvalidOperationException("The cursor is not on a row.");
}
