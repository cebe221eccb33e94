using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.IO;

namespace MLNet.DeepRec.Serving;

/// <summary>Serving helpers for models saved with <c>mlContext.Model.Save</c>.</summary>
public static class DeepRecServing
{
    /// <summary>
    /// Registers this assembly's score mappings with <paramref name="mlContext"/>'s component catalog, the documented
    /// ML.NET way to make custom mappings loadable. Call it on the <see cref="MLContext"/> that loads a saved DeepRec
    /// model (<c>mlContext.Model.Load</c>), before loading: the saved model ends with a custom mapping (the ONNX
    /// outputs are 1-element vectors; the mapping makes them the scalar <c>Score</c>/<c>Probability</c>/<c>PredictedLabel</c>
    /// columns). With ML.NET 5.0.1 a cold process was also observed to load without it, provided MLNet.DeepRec.dll is
    /// deployed; calling it is harmless and idempotent. Scoring a loaded model needs this assembly, Microsoft.ML,
    /// Microsoft.ML.OnnxTransformer and ONNX Runtime, not TorchSharp or libtorch.
    /// </summary>
    /// <param name="mlContext">The context that will load the model.</param>
    public static void RegisterForLoading(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        mlContext.ComponentCatalog.RegisterAssembly(typeof(DeepRecTransformerBase).Assembly);
    }

    /// <summary>
    /// Loads a model saved with <c>mlContext.Model.Save</c>, the way a scoring service should: registers the DeepRec
    /// score mappings with <paramref name="mlContext"/> (<see cref="RegisterForLoading"/>), opens the file read-only
    /// (it is never modified), and turns any failure to read it — a truncated or corrupted zip, a damaged ONNX model
    /// inside it, a component this process cannot load — into an <see cref="InvalidDataException"/> whose message names
    /// the file and keeps ML.NET's or ONNX Runtime's explanation (the original exception is the inner exception).
    /// </summary>
    /// <param name="mlContext">The context to load into; its <see cref="MLContext.GpuDeviceId"/> and
    /// <see cref="MLContext.FallbackToCpu"/> choose the ONNX Runtime device.</param>
    /// <param name="path">The model zip.</param>
    /// <param name="inputSchema">The schema the model was saved with (the columns the model expects).</param>
    /// <returns>The loaded model (for a DeepRec model, a <see cref="TransformerChain{TLastTransformer}"/> scored by ONNX Runtime).
    /// Its <c>Transform</c> over a data view runs the DeepRec graph in batches of rows (same output as ML.NET's
    /// row-by-row OnnxTransformer); a <c>PredictionEngine</c> scores row by row; <c>mlContext.Model.Save</c> writes the
    /// same zip as the one loaded (without the entries of <see cref="LoadRecommender"/>, which only
    /// <see cref="SaveModel"/> writes from a trained transformer).</returns>
    /// <remarks>
    /// When <see cref="MLContext.GpuDeviceId"/> is set but ONNX Runtime cannot use CUDA (the CPU package
    /// Microsoft.ML.OnnxRuntime has no CUDA provider, on which ML.NET's own load fails even with
    /// <see cref="MLContext.FallbackToCpu"/>; or Microsoft.ML.OnnxRuntime.Gpu without CUDA 13 and cuDNN 9, on which ML.NET
    /// falls back silently), this method honours <see cref="MLContext.FallbackToCpu"/>: it logs a warning through
    /// <paramref name="mlContext"/> naming the cause and loads the model for the CPU; without it, it throws
    /// <see cref="InvalidOperationException"/> explaining both ways out.
    /// <para>
    /// Temporary files: ML.NET writes each ONNX model in the zip to a temporary file that ONNX Runtime loads. For the
    /// duration of this call the context's <see cref="MLContext.TempFilePath"/> points at a private folder of this library
    /// (mode 0700 on Unix), so those files are readable by this user only, deleted when the returned model is disposed,
    /// at the latest when the process exits (or, after a crash, by the next process that uses the library), and deleted at
    /// once when the load fails. Do not change <see cref="MLContext.TempFilePath"/> from another thread during the call.
    /// </para>
    /// <para>
    /// The file is treated as untrusted. Before ML.NET sees it, the zip is read through once (every entry must
    /// decompress to its declared size) and every ONNX model in it must be one this library could have written: only
    /// the operators MLNet.DeepRec's exporters emit, initializers whose data matches their dims, no constant computed
    /// larger than the model's own weights, and a size whose load fits in the memory available to the process. Other
    /// ONNX models are rejected (load them with <c>mlContext.Model.Load</c>); a zip without ONNX models (ML.NET's own
    /// transformers) is passed on as it is.
    /// </para>
    /// </remarks>
    /// <exception cref="FileNotFoundException"><paramref name="path"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a loadable ML.NET model.</exception>
    /// <exception cref="DllNotFoundException">ONNX Runtime's native library is missing (add Microsoft.ML.OnnxRuntime).</exception>
    /// <exception cref="InvalidOperationException">A GPU was asked for, ONNX Runtime cannot use one, and
    /// <see cref="MLContext.FallbackToCpu"/> is false.</exception>
    public static ITransformer LoadModel(MLContext mlContext, string path, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
            throw new FileNotFoundException($"The model file '{fullPath}' does not exist.", fullPath);
        NativeRuntimes.EnsureOnnxRuntime();
        // A GPU that ONNX Runtime cannot use is dealt with first: a warning and a CPU load (FallbackToCpu), or an
        // InvalidOperationException; ML.NET's own load would fail with a confusing error or fall back silently.
        mlContext = OnnxRuntimeDevice.ScoringContext(mlContext, $"Loading '{fullPath}'");
        RegisterForLoading(mlContext);
        long length = new FileInfo(fullPath).Length;
        // ML.NET's loader writes each ONNX model of the zip to a file in the context's TempFilePath (world-readable, and
        // deleted only when the model is disposed) and unpacks into ml_dotnet_* folders there (left behind when a load
        // fails). Pointing the context at a private folder of this load for the duration of the call makes those files
        // private, removed with the process's temp folder at exit, and removed at once when the load fails.
        // Everything that can be checked without ML.NET is checked first, so that a rejected file never reaches ML.NET's
        // loaders or ONNX Runtime (nor creates a temporary file).
        try
        {
            ModelZipInspector.Check(fullPath);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{fullPath}' ({length:N0} bytes) could not be loaded as an ML.NET model: {e.Message}", e);
        }
        string loadFolder = PrivateTempFiles.CreateFolder(mlContext.TempFilePath);
        string previousTempPath = mlContext.TempFilePath;
        bool loaded = false;
        try
        {
            mlContext.TempFilePath = loadFolder;
            using var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read);
            ITransformer model = mlContext.Model.Load(stream, out inputSchema);
            try
            {
                model = LoadedModelBatching.Wrap(mlContext, model);
            }
            catch
            {
                (model as IDisposable)?.Dispose();
                throw;
            }
            loaded = true;
            return model;
        }
        catch (Exception e) when (e is not (OperationCanceledException or OutOfMemoryException or UnauthorizedAccessException))
        {
            // ML.NET creates components by reflection: the cause sits under one or more TargetInvocationExceptions.
            Exception cause = e;
            while (cause is System.Reflection.TargetInvocationException { InnerException: { } innerCause })
                cause = innerCause;
            throw new InvalidDataException(
                $"'{fullPath}' ({length:N0} bytes) could not be loaded as an ML.NET model: the file is truncated, corrupted, " +
                $"not a model zip, or needs a component this process cannot load. {cause.GetType().Name}: {cause.Message}", e);
        }
        finally
        {
            mlContext.TempFilePath = previousTempPath;
            if (!loaded) PrivateTempFiles.TryDeleteFolder(loadFolder);
        }
    }

    /// <summary>Loads a model saved with <c>mlContext.Model.Save</c>; see <see cref="LoadModel(MLContext, string, out DataViewSchema)"/>.</summary>
    /// <param name="mlContext">The context to load into.</param>
    /// <param name="path">The model zip.</param>
    /// <returns>The loaded model.</returns>
    /// <exception cref="FileNotFoundException"><paramref name="path"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a loadable ML.NET model.</exception>
    public static ITransformer LoadModel(MLContext mlContext, string path) => LoadModel(mlContext, path, out _);

    /// <summary>
    /// Saves <paramref name="model"/> with <c>mlContext.Model.Save</c>, atomically: the zip is written to a temporary file
    /// next to <paramref name="path"/>, flushed, and renamed over it only when complete. A failure part-way (a component
    /// that cannot be saved, a full disk, a killed process) leaves the previous file at <paramref name="path"/> intact and no
    /// partial file behind, whereas <c>mlContext.Model.Save(model, schema, path)</c> truncates the target first.
    /// </summary>
    /// <param name="mlContext">The context to save with.</param>
    /// <param name="model">The model (any ML.NET transformer, e.g. a pipeline ending in a DeepRec transformer).</param>
    /// <param name="inputSchema">The schema of the data the model takes (usually the training data's).</param>
    /// <param name="path">The model zip to write; its folder must exist.</param>
    /// <remarks>When <paramref name="model"/> holds a collaborative transformer (MF, GMF, MLP, NeuMF) or a sequential
    /// transformer, the zip also carries what top-K needs (extra entries that <c>mlContext.Model.Load</c> ignores): load it
    /// with <see cref="LoadRecommender"/>.</remarks>
    /// <exception cref="IOException">The file cannot be written; the previous file is unchanged.</exception>
    public static void SaveModel(MLContext mlContext, ITransformer model, DataViewSchema? inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        ITransformer? recommender = RecommenderStore.FindSource(model);
        AtomicFile.Write(path, stream =>
        {
            mlContext.Model.Save(model, inputSchema, stream);
            if (recommender is not null) RecommenderStore.Append(stream, recommender);
        });
    }

    /// <summary>
    /// Loads the top-K recommender saved with a model by <see cref="SaveModel"/>: a <see cref="DeepRecRecommender"/> that
    /// answers <c>Recommend(userId, k)</c> (MF, GMF, MLP, NeuMF) or <c>RecommendFromHistory(itemIds, k)</c> (SASRec, GRU4Rec) with
    /// ONNX Runtime alone, as the in-memory transformer's <c>Recommend</c> does. The zip is checked as by
    /// <see cref="LoadModel(MLContext, string, out DataViewSchema)"/> (untrusted input) and the ML.NET model in it is not
    /// loaded; load it with <see cref="LoadModel(MLContext, string, out DataViewSchema)"/> as well to score pairs.
    /// </summary>
    /// <param name="mlContext">The context; its <see cref="MLContext.GpuDeviceId"/> and <see cref="MLContext.FallbackToCpu"/>
    /// choose the ONNX Runtime device.</param>
    /// <param name="path">A model zip written by <see cref="SaveModel"/>.</param>
    /// <returns>The recommender; dispose it to release its ONNX Runtime session.</returns>
    /// <remarks>
    /// <see cref="SaveModel"/> stores, next to ML.NET's entries, an all-items scoring graph and the data top-K needs (key
    /// maps, user and item ids, each user's training items) when the model holds a <see cref="Trainers.CollaborativeFilteringTransformer"/>
    /// or a <see cref="Trainers.SequentialTransformer"/> (SASRec, GRU4Rec) (the last one, in a chain). <c>mlContext.Model.Load</c> ignores those
    /// entries, and <c>mlContext.Model.Save</c> does not write them.
    /// </remarks>
    /// <exception cref="FileNotFoundException"><paramref name="path"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a readable model zip, its recommender entries are malformed,
    /// or it holds none (it was written by <c>mlContext.Model.Save</c>, or its model has no collaborative or sequential transformer).</exception>
    /// <exception cref="InvalidOperationException">A GPU was asked for, ONNX Runtime cannot use one, and
    /// <see cref="MLContext.FallbackToCpu"/> is false.</exception>
    public static DeepRecRecommender LoadRecommender(MLContext mlContext, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
            throw new FileNotFoundException($"The model file '{fullPath}' does not exist.", fullPath);
        NativeRuntimes.EnsureOnnxRuntime();
        MLContext scoring = OnnxRuntimeDevice.ScoringContext(mlContext, $"Loading the recommender of '{fullPath}'");
        RecommenderData data;
        byte[] onnx;
        try
        {
            ModelZipInspector.Check(fullPath);
            using var zip = System.IO.Compression.ZipFile.OpenRead(fullPath);
            var dataEntry = zip.GetEntry(RecommenderStore.DataEntry);
            var onnxEntry = zip.GetEntry(RecommenderStore.OnnxEntry);
            if (dataEntry is null || onnxEntry is null)
                throw new InvalidDataException("it holds no recommender: save a model that contains a collaborative or sequential transformer with " +
                    "DeepRecServing.SaveModel (mlContext.Model.Save does not write one).");
            using (Stream s = dataEntry.Open()) data = RecommenderStore.Parse(ModelZipInspector.ReadEntry(s, dataEntry));
            using (Stream s = onnxEntry.Open()) onnx = ModelZipInspector.ReadEntry(s, onnxEntry);
            RecommenderStore.CheckGraph(Onnx.OnnxModelInspector.Read(onnx), data);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{fullPath}' could not be loaded as a DeepRec recommender: {e.Message}", e);
        }
        using var options = scoring.GpuDeviceId is int gpu
            ? Microsoft.ML.OnnxRuntime.SessionOptions.MakeSessionOptionWithCudaProvider(gpu)
            : new Microsoft.ML.OnnxRuntime.SessionOptions();
        try
        {
            return new DeepRecRecommender(data, new Microsoft.ML.OnnxRuntime.InferenceSession(onnx, options));
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            throw new InvalidDataException($"'{fullPath}': ONNX Runtime could not load the recommender graph: {e.Message}", e);
        }
    }
}
