using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;

/// <summary>Probes about the process as a whole: native libraries that are missing, files left behind at exit.</summary>
internal static class RuntimeProbes
{
    /// <summary>
    /// Fits a small MF model and reports how many epochs were logged before it finished or failed. Run from a copy of
    /// this program's output with a native library deleted, it shows whether <c>Fit</c> fails before training.
    /// </summary>
    public static int FitTiny()
    {
        var ml = new MLContext(0);
        int epochsLogged = 0;
        ml.Log += (_, e) =>
        {
            if (e.Message.Contains("Epoch ", StringComparison.Ordinal)) Interlocked.Increment(ref epochsLogged);
        };
        IDataView data = TinyData(ml);
        try
        {
            using var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
            {
                UserIdColumnName = nameof(KeyRow.UserId), ItemIdColumnName = nameof(KeyRow.ItemId), NumberOfEpochs = 3, Seed = 1,
            }).Fit(data);
            float score = model.Transform(data).GetColumn<float>("Score").First();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"result=trained epochs_logged={epochsLogged} first_score={score}"));
            return 0;
        }
        catch (Exception e)
        {
            Console.WriteLine($"result=failed epochs_logged={epochsLogged} error_type={e.GetType().Name}");
            Console.WriteLine("message: " + e.Message.ReplaceLineEndings(" "));
            return 1;
        }
    }

    /// <summary>
    /// Trains, saves and loads models and exits without disposing anything: whatever temporary files remain in the temp
    /// folder (TMPDIR) afterwards were left behind. With "kill", it stops itself with SIGKILL instead of exiting, which
    /// skips every exit handler; the next process must then clean up.
    /// </summary>
    public static int Litter(string modelPath, bool kill)
    {
        var ml = new MLContext(0);
        IDataView data = TinyData(ml);
        var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = nameof(KeyRow.UserId), ItemIdColumnName = nameof(KeyRow.ItemId), NumberOfEpochs = 1, Seed = 1,
        }).Fit(data);
        DeepRecServing.SaveModel(ml, model, data.Schema, modelPath);
        ITransformer loaded = DeepRecServing.LoadModel(new MLContext(), modelPath);
        float score = loaded.Transform(data).GetColumn<float>("Score").First();
        int files = Directory.EnumerateFileSystemEntries(Path.GetTempPath(), "*", SearchOption.AllDirectories).Count();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"result=ok temp_entries_before_exit={files} first_score={score}"));
        Console.Out.Flush();
        if (kill) System.Diagnostics.Process.GetCurrentProcess().Kill();
        GC.KeepAlive(model);
        GC.KeepAlive(loaded);
        return 0;
    }

    /// <summary>
    /// Trains MF and NeuMF on CUDA device 0 with no CPU fallback, then scores through ONNX Runtime: what build/gpu-check.sh
    /// runs when this program was built against a CUDA build of libtorch. Exit code 3 when libtorch has no CUDA here.
    /// </summary>
    public static int TrainOnGpu()
    {
        bool cuda = TorchSharp.torch.cuda.is_available();
        Console.WriteLine($"cuda_available={cuda} cuda_devices={(cuda ? TorchSharp.torch.cuda.device_count() : 0)}");
        if (!cuda)
        {
            Console.WriteLine("result=no-cuda");
            return 3;
        }
        // FallbackToCpu also governs ONNX scoring, which may stay on the CPU (ONNX Runtime's CUDA build needs CUDA 13,
        // libtorch's is CUDA 12.8); that training ran on the GPU is checked by the absence of the training fallback warning.
        var ml = new MLContext(0) { GpuDeviceId = 0, FallbackToCpu = true };
        var log = new List<string>();
        var warnings = new List<string>();
        ml.Log += (_, e) =>
        {
            if (e.Message.Contains("Epoch ", StringComparison.Ordinal)) lock (log) log.Add(e.Message);
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message);
        };
        IDataView data = TinyData(ml);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var mf = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
        {
            UserIdColumnName = nameof(KeyRow.UserId), ItemIdColumnName = nameof(KeyRow.ItemId), NumberOfEpochs = 3, Seed = 1,
        }).Fit(data);
        using var neumf = ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = nameof(KeyRow.UserId), ItemIdColumnName = nameof(KeyRow.ItemId), NumberOfEpochs = 3, Seed = 1,
        }).Fit(data);
        // LightGCN's graph is libtorch's sparse COO matrix on a GPU (the CSR loop is CPU-only); edge dropout reweights it per step.
        using var lightGcn = ml.DeepRec().Trainers.LightGcn(new LightGcnTrainer.Options
        {
            UserIdColumnName = nameof(KeyRow.UserId), ItemIdColumnName = nameof(KeyRow.ItemId), NumberOfEpochs = 3, Seed = 1, EdgeDropout = 0.2,
        }).Fit(data);
        float mfScore = mf.Transform(data).GetColumn<float>("Score").First();
        float neumfScore = neumf.Transform(data).GetColumn<float>("Score").First();
        float lightGcnScore = lightGcn.Transform(data).GetColumn<float>("Score").First();
        foreach (string line in log) Console.WriteLine("log: " + line);
        foreach (string line in warnings) Console.WriteLine("warning: " + line);
        bool trainedOnGpu = !warnings.Any(w => w.Contains("training on the CPU", StringComparison.Ordinal));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"result=trained trained_on_gpu={trainedOnGpu} seconds={watch.Elapsed.TotalSeconds:F1} mf_score={mfScore} neumf_score={neumfScore} lightgcn_score={lightGcnScore} epochs_logged={log.Count}"));
        return trainedOnGpu && float.IsFinite(mfScore) && float.IsFinite(neumfScore) && float.IsFinite(lightGcnScore) && log.Count == 9 ? 0 : 1;
    }

    private static IDataView TinyData(MLContext ml)
    {
        var random = new Random(3);
        return ml.Data.LoadFromEnumerable(Enumerable.Range(0, 400).Select(_ => new KeyRow
        {
            UserId = (uint)random.Next(1, 41),
            ItemId = (uint)random.Next(1, 31),
        }).ToArray());
    }

    private sealed class KeyRow
    {
        [KeyType(40)] public uint UserId { get; set; }
        [KeyType(30)] public uint ItemId { get; set; }
    }
}
