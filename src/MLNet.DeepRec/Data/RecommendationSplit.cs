using Microsoft.ML;

namespace MLNet.DeepRec.Data;

/// <summary>
/// The result of a recommendation splitter: three views over the rows of the input, each with the input's schema
/// unchanged (same columns, types, key types and annotations). Every input row is in exactly one of them.
/// </summary>
public sealed class RecommendationSplit
{
    internal RecommendationSplit(IDataView train, IDataView test, IDataView? validation)
    {
        Train = train; Test = test; Validation = validation;
    }

    /// <summary>Training rows.</summary>
    public IDataView Train { get; }

    /// <summary>Test rows (held out).</summary>
    public IDataView Test { get; }

    /// <summary>Validation rows, or null when the split was asked for no validation set.</summary>
    public IDataView? Validation { get; }
}
