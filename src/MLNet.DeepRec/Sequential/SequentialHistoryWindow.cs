using System.ComponentModel;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace MLNet.DeepRec.Trainers;

// ML.NET's OnnxTransformer feeds every vector input with the fixed shape declared by the graph (a variable
// dimension is fed as 1, silently dropping the rest of a variable-length vector; verified with ML.NET 5.0.1). So the
// variable-length history column is first turned into a fixed window of the most recent items by this stateless,
// registered custom mapping (saved by contract name), and the ONNX graph takes that [-1, Width] window.

/// <summary>Input of <see cref="SequentialHistoryWindowMapping"/>: the history as raw item keys. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class SequentialHistoryWindowInput
{
    /// <summary>The history (item keys, oldest first), any length.</summary>
    [ColumnName(SequentialHistoryWindowMapping.InputColumn)]
    public VBuffer<uint> History;
}

/// <summary>Output of <see cref="SequentialHistoryWindowMapping"/>: the last items, right-aligned. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class SequentialHistoryWindowOutput
{
    /// <summary>The most recent <see cref="SequentialHistoryWindowMapping.Width"/> item keys, left-padded with 0.</summary>
    [ColumnName(SequentialHistoryWindowMapping.OutputColumn), VectorType(SequentialHistoryWindowMapping.Width)]
    public uint[] Window = new uint[SequentialHistoryWindowMapping.Width];
}

/// <summary>Registered mapping: variable-length history → fixed window of its most recent items. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[CustomMappingFactoryAttribute(ContractName)]
public sealed class SequentialHistoryWindowMapping : CustomMappingFactory<SequentialHistoryWindowInput, SequentialHistoryWindowOutput>
{
    /// <summary>Contract name saved in the model zip (SASRec's name from before the sequential family; kept so that
    /// saved models load).</summary>
    public const string ContractName = "MLNet.DeepRec.SasRec.HistoryWindow";

    /// <summary>Window width: the longest history suffix the ONNX graph sees (MaxLength can be at most this).</summary>
    public const int Width = 1024;

    internal const string InputColumn = "DeepRecSasRecHistoryKeys";
    internal const string OutputColumn = "DeepRecSequentialHistoryWindow";

    /// <summary>The mapping.</summary>
    public static void Map(SequentialHistoryWindowInput input, SequentialHistoryWindowOutput output)
    {
        if (output.Window is null || output.Window.Length != Width) output.Window = new uint[Width];
        var window = output.Window.AsSpan();
        window.Clear();
        int length = input.History.Length;
        int take = Math.Min(length, Width);
        if (input.History.IsDense)
        {
            input.History.GetValues()[(length - take)..].CopyTo(window[(Width - take)..]);
        }
        else
        {
            var dense = input.History.DenseValues().Skip(length - take).ToArray();
            dense.CopyTo(window[(Width - take)..]);
        }
    }

    /// <inheritdoc/>
    public override Action<SequentialHistoryWindowInput, SequentialHistoryWindowOutput> GetMapping() => Map;
}
