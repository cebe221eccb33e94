using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Models;

/// <summary>
/// A data set as the feature-interaction models consume it: compact row-major [N, F] int32 global indices and float
/// values (8 bytes per slot, no per-row objects), and labels.
/// </summary>
/// <param name="Layout">The input layout.</param>
/// <param name="RowCount">N.</param>
/// <param name="Indices">Row-major [N, F] global feature indices (0 = padding).</param>
/// <param name="Values">Row-major [N, F] feature values (0 for padding).</param>
/// <param name="Labels">[N] labels (regression targets, or 0/1), or null when no label column was read.</param>
/// <param name="AllOnes">Every value is 1 (one-hot data with no padding slot and no unknown key): the models then skip
/// their multiplications by x.</param>
/// <param name="MaxAbsValue">The largest |value| of a vector column's element (1 for key columns alone); reported when
/// training diverges.</param>
internal sealed record FieldFeatureData(FieldFeatureLayout Layout, int RowCount, int[] Indices, float[] Values, float[]? Labels, bool AllOnes, float MaxAbsValue);

/// <summary>
/// Reads feature columns (key and known-size vector columns) and the label of an <see cref="IDataView"/> in one cursor
/// pass into flat index/value arrays, checking values as it goes. This is the only per-row C# work; training then runs
/// on tensors.
/// </summary>
/// <remarks>
/// Sparse vectors stay sparse: a <see cref="VBuffer{T}"/>'s explicit indices and values are copied straight into
/// compressed per-column buffers (row starts, positions, values: 8 bytes per non-zero), never expanded to the vector's
/// length, and then into the [N, F] slots. A key column costs 4 bytes per row until the slots are filled. Nothing is
/// allocated per row.
/// </remarks>
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
    /// Reads <paramref name="data"/> (at most <paramref name="maxRows"/> rows from the start). With
    /// <paramref name="layout"/> null (training data) the layout is derived from the schema and the data (a vector column
    /// gets as many slots as its densest row has non-zeros); otherwise the given layout is used and the column types
    /// must match it. Every value must be finite and, when <paramref name="maxMagnitude"/> is given (training and
    /// validation data), at most that in absolute value; otherwise an <see cref="InvalidOperationException"/> names the
    /// column, row and element.
    /// </summary>
    public static FieldFeatureData Read(IDataView data, IReadOnlyList<string> columnNames, string? labelColumn, LabelKind labelKind, FieldFeatureLayout? layout,
        int maxRows = int.MaxValue, float maxMagnitude = float.PositiveInfinity)
    {
        layout?.CheckSchema(data.Schema, FieldFeatureLayout.TrainedOn);
        var described = FieldFeatureLayout.Describe(data.Schema, columnNames);
        bool readLabel = labelColumn != null && labelKind != LabelKind.None;
        if (readLabel) CheckLabel(data.Schema, labelColumn!, labelKind);
        var pass = ReadColumns(data, described, readLabel ? labelColumn : null, labelKind, maxRows, maxMagnitude);
        layout ??= InferLayout(described, pass.Columns);
        return Pack(layout, pass);
    }

    /// <summary>What one pass over the data collected: per column its keys or non-zeros, the labels, the largest |x|.</summary>
    private sealed record ColumnPass(ColumnBuffer[] Columns, Growable<float>? Labels, int Rows, float MaxAbs);

    /// <summary>Job 1: one cursor pass, checking every value (finite, within ±<paramref name="maxMagnitude"/>, vector sizes).</summary>
    private static ColumnPass ReadColumns(IDataView data, List<(string Name, FieldColumnKind Kind, int Size, string[]? KeyValues)> described,
        string? labelColumn, LabelKind labelKind, int maxRows, float maxMagnitude)
    {
        var needed = described.Select(d => data.Schema[d.Name]).ToList();
        if (labelColumn != null) needed.Add(data.Schema[labelColumn]);
        // Buffers sized from the row count when the view knows it (capped, so that a huge view grows them instead).
        int capacity = (int)Math.Clamp(Math.Min(data.GetRowCount() ?? 1024, maxRows), 16, 1 << 24);
        int columnCount = described.Count;
        var columns = described.Select(d => new ColumnBuffer(d.Kind, capacity)).ToArray();
        var labels = labelColumn != null ? new Growable<float>(capacity) : null;
        int rows = 0;
        float maxAbs = described.Any(d => d.Kind == FieldColumnKind.Key) ? 1 : 0; // a key feature has x = 1
        using var cursor = data.GetRowCursor(needed);
        var keyGetters = new ValueGetter<uint>?[columnCount];
        var vectorGetters = new ValueGetter<VBuffer<float>>?[columnCount];
        for (int c = 0; c < columnCount; c++)
        {
            var column = data.Schema[described[c].Name];
            if (described[c].Kind == FieldColumnKind.Key) keyGetters[c] = cursor.GetGetter<uint>(column);
            else vectorGetters[c] = cursor.GetGetter<VBuffer<float>>(column);
        }
        ValueGetter<float>? floatLabel = labelColumn != null && labelKind == LabelKind.Regression ? cursor.GetGetter<float>(data.Schema[labelColumn]) : null;
        ValueGetter<bool>? boolLabel = labelColumn != null && labelKind == LabelKind.Binary ? cursor.GetGetter<bool>(data.Schema[labelColumn]) : null;

        uint key = 0;
        VBuffer<float> vector = default;
        float label = 0;
        bool flag = false;
        while (rows < maxRows && cursor.MoveNext())
        {
            if (rows == int.MaxValue) throw new InvalidOperationException($"The data has more than {int.MaxValue} rows; feature-interaction training reads at most that many.");
            for (int c = 0; c < columnCount; c++)
            {
                if (keyGetters[c] is { } kg) { kg(ref key); columns[c].Keys!.Add(key); continue; }
                vectorGetters[c]!(ref vector);
                maxAbs = Math.Max(maxAbs, AddVector(columns[c], described[c].Name, described[c].Size, vector, rows, maxMagnitude));
            }
            if (floatLabel != null)
            {
                floatLabel(ref label);
                if (!float.IsFinite(label))
                    throw new InvalidOperationException($"Label column '{labelColumn}' has the value {label.ToString(CultureInfo.InvariantCulture)} at row {rows}; labels must be finite (filter such rows out, e.g. with mlContext.Data.FilterRowsByMissingValues).");
                labels!.Add(label);
            }
            else if (boolLabel != null) { boolLabel(ref flag); labels!.Add(flag ? 1f : 0f); }
            rows++;
        }
        return new ColumnPass(columns, labels, rows, maxAbs);
    }

    /// <summary>Checks one row's vector and appends its non-zeros to <paramref name="buffer"/>; returns its largest |x|.</summary>
    private static float AddVector(ColumnBuffer buffer, string name, int size, in VBuffer<float> vector, int row, float maxMagnitude)
    {
        if (vector.Length != size)
            throw new InvalidOperationException($"Feature column '{name}' has a vector of size {vector.Length} at row {row}; its type says {size}.");
        var v = vector.GetValues();
        var ix = vector.IsDense ? default : vector.GetIndices();
        int nonZeros = 0;
        float maxAbs = 0;
        for (int k = 0; k < v.Length; k++)
        {
            float x = v[k];
            if (!float.IsFinite(x))
                throw new InvalidOperationException($"Feature column '{name}' has the value {x.ToString(CultureInfo.InvariantCulture)} at row {row}, element {(vector.IsDense ? k : ix[k])}; feature values must be finite (replace missing values first, e.g. with mlContext.Transforms.ReplaceMissingValues).");
            float magnitude = Math.Abs(x);
            if (magnitude > maxMagnitude)
                throw new InvalidOperationException($"Feature column '{name}' has the value {x.ToString(CultureInfo.InvariantCulture)} at row {row}, element {(vector.IsDense ? k : ix[k])}; " +
                    $"feature values must lie within ±{maxMagnitude.ToString(CultureInfo.InvariantCulture)}, beyond which the pairwise products overflow float32 or swamp every other feature. " +
                    "Scale the column first, e.g. with mlContext.Transforms.NormalizeMeanVariance or NormalizeMinMax.");
            if (magnitude > maxAbs) maxAbs = magnitude;
            if (x == 0) continue;
            buffer.Positions!.Add(vector.IsDense ? k : ix[k]);
            buffer.Values!.Add(x);
            nonZeros++;
        }
        buffer.RowStarts!.Add(buffer.Positions!.Count);
        if (nonZeros > buffer.MaxNonZeros) buffer.MaxNonZeros = nonZeros;
        return maxAbs;
    }

    /// <summary>Job 2 (training data only): feature offsets and slots per column; a vector column gets as many slots as
    /// its densest row has non-zeros.</summary>
    private static FieldFeatureLayout InferLayout(List<(string Name, FieldColumnKind Kind, int Size, string[]? KeyValues)> described, ColumnBuffer[] columns)
    {
        var layoutColumns = new List<FieldColumn>();
        int offset = 1, slotStart = 0;
        for (int c = 0; c < described.Count; c++)
        {
            var (name, kind, size, kv) = described[c];
            int slots = kind == FieldColumnKind.Key ? 1 : Math.Max(1, columns[c].MaxNonZeros);
            layoutColumns.Add(new FieldColumn(name, kind, size, offset, slots, slotStart, kv));
            offset += size; slotStart += slots;
        }
        return new FieldFeatureLayout(layoutColumns);
    }

    /// <summary>Job 3: the [rows, slots] index and value arrays the network reads.</summary>
    private static FieldFeatureData Pack(FieldFeatureLayout layout, ColumnPass pass)
    {
        int rows = pass.Rows, f = layout.SlotCount;
        long total = (long)rows * f;
        if (total > Array.MaxLength)
            throw new InvalidOperationException($"{rows} rows × {f} feature slots exceed the {Array.MaxLength} elements of one array; train on fewer rows (or, for sparse vector columns, cap the non-zeros per row).");
        var indices = new int[total];
        var vals = new float[total];
        for (int c = 0; c < pass.Columns.Length; c++)
        {
            Fill(layout.Columns[c], pass.Columns[c], rows, f, indices, vals);
            pass.Columns[c] = null!; // release the column's buffers before the next is laid out
        }
        bool allOnes = total > 0 && vals.AsSpan().IndexOfAnyExcept(1f) < 0;
        return new FieldFeatureData(layout, rows, indices, vals, pass.Labels?.ToArray(), allOnes, pass.MaxAbs);
    }

    /// <summary>Writes one column's features into its slots of every row.</summary>
    private static void Fill(FieldColumn col, ColumnBuffer buffer, int rows, int f, int[] indices, float[] vals)
    {
        if (col.Kind == FieldColumnKind.Key)
        {
            var keys = buffer.Keys!.Items;
            for (int r = 0; r < rows; r++)
            {
                uint k = keys[r];
                if (k == 0 || k > col.Size) continue; // unknown value: padding feature, x = 0
                long at = (long)r * f + col.SlotStart;
                indices[at] = col.Offset + (int)k - 1;
                vals[at] = 1f;
            }
            return;
        }
        var starts = buffer.RowStarts!.Items;
        var pos = buffer.Positions!.Items;
        var v = buffer.Values!.Items;
        int[] chosen = Array.Empty<int>();
        IComparer<int>? byMagnitude = null;
        for (int r = 0; r < rows; r++)
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
            if (count <= col.Slots)
            {
                for (int k = s; k < e; k++)
                {
                    indices[baseIndex + k - s] = col.Offset + pos[k];
                    vals[baseIndex + k - s] = v[k];
                }
                continue;
            }
            // More non-zeros than any training row had: keep the largest magnitudes (ties: lower position), as the ONNX
            // graph does. A scratch array reused across rows; one comparer per column.
            if (chosen.Length < count) chosen = new int[Math.Max(count, chosen.Length * 2)];
            for (int k = 0; k < count; k++) chosen[k] = s + k;
            byMagnitude ??= Comparer<int>.Create((a, b) =>
            {
                int byValue = Math.Abs(v[b]).CompareTo(Math.Abs(v[a]));
                return byValue != 0 ? byValue : pos[a].CompareTo(pos[b]);
            });
            Array.Sort(chosen, 0, count, byMagnitude);
            for (int slot = 0; slot < col.Slots; slot++)
            {
                indices[baseIndex + slot] = col.Offset + pos[chosen[slot]];
                vals[baseIndex + slot] = v[chosen[slot]];
            }
        }
    }

    /// <summary>What one column collected during the cursor pass: keys, or a vector column in compressed rows.</summary>
    private sealed class ColumnBuffer
    {
        public ColumnBuffer(FieldColumnKind kind, int rows)
        {
            if (kind == FieldColumnKind.Key) { Keys = new Growable<uint>(rows); return; }
            RowStarts = new Growable<int>(rows + 1);
            RowStarts.Add(0);
            Positions = new Growable<int>(rows);
            Values = new Growable<float>(rows);
        }

        public Growable<uint>? Keys { get; }
        public Growable<int>? RowStarts { get; }
        public Growable<int>? Positions { get; }
        public Growable<float>? Values { get; }
        public int MaxNonZeros { get; set; }
    }

    /// <summary>An append-only array (a <see cref="List{T}"/> whose storage can be read without copying).</summary>
    private sealed class Growable<T> where T : struct
    {
        public Growable(int capacity) { Items = new T[Math.Max(4, capacity)]; }

        /// <summary>The storage; elements at Count and beyond are unused.</summary>
        public T[] Items { get; private set; }

        public int Count { get; private set; }

        public void Add(T item)
        {
            if (Count == Items.Length)
            {
                long size = Math.Min(2L * Items.Length, Array.MaxLength);
                if (size <= Count) throw new InvalidOperationException($"More than {Array.MaxLength} values in one feature column; train on fewer rows.");
                var larger = new T[size];
                Array.Copy(Items, larger, Count);
                Items = larger;
            }
            Items[Count++] = item;
        }

        public T[] ToArray() => Items.AsSpan(0, Count).ToArray();
    }
}
