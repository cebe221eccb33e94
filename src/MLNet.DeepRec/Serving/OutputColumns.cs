using Microsoft.ML;

namespace MLNet.DeepRec.Serving;

/// <summary>The output columns an estimator announces in <c>GetOutputSchema</c>, for each <see cref="DeepRecScoreKind"/>.</summary>
internal static class OutputColumns
{
    /// <summary><paramref name="input"/> plus the score columns of <paramref name="kind"/>.</summary>
    internal static SchemaShape Append(MLContext mlContext, SchemaShape input, DeepRecScoreKind kind) =>
        // SchemaShape.Column has no public constructor: an (unsaved) custom-mapping estimator whose output type has the
        // score columns describes them through ML.NET's own code.
        kind switch
        {
            DeepRecScoreKind.Regression => mlContext.Transforms.CustomMapping<NoColumns, RegressionOutput>(static (_, _) => { }, contractName: null).GetOutputSchema(input),
            DeepRecScoreKind.Ranking => mlContext.Transforms.CustomMapping<NoColumns, RankingOutput>(static (_, _) => { }, contractName: null).GetOutputSchema(input),
            _ => mlContext.Transforms.CustomMapping<NoColumns, BinaryOutput>(static (_, _) => { }, contractName: null).GetOutputSchema(input),
        };

    private sealed class NoColumns { }

    private sealed class RegressionOutput
    {
        public float Score { get; set; }
    }

    private sealed class RankingOutput
    {
        public float Score { get; set; }
        public float Probability { get; set; }
    }

    private sealed class BinaryOutput
    {
        public float Score { get; set; }
        public float Probability { get; set; }
        public bool PredictedLabel { get; set; }
    }
}
