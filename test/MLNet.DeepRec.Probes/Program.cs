// Probes run by tests in a child process (dotnet MLNet.DeepRec.Probes.dll <probe> ...); each prints one line of
// "key=value" pairs that the test parses. Peak memory is the process's VmHWM, so nothing else may run in this process.
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Trainers;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string probe = args.Length > 0 ? args[0] : "";
switch (probe)
{
    case "baseline":
        // The same libraries loaded and initialised, no fit: what every probe pays before it starts.
        _ = TorchSharp.torch.zeros(1);
        _ = new MLContext(0).Data.LoadFromEnumerable(new[] { new Row { UserId = 1, ItemId = 1 } }).Preview();
        Report(("peak_mb", PeakMegabytes()));
        return 0;
    case "declared-keys":
        return DeclaredKeys(int.Parse(args[1], CultureInfo.InvariantCulture), args[2]);
    case "fit-tiny":
        return RuntimeProbes.FitTiny();
    case "train-gpu":
        return RuntimeProbes.TrainOnGpu();
    case "litter":
        return RuntimeProbes.Litter(args[1], kill: args.Length > 2 && args[2] == "kill");
    case "fuzz": return Fuzz.Run(args[1..]);
    case "full-ranking":
        return FullRanking(int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture));
    default:
        Console.Error.WriteLine("usage: MLNet.DeepRec.Probes baseline | declared-keys ROWS MODEL_PATH | fit-tiny | train-gpu | litter MODEL_PATH [kill] | fuzz ... | full-ranking USERS ITEMS");
        return 2;
}

// Key types that declare 5,000,000 users and items, of which ROWS rows use a few: model memory and file size must
// follow the keys that occur.
static int DeclaredKeys(int rows, string modelPath)
{
    var ml = new MLContext(0);
    var random = new Random(1);
    var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(_ => new Row
    {
        UserId = (uint)random.Next(1, 5_000_001) % 40 + 1 + 4_999_000,
        ItemId = (uint)random.Next(1, 5_000_001),
    }).ToArray());
    using var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options
    {
        UserIdColumnName = nameof(Row.UserId),
        ItemIdColumnName = nameof(Row.ItemId),
        NumberOfEpochs = 2,
        Seed = 1,
    }).Fit(data);
    var scored = model.Transform(data);
    float first = scored.GetColumn<float>("Score").First();
    ml.Model.Save(model, data.Schema, modelPath);
    Report(("peak_mb", PeakMegabytes()), ("trained_users", model.TrainedUserCount), ("trained_items", model.TrainedItemCount),
        ("model_bytes", new FileInfo(modelPath).Length), ("first_score", first));
    return 0;
}

// Full-ranking top-K evaluation of an MF (one epoch) on synthetic data of USERS × ITEMS, 20 interactions per user, 20%
// held out: the time of the evaluation and the peak memory of the process, to see them follow users × items in
// bounded batches (a manual scale check, not run by the tests).
static int FullRanking(int users, int items)
{
    var ml = new MLContext(0);
    var all = ml.DeepRec().Data.GenerateSyntheticInteractions(new SyntheticInteractionOptions { UserCount = users, ItemCount = items, InteractionsPerUser = 20, Seed = 1, KeyTypedIds = true });
    var split = ml.DeepRec().Data.RandomSplit(all, testFraction: 0.2, seed: 1, userIdColumnName: "UserId");
    using var model = ml.DeepRec().Trainers.MatrixFactorization(new BiasedMatrixFactorizationTrainer.Options { NumberOfEpochs = 1, Seed = 1 }).Fit(split.Train);
    double before = PeakMegabytes();
    var watch = System.Diagnostics.Stopwatch.StartNew();
    var metrics = ml.DeepRec().Evaluation.EvaluateTopK(model, split.Test, split.Train, new MLNet.DeepRec.Evaluation.TopKEvaluationOptions { Protocol = MLNet.DeepRec.Evaluation.RankingProtocol.FullRanking, K = 20 });
    Report(("users", users), ("items", items), ("eval_s", Math.Round(watch.Elapsed.TotalSeconds, 2)), ("peak_mb_before_eval", before), ("peak_mb", PeakMegabytes()), ("ndcg20", Math.Round(metrics.Ndcg, 4)));
    return 0;
}

static double PeakMegabytes()
{
    foreach (string line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    return double.NaN;
}

static void Report(params (string Key, object Value)[] values) =>
    Console.WriteLine(string.Join(" ", values.Select(v => $"{v.Key}={Convert.ToString(v.Value, CultureInfo.InvariantCulture)}")));

internal sealed class Row
{
    [KeyType(5_000_000)] public uint UserId { get; set; }
    [KeyType(5_000_000)] public uint ItemId { get; set; }
}
