using System.Globalization;

namespace MLNet.DeepRec.Data;

/// <summary>How a libFM file (<c>label idx:val idx:val …</c>) becomes columns.</summary>
public sealed class LibFmLoaderOptions
{
    /// <summary>
    /// Field assignment: field i holds the feature indices [FieldStarts[i], FieldStarts[i+1]) (the last field ends at
    /// <see cref="FeatureCount"/>); each field becomes its own sparse <c>Vector&lt;Single&gt;</c> column, so the fields can
    /// drive NFM/AFM and ML.NET's FieldAwareFactorizationMachine alike. Ascending, the first is usually 0. Null (default):
    /// one column <see cref="FeaturesColumnName"/> holding every feature. <see cref="DeepRecDataCatalog.InferLibFmFields"/>
    /// infers it from files with one feature per field per line.
    /// </summary>
    public int[]? FieldStarts;

    /// <summary>Number of features (indices are 0..FeatureCount−1). Null (default): the largest index in the file + 1; give
    /// it when loading train/validation/test files so that their vector sizes agree.</summary>
    public int? FeatureCount;

    /// <summary>Names of the field columns (with <see cref="FieldStarts"/>). Default null: "Field0", "Field1", ….</summary>
    public string[]? FieldColumnNames;

    /// <summary>Name of the single feature column (without <see cref="FieldStarts"/>). Default "Features".</summary>
    public string FeaturesColumnName = "Features";

    /// <summary>Name of the label column. Default "Label".</summary>
    public string LabelColumnName = "Label";

    /// <summary>False (default): the label is Single, as in the file (e.g. ±1, the NFM/AFM papers' regression target).
    /// True: the label is Boolean, <c>label &gt; 0</c> (for binary classification and ML.NET's FFM).</summary>
    public bool BooleanLabel;
}

/// <summary>Parses libFM text files.</summary>
internal static class LibFmLoader
{
    public static LibFmDataView Load(string path, LibFmLoaderOptions o)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"libFM file not found: {path}", path);
        var labels = new List<float>();
        var rowStarts = new List<int> { 0 };
        var indices = new List<int>();
        var values = new List<float>();
        int maxIndex = -1, lineNumber = 0;
        foreach (string raw in File.ReadLines(path))
        {
            // Tokens are parsed as spans of the line: nothing is allocated per feature.
            lineNumber++;
            var rest = raw.AsSpan().Trim();
            if (rest.IsEmpty) continue;
            var token = NextToken(ref rest);
            if (!float.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out float label) || !float.IsFinite(label))
                throw Bad(path, lineNumber, raw, $"the label '{token}' is not a finite number");
            int start = indices.Count;
            while (!rest.IsEmpty)
            {
                token = NextToken(ref rest);
                int colon = token.IndexOf(':');
                if (colon <= 0) throw Bad(path, lineNumber, raw, $"'{token}' is not idx:value");
                if (!int.TryParse(token[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out int index))
                    throw Bad(path, lineNumber, raw, $"the feature index in '{token}' is not a non-negative integer");
                if (!float.TryParse(token[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out float value) || !float.IsFinite(value))
                    throw Bad(path, lineNumber, raw, $"the value in '{token}' is not a finite number");
                if (o.FeatureCount is int count && index >= count)
                    throw Bad(path, lineNumber, raw, $"feature index {index} is beyond FeatureCount = {count} (indices must be 0..{count - 1})");
                for (int j = start; j < indices.Count; j++)
                    if (indices[j] == index) throw Bad(path, lineNumber, raw, $"feature index {index} appears twice");
                indices.Add(index); values.Add(value);
                if (index > maxIndex) maxIndex = index;
            }
            rowStarts.Add(indices.Count);
            labels.Add(label);
        }
        int featureCount = o.FeatureCount ?? maxIndex + 1;
        if (featureCount <= 0) throw new FormatException($"libFM file {path} has no features; set LibFmLoaderOptions.FeatureCount.");

        LibFmDataView.SparseColumn[] columns;
        if (o.FieldStarts == null)
        {
            columns = Split(new[] { o.FeaturesColumnName }, new[] { 0 }, featureCount, null, rowStarts, indices, values);
        }
        else
        {
            int[] starts = o.FieldStarts;
            if (starts.Length == 0 || starts[0] < 0 || starts.Zip(starts.Skip(1)).Any(p => p.First >= p.Second) || starts[^1] >= featureCount)
                throw new ArgumentException($"FieldStarts must be strictly ascending within 0..{featureCount - 1}; got [{string.Join(", ", starts)}].", nameof(o.FieldStarts));
            if (o.FieldColumnNames != null && o.FieldColumnNames.Length != starts.Length)
                throw new ArgumentException($"FieldColumnNames has {o.FieldColumnNames.Length} names for {starts.Length} fields.", nameof(o.FieldColumnNames));
            // Field of each feature index; indices below the first field start belong to none.
            var field = new int[featureCount];
            Array.Fill(field, -1);
            for (int f = 0; f < starts.Length; f++)
                for (int i = starts[f]; i < (f + 1 < starts.Length ? starts[f + 1] : featureCount); i++) field[i] = f;
            for (int k = 0; k < indices.Count; k++)
                if (field[indices[k]] < 0)
                    throw new FormatException($"libFM file {path}: feature index {indices[k]} lies before the first field (FieldStarts[0] = {starts[0]}).");
            var names = Enumerable.Range(0, starts.Length).Select(f => o.FieldColumnNames?[f] ?? $"Field{f}").ToArray();
            columns = Split(names, starts, featureCount, field, rowStarts, indices, values);
        }
        return o.BooleanLabel
            ? new LibFmDataView(o.LabelColumnName, null, labels.Select(l => l > 0).ToArray(), columns)
            : new LibFmDataView(o.LabelColumnName, labels.ToArray(), null, columns);
    }

    /// <summary>Infers contiguous fields from files where each line lists one feature per field in the same order.</summary>
    public static LibFmLoaderOptions InferFields(IReadOnlyList<string> paths)
    {
        int[]? min = null, max = null;
        foreach (string path in paths)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"libFM file not found: {path}", path);
            int lineNumber = 0;
            foreach (string raw in File.ReadLines(path))
            {
                lineNumber++;
                var parts = raw.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 0) continue;
                int n = parts.Length - 1;
                min ??= Enumerable.Repeat(int.MaxValue, n).ToArray();
                max ??= Enumerable.Repeat(-1, n).ToArray();
                if (n != min.Length)
                    throw new FormatException($"{path} line {lineNumber}: {n} features where earlier lines have {min.Length}; fields can only be inferred when every line has one feature per field. Set LibFmLoaderOptions.FieldStarts instead.");
                for (int k = 0; k < n; k++)
                {
                    int colon = parts[k + 1].IndexOf(':');
                    if (colon <= 0 || !int.TryParse(parts[k + 1].AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
                        throw Bad(path, lineNumber, raw, $"'{parts[k + 1]}' is not idx:value");
                    min[k] = Math.Min(min[k], index); max[k] = Math.Max(max[k], index);
                }
            }
        }
        if (min == null || max == null || min.Length == 0) throw new FormatException("No features found to infer fields from.");
        for (int k = 1; k < min.Length; k++)
            if (min[k] <= max[k - 1])
                throw new FormatException($"Feature position {k} (indices {min[k]}..{max[k]}) overlaps position {k - 1} ({min[k - 1]}..{max[k - 1]}): the lines do not list one feature per field in field order. Set LibFmLoaderOptions.FieldStarts instead.");
        var starts = new int[min.Length];
        starts[0] = 0;
        for (int k = 1; k < min.Length; k++) starts[k] = min[k];
        return new LibFmLoaderOptions { FieldStarts = starts, FeatureCount = max[^1] + 1 };
    }

    /// <summary>
    /// Distributes the parsed rows over the field columns in two linear passes (count, then place), each column's
    /// rows in compressed form with indices relative to the field start and sorted within a row. <c>field</c> gives the
    /// field of each feature index, or is null for a single column holding every feature.
    /// </summary>
    private static LibFmDataView.SparseColumn[] Split(string[] names, int[] starts, int featureCount, int[]? field,
        List<int> rowStarts, List<int> indices, List<float> values)
    {
        int fields = starts.Length, rows = rowStarts.Count - 1;
        var counts = new int[fields];
        if (field == null) counts[0] = indices.Count;
        else foreach (int i in indices) counts[field[i]]++;
        var ix = new int[fields][];
        var v = new float[fields][];
        var columnStarts = new int[fields][];
        var fill = new int[fields];
        for (int f = 0; f < fields; f++) { ix[f] = new int[counts[f]]; v[f] = new float[counts[f]]; columnStarts[f] = new int[rows + 1]; }
        for (int r = 0; r < rows; r++)
        {
            for (int k = rowStarts[r]; k < rowStarts[r + 1]; k++)
            {
                int f = field == null ? 0 : field[indices[k]];
                ix[f][fill[f]] = indices[k] - starts[f];
                v[f][fill[f]++] = values[k];
            }
            for (int f = 0; f < fields; f++)
            {
                int s = columnStarts[f][r], count = fill[f] - s;
                columnStarts[f][r + 1] = fill[f];
                if (count > 1 && !IsAscending(ix[f].AsSpan(s, count))) Array.Sort(ix[f], v[f], s, count);
            }
        }
        var columns = new LibFmDataView.SparseColumn[fields];
        for (int f = 0; f < fields; f++)
        {
            int end = f + 1 < fields ? starts[f + 1] : featureCount;
            columns[f] = new LibFmDataView.SparseColumn(names[f], end - starts[f], columnStarts[f], ix[f], v[f]);
        }
        return columns;
    }

    private static bool IsAscending(ReadOnlySpan<int> values)
    {
        for (int i = 1; i < values.Length; i++) if (values[i] <= values[i - 1]) return false;
        return true;
    }

    /// <summary>The next whitespace-separated token of <paramref name="rest"/> (which must not start with whitespace);
    /// <paramref name="rest"/> moves past it and the whitespace after it.</summary>
    private static ReadOnlySpan<char> NextToken(ref ReadOnlySpan<char> rest)
    {
        int end = 0;
        while (end < rest.Length && !char.IsWhiteSpace(rest[end])) end++;
        var token = rest[..end];
        rest = rest[end..].TrimStart();
        return token;
    }

    private static FormatException Bad(string path, int line, string text, string why) =>
        new($"libFM file {path}, line {line}: {why}. Line: \"{(text.Length > 200 ? text[..200] + "…" : text)}\"");
}
