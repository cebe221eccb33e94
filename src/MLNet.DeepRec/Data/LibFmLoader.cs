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
            lineNumber++;
            string line = raw.Trim();
            if (line.Length == 0) continue;
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (!float.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out float label) || !float.IsFinite(label))
                throw Bad(path, lineNumber, line, $"the label '{parts[0]}' is not a finite number");
            int start = indices.Count;
            for (int k = 1; k < parts.Length; k++)
            {
                int colon = parts[k].IndexOf(':');
                if (colon <= 0) throw Bad(path, lineNumber, line, $"'{parts[k]}' is not idx:value");
                if (!int.TryParse(parts[k].AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
                    throw Bad(path, lineNumber, line, $"the feature index in '{parts[k]}' is not a non-negative integer");
                if (!float.TryParse(parts[k].AsSpan(colon + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out float value) || !float.IsFinite(value))
                    throw Bad(path, lineNumber, line, $"the value in '{parts[k]}' is not a finite number");
                if (o.FeatureCount is int count && index >= count)
                    throw Bad(path, lineNumber, line, $"feature index {index} is beyond FeatureCount = {count} (indices must be 0..{count - 1})");
                for (int j = start; j < indices.Count; j++)
                    if (indices[j] == index) throw Bad(path, lineNumber, line, $"feature index {index} appears twice");
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
            columns = new[] { Sorted(o.FeaturesColumnName, featureCount, 0, rowStarts, indices, values, null) };
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
            columns = new LibFmDataView.SparseColumn[starts.Length];
            for (int f = 0; f < starts.Length; f++)
            {
                int end = f + 1 < starts.Length ? starts[f + 1] : featureCount;
                columns[f] = Sorted(o.FieldColumnNames?[f] ?? $"Field{f}", end - starts[f], starts[f], rowStarts, indices, values, i => field[i] == f);
            }
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

    private static LibFmDataView.SparseColumn Sorted(string name, int size, int offset, List<int> rowStarts, List<int> indices, List<float> values, Func<int, bool>? keep)
    {
        int rows = rowStarts.Count - 1;
        var starts = new int[rows + 1];
        var ix = new List<int>(); var v = new List<float>();
        var buffer = new List<(int, float)>();
        for (int r = 0; r < rows; r++)
        {
            buffer.Clear();
            for (int k = rowStarts[r]; k < rowStarts[r + 1]; k++)
                if (keep == null || keep(indices[k])) buffer.Add((indices[k] - offset, values[k]));
            buffer.Sort((a, b) => a.Item1.CompareTo(b.Item1));
            foreach (var (i, x) in buffer) { ix.Add(i); v.Add(x); }
            starts[r + 1] = ix.Count;
        }
        return new LibFmDataView.SparseColumn(name, size, starts, ix.ToArray(), v.ToArray());
    }

    private static FormatException Bad(string path, int line, string text, string why) =>
        new($"libFM file {path}, line {line}: {why}. Line: \"{(text.Length > 200 ? text[..200] + "…" : text)}\"");
}
