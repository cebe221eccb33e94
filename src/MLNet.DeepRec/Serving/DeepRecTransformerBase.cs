using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Onnx;

namespace MLNet.DeepRec.Serving;

/// <summary>
/// Base of every DeepRec transformer: scores rows with the model's ONNX graph through ML.NET's own
/// <c>OnnxTransformer</c>, followed by a registered custom mapping that turns the ONNX vector outputs into scalar
/// <c>Score</c> / <c>Probability</c> / <c>PredictedLabel</c> columns.
/// </summary>
/// <remarks>
/// <para>
/// Everything is forwarded to that inner ML.NET <see cref="TransformerChain{TLastTransformer}"/>, including saving:
/// <c>mlContext.Model.Save</c> writes the inner chain, so <c>mlContext.Model.Load</c> returns it (a
/// <see cref="TransformerChain{TLastTransformer}"/>, not this type) and scores with ONNX Runtime alone. Call
/// <see cref="DeepRecServing.RegisterForLoading"/> on the loading <see cref="MLContext"/> first.
/// </para>
/// <para>
/// ONNX graph contract: every graph input is fed from one column (key-typed columns arrive as <c>uint32</c>;
/// declare them <c>[-1,1]</c>, or <c>[-1,L]</c> for a key vector of length L; key 0 means unknown). Outputs are
/// <c>Score</c> (and <c>Probability</c> for <see cref="DeepRecScoreKind.Ranking"/> and
/// <see cref="DeepRecScoreKind.BinaryClassification"/>), float <c>[-1,1]</c>. ML.NET feeds one row per call.
/// Input columns are kept in the output; <see cref="MLContext.GpuDeviceId"/> and <see cref="MLContext.FallbackToCpu"/>
/// pick the ONNX Runtime device.
/// </para>
/// </remarks>
public abstract class DeepRecTransformerBase : ITransformer, ICanSaveModel, IDisposable
{
    private readonly byte[] _onnxModel;
    private readonly string _onnxFile;
    private readonly TransformerChain<ITransformer> _inner;

    /// <summary>Builds the inner ML.NET chain over <paramref name="onnxModel"/>.</summary>
    /// <param name="mlContext">The ML.NET context (its GPU settings choose the ONNX Runtime device).</param>
    /// <param name="onnxModel">The serialized ONNX <c>ModelProto</c>; checked before ONNX Runtime sees it, and copied
    /// (so the caller may reuse the array).</param>
    /// <param name="onnxInputToColumn">For each ONNX graph input, the data column that feeds it.</param>
    /// <param name="kind">Which scalar columns to produce.</param>
    /// <param name="schemaSource">Data whose schema the chain is fitted on (the training data); when null, a schema
    /// is derived from the ONNX signature (uint32 inputs become key columns).</param>
    /// <exception cref="InvalidDataException">The ONNX bytes are truncated or corrupt, hold a graph MLNet.DeepRec does not
    /// write (see <see cref="DeepRecServing.LoadModel(MLContext, string, out DataViewSchema)"/>), or ONNX Runtime rejects them.</exception>
    /// <exception cref="ArgumentException">The mapping or the graph outputs do not match the contract.</exception>
    protected DeepRecTransformerBase(MLContext mlContext, byte[] onnxModel, IReadOnlyDictionary<string, string> onnxInputToColumn,
        DeepRecScoreKind kind, IDataView? schemaSource)
        : this(mlContext, onnxModel, onnxInputToColumn, kind, schemaSource, null)
    {
    }

    /// <summary>Builds the inner ML.NET chain over <paramref name="onnxModel"/>, also keeping further ONNX outputs.</summary>
    /// <param name="mlContext">The ML.NET context (its GPU settings choose the ONNX Runtime device).</param>
    /// <param name="onnxModel">The serialized ONNX <c>ModelProto</c>; checked before ONNX Runtime sees it, and copied
    /// (so the caller may reuse the array).</param>
    /// <param name="onnxInputToColumn">For each ONNX graph input, the data column that feeds it.</param>
    /// <param name="kind">Which scalar columns to produce.</param>
    /// <param name="schemaSource">Data whose schema the chain is fitted on; when null, a schema is derived from the ONNX
    /// signature (uint32 inputs become key columns).</param>
    /// <param name="additionalOutputs">Further ONNX outputs passed through unchanged as ML.NET vector columns of the same
    /// name (e.g. a top-K list); null or empty for none.</param>
    protected DeepRecTransformerBase(MLContext mlContext, byte[] onnxModel, IReadOnlyDictionary<string, string> onnxInputToColumn,
        DeepRecScoreKind kind, IDataView? schemaSource, IReadOnlyList<string>? additionalOutputs)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(onnxModel);
        ArgumentNullException.ThrowIfNull(onnxInputToColumn);

        OnnxModelSummary summary = OnnxModelInspector.Read(onnxModel);
        Validate(summary, onnxInputToColumn, kind);
        string[] extra = additionalOutputs?.ToArray() ?? [];
        foreach (string name in extra)
        {
            if (!summary.OutputNames.Contains(name))
                throw new ArgumentException($"Additional output '{name}' is not an output of the ONNX graph; it outputs [{string.Join(", ", summary.OutputNames)}].", nameof(additionalOutputs));
        }
        // Kept for OnnxModel and ExportOnnx and never changed. A model that the library has just built is taken as it
        // is: no one else holds it, and a defensive copy would be one more model-sized array while ONNX Runtime loads.
        _onnxModel = OnnxGraphBuilder.TakeBuiltModel(onnxModel) ? onnxModel : (byte[])onnxModel.Clone();
        MLContext = mlContext;
        ScoreKind = kind;
        IDataView source = schemaSource ?? new EmptyDataView(SchemaFromSignature(summary, onnxInputToColumn));
        // ONNX Runtime reads the model from a file. Given a stream, ML.NET copies it to a temporary file that nothing
        // ever deletes (OnnxModel.CreateFromStream does not own its copy); so this transformer writes and owns that file,
        // deleting it when disposed or when the chain cannot be built. ML.NET reads it back when the chain is saved.
        _onnxFile = Path.Combine(mlContext.TempFilePath, $"deeprec-{Guid.NewGuid():N}.onnx");
        try
        {
            File.WriteAllBytes(_onnxFile, _onnxModel);
            _inner = BuildChain(mlContext, _onnxFile, summary, onnxInputToColumn, kind, source, extra);
        }
        catch (Exception e)
        {
            DeleteOnnxFile();
            if (OnnxRuntimeCause(e) is Exception cause)
                throw new InvalidDataException($"ONNX Runtime could not load the ONNX model ({_onnxModel.Length:N0} bytes): {cause.Message}", e);
            throw;
        }
    }

    /// <summary>The ONNX Runtime error under ML.NET's wrappers (it reports a rejected model as InvalidOperationException).</summary>
    private static Exception? OnnxRuntimeCause(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is Microsoft.ML.OnnxRuntime.OnnxRuntimeException) return x;
        return null;
    }

    private void DeleteOnnxFile()
    {
        try { File.Delete(_onnxFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>The ML.NET context this transformer was built with.</summary>
    protected MLContext MLContext { get; }

    /// <summary>Which scalar columns this transformer produces.</summary>
    public DeepRecScoreKind ScoreKind { get; }

    /// <summary>A copy of the serialized ONNX model this transformer scores with.</summary>
    public byte[] OnnxModel => (byte[])_onnxModel.Clone();

    /// <summary>The inner ML.NET chain (what <c>mlContext.Model.Save</c> writes and <c>Load</c> returns).</summary>
    public TransformerChain<ITransformer> InnerChain => _inner;

    /// <summary>Writes the ONNX model to <paramref name="path"/> (for ONNX Runtime, Netron, other languages).</summary>
    public void ExportOnnx(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        File.WriteAllBytes(path, _onnxModel);
    }

    /// <inheritdoc/>
    public bool IsRowToRowMapper => ((ITransformer)_inner).IsRowToRowMapper;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _inner.GetOutputSchema(inputSchema);

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => ((ITransformer)_inner).GetRowToRowMapper(inputSchema);

    /// <inheritdoc/>
    public IDataView Transform(IDataView input) => _inner.Transform(input);

    /// <summary>Saves the inner ML.NET chain: loading the result gives that chain back.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)_inner).Save(ctx);

    /// <summary>Releases the ONNX Runtime session held by the inner chain and deletes the temporary copy of the ONNX model
    /// it was read from (in <see cref="MLContext.TempFilePath"/>).</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases resources; derived transformers release their own (e.g. a TorchSharp network) and call the base.</summary>
    /// <param name="disposing">True when called from <see cref="Dispose()"/>.</param>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            DeleteOnnxFile();
        }
    }

    /// <summary>
    /// ML.NET's OnnxTransformer with the context's GPU choice. ML.NET only falls back to the CPU on the errors it
    /// expects; the CPU build of ONNX Runtime has no CUDA entry point at all (EntryPointNotFoundException), so that
    /// case is handled here the way <see cref="MLContext.FallbackToCpu"/> promises.
    /// </summary>
    private static IEstimator<ITransformer> ApplyOnnxModel(MLContext ml, string[] outputs, string[] inputs, string modelFile)
    {
        try
        {
            return ml.Transforms.ApplyOnnxModel(outputs, inputs, modelFile, gpuDeviceId: ml.GpuDeviceId, fallbackToCpu: ml.FallbackToCpu);
        }
        catch (Exception e) when (ml.GpuDeviceId != null && ml.FallbackToCpu && e is EntryPointNotFoundException or DllNotFoundException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            var host = ((Microsoft.ML.Runtime.IHostEnvironment)ml).Register("DeepRecServing");
            using var ch = host.Start("ONNX Runtime");
            ch.Warning(Microsoft.ML.Runtime.MessageSensitivity.None, "{0}",
                $"MLContext.GpuDeviceId = {ml.GpuDeviceId} but ONNX Runtime cannot use CUDA here ({e.GetType().Name}: {e.Message}); scoring on the CPU because MLContext.FallbackToCpu is true. Reference Microsoft.ML.OnnxRuntime.Gpu to score on a GPU.");
            // ML.NET substitutes the context's own GpuDeviceId for a null argument, so the CPU session is made through a
            // context that asks for no GPU.
            var cpuContext = new MLContext();
            return cpuContext.Transforms.ApplyOnnxModel(outputs, inputs, modelFile, gpuDeviceId: null, fallbackToCpu: true);
        }
    }

    private static void Validate(OnnxModelSummary summary, IReadOnlyDictionary<string, string> map, DeepRecScoreKind kind)
    {
        foreach (OnnxValueSummary input in summary.Inputs)
        {
            if (!map.TryGetValue(input.Name, out string? column) || string.IsNullOrWhiteSpace(column))
                throw new ArgumentException($"ONNX input '{input.Name}' has no column in the input-to-column map.", nameof(map));
        }
        foreach (string name in map.Keys)
        {
            if (!summary.InputNames.Contains(name))
                throw new ArgumentException($"The input-to-column map names '{name}', which is not an input of the ONNX graph.", nameof(map));
        }

        string[] required = kind == DeepRecScoreKind.Regression
            ? [DeepRecColumns.Score]
            : [DeepRecColumns.Score, DeepRecColumns.Probability];
        foreach (string name in required)
        {
            OnnxValueSummary? output = summary.Outputs.FirstOrDefault(o => o.Name == name);
            if (output is null)
                throw new ArgumentException($"A {kind} DeepRec graph must output '{name}'; it outputs [{string.Join(", ", summary.OutputNames)}].");
            if (output.ElementType != OnnxElementType.Float)
                throw new ArgumentException($"ONNX output '{name}' must be float, not {output.ElementType}.");
            if (output.HasShape && output.Dims.Count(d => d != 1 && d != -1) > 0)
                throw new ArgumentException($"ONNX output '{name}' must hold one value per row ([-1,1]); it is [{string.Join(",", output.Dims)}].");
        }
    }

    private static DataViewSchema SchemaFromSignature(OnnxModelSummary summary, IReadOnlyDictionary<string, string> map)
    {
        var builder = new DataViewSchema.Builder();
        foreach (OnnxValueSummary input in summary.Inputs)
        {
            PrimitiveDataViewType item = input.ElementType switch
            {
                OnnxElementType.UInt32 => new KeyDataViewType(typeof(uint), uint.MaxValue),
                OnnxElementType.Float => NumberDataViewType.Single,
                OnnxElementType.Int64 => NumberDataViewType.Int64,
                OnnxElementType.Int32 => NumberDataViewType.Int32,
                OnnxElementType.Bool => BooleanDataViewType.Instance,
                _ => throw new ArgumentException($"ONNX input '{input.Name}' has unsupported element type {(int)input.ElementType}."),
            };
            // Everything after the batch axis is one row: [-1,1] is a scalar column, [-1,L] a vector of L.
            long size = 1;
            foreach (long d in input.Dims.Skip(1))
                size *= d > 0 ? d : throw new ArgumentException($"ONNX input '{input.Name}' has a variable non-batch dimension; pass a schema source.");
            DataViewType type = size == 1 ? item : new VectorDataViewType(item, checked((int)size));
            builder.AddColumn(map[input.Name], type);
        }
        return builder.ToSchema();
    }

    private static TransformerChain<ITransformer> BuildChain(MLContext ml, string modelFile, OnnxModelSummary summary,
        IReadOnlyDictionary<string, string> map, DeepRecScoreKind kind, IDataView source, string[] extraOutputs)
    {
        var transformers = new List<ITransformer>();
        IDataView view = source;

        void Add(IEstimator<ITransformer> estimator)
        {
            ITransformer t = estimator.Fit(view);
            view = t.Transform(view);
            transformers.Add(t);
        }

        // OnnxTransformer reads each ONNX input from the column of the same name. An input named differently from its
        // column is fed through a copy under the ONNX name, dropped again after scoring.
        string[] onnxInputs = summary.InputNames.ToArray();
        var copies = new List<InputOutputColumnPair>();
        foreach (string onnxInput in onnxInputs)
        {
            string column = map[onnxInput];
            if (column == onnxInput)
                continue;
            if (source.Schema.GetColumnOrNull(onnxInput) is not null)
                throw new ArgumentException($"ONNX input '{onnxInput}' is fed from column '{column}', but the data already has a column " +
                    $"named '{onnxInput}': rename the graph input or feed it from that column.", nameof(map));
            copies.Add(new InputOutputColumnPair(onnxInput, column));
        }
        foreach (InputOutputColumnPair copy in copies)
            Add(ml.Transforms.CopyColumns(copy.OutputColumnName, copy.InputColumnName));

        string[] outputs = kind == DeepRecScoreKind.Regression
            ? [DeepRecColumns.Score]
            : [DeepRecColumns.Score, DeepRecColumns.Probability];
        Add(ApplyOnnxModel(ml, [.. outputs, .. extraOutputs], onnxInputs, modelFile));

        switch (kind)
        {
            case DeepRecScoreKind.Regression:
                Add(ml.Transforms.CustomMapping<DeepRecVectorScore, DeepRecScalarScore>(DeepRecRegressionMapping.Map, DeepRecRegressionMapping.ContractName));
                break;
            case DeepRecScoreKind.Ranking:
                Add(ml.Transforms.CustomMapping<DeepRecVectorScoreProbability, DeepRecScalarScoreProbability>(DeepRecRankingMapping.Map, DeepRecRankingMapping.ContractName));
                break;
            case DeepRecScoreKind.BinaryClassification:
                Add(ml.Transforms.CustomMapping<DeepRecVectorScoreProbability, DeepRecScalarBinary>(DeepRecBinaryClassificationMapping.Map, DeepRecBinaryClassificationMapping.ContractName));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
        if (copies.Count > 0)
            Add(ml.Transforms.DropColumns(copies.Select(c => c.OutputColumnName).ToArray()));
        return new TransformerChain<ITransformer>([.. transformers]);
    }
}
