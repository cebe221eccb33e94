using System.ComponentModel;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace MLNet.DeepRec.Serving;

// The ONNX outputs reach ML.NET as 1-element vectors (OnnxTransformer's outputs are always vectors: a rank-0 ONNX
// output is typed as a scalar column but its getter fails in ML.NET 5.0.1). These stateless, registered custom
// mappings turn them into the scalar columns evaluators and PredictionEngine expect. They are public only because
// ML.NET's CustomMapping and ComponentCatalog need public types; they are not meant to be used directly.

/// <summary>Input row of the DeepRec score mappings: the ONNX <c>Score</c> output (a 1-element vector). Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class DeepRecVectorScore
{
    /// <summary>The ONNX <c>Score</c> output.</summary>
    [ColumnName(DeepRecColumns.Score)]
    public VBuffer<float> Score;
}

/// <summary>Input row with the ONNX <c>Score</c> and <c>Probability</c> outputs (1-element vectors). Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class DeepRecVectorScoreProbability
{
    /// <summary>The ONNX <c>Score</c> output.</summary>
    [ColumnName(DeepRecColumns.Score)]
    public VBuffer<float> Score;

    /// <summary>The ONNX <c>Probability</c> output.</summary>
    [ColumnName(DeepRecColumns.Probability)]
    public VBuffer<float> Probability;
}

/// <summary>Output row of <see cref="DeepRecRegressionMapping"/>. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class DeepRecScalarScore
{
    /// <summary>The scalar score.</summary>
    public float Score;
}

/// <summary>Output row of <see cref="DeepRecRankingMapping"/>. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class DeepRecScalarScoreProbability
{
    /// <summary>The scalar score.</summary>
    public float Score;

    /// <summary>The scalar probability.</summary>
    public float Probability;
}

/// <summary>Output row of <see cref="DeepRecBinaryClassificationMapping"/>. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class DeepRecScalarBinary
{
    /// <summary>The scalar score (logit).</summary>
    public float Score;

    /// <summary>The scalar probability.</summary>
    public float Probability;

    /// <summary><c>Probability &gt; 0.5</c>.</summary>
    public bool PredictedLabel;
}

/// <summary>Registered mapping for <see cref="DeepRecScoreKind.Regression"/>. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[CustomMappingFactoryAttribute(ContractName)]
public sealed class DeepRecRegressionMapping : CustomMappingFactory<DeepRecVectorScore, DeepRecScalarScore>
{
    /// <summary>Contract name saved in the model zip.</summary>
    public const string ContractName = "MLNet.DeepRec.Score.Regression";

    /// <summary>The mapping.</summary>
    public static void Map(DeepRecVectorScore input, DeepRecScalarScore output) => output.Score = First(input.Score);

    /// <inheritdoc/>
    public override Action<DeepRecVectorScore, DeepRecScalarScore> GetMapping() => Map;

    internal static float First(VBuffer<float> vector) => vector.Length == 0 ? float.NaN : vector.GetItemOrDefault(0);
}

/// <summary>Registered mapping for <see cref="DeepRecScoreKind.Ranking"/>. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[CustomMappingFactoryAttribute(ContractName)]
public sealed class DeepRecRankingMapping : CustomMappingFactory<DeepRecVectorScoreProbability, DeepRecScalarScoreProbability>
{
    /// <summary>Contract name saved in the model zip.</summary>
    public const string ContractName = "MLNet.DeepRec.Score.Ranking";

    /// <summary>The mapping.</summary>
    public static void Map(DeepRecVectorScoreProbability input, DeepRecScalarScoreProbability output)
    {
        output.Score = DeepRecRegressionMapping.First(input.Score);
        output.Probability = DeepRecRegressionMapping.First(input.Probability);
    }

    /// <inheritdoc/>
    public override Action<DeepRecVectorScoreProbability, DeepRecScalarScoreProbability> GetMapping() => Map;
}

/// <summary>Registered mapping for <see cref="DeepRecScoreKind.BinaryClassification"/>. Infrastructure.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[CustomMappingFactoryAttribute(ContractName)]
public sealed class DeepRecBinaryClassificationMapping : CustomMappingFactory<DeepRecVectorScoreProbability, DeepRecScalarBinary>
{
    /// <summary>Contract name saved in the model zip.</summary>
    public const string ContractName = "MLNet.DeepRec.Score.BinaryClassification";

    /// <summary>The mapping.</summary>
    public static void Map(DeepRecVectorScoreProbability input, DeepRecScalarBinary output)
    {
        output.Score = DeepRecRegressionMapping.First(input.Score);
        output.Probability = DeepRecRegressionMapping.First(input.Probability);
        output.PredictedLabel = output.Probability > 0.5f;
    }

    /// <inheritdoc/>
    public override Action<DeepRecVectorScoreProbability, DeepRecScalarBinary> GetMapping() => Map;
}

/// <summary>Column names of the ONNX serving contract.</summary>
internal static class DeepRecColumns
{
    public const string Score = "Score";
    public const string Probability = "Probability";
    public const string PredictedLabel = "PredictedLabel";
}
