using Microsoft.ML;
using Microsoft.ML.Data;

namespace ServeSavedModel;

/// <summary>
/// A <see cref="PredictionEngine{TSrc, TDst}"/> over a loaded model whose user/item id columns are text (the usual case:
/// the saved chain starts with <c>MapValueToKey</c> over the raw ids). The column names are configurable because the
/// input class's property names must match the model's input schema.
/// </summary>
internal sealed class PairScorer : IDisposable
{
    private readonly PredictionEngine<PairInput, PairOutput> _engine;
    private readonly PairInput _input = new();
    private readonly PairOutput _output = new();

    private PairScorer(PredictionEngine<PairInput, PairOutput> engine) => _engine = engine;

    public static PairScorer Create(MLContext mlContext, ITransformer model, string userIdColumnName, string itemIdColumnName)
    {
        // Map the POCO's fixed property names onto the model's column names.
        var inputDefinition = SchemaDefinition.Create(typeof(PairInput));
        inputDefinition[nameof(PairInput.User)].ColumnName = userIdColumnName;
        inputDefinition[nameof(PairInput.Item)].ColumnName = itemIdColumnName;
        return new PairScorer(mlContext.Model.CreatePredictionEngine<PairInput, PairOutput>(model, inputSchemaDefinition: inputDefinition));
    }

    public (float Score, float Probability) Predict(string user, string item)
    {
        _input.User = user;
        _input.Item = item;
        PairOutput output = _output;
        _engine.Predict(_input, ref output);
        return (output.Score, output.Probability);
    }

    public void Dispose() => _engine.Dispose();

    public sealed class PairInput
    {
        public string User { get; set; } = "";
        public string Item { get; set; } = "";
    }

    public sealed class PairOutput
    {
        public float Score { get; set; }
        public float Probability { get; set; }
    }
}
