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
            using var model = ml.DeepRec().Trainers.MatrixFactorization(new MatrixFactorizationTrainer.Options
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
        var model = ml.DeepRec().Trainers.MatrixFactorization(new MatrixFactorizationTrainer.Options
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
