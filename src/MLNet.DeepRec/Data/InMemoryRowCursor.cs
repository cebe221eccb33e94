using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// A cursor over rows 0..rowCount−1 of an in-memory data view, in order: the position, the row ids and the "not on a
/// row" check that the library's in-memory views share. A subclass supplies the getters
/// and reads the current row through <see cref="Row"/>. As ML.NET's own cursors do, <see cref="Position"/> is −1 before
/// the first row and again once <see cref="MoveNext"/> has returned false or the cursor is disposed, and it stays there.
/// </summary>
internal abstract class InMemoryRowCursor(DataViewSchema schema, long rowCount) : DataViewRowCursor
{
    private long _position = -1;
    private bool _done; // past the last row or disposed: MoveNext stays false

    public override DataViewSchema Schema => schema;
    public override long Position => _done ? -1 : _position;
    public override long Batch => 0;
    public override bool IsColumnActive(DataViewSchema.Column column) => true;

    public override bool MoveNext()
    {
        if (_done) return false;
        if (_position + 1 >= rowCount) { _done = true; return false; }
        _position++;
        return true;
    }

    public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId value) => value = new DataViewRowId((ulong)Row, 0);

    /// <summary>The current row; an <see cref="InvalidOperationException"/> before the first row, after the last, or after disposal.</summary>
    protected int Row => !_done && _position >= 0 ? (int)_position : throw new InvalidOperationException("The cursor is not on a row.");

    /// <summary>Ends the cursor: later <see cref="MoveNext"/> calls return false and the getters throw.</summary>
    protected override void Dispose(bool disposing)
    {
        _done = true;
        base.Dispose(disposing);
    }
}
