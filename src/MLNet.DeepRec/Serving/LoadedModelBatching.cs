using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Onnx;

namespace MLNet.DeepRec.Serving;

/// <summary>
/// Gives a model loaded by <see cref="DeepRecServing.LoadModel(MLContext, string, out DataViewSchema)"/> batched scoring:
/// in every (nested) <see cref="TransformerChain{TLastTransformer}"/> of the model, each [ML.NET OnnxTransformer → DeepRec
/// score mapping] pair is replaced by two elements that wrap the same two transformers. The chains keep their structure,
/// so the model saves exactly as before (each wrapper saves its transformer) and maps rows exactly as before (each wrapper
/// hands out its transformer's row-to-row mapper, which PredictionEngine uses); only <c>Transform</c> of a data view
/// changes: the pair's output is computed by a <see cref="BatchedOnnxScorer"/>.
/// </summary>
internal static class LoadedModelBatching
{
    /// <summary>The model with its DeepRec scoring pairs batched, or <paramref name="model"/> itself when it has none.</summary>
    public static ITransformer Wrap(MLContext mlContext, ITransformer model)
    {
        if (model is not TransformerChain<ITransformer> chain) return model;
        ITransformer[] elements = chain.ToArray();
        bool changed = false;
        for (int i = 0; i < elements.Length; i++)
        {
            ITransformer wrapped = Wrap(mlContext, elements[i]);
            if (!ReferenceEquals(wrapped, elements[i])) { elements[i] = wrapped; changed = true; }
        }
        for (int i = 0; i + 1 < elements.Length; i++)
        {
            if (!BatchedOnnxScorer.IsScoringPair(elements[i], elements[i + 1])) continue;
            var onnx = (Microsoft.ML.Transforms.Onnx.OnnxTransformer)elements[i];
            byte[]? bytes = OnnxBytes(mlContext, onnx);
            if (bytes is null) continue;
            OnnxModelSummary summary = OnnxModelInspector.Read(bytes);
            var scorer = new BatchedOnnxScorer(mlContext, onnx, elements[i + 1], summary, () =>
            {
                byte[] model = bytes ?? OnnxBytes(mlContext, onnx) ?? throw new InvalidOperationException("The ONNX model could not be read back from its transformer.");
                bytes = null; // ONNX Runtime holds the model from here on
                return model;
            });
            elements[i] = new OnnxElement(onnx, scorer);
            elements[i + 1] = new MappingElement(elements[i + 1], scorer);
            changed = true;
            i++;
        }
        return changed ? new TransformerChain<ITransformer>(elements, Scopes(chain)) : model;
    }

    /// <summary>Each element's scope, read back through <see cref="TransformerChain{TLastTransformer}.GetModelFor"/>
    /// (the chain keeps them private), so that the rebuilt chain transforms with the same elements.</summary>
    private static TransformerScope[] Scopes(TransformerChain<ITransformer> chain)
    {
        ITransformer[] elements = chain.ToArray();
        var scopes = new TransformerScope[elements.Length];
        foreach (TransformerScope flag in new[] { TransformerScope.Training, TransformerScope.Testing, TransformerScope.Scoring })
        {
            var members = new HashSet<ITransformer>(chain.GetModelFor(flag), ReferenceEqualityComparer.Instance);
            for (int i = 0; i < elements.Length; i++)
                if (members.Contains(elements[i])) scopes[i] |= flag;
        }
        return scopes;
    }

    /// <summary>The ONNX model an OnnxTransformer holds, read back through ML.NET's own save (public API only).</summary>
    private static byte[]? OnnxBytes(MLContext mlContext, ITransformer onnx)
    {
        using var stream = new MemoryStream();
        mlContext.Model.Save(onnx, null, stream);
        stream.Position = 0;
        using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
        foreach (ZipArchiveEntry entry in zip.Entries)
        {
            if (!string.Equals(Path.GetFileName(ModelZipInspector.Normalize(entry.FullName)), ModelZipInspector.OnnxEntryName, StringComparison.OrdinalIgnoreCase))
                continue;
            using var reader = new BinaryReader(entry.Open());
            int length = reader.ReadInt32();
            byte[] bytes = reader.ReadBytes(length);
            return bytes.Length == length ? bytes : null;
        }
        return null;
    }

    /// <summary>Stands for the OnnxTransformer: saves and maps rows as it does; its <c>Transform</c> view is recognised by
    /// the following <see cref="MappingElement"/>, which then scores the pair in batches.</summary>
    private sealed class OnnxElement(ITransformer onnx, BatchedOnnxScorer scorer) : ITransformer, ICanSaveModel, IDisposable
    {
        public BatchedOnnxScorer Scorer => scorer;

        public bool IsRowToRowMapper => onnx.IsRowToRowMapper;

        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => onnx.GetOutputSchema(inputSchema);

        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => onnx.GetRowToRowMapper(inputSchema);

        public IDataView Transform(IDataView input) => new PendingView(onnx.Transform(input), input, scorer);

        void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)onnx).Save(ctx);

        public void Dispose()
        {
            scorer.Dispose();
            (onnx as IDisposable)?.Dispose();
        }
    }

    /// <summary>Stands for the score mapping after an <see cref="OnnxElement"/>.</summary>
    private sealed class MappingElement(ITransformer mapping, BatchedOnnxScorer scorer) : ITransformer, ICanSaveModel
    {
        public bool IsRowToRowMapper => mapping.IsRowToRowMapper;

        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => mapping.GetOutputSchema(inputSchema);

        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => mapping.GetRowToRowMapper(inputSchema);

        public IDataView Transform(IDataView input) =>
            input is PendingView pending && ReferenceEquals(pending.Scorer, scorer)
                ? scorer.Transform(pending.Input)
                : mapping.Transform(input);

        void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)mapping).Save(ctx);
    }

    /// <summary>The OnnxTransformer's own (row-by-row) view, remembering its input for the batched scorer.</summary>
    private sealed class PendingView(IDataView onnxView, IDataView input, BatchedOnnxScorer scorer) : IDataView
    {
        public IDataView Input => input;

        public BatchedOnnxScorer Scorer => scorer;

        public bool CanShuffle => onnxView.CanShuffle;

        public DataViewSchema Schema => onnxView.Schema;

        public long? GetRowCount() => onnxView.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
            onnxView.GetRowCursor(columnsNeeded, rand);

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            onnxView.GetRowCursorSet(columnsNeeded, n, rand);
    }
}
