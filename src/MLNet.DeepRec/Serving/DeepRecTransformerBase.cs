using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.IO;
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
/// <see cref="DeepRecScoreKind.BinaryClassification"/>), float <c>[-1,1]</c>. <see cref="Transform"/> over a data view
/// runs the graph in batches of rows (one ONNX Runtime call per batch, up to 4,096 rows; results identical to
/// row-by-row scoring); <see cref="GetRowToRowMapper"/>, which <c>PredictionEngine</c> uses, scores one row per call
/// through ML.NET's OnnxTransformer. Input columns are kept in the output; <see cref="MLContext.GpuDeviceId"/> and <see cref="MLContext.FallbackToCpu"/>
/// pick the ONNX Runtime device.
/// </para>
/// </remarks>
public abstract class DeepRecTransformerBase : ITransformer, ICanSaveModel, IDisposable
{
    private readonly byte[] _onnxModel;
    private readonly TransformerChain<ITransformer> _inner;
    // Transform over a data view: the inner chain's elements, with the [OnnxTransformer → score mapping] pair at
    // _pairIndex scored in batches by _batched (GetRowToRowMapper, and so PredictionEngine, keeps the inner chain).
    private readonly ITransformer[] _elements;
    private readonly int _pairIndex;
    private readonly BatchedOnnxScorer _batched;
    // ONNX Runtime loads the model from a file, and ML.NET reads that file again whenever the chain is saved, so the file
    // lives as long as this transformer: private (0600, in a 0700 folder), deleted by Dispose, at the latest at exit.
    private readonly string _onnxFile;
    private int _disposed;

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
        : this(mlContext, onnxModel, onnxInputToColumn, kind, schemaSource, additionalOutputs, null)
    {
    }

    /// <summary>
    /// Steps that turn the scoring rows into the ONNX graph's inputs before <c>OnnxTransformer</c> runs (a sequential
    /// model's fixed history window, say), fitted in order on the schema source, and the helper columns they add, which
    /// are dropped after scoring. They are part of the inner chain, so a saved model carries them (each must be a
    /// component ML.NET can save: its own transforms or a registered custom mapping).
    /// </summary>
    /// <param name="Steps">The estimators, in order.</param>
    /// <param name="HelperColumns">The columns they add that the output should not keep.</param>
    private protected sealed record InputPreparation(IReadOnlyList<IEstimator<ITransformer>> Steps, IReadOnlyList<string> HelperColumns);

    /// <summary>As the public constructors, with <paramref name="preparation"/> run before the ONNX scorer
    /// (<paramref name="onnxInputToColumn"/> may then name the columns it adds).</summary>
    private protected DeepRecTransformerBase(MLContext mlContext, byte[] onnxModel, IReadOnlyDictionary<string, string> onnxInputToColumn,
        DeepRecScoreKind kind, IDataView? schemaSource, IReadOnlyList<string>? additionalOutputs, InputPreparation? preparation)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(onnxModel);
        ArgumentNullException.ThrowIfNull(onnxInputToColumn);

        NativeRuntimes.EnsureOnnxRuntime();
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
        _onnxFile = PrivateTempFiles.Write(mlContext.TempFilePath, _onnxModel, ".onnx");
        try
        {
            _inner = BuildChain(mlContext, _onnxFile, summary, onnxInputToColumn, kind, source, extra, preparation);
        }
        catch (Exception e)
        {
            PrivateTempFiles.TryDelete(_onnxFile);
            if (OnnxRuntimeCause(e) is Exception cause)
                throw new InvalidDataException($"ONNX Runtime could not load the ONNX model ({_onnxModel.Length:N0} bytes): {cause.Message}", e);
            throw;
        }
        _elements = _inner.ToArray();
        _pairIndex = Array.FindIndex(_elements, t => t is Microsoft.ML.Transforms.Onnx.OnnxTransformer);
        _batched = new BatchedOnnxScorer(mlContext, _elements[_pairIndex], _elements[_pairIndex + 1], summary, () => _onnxModel);
    }

    /// <summary>The ONNX Runtime error under ML.NET's wrappers (it reports a rejected model as InvalidOperationException).</summary>
    private static Exception? OnnxRuntimeCause(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is Microsoft.ML.OnnxRuntime.OnnxRuntimeException) return x;
        return null;
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
    /// <remarks>The file is written atomically: a failure part-way leaves a previous file at <paramref name="path"/> intact.</remarks>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void ExportOnnx(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        AtomicFile.WriteAllBytes(path, _onnxModel);
    }

    /// <inheritdoc/>
    public bool IsRowToRowMapper => ((ITransformer)_inner).IsRowToRowMapper;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">An input column is missing or has the wrong type (see the model's remarks).</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        ThrowIfDisposed();
        CheckInputSchema(inputSchema);
        return _inner.GetOutputSchema(inputSchema);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">An input column is missing or has the wrong type.</exception>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        ThrowIfDisposed();
        CheckInputSchema(inputSchema);
        return ((ITransformer)_inner).GetRowToRowMapper(inputSchema);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">An input column is missing or has the wrong type.</exception>
    /// <exception cref="ObjectDisposedException">The transformer was disposed (a disposed PredictionEngine disposes its model).</exception>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ThrowIfDisposed();
        CheckInputSchema(input.Schema);
        IDataView view = input;
        for (int i = 0; i < _elements.Length; i++)
        {
            if (i == _pairIndex)
            {
                view = _batched.Transform(view);
                i++;
            }
            else
                view = _elements[i].Transform(view);
        }
        return view;
    }

    /// <summary>
    /// Checks the input columns when the transformer binds to a schema (<see cref="Transform"/>,
    /// <see cref="GetOutputSchema"/>, <see cref="GetRowToRowMapper"/>), before ONNX Runtime sees them: ML.NET's
    /// OnnxTransformer accepts any column whose raw type matches the graph input (a plain UInt32 column for a key input,
    /// a variable-size vector for a fixed one) and then scores raw ids as keys, or fails deep inside a cursor. The
    /// library's transformers check key types and cardinalities and vector sizes; the default checks nothing. The chain
    /// that <c>mlContext.Model.Load</c> returns is ML.NET's own and does not run this check.
    /// </summary>
    private protected virtual void CheckInputSchema(DataViewSchema inputSchema)
    {
    }

    /// <summary>
    /// A disposed transformer has no ONNX Runtime session; scoring through it would fail inside ONNX Runtime with a
    /// NullReferenceException. The usual way to get there is ML.NET's: <c>PredictionEngine.Dispose</c> disposes its model
    /// unless the engine was created with <c>PredictionEngineOptions.OwnsTransformer = false</c>.
    /// </summary>
    private protected void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) != 0)
            throw new ObjectDisposedException(GetType().Name,
                "This DeepRec transformer has been disposed. Note that disposing a PredictionEngine disposes the model it was created " +
                "from; create engines that share a model with new PredictionEngineOptions { OwnsTransformer = false }.");
    }

    /// <summary>Saves the inner ML.NET chain: loading the result gives that chain back.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)_inner).Save(ctx);

    /// <summary>Releases the ONNX Runtime session held by the inner chain and deletes the chain's temporary ONNX file.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases resources; derived transformers release their own (e.g. a TorchSharp network) and call the base.</summary>
    /// <param name="disposing">True when called from <see cref="Dispose()"/>.</param>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing || Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _batched.Dispose();
        _inner.Dispose();           // closes ONNX Runtime's session and ML.NET's handle on the file first
        PrivateTempFiles.TryDelete(_onnxFile);
    }

    /// <summary>ML.NET's OnnxTransformer on the device the context asks for, or on the CPU as its FallbackToCpu allows.</summary>
    private static IEstimator<ITransformer> ApplyOnnxModel(MLContext ml, string[] outputs, string[] inputs, string modelFile)
    {
        MLContext scoring = OnnxRuntimeDevice.ScoringContext(ml, "Building the ONNX scorer of a DeepRec model");
        // The file overload: ML.NET's stream overload copies the model to a world-readable temp file it never deletes.
        return scoring.Transforms.ApplyOnnxModel(outputs, inputs, modelFile, gpuDeviceId: scoring.GpuDeviceId, fallbackToCpu: scoring.FallbackToCpu);
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
        IReadOnlyDictionary<string, string> map, DeepRecScoreKind kind, IDataView source, string[] extraOutputs, InputPreparation? preparation)
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
        try
        {
            foreach (IEstimator<ITransformer> step in preparation?.Steps ?? [])
                Add(step);
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
            string[] dropped = [.. copies.Select(c => c.OutputColumnName), .. preparation?.HelperColumns ?? []];
            if (dropped.Length > 0)
                Add(ml.Transforms.DropColumns(dropped));
        }
        catch
        {
            // The ONNX session (and its handle on the model file) must not outlive a chain that was never returned.
            foreach (ITransformer t in transformers)
                (t as IDisposable)?.Dispose();
            throw;
        }
        return new TransformerChain<ITransformer>([.. transformers]);
    }
}
