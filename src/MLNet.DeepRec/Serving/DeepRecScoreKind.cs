namespace MLNet.DeepRec.Serving;

/// <summary>Which scalar output columns a DeepRec transformer produces from its ONNX graph.</summary>
public enum DeepRecScoreKind
{
    /// <summary><c>Score</c> (float, higher is more relevant) and <c>Probability</c> (float). The ONNX graph outputs <c>Score</c> and <c>Probability</c>.</summary>
    Ranking,

    /// <summary><c>Score</c> (float, the predicted value). The ONNX graph outputs <c>Score</c>.</summary>
    Regression,

    /// <summary>
    /// <c>Score</c> (float), <c>Probability</c> (float) and <c>PredictedLabel</c> (bool, <c>Probability &gt; 0.5</c>), the
    /// columns ML.NET's binary-classification evaluator expects. The ONNX graph outputs <c>Score</c> and <c>Probability</c>.
    /// </summary>
    BinaryClassification,
}
