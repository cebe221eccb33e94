using System.Globalization;
using System.Text;

namespace MLNet.DeepRec.Data;

/// <summary>The interaction file formats that <see cref="InteractionFileParser"/> reads.</summary>
internal enum InteractionFileFormat
{
    /// <summary>MovieLens 100K <c>u.data</c>: <c>user TAB item TAB rating TAB timestamp</c>.</summary>
    MovieLens100K,
    /// <summary>MovieLens 1M/10M <c>ratings.dat</c>: <c>user::item::rating::timestamp</c>.</summary>
    MovieLens1M,
    /// <summary>MovieLens 20M/25M/latest <c>ratings.csv</c>: header <c>userId,movieId,rating,timestamp</c>.</summary>
    MovieLensCsv,
    /// <summary>SASRec sequences: <c>user item</c> per line (whitespace separated), each user's lines in time order.</summary>
    UserItemSequence,
}

/// <summary>Columns parsed from an interaction file (one pass, ids interned).</summary>
internal sealed class ParsedInteractions
{
    public required ReadOnlyMemory<char>[] Users { get; init; }
    public required ReadOnlyMemory<char>[] Items { get; init; }
    public required float[] Labels { get; init; }
    public required double[] Timestamps { get; init; }
}

/// <summary>One-pass parser of MovieLens rating files and SASRec sequence files.</summary>
internal static class InteractionFileParser
{
    private const string CsvHeader = "userId,movieId,rating,timestamp";

    /// <summary>Detects the format from the first non-empty line of the file.</summary>
    public static InteractionFileFormat DetectMovieLensFormat(string path)
    {
        CheckFile(path);
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        string? line;
        int lineNumber = 0;
        while ((line = reader.ReadLine()) != null)
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            if (line.Contains("::", StringComparison.Ordinal)) return InteractionFileFormat.MovieLens1M;
            if (line.Contains('\t')) return InteractionFileFormat.MovieLens100K;
            if (line.Contains(',')) return InteractionFileFormat.MovieLensCsv;
            throw new FormatException(
                $"Cannot detect the MovieLens format of '{path}' from line {lineNumber}: '{Shorten(line)}'. Expected u.data (tab separated), ratings.dat ('::' separated) or ratings.csv (header '{CsvHeader}').");
        }
        throw new FormatException($"The MovieLens file '{path}' has no data lines.");
    }

    public static ParsedInteractions Parse(string path, InteractionFileFormat format)
    {
        CheckFile(path);
        int capacity = (int)Math.Min(int.MaxValue / 2, Math.Max(16, new FileInfo(path).Length / 16));
        var users = new List<ReadOnlyMemory<char>>(capacity);
        var items = new List<ReadOnlyMemory<char>>(capacity);
        var labels = new List<float>(format == InteractionFileFormat.UserItemSequence ? 16 : capacity);
        var times = new List<double>(capacity);
        var userIds = new Dictionary<string, ReadOnlyMemory<char>>(StringComparer.Ordinal);
        var itemIds = new Dictionary<string, ReadOnlyMemory<char>>(StringComparer.Ordinal);
        var userLookup = userIds.GetAlternateLookup<ReadOnlySpan<char>>();
        var itemLookup = itemIds.GetAlternateLookup<ReadOnlySpan<char>>();
        var positions = new Dictionary<ReadOnlyMemory<char>, int>(ReadOnlyMemoryCharComparer.Instance);

        string separator = format switch
        {
            InteractionFileFormat.MovieLens100K => "\t",
            InteractionFileFormat.MovieLens1M => "::",
            InteractionFileFormat.MovieLensCsv => ",",
            _ => " ",
        };
        int fieldCount = format == InteractionFileFormat.UserItemSequence ? 2 : 4;
        Span<Range> ranges = stackalloc Range[fieldCount + 1];

        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        string? line;
        int lineNumber = 0;
        bool headerSeen = false;
        while ((line = reader.ReadLine()) != null)
        {
            lineNumber++;
            ReadOnlySpan<char> span = line.AsSpan().Trim();
            if (span.IsEmpty) continue;
            if (format == InteractionFileFormat.MovieLensCsv && !headerSeen)
            {
                headerSeen = true;
                if (!char.IsAsciiDigit(span[0]))
                {
                    if (!IsCsvHeader(span)) throw Malformed(path, lineNumber, line, $"a header '{CsvHeader}'");
                    continue;
                }
            }

            int n;
            if (format == InteractionFileFormat.UserItemSequence)
                n = span.SplitAny(ranges, " \t", StringSplitOptions.RemoveEmptyEntries);
            else
                n = span.Split(ranges, separator, StringSplitOptions.TrimEntries);
            if (n != fieldCount) throw Malformed(path, lineNumber, line, FieldDescription(format));

            ReadOnlySpan<char> user = span[ranges[0]], item = span[ranges[1]];
            if (user.IsEmpty || item.IsEmpty) throw Malformed(path, lineNumber, line, FieldDescription(format));
            var userId = Intern(userLookup, user);
            users.Add(userId);
            items.Add(Intern(itemLookup, item));

            if (format == InteractionFileFormat.UserItemSequence)
            {
                ref int pos = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(positions, userId, out _);
                times.Add(pos);
                pos++;
            }
            else
            {
                if (!float.TryParse(span[ranges[2]], NumberStyles.Float, CultureInfo.InvariantCulture, out float rating) || !float.IsFinite(rating))
                    throw Malformed(path, lineNumber, line, "a numeric rating in the third field");
                if (!double.TryParse(span[ranges[3]], NumberStyles.Float, CultureInfo.InvariantCulture, out double ts) || !double.IsFinite(ts))
                    throw Malformed(path, lineNumber, line, "a numeric timestamp (seconds) in the fourth field");
                labels.Add(rating);
                times.Add(ts);
            }
        }

        // An empty file is almost always a wrong path or a failed download, not a data set: every loader says so, as
        // LoadMovieLens's format detection always has.
        if (users.Count == 0)
            throw new FormatException($"The {(format == InteractionFileFormat.UserItemSequence ? "user-item sequence" : "MovieLens")} file '{path}' has no data lines.");
        float[] labelArray = format == InteractionFileFormat.UserItemSequence ? CreateOnes(users.Count) : labels.ToArray();
        return new ParsedInteractions { Users = users.ToArray(), Items = items.ToArray(), Labels = labelArray, Timestamps = times.ToArray() };
    }

    private static float[] CreateOnes(int n)
    {
        var a = new float[n];
        Array.Fill(a, 1f);
        return a;
    }

    private static ReadOnlyMemory<char> Intern(Dictionary<string, ReadOnlyMemory<char>>.AlternateLookup<ReadOnlySpan<char>> lookup, ReadOnlySpan<char> key)
    {
        if (lookup.TryGetValue(key, out var value)) return value;
        string s = key.ToString();
        value = s.AsMemory();
        lookup.Dictionary.Add(s, value);
        return value;
    }

    private static bool IsCsvHeader(ReadOnlySpan<char> line)
    {
        Span<Range> r = stackalloc Range[5];
        int n = line.Split(r, ',', StringSplitOptions.TrimEntries);
        if (n != 4) return false;
        string[] expected = { "userId", "movieId", "rating", "timestamp" };
        for (int i = 0; i < 4; i++)
            if (!line[r[i]].Trim('"').Equals(expected[i], StringComparison.OrdinalIgnoreCase)) return false;
        return true;
    }

    private static string FieldDescription(InteractionFileFormat format) => format switch
    {
        InteractionFileFormat.MovieLens100K => "4 tab-separated fields 'user item rating timestamp'",
        InteractionFileFormat.MovieLens1M => "4 '::'-separated fields 'user::item::rating::timestamp'",
        InteractionFileFormat.MovieLensCsv => "4 comma-separated fields 'userId,movieId,rating,timestamp'",
        _ => "2 whitespace-separated fields 'user item'",
    };

    private static FormatException Malformed(string path, int lineNumber, string line, string expected)
        => new($"Malformed line {lineNumber} in '{path}': expected {expected}, but got '{Shorten(line)}'.");

    private static string Shorten(string line) => line.Length <= 200 ? line : line[..200] + "…";

    private static void CheckFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"The interaction file '{path}' does not exist.", path);
    }
}

/// <summary>Ordinal equality of <see cref="ReadOnlyMemory{T}"/> of char by content.</summary>
internal sealed class ReadOnlyMemoryCharComparer : IEqualityComparer<ReadOnlyMemory<char>>
{
    public static readonly ReadOnlyMemoryCharComparer Instance = new();
    public bool Equals(ReadOnlyMemory<char> x, ReadOnlyMemory<char> y) => x.Span.SequenceEqual(y.Span);
    public int GetHashCode(ReadOnlyMemory<char> obj) => string.GetHashCode(obj.Span, StringComparison.Ordinal);
}
