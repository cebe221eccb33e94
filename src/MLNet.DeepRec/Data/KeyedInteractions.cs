using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// User–item interactions held in memory as key indices, read once from an <see cref="IDataView"/> whose user and
/// item columns are key-typed (produced by <c>MapValueToKey</c>). Key value 0 is ML.NET's "missing" key; valid keys are
/// 1..<see cref="UserCount"/> and 1..<see cref="ItemCount"/>, so model embedding tables reserve row 0 for unknown ids.
/// </summary>
public sealed class KeyedInteractions
{
    /// <summary>Creates interactions from arrays of key values (1-based; 0 means unknown).</summary>
    /// <param name="users">User key per interaction.</param>
    /// <param name="items">Item key per interaction.</param>
    /// <param name="userCount">Number of user keys (the key type's cardinality).</param>
    /// <param name="itemCount">Number of item keys (the key type's cardinality).</param>
    /// <param name="labels">Optional label per interaction (rating or 0/1); null for implicit feedback.</param>
    /// <param name="timestamps">Optional timestamp per interaction.</param>
    public KeyedInteractions(int[] users, int[] items, int userCount, int itemCount, float[]? labels = null, double[]? timestamps = null)
    {
        ArgumentNullException.ThrowIfNull(users);
        ArgumentNullException.ThrowIfNull(items);
        if (users.Length != items.Length) throw new ArgumentException($"users ({users.Length}) and items ({items.Length}) must have the same length.");
        if (labels != null && labels.Length != users.Length) throw new ArgumentException("labels must have one value per interaction.", nameof(labels));
        if (timestamps != null && timestamps.Length != users.Length) throw new ArgumentException("timestamps must have one value per interaction.", nameof(timestamps));
        if (userCount <= 0) throw new ArgumentOutOfRangeException(nameof(userCount), userCount, "The user key type must have at least one key.");
        if (itemCount <= 0) throw new ArgumentOutOfRangeException(nameof(itemCount), itemCount, "The item key type must have at least one key.");
        Users = users; Items = items; UserCount = userCount; ItemCount = itemCount; Labels = labels; Timestamps = timestamps;
    }

    /// <summary>User key per interaction (1..<see cref="UserCount"/>, 0 = unknown).</summary>
    public int[] Users { get; }
    /// <summary>Item key per interaction (1..<see cref="ItemCount"/>, 0 = unknown).</summary>
    public int[] Items { get; }
    /// <summary>Label per interaction, or null when the data has no label (implicit feedback).</summary>
    public float[]? Labels { get; }
    /// <summary>Timestamp per interaction, or null.</summary>
    public double[]? Timestamps { get; }
    /// <summary>Cardinality of the user key type.</summary>
    public int UserCount { get; }
    /// <summary>Cardinality of the item key type.</summary>
    public int ItemCount { get; }
    /// <summary>Number of interactions.</summary>
    public int Count => Users.Length;

    /// <summary>
    /// Reads key-typed user/item columns (and optionally a numeric label and timestamp) from <paramref name="data"/>.
    /// Throws <see cref="ArgumentException"/> naming the column when a column is missing or has the wrong type.
    /// </summary>
    public static KeyedInteractions FromDataView(IDataView data, string userIdColumnName, string itemIdColumnName,
        string? labelColumn = null, string? timestampColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        int userCount = KeyCardinality(data.Schema, userIdColumnName, "user");
        int itemCount = KeyCardinality(data.Schema, itemIdColumnName, "item");
        // Columns go straight into int/float arrays, sized from the row count when the view knows it (no per-row
        // objects, no list growth: at 20M rows each doubling of a list would briefly hold 3× the column).
        long? known = data.GetRowCount();
        var users = new IntColumn(known);
        var items = new IntColumn(known);
        List<float>? labels = labelColumn == null ? null : new List<float>(known is long k1 && k1 <= int.MaxValue ? (int)k1 : 0);
        List<double>? times = timestampColumnName == null ? null : new List<double>(known is long k2 && k2 <= int.MaxValue ? (int)k2 : 0);

        var columns = new List<DataViewSchema.Column> { data.Schema[userIdColumnName], data.Schema[itemIdColumnName] };
        ValueGetter<float>? labelGetter = null;
        ValueGetter<double>? timeGetter = null;
        if (labelColumn != null) columns.Add(RequireColumn(data.Schema, labelColumn, "label"));
        if (timestampColumnName != null) columns.Add(RequireColumn(data.Schema, timestampColumnName, "timestamp"));

        using var cursor = data.GetRowCursor(columns);
        var userGetter = cursor.GetGetter<uint>(data.Schema[userIdColumnName]);
        var itemGetter = cursor.GetGetter<uint>(data.Schema[itemIdColumnName]);
        if (labelColumn != null) labelGetter = NumericGetter.AsSingle(cursor, data.Schema[labelColumn], "label");
        if (timestampColumnName != null) timeGetter = NumericGetter.AsDouble(cursor, data.Schema[timestampColumnName], "timestamp");
        uint u = 0, i = 0; float l = 0; double t = 0;
        while (cursor.MoveNext())
        {
            userGetter(ref u); itemGetter(ref i);
            users.Add((int)u); items.Add((int)i);
            if (labelGetter != null)
            {
                labelGetter(ref l);
                if (float.IsNaN(l) || float.IsInfinity(l))
                    throw new InvalidOperationException($"Label column '{labelColumn}' has a non-finite value ({l}) at row {cursor.Position}.");
                labels!.Add(l);
            }
            if (timeGetter != null)
            {
                timeGetter(ref t);
                // A NaN would make the time order (SASRec's sequences, the temporal splits) depend on the sort's whims.
                if (!double.IsFinite(t))
                    throw new InvalidOperationException($"Timestamp column '{timestampColumnName}' has a non-finite value ({t}) at row {cursor.Position}.");
                times!.Add(t);
            }
        }
        return new KeyedInteractions(users.ToArray(), items.ToArray(), userCount, itemCount, labels?.ToArray(), times?.ToArray());
    }

    /// <summary>An int column filled row by row: exactly sized when the row count is known, else grown like a list.</summary>
    private sealed class IntColumn
    {
        private int[] _values;
        private int _count;
        public IntColumn(long? rows) => _values = new int[rows is long r && r > 0 && r <= Array.MaxLength ? r : 1024];
        public void Add(int value)
        {
            if (_count == _values.Length) Array.Resize(ref _values, (int)Math.Min(Array.MaxLength, _values.Length * 2L));
            _values[_count++] = value;
        }
        public int[] ToArray()
        {
            if (_count != _values.Length) Array.Resize(ref _values, _count);
            return _values;
        }
    }

    /// <summary>Returns the key cardinality of a key-typed column, or throws a clear exception.</summary>
    public static int KeyCardinality(DataViewSchema schema, string column, string role) => ColumnChecks.Key(schema, column, role);

    internal static DataViewSchema.Column RequireColumn(DataViewSchema schema, string column, string role)
    {
        ArgumentException.ThrowIfNullOrEmpty(column);
        var col = schema.GetColumnOrNull(column);
        if (col == null)
            throw new ArgumentException($"The {role} column '{column}' was not found in the data. Available columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.", nameof(column));
        return col.Value;
    }
}

/// <summary>Reads a scalar numeric column of any primitive numeric or boolean type as float/double.</summary>
internal static class NumericGetter
{
    public static ValueGetter<float> AsSingle(DataViewRow row, DataViewSchema.Column column, string role)
    {
        var d = AsDouble(row, column, role);
        return (ref float v) => { double x = 0; d(ref x); v = (float)x; };
    }

    public static ValueGetter<double> AsDouble(DataViewRow row, DataViewSchema.Column column, string role)
    {
        var t = column.Type;
        if (t is KeyDataViewType || t is VectorDataViewType)
            throw new ArgumentException($"The {role} column '{column.Name}' must be a numeric scalar, but it is {t}.");
        switch (t.RawType)
        {
            case Type x when x == typeof(float): { var g = row.GetGetter<float>(column); return (ref double v) => { float a = 0; g(ref a); v = a; }; }
            case Type x when x == typeof(double): return row.GetGetter<double>(column);
            case Type x when x == typeof(int): { var g = row.GetGetter<int>(column); return (ref double v) => { int a = 0; g(ref a); v = a; }; }
            case Type x when x == typeof(long): { var g = row.GetGetter<long>(column); return (ref double v) => { long a = 0; g(ref a); v = a; }; }
            case Type x when x == typeof(uint): { var g = row.GetGetter<uint>(column); return (ref double v) => { uint a = 0; g(ref a); v = a; }; }
            case Type x when x == typeof(bool): { var g = row.GetGetter<bool>(column); return (ref double v) => { bool a = false; g(ref a); v = a ? 1 : 0; }; }
            case Type x when x == typeof(sbyte): { var g = row.GetGetter<sbyte>(column); return (ref double v) => { sbyte a = 0; g(ref a); v = a; }; }
            case Type x when x == typeof(byte): { var g = row.GetGetter<byte>(column); return (ref double v) => { byte a = 0; g(ref a); v = a; }; }
            case Type x when x == typeof(short): { var g = row.GetGetter<short>(column); return (ref double v) => { short a = 0; g(ref a); v = a; }; }
            case Type x when x == typeof(ushort): { var g = row.GetGetter<ushort>(column); return (ref double v) => { ushort a = 0; g(ref a); v = a; }; }
            case Type x when x == typeof(ulong): { var g = row.GetGetter<ulong>(column); return (ref double v) => { ulong a = 0; g(ref a); v = a; }; }
            default: throw new ArgumentException($"The {role} column '{column.Name}' must be numeric (Single, Double, SByte, Byte, Int16, UInt16, Int32, UInt32, Int64, UInt64 or Boolean), but it is {t}.");
        }
    }
}
