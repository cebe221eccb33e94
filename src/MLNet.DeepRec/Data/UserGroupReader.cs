using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Data;

/// <summary>
/// Reads a user column of text, any integer type or any key type and maps each distinct value to a dense group index
/// (0, 1, 2, … in order of first appearance).
/// </summary>
internal static class UserGroupReader
{
    /// <summary>Returns a delegate that reads the current row's group index from <paramref name="cursor"/>.</summary>
    public static Func<int> Create(DataViewRowCursor cursor, DataViewSchema.Column column, Func<int> nextIndex)
    {
        var type = column.Type;
        if (type is VectorDataViewType)
            throw new ArgumentException($"The user column '{column.Name}' must be a scalar (text, integer or key), but it is {type}.", "userIdColumnName");
        var raw = type.RawType;
        if (type is TextDataViewType)
        {
            var getter = cursor.GetGetter<ReadOnlyMemory<char>>(column);
            var map = new Dictionary<string, int>(StringComparer.Ordinal);
            var lookup = map.GetAlternateLookup<ReadOnlySpan<char>>();
            ReadOnlyMemory<char> v = default;
            return () =>
            {
                getter(ref v);
                if (lookup.TryGetValue(v.Span, out int g)) return g;
                g = nextIndex();
                map.Add(v.ToString(), g);
                return g;
            };
        }
        if (raw == typeof(int)) return Integer<int>(cursor, column, nextIndex);
        if (raw == typeof(long)) return Integer<long>(cursor, column, nextIndex);
        if (raw == typeof(uint)) return Integer<uint>(cursor, column, nextIndex);
        if (raw == typeof(ulong)) return Integer<ulong>(cursor, column, nextIndex);
        if (raw == typeof(short)) return Integer<short>(cursor, column, nextIndex);
        if (raw == typeof(ushort)) return Integer<ushort>(cursor, column, nextIndex);
        if (raw == typeof(byte)) return Integer<byte>(cursor, column, nextIndex);
        if (raw == typeof(sbyte)) return Integer<sbyte>(cursor, column, nextIndex);
        throw new ArgumentException(
            $"The user column '{column.Name}' must be text, an integer type or a key type, but it is {type}.", "userIdColumnName");
    }

    private static Func<int> Integer<T>(DataViewRowCursor cursor, DataViewSchema.Column column, Func<int> nextIndex) where T : struct
    {
        var getter = cursor.GetGetter<T>(column);
        var map = new Dictionary<T, int>();
        T v = default;
        return () =>
        {
            getter(ref v);
            ref int g = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(map, v, out bool exists);
            if (!exists) g = nextIndex();
            return g;
        };
    }
}
