using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Onnx;

namespace MLNet.DeepRec.Models;

/// <summary>How a feature column feeds a feature-interaction model.</summary>
internal enum FieldColumnKind
{
    /// <summary>A scalar <c>UInt32</c> key column (from <c>MapValueToKey</c>): one field, one active feature with x = 1.</summary>
    Key,
    /// <summary>A known-size <c>Vector&lt;Single&gt;</c> column: its non-zero elements are active features with x = value.</summary>
    Vector,
}

/// <summary>
/// One feature column. Its features occupy rows <see cref="Offset"/> .. <see cref="Offset"/> + <see cref="Size"/> − 1 of
/// the model's feature tables, and it contributes <see cref="Slots"/> (index, value) slots per row.
/// </summary>
/// <param name="Name">Column name.</param>
/// <param name="Kind">Key or vector.</param>
/// <param name="Size">Key cardinality or vector length.</param>
/// <param name="Offset">Global feature index of the column's first feature (index 0 is the shared padding feature).</param>
/// <param name="Slots">Active features per row: 1 for a key column; for a vector column the largest number of non-zeros
/// of a training row (all <see cref="Size"/> elements when that is the size: the dense case).</param>
/// <param name="SlotStart">Position of the column's first slot among all slots.</param>
/// <param name="KeyValues">Original values behind the keys (MapValueToKey's KeyValues annotation), for explanations.</param>
internal sealed record FieldColumn(string Name, FieldColumnKind Kind, int Size, int Offset, int Slots, int SlotStart, string[]? KeyValues)
{
    public bool Dense => Kind == FieldColumnKind.Vector && Slots == Size;

    /// <summary>Readable name of the column's feature at <paramref name="local"/> (0-based within the column).</summary>
    public string FeatureName(int local)
    {
        if (Kind == FieldColumnKind.Key)
        {
            string? v = KeyValues != null && local < KeyValues.Length ? KeyValues[local] : null;
            return v != null ? $"{Name}={v}" : $"{Name}=key {(local + 1).ToString(CultureInfo.InvariantCulture)}";
        }
        return $"{Name}[{local.ToString(CultureInfo.InvariantCulture)}]";
    }
}

/// <summary>
/// The fixed layout of a feature-interaction model's input: every row becomes <see cref="SlotCount"/> (global feature
/// index, value) pairs, whatever mix of key and vector columns feeds it. Index 0 is a padding feature whose value is
/// always 0, used for unknown keys and for empty slots, so it never contributes.
/// </summary>
internal sealed class FieldFeatureLayout
{
    public FieldFeatureLayout(IReadOnlyList<FieldColumn> columns)
    {
        Columns = columns;
        FeatureCount = 1 + columns.Sum(c => c.Size);
        SlotCount = columns.Sum(c => c.Slots);
    }

    public IReadOnlyList<FieldColumn> Columns { get; }

    /// <summary>Rows of the feature tables (1 padding row + every column's features).</summary>
    public int FeatureCount { get; }

    /// <summary>Active-feature slots per row (the models' F).</summary>
    public int SlotCount { get; }

    /// <summary>Column and 0-based local feature of a global feature index (null for the padding index 0).</summary>
    public (FieldColumn Column, int Local)? Locate(long globalIndex)
    {
        foreach (var c in Columns)
            if (globalIndex >= c.Offset && globalIndex < c.Offset + c.Size) return (c, (int)(globalIndex - c.Offset));
        return null;
    }

    public string FeatureName(long globalIndex) => Locate(globalIndex) is var (c, local) ? c.FeatureName(local) : "(none)";

    /// <summary>Checks the feature columns of <paramref name="schema"/>; returns (name, kind, size, key values) per column.</summary>
    public static List<(string Name, FieldColumnKind Kind, int Size, string[]? KeyValues)> Describe(DataViewSchema schema, IReadOnlyList<string> names)
    {
        var result = new List<(string, FieldColumnKind, int, string[]?)>();
        foreach (string name in names)
        {
            var col = schema.GetColumnOrNull(name) ?? throw new ArgumentException($"Feature column '{name}' was not found in the data.", nameof(names));
            var type = col.Type;
            if (type is KeyDataViewType key)
            {
                if (key.RawType != typeof(uint))
                    throw new ArgumentException($"Feature column '{name}' is a key of {key.RawType.Name}; only UInt32 keys (MapValueToKey's default) are supported.");
                if (key.Count == 0 || key.Count > int.MaxValue / 2)
                    throw new ArgumentException($"Feature column '{name}' is a key type of unknown or huge cardinality ({key.Count}).");
                result.Add((name, FieldColumnKind.Key, (int)key.Count, ReadKeyValues(col, (int)key.Count)));
            }
            else if (type is VectorDataViewType vector && vector.ItemType == NumberDataViewType.Single)
            {
                if (!vector.IsKnownSize)
                    throw new ArgumentException($"Feature column '{name}' is a vector of variable size; feature-interaction models need a known-size Vector<Single> " +
                        "(as ML.NET's FieldAwareFactorizationMachine does): declare the size, e.g. [VectorType(n)] on the property, or use OneHotEncoding.");
                result.Add((name, FieldColumnKind.Vector, vector.Size, null));
            }
            else
            {
                throw new ArgumentException($"Feature column '{name}' has type {type}; expected a UInt32 key column (MapValueToKey) or a known-size Vector<Single> (e.g. from OneHotEncoding or the libFM loader).");
            }
        }
        return result;
    }

    /// <summary>What <see cref="CheckSchema"/> says a mismatch is compared with, for data scored by a trained model.</summary>
    public const string TrainedOn = "the model was trained on";

    /// <summary>
    /// Checks that the feature columns of <paramref name="schema"/> have this layout's kinds and sizes (same key
    /// cardinality, same fixed vector size); the message names the column and the size it needs.
    /// </summary>
    /// <param name="schema">The data's schema.</param>
    /// <param name="expectedFrom">Completes "…, but {expectedFrom} a vector of size 3" (e.g. <see cref="TrainedOn"/>).</param>
    public void CheckSchema(DataViewSchema schema, string expectedFrom) =>
        CheckColumns(schema, Columns.Select(c => (c.Name, c.Kind, c.Size)).ToList(), expectedFrom);

    /// <summary>As <see cref="CheckSchema"/>, against a column list from <see cref="Describe"/>.</summary>
    public static void CheckColumns(DataViewSchema schema, IReadOnlyList<(string Name, FieldColumnKind Kind, int Size)> expected, string expectedFrom)
    {
        // A variable-size vector is caught here with the size it must have; ML.NET's own error for it comes from deep
        // inside a cursor ("Splitter/consolidator worker … Index was out of range").
        foreach (var (name, kind, size) in expected)
        {
            if (kind == FieldColumnKind.Vector && schema.GetColumnOrNull(name) is { Type: VectorDataViewType { IsKnownSize: false } variable })
                throw new ArgumentException($"Feature column '{name}' is a variable-size vector ({variable}), but {expectedFrom} a Vector<Single> of fixed size {size}: " +
                    $"declare the size (e.g. [VectorType({size})] on the property) and transform the data as the training data was.");
        }
        var described = Describe(schema, expected.Select(e => e.Name).ToList());
        for (int c = 0; c < described.Count; c++)
        {
            var (name, kind, size, _) = described[c];
            if (kind != expected[c].Kind || size != expected[c].Size)
                throw new ArgumentException($"Feature column '{name}' is {Text(kind, size)} here, but {expectedFrom} {Text(expected[c].Kind, expected[c].Size)}. " +
                    "Transform every data set with the same fitted MapValueToKey/OneHotEncoding (or the same libFM field layout).");
        }
    }

    private static string Text(FieldColumnKind kind, int size) => kind == FieldColumnKind.Key ? $"a key of cardinality {size}" : $"a vector of size {size}";

    private static string[]? ReadKeyValues(DataViewSchema.Column column, int count)
    {
        if (column.Annotations.Schema.GetColumnOrNull("KeyValues") is not { } kv) return null;
        if (kv.Type is not VectorDataViewType { ItemType: TextDataViewType }) return null;
        VBuffer<ReadOnlyMemory<char>> values = default;
        column.GetKeyValues(ref values);
        var dense = values.DenseValues().Select(v => v.ToString()).ToArray();
        return dense.Length >= count ? dense : null;
    }

    // ---------------- ONNX input side ----------------

    /// <summary>
    /// Declares one ONNX input per column (named as the column: key columns uint32 [-1,1], vector columns float
    /// [-1,D]) and builds the int64 [N,F] index and float [N,F] value tensors the module's graph consumes, exactly as
    /// <see cref="FieldFeatureReader"/> does: unknown keys (0 or beyond the trained cardinality) become the padding
    /// feature with x = 0; a sparse vector keeps its <c>Slots</c> largest-magnitude elements.
    /// </summary>
    public (string Indices, string Values) BuildOnnxInputs(OnnxGraphBuilder g)
    {
        var indexParts = new List<string>();
        var valueParts = new List<string>();
        foreach (var c in Columns)
        {
            if (c.Kind == FieldColumnKind.Key)
            {
                g.AddInput(c.Name, OnnxElementType.UInt32, -1, 1);
                string keys = g.Cast(c.Name, OnnxElementType.Int64); // [N,1]
                string known = g.And(g.Greater(keys, g.ConstInt64(new long[] { 0 })), g.Not(g.Greater(keys, g.ConstInt64(new long[] { c.Size }))));
                string global = g.Add(keys, g.ConstInt64(new long[] { c.Offset - 1 }));
                indexParts.Add(g.Where(known, global, g.ConstInt64(new long[] { 0 })));
                valueParts.Add(g.Cast(known, OnnxElementType.Float));
            }
            else
            {
                g.AddInput(c.Name, OnnxElementType.Float, -1, c.Size);
                if (c.Dense)
                {
                    valueParts.Add(c.Name);
                    var positions = Enumerable.Range(c.Offset, c.Size).Select(i => (long)i).ToArray();
                    string row = g.ConstInt64(positions, 1, c.Size);
                    indexParts.Add(g.Node("Expand", new[] { row, g.Node("Shape", new[] { c.Name }) }));
                }
                else
                {
                    var (_, pos) = g.TopK(g.Node("Abs", new[] { c.Name }), c.Slots, axis: 1);
                    valueParts.Add(g.Node("GatherElements", new[] { c.Name, pos }, new[] { OnnxAttribute.Int("axis", 1) }));
                    indexParts.Add(g.Add(pos, g.ConstInt64(new long[] { c.Offset })));
                }
            }
        }
        string indices = indexParts.Count == 1 ? indexParts[0] : g.Concat(1, indexParts.ToArray());
        string values = valueParts.Count == 1 ? valueParts[0] : g.Concat(1, valueParts.ToArray());
        return (indices, values);
    }
}
