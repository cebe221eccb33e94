using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNet.DeepRec.Onnx;

namespace MLNet.DeepRec.Serving;

/// <summary>
/// Scores a DeepRec ONNX graph over a data view in batches: stands in for the [ML.NET <c>OnnxTransformer</c> → DeepRec
/// score mapping] pair of a scoring chain when it transforms a data view, and gives the same columns. ML.NET's
/// OnnxTransformer runs ONNX Runtime once per row; this runs it once per batch of rows (one
/// <see cref="InferenceSession.Run(RunOptions, IReadOnlyCollection{string}, IReadOnlyCollection{OrtValue}, IReadOnlyCollection{string})"/>
/// per batch, on its own session over the same model bytes) and serves the results by position.
/// </summary>
/// <remarks>
/// <para>The output schema is the pair's own (computed by the pair, so names, types, annotations, hidden columns and order
/// are the same). Input columns are passed through from a cursor over the input; the graph inputs are read a batch ahead
/// through a second cursor over the same input (ML.NET cursors over one view without shuffling yield the same rows in the
/// same order), scored, and served for the rows of the first cursor.</para>
/// <para>When a column or graph signature is outside what is handled here (an element type other than uint32/key or
/// float, a variable non-batch dimension, an unexpected output column), <see cref="Transform"/> returns the pair's own
/// row-by-row view, so the result is the same either way.</para>
/// <para>Row-to-row mapping (PredictionEngine) is not affected: it goes through the pair itself.</para>
/// </remarks>
internal sealed class BatchedOnnxScorer : IDisposable
{
    /// <summary>Rows per ONNX Runtime call, at most.</summary>
    internal const int MaxBatchRows = 4096;
    /// <summary>Input elements per batch aimed at (wide feature vectors get fewer rows per batch).</summary>
    private const int ElementsPerBatch = 1 << 22;
    /// <summary>Rows per batch for sequence graphs, whose intermediate tensors are per-row sequences (SASRec, GRU4Rec).</summary>
    private const int SequenceBatchRows = 128;

    private readonly MLContext _mlContext;
    private readonly ITransformer _onnx;
    private readonly ITransformer _mapping;
    private readonly OnnxModelSummary _summary;
    private readonly Func<byte[]> _modelBytes;
    private readonly object _gate = new();
    private InferenceSession? _session;
    private bool _disposed;

    /// <param name="mlContext">The context whose GPU settings choose the ONNX Runtime device.</param>
    /// <param name="onnx">ML.NET's OnnxTransformer of the chain.</param>
    /// <param name="mapping">The DeepRec score mapping that follows it.</param>
    /// <param name="summary">The checked summary of the graph.</param>
    /// <param name="modelBytes">The ONNX model bytes, asked for once, when the first batch is scored.</param>
    public BatchedOnnxScorer(MLContext mlContext, ITransformer onnx, ITransformer mapping, OnnxModelSummary summary, Func<byte[]> modelBytes)
    {
        _mlContext = mlContext;
        _onnx = onnx;
        _mapping = mapping;
        _summary = summary;
        _modelBytes = modelBytes;
    }

    /// <summary>ONNX Runtime batch calls made by cursors on this thread (for tests: the row-by-row fallback gives the same
    /// values, only slower, so only this tells the two apart).</summary>
    [ThreadStatic]
    internal static long t_batchesOnThisThread;

    /// <summary>Which check last sent a Transform on this thread to the row-by-row path (diagnostics for tests).</summary>
    [ThreadStatic]
    internal static int t_lastFallback;

    /// <summary>Whether <paramref name="onnx"/> followed by <paramref name="mapping"/> is a DeepRec scoring pair.</summary>
    public static bool IsScoringPair(ITransformer onnx, ITransformer mapping)
    {
        if (onnx is not Microsoft.ML.Transforms.Onnx.OnnxTransformer) return false;
        Type t = mapping.GetType();
        if (!t.IsGenericType || t.GetGenericTypeDefinition() != typeof(Microsoft.ML.Transforms.CustomMappingTransformer<,>)) return false;
        Type source = t.GetGenericArguments()[0];
        return source == typeof(DeepRecVectorScore) || source == typeof(DeepRecVectorScoreProbability);
    }

    /// <summary>The pair's output for <paramref name="input"/>, scored in batches where the columns allow.</summary>
    public IDataView Transform(IDataView input)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        DataViewSchema onnxSchema = _onnx.GetOutputSchema(input.Schema);
        DataViewSchema outputSchema = _mapping.GetOutputSchema(onnxSchema);
        Plan? plan = Plan.TryCreate(input.Schema, onnxSchema, outputSchema, _summary);
        if (plan is null)
            return _mapping.Transform(_onnx.Transform(input));
        return new ScoredView(this, input, outputSchema, plan, BatchRows(plan));
    }

    private int BatchRows(Plan plan)
    {
        if (_summary.Metadata.TryGetValue("deeprec.model_kind", out string? kind) && Models.SequentialModels.IsSequential(kind))
            return SequenceBatchRows;
        long perRow = Math.Max(1, plan.Inputs.Sum(i => (long)i.Width));
        return (int)Math.Clamp(ElementsPerBatch / perRow, 64, MaxBatchRows);
    }

    private InferenceSession Session()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_session is not null) return _session;
            MLContext scoring = OnnxRuntimeDevice.ScoringContext(_mlContext, "Building the batched ONNX scorer of a DeepRec model");
            using SessionOptions options = scoring.GpuDeviceId is int gpu
                ? SessionOptions.MakeSessionOptionWithCudaProvider(gpu)
                : new SessionOptions();
            // Worker threads that spin between batches take the CPU from the cursors feeding them (and from everything
            // else on a busy machine); one batch's work is milliseconds, so they wait without spinning.
            options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            try
            {
                _session = new InferenceSession(_modelBytes(), options);
            }
            catch (OnnxRuntimeException e)
            {
                throw new InvalidDataException($"ONNX Runtime could not load the ONNX model for batched scoring: {e.Message}", e);
            }
            return _session;
        }
    }

    /// <summary>Releases the ONNX Runtime session (cursors still open fail with <see cref="ObjectDisposedException"/>).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _session?.Dispose();
            _session = null;
        }
    }

    /// <summary>One graph input: the column that feeds it and its width (elements per row).</summary>
    private sealed record InputPlan(string Name, int Column, OnnxElementType ElementType, long[] RowDims, int Width, bool IsVector);

    private enum OutputKind { OnnxVector, Scalar, PredictedLabel }

    /// <summary>One output column beyond the input's: where its values come from.</summary>
    private sealed record OutputPlan(OutputKind Kind, string OnnxOutput, OnnxElementType ElementType, int Width);

    /// <summary>How each column of the output schema is produced.</summary>
    private sealed class Plan
    {
        public required InputPlan[] Inputs { get; init; }
        /// <summary>By output column index minus the input's column count.</summary>
        public required OutputPlan[] Outputs { get; init; }
        /// <summary>Width of each ONNX output that can be read.</summary>
        public required Dictionary<string, (OnnxElementType Type, int Width)> OnnxOutputs { get; init; }

        private static Plan? Fallback(int check)
        {
            t_lastFallback = check;
            return null;
        }

        public static Plan? TryCreate(DataViewSchema input, DataViewSchema onnxSchema, DataViewSchema output, OnnxModelSummary summary)
        {
            var inputs = new List<InputPlan>();
            foreach (OnnxValueSummary graphInput in summary.Inputs)
            {
                if (graphInput.ElementType is not (OnnxElementType.UInt32 or OnnxElementType.Float) || !graphInput.HasShape || graphInput.Dims.Count < 1)
                    return Fallback(1);
                long[] rowDims = graphInput.Dims.Skip(1).ToArray();
                if (rowDims.Any(d => d <= 0)) return Fallback(2);
                long width = rowDims.Aggregate(1L, (a, d) => a * d);
                if (width > int.MaxValue / MaxBatchRows) return Fallback(3);
                if (input.GetColumnOrNull(graphInput.Name) is not DataViewSchema.Column column) return Fallback(4);
                Type raw = graphInput.ElementType == OnnxElementType.UInt32 ? typeof(uint) : typeof(float);
                bool isVector = column.Type is VectorDataViewType;
                if (column.Type is VectorDataViewType vector)
                {
                    if (vector.ItemType.RawType != raw || (vector.Size != 0 && vector.Size != width)) return Fallback(5);
                }
                else if (column.Type.RawType != raw || width != 1)
                    return Fallback(6);
                inputs.Add(new InputPlan(graphInput.Name, column.Index, graphInput.ElementType, rowDims, (int)width, isVector));
            }

            var onnxOutputs = new Dictionary<string, (OnnxElementType, int)>(StringComparer.Ordinal);
            int n = input.Count, m = onnxSchema.Count - n;
            if (m <= 0 || output.Count <= onnxSchema.Count) return Fallback(7);
            var outputs = new List<OutputPlan>();
            // ML.NET places a shadowed (hidden) column just before the column that hides it, so the output columns are
            // told apart by name and type: the graph's vector outputs (hidden or not) and the mapping's scalars.
            var graphColumns = new HashSet<string>(Enumerable.Range(n, m).Select(j => onnxSchema[j].Name), StringComparer.Ordinal);
            int vectors = 0;
            for (int j = n; j < output.Count; j++)
            {
                DataViewSchema.Column c = output[j];
                if (c.Type is VectorDataViewType v && graphColumns.Contains(c.Name))
                {
                    if (summary.Outputs.FirstOrDefault(o => o.Name == c.Name) is not { } graphOutput || !graphOutput.HasShape || graphOutput.Dims.Count < 1) return Fallback(8);
                    // ML.NET types an output with a symbolic batch axis as a vector of unknown size: the graph gives the width.
                    long graphWidth = graphOutput.Dims.Skip(1).Aggregate(1L, (a, d) => d > 0 && a > 0 ? a * d : -1);
                    if (graphWidth <= 0 || graphWidth > int.MaxValue / MaxBatchRows || (v.Size != 0 && v.Size != graphWidth)) return Fallback(10);
                    int width = (int)graphWidth;
                    OnnxElementType? type = v.ItemType.RawType == typeof(float) ? OnnxElementType.Float
                        : v.ItemType.RawType == typeof(uint) ? OnnxElementType.UInt32 : null;
                    if (type is not OnnxElementType known || known != graphOutput.ElementType) return Fallback(11);
                    onnxOutputs[c.Name] = (known, width);
                    outputs.Add(new OutputPlan(OutputKind.OnnxVector, c.Name, known, width));
                    vectors++;
                }
                else if (c.Name is DeepRecColumns.Score or DeepRecColumns.Probability && c.Type == NumberDataViewType.Single)
                    outputs.Add(new OutputPlan(OutputKind.Scalar, c.Name, OnnxElementType.Float, 1));
                else if (c.Name == DeepRecColumns.PredictedLabel && c.Type == BooleanDataViewType.Instance)
                    outputs.Add(new OutputPlan(OutputKind.PredictedLabel, DeepRecColumns.Probability, OnnxElementType.Float, 1));
                else
                    return Fallback(12);
            }
            if (vectors != m) return Fallback(9);
            // The scalar columns read the first element of the graph's 1-element vectors.
            foreach (OutputPlan o in outputs.Where(o => o.Kind != OutputKind.OnnxVector))
                if (!onnxOutputs.TryGetValue(o.OnnxOutput, out var source) || source.Item1 != OnnxElementType.Float) return Fallback(13);
            return new Plan { Inputs = [.. inputs], Outputs = [.. outputs], OnnxOutputs = onnxOutputs };
        }
    }

    private sealed class ScoredView : IDataView
    {
        private readonly BatchedOnnxScorer _parent;
        private readonly IDataView _input;
        private readonly Plan _plan;
        private readonly int _batchRows;

        public ScoredView(BatchedOnnxScorer parent, IDataView input, DataViewSchema schema, Plan plan, int batchRows)
        {
            _parent = parent;
            _input = input;
            Schema = schema;
            _plan = plan;
            _batchRows = batchRows;
        }

        public bool CanShuffle => false;

        public DataViewSchema Schema { get; }

        public long? GetRowCount() => _input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            ArgumentNullException.ThrowIfNull(columnsNeeded);
            var active = new bool[Schema.Count];
            foreach (DataViewSchema.Column c in columnsNeeded)
            {
                if (c.Index < 0 || c.Index >= Schema.Count || Schema[c.Index].Name != c.Name)
                    throw new ArgumentException($"Column '{c.Name}' (index {c.Index}) is not a column of this data view.", nameof(columnsNeeded));
                active[c.Index] = true;
            }
            return new Cursor(this, active);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            [GetRowCursor(columnsNeeded, rand)];

        private sealed class Cursor : DataViewRowCursor
        {
            private readonly ScoredView _view;
            private readonly bool[] _active;
            // Null when no input column is active (e.g. GetColumn("Score")): the feeding cursor alone walks the input, and
            // row ids are kept per batch.
            private readonly DataViewRowCursor? _main;
            private readonly DataViewRowId[]? _ids;
            private ValueGetter<DataViewRowId>? _feedIds;
            private readonly int _inputCount;
            private readonly string[] _outputNames = [];
            private readonly Dictionary<string, Array> _outputs = new(StringComparer.Ordinal);
            private readonly InputBuffer[] _buffers = [];
            private readonly RunOptions? _runOptions;
            private DataViewRowCursor? _feed;
            private long _feedRows;         // rows the feeding cursor has delivered
            private long _batchStart = -1;  // position of the first row of the current batch
            private int _batchCount;
            private long _position = -1;
            private bool _disposed;

            public Cursor(ScoredView view, bool[] active)
            {
                _view = view;
                _active = active;
                _inputCount = view._input.Schema.Count;
                var passThrough = view._input.Schema.Where(c => active[c.Index]).ToArray();
                var needed = new HashSet<string>(StringComparer.Ordinal);
                for (int j = _inputCount; j < active.Length; j++)
                    if (active[j]) needed.Add(view._plan.Outputs[j - _inputCount].OnnxOutput);
                if (needed.Count == 0 || passThrough.Length > 0)
                    _main = view._input.GetRowCursor(passThrough);
                else
                    _ids = new DataViewRowId[view._batchRows];
                if (needed.Count == 0) return;
                _outputNames = [.. needed];
                foreach (string name in _outputNames)
                {
                    var (type, width) = view._plan.OnnxOutputs[name];
                    _outputs[name] = type == OnnxElementType.UInt32 ? new uint[view._batchRows * width] : new float[view._batchRows * width];
                }
                _buffers = view._plan.Inputs.Select(i => InputBuffer.Create(i, view._batchRows)).ToArray();
                _runOptions = new RunOptions();
            }

            public override DataViewSchema Schema => _view.Schema;

            public override long Position => _position;

            public override long Batch => _main?.Batch ?? 0;

            public override ValueGetter<DataViewRowId> GetIdGetter() =>
                _main?.GetIdGetter() ?? ((ref DataViewRowId id) => id = _ids![Row()]);

            public override bool IsColumnActive(DataViewSchema.Column column) => column.Index >= 0 && column.Index < _active.Length && _active[column.Index];

            public override bool MoveNext()
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_main is null)
                {
                    // The feeding cursor is the only one: the rows are those it delivers.
                    if (_position + 1 >= _batchStart + _batchCount && !ScoreNextBatch(required: false)) return false;
                    _position++;
                    return true;
                }
                if (!_main.MoveNext()) return false;
                _position++;
                if (_outputNames.Length > 0 && _position >= _batchStart + _batchCount)
                    ScoreNextBatch(required: true);
                return true;
            }

            /// <summary>Reads and scores the next batch; false at the end of the data when <paramref name="required"/> is false.</summary>
            private bool ScoreNextBatch(bool required)
            {
                var input = _view._input;
                if (_feed is null)
                {
                    _feed = input.GetRowCursor(_view._plan.Inputs.Select(i => input.Schema[i.Column]));
                    foreach (InputBuffer b in _buffers) b.Bind(_feed);
                    if (_ids is not null) _feedIds = _feed.GetIdGetter();
                }
                int rows = 0;
                while (rows < _view._batchRows && _feed.MoveNext())
                {
                    foreach (InputBuffer b in _buffers) b.Read(rows, _feedRows);
                    _feedIds?.Invoke(ref _ids![rows]);
                    rows++;
                    _feedRows++;
                }
                if (rows == 0 && !required) return false;
                if (rows == 0 || (required && _feedRows <= _position))
                    throw new InvalidOperationException(
                        $"The input data view gave a second cursor fewer rows ({_feedRows:N0}) than the first ({_position + 1:N0}); batched scoring needs " +
                        "a data view whose cursors yield the same rows in the same order.");
                _batchStart = _feedRows - rows;
                _batchCount = rows;

                InferenceSession session = _view._parent.Session();
                t_batchesOnThisThread++;
                var values = new OrtValue[_buffers.Length];
                try
                {
                    for (int i = 0; i < _buffers.Length; i++) values[i] = _buffers[i].ToOrtValue(rows);
                    using IDisposableReadOnlyCollection<OrtValue> results = session.Run(_runOptions, _view._plan.Inputs.Select(i => i.Name).ToArray(), values, _outputNames);
                    for (int o = 0; o < _outputNames.Length; o++)
                    {
                        Array target = _outputs[_outputNames[o]];
                        int count = rows * _view._plan.OnnxOutputs[_outputNames[o]].Width;
                        OrtValue result = results[o];
                        if (result.GetTensorTypeAndShape().ElementCount != count)
                            throw new InvalidOperationException($"ONNX output '{_outputNames[o]}' holds {result.GetTensorTypeAndShape().ElementCount:N0} values for {rows:N0} rows; expected {count:N0}.");
                        if (target is float[] f) result.GetTensorDataAsSpan<float>().CopyTo(f);
                        else result.GetTensorDataAsSpan<uint>().CopyTo((uint[])target);
                    }
                }
                finally
                {
                    foreach (OrtValue? v in values) v?.Dispose();
                }
                return true;
            }

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            {
                if (!IsColumnActive(column))
                    throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
                if (column.Index < _inputCount)
                    return _main!.GetGetter<TValue>(_main.Schema[column.Index]);
                OutputPlan plan = _view._plan.Outputs[column.Index - _inputCount];
                Delegate getter = plan.Kind switch
                {
                    OutputKind.Scalar => ScalarGetter((float[])_outputs[plan.OnnxOutput]),
                    OutputKind.PredictedLabel => LabelGetter((float[])_outputs[plan.OnnxOutput]),
                    _ => _outputs[plan.OnnxOutput] is float[] f ? VectorGetter(f, plan.Width) : VectorGetter((uint[])_outputs[plan.OnnxOutput], plan.Width),
                };
                return getter as ValueGetter<TValue> ?? throw new InvalidOperationException(
                    $"Column '{column.Name}' is of type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
            }

            private int Row()
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_position < _batchStart || _position >= _batchStart + _batchCount)
                    throw new InvalidOperationException("The cursor is not on a row.");
                return (int)(_position - _batchStart);
            }

            private ValueGetter<float> ScalarGetter(float[] values) => (ref float value) => value = values[Row()];

            private ValueGetter<bool> LabelGetter(float[] probabilities) => (ref bool value) => value = probabilities[Row()] > 0.5f;

            private ValueGetter<VBuffer<T>> VectorGetter<T>(T[] values, int width) => (ref VBuffer<T> value) =>
            {
                int row = Row();
                var editor = VBufferEditor.Create(ref value, width);
                values.AsSpan(row * width, width).CopyTo(editor.Values);
                value = editor.Commit();
            };

            protected override void Dispose(bool disposing)
            {
                if (_disposed) return;
                _disposed = true;
                if (disposing)
                {
                    _main?.Dispose();
                    _feed?.Dispose();
                    _runOptions?.Dispose();
                }
                base.Dispose(disposing);
            }
        }
    }

    /// <summary>One graph input's values for a batch, read row by row from the feeding cursor.</summary>
    private abstract class InputBuffer
    {
        protected InputBuffer(InputPlan plan) => Plan = plan;

        public InputPlan Plan { get; }

        public static InputBuffer Create(InputPlan plan, int rows) => plan.ElementType == OnnxElementType.UInt32
            ? new Buffer<uint>(plan, rows)
            : new Buffer<float>(plan, rows);

        public abstract void Bind(DataViewRowCursor cursor);

        public abstract void Read(int row, long position);

        public abstract OrtValue ToOrtValue(int rows);

        private sealed class Buffer<T> : InputBuffer where T : unmanaged
        {
            private readonly T[] _values;
            private ValueGetter<T>? _scalar;
            private ValueGetter<VBuffer<T>>? _vector;
            private VBuffer<T> _row;
            private string _columnName = "";

            public Buffer(InputPlan plan, int rows) : base(plan) => _values = new T[rows * plan.Width];

            public override void Bind(DataViewRowCursor cursor)
            {
                DataViewSchema.Column column = cursor.Schema[Plan.Column];
                _columnName = column.Name;
                if (Plan.IsVector) _vector = cursor.GetGetter<VBuffer<T>>(column);
                else _scalar = cursor.GetGetter<T>(column);
            }

            public override void Read(int row, long position)
            {
                if (_scalar is not null)
                {
                    _scalar(ref _values[row]);
                    return;
                }
                _vector!(ref _row);
                if (_row.Length != Plan.Width)
                    throw new InvalidOperationException(
                        $"Row {position:N0}: column '{_columnName}' holds a vector of {_row.Length:N0} values; the ONNX input '{Plan.Name}' takes {Plan.Width:N0}.");
                _row.CopyTo(_values.AsSpan(row * Plan.Width, Plan.Width));
            }

            public override OrtValue ToOrtValue(int rows)
            {
                var shape = new long[1 + Plan.RowDims.Length];
                shape[0] = rows;
                Plan.RowDims.CopyTo(shape, 1);
                return OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _values.AsMemory(0, rows * Plan.Width), shape);
            }
        }
    }
}
