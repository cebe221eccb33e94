using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Models;

/// <summary>A data set as the feature-interaction models consume it: [N, F] global indices and values, and labels.</summary>
/// <param name="Layout">The input layout.</param>
/// <param name="RowCount">N.</param>
/// <param name="Indices">Row-major [N, F] global feature indices (0 = padding).</param>
/// <param name="Values">Row-major [N, F] feature values (0 for padding).</param>
/// <param name="Labels">[N] labels (regression targets, or 0/1), or null when no label column was read.</param>
internal sealed record FieldFeatureData(FieldFeatureLayout Layout, int RowCount, long[] Indices, float[] Values, float[]? Labels);

/// <summary>
/// Reads feature columns (key and known-size vector columns) and the label of an <see cref="IDataView"/> in one cursor
/// pass into flat index/value arrays, checking values as it goes. This is the only per-row C# work; training then runs
/// on tensors.
/// </summary>
internal static class FieldFeatureReader
{
    /// <summary>How the label column is read.</summary>
    public enum LabelKind { None, Regression, Binary }

    /// <summary>Checks that <paramref name="labelColumn"/> has the type the task needs; the message says what to do otherwise.</summary>
    public static void CheckLabel(DataViewSchema schema, string labelColumn, LabelKind kind)
    {
        var col = schema.GetColumnOrNull(labelColumn) ?? throw new ArgumentException($"Label column '{labelColumn}' was not found in the data.");
        var type = col.Type;
        if (kind == LabelKind.Regression && type != NumberDataViewType.Single)
            throw new ArgumentException(type == BooleanDataViewType.Instance
                ? $"Label column '{labelColumn}' is Boolean, but Task = Regression needs a Single label. Use Task = FeatureInteractionTask.BinaryClassification for Boolean labels."
                : $"Label column '{labelColumn}' has type {type}; Task = Regression needs a Single label (convert it with mlContext.Transforms.Conversion.ConvertType).");
        if (kind == LabelKind.Binary && type != BooleanDataViewType.Instance)
            throw new ArgumentException($"Label column '{labelColumn}' has type {type}; Task = BinaryClassification needs a Boolean label, as ML.NET's binary trainers do " +
                "(e.g. LibFmLoaderOptions.BooleanLabel = true, or a mapping such as Label > 0). Use Task = FeatureInteractionTask.Regression for a numeric target.");
    }

    /// <summary>
    /// Reads <paramref name="data"/>. With <paramref name="layout"/> null (training data) the layout is derived from the
    /// schema and the data (a vector column gets as many slots as its densest row has non-zeros); otherwise the given
    /// layout is used and the column types must match it.
    /// </summary>
    public static FieldFeatureData Read(IDataView data, IReadOnlyList<string> columnNames, string? labelColumn, LabelKind labelKind, FieldFeatureLayout? layout)
    {
        var described = FieldFeatureLayout.Describe(data.Schema, columnNames);
        if (layout != null)
        {
            for (int c = 0; c < described.Count; c++)
            {
                var want = layout.Columns[c];
                var (name, kind, size, _) = described[c];
                if (kind != want.Kind || size != want.Size)
                    throw new ArgumentException($"Feature column '{name}' is {Text(kind, size)} here but the model was trained on {Text(want.Kind, want.Size)}. " +
                        "Transform every data set with the same fitted MapValueToKey/OneHotEncoding (or the same libFM field layout).");
            }
        }
        if (labelColumn != null && labelKind != LabelKind.None) CheckLabel(data.Schema, labelColumn, labelKind);

        var needed = columnNames.Select(n => data.Schema[n]).ToList();
        if (labelColumn != null && labelKind != LabelKind.None) needed.Add(data.Schema[labelColumn]);

        int columnCount = described.Count;
        var keyValues = new List<uint>[columnCount];
        var rowStarts = new List<int>[columnCount];
        var positions = new List<int>[columnCount];
        var values = new List<float>[columnCount];
        var maxNonZeros = new int[columnCount];
        var labels = new List<float>();
        using (var cursor = data.GetRowCursor(needed))
        {
            var keyGetters = new ValueGetter<uint>?[columnCount];
            var vectorGetters = new ValueGetter<VBuffer<float>>?[columnCount];
            for (int c = 0; c < columnCount; c++)
            {
                if (described[c].Kind == FieldColumnKind.Key) { keyGetters[c] = cursor.GetGetter<uint>(data.Schema[columnNames[c]]); keyValues[c] = new List<uint>(); }
                else
                {
                    vectorGetters[c] = cursor.GetGetter<VBuffer<float>>(data.Schema[columnNames[c]]);
                    rowStarts[c] = new List<int> { 0 }; positions[c] = new List<int>(); values[c] = new List<float>();
                }
            }
            ValueGetter<float>? floatLabel = null;
            ValueGetter<bool>? boolLabel = null;
            if (labelColumn != null && labelKind == LabelKind.Regression) floatLabel = cursor.GetGetter<float>(data.Schema[labelColumn]);
            if (labelColumn != null && labelKind == LabelKind.Binary) boolLabel = cursor.GetGetter<bool>(data.Schema[labelColumn]);

            uint key = 0;
            VBuffer<float> vector = default;
            float label = 0;
            bool flag = false;
            long row = 0;
            while (cursor.MoveNext())
            {
                for (int c = 0; c < columnCount; c++)
                {
                    if (keyGetters[c] is { } kg) { kg(ref key); keyValues[c].Add(key); continue; }
                    vectorGetters[c]!(ref vector);
                    if (vector.Length != described[c].Size)
                        throw new InvalidOperationException($"Feature column '{described[c].Name}' has a vector of size {vector.Length} at row {row}; its type says {described[c].Size}.");
                    var v = vector.GetValues();
                    var ix = vector.IsDense ? default : vector.GetIndices();
                    int nonZeros = 0;
                    for (int k = 0; k < v.Length; k++)
                    {
                        float x = v[k];
                        if (!float.IsFinite(x))
                            throw new InvalidOperationException($"Feature column '{described[c].Name}' has the value {x.ToString(CultureInfo.InvariantCulture)} at row {row}, element {(vector.IsDense ? k : ix[k])}; feature values must be finite (replace missing values first, e.g. with mlContext.Transforms.ReplaceMissingValues).");
                        if (x == 0) continue;
                        positions[c].Add(vector.IsDense ? k : ix[k]);
                        values[c].Add(x);
                        nonZeros++;
                    }
                    rowStarts[c].Add(positions[c].Count);
                    if (nonZeros > maxNonZeros[c]) maxNonZeros[c] = nonZeros;
                }
                if (floatLabel != null)
                {
                    floatLabel(ref label);
                    if (!float.IsFinite(label))
                        throw new InvalidOperationException($"Label column '{labelColumn}' has the value {label.ToString(CultureInfo.InvariantCulture)} at row {row}; labels must be finite (filter such rows out, e.g. with mlContext.Data.FilterRowsByMissingValues).");
                    labels.Add(label);
                }
                else if (boolLabel != null) { boolLabel(ref flag); labels.Add(flag ? 1f : 0f); }
                row++;
            }
        }

        int n = labels.Count > 0 ? labels.Count : (described.Count == 0 ? 0 : (described[0].Kind == FieldColumnKind.Key ? keyValues[0].Count : rowStarts[0].Count - 1));
        if (layout == null)
        {
            var columns = new List<FieldColumn>();
            int offset = 1, slotStart = 0;
            for (int c = 0; c < columnCount; c++)
            {
                var (name, kind, size, kv) = described[c];
                int slots = kind == FieldColumnKind.Key ? 1 : Math.Max(1, maxNonZeros[c]);
                columns.Add(new FieldColumn(name, kind, size, offset, slots, slotStart, kv));
                offset += size; slotStart += slots;
            }
            layout = new FieldFeatureLayout(columns);
        }

        int f = layout.SlotCount;
        var indices = new long[(long)n * f];
        var vals = new float[(long)n * f];
        for (int c = 0; c < columnCount; c++)
        {
            var col = layout.Columns[c];
            if (col.Kind == FieldColumnKind.Key)
            {
                var keys = keyValues[c];
                for (int r = 0; r < n; r++)
                {
                    uint k = keys[r];
                    if (k == 0 || k > col.Size) continue; // unknown value: padding feature, x = 0
                    indices[(long)r * f + col.SlotStart] = col.Offset + k - 1;
                    vals[(long)r * f + col.SlotStart] = 1f;
                }
                continue;
            }
            var starts = rowStarts[c]; var pos = positions[c]; var v = values[c];
            for (int r = 0; r < n; r++)
            {
                int s = starts[r], e = starts[r + 1];
                long baseIndex = (long)r * f + col.SlotStart;
                if (col.Dense)
                {
                    for (int j = 0; j < col.Size; j++) indices[baseIndex + j] = col.Offset + j;
                    for (int k = s; k < e; k++) vals[baseIndex + pos[k]] = v[k];
                    continue;
                }
                int count = e - s;
                IEnumerable<int> chosen = Enumerable.Range(s, count);
                if (count > col.Slots) // more non-zeros than any training row: keep the largest magnitudes, as the ONNX graph does
                    chosen = chosen.OrderByDescending(k => Math.Abs(v[k])).ThenBy(k => pos[k]).Take(col.Slots).ToArray();
                int slot = 0;
                foreach (int k in chosen)
                {
                    indices[baseIndex + slot] = col.Offset + pos[k];
                    vals[baseIndex + slot] = v[k];
                    slot++;
                }
            }
        }
        return new FieldFeatureData(layout, n, indices, vals, labelKind == LabelKind.None ? null : labels.ToArray());
    }

    private static string Text(FieldColumnKind kind, int size) => kind == FieldColumnKind.Key ? $"a key of cardinality {size}" : $"a vector of size {size}";
}
