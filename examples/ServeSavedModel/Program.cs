// Loads a DeepRec model zip (saved with mlContext.Model.Save, MapValueToKey steps included) and scores (user, item) pairs
// with a PredictionEngine, in a process that never initialises TorchSharp. Then reports which native libraries the
// process has mapped, to show that libtorch / LibTorchSharp were never loaded.
//
//   dotnet run --project examples/ServeSavedModel -c Release -- model.zip u1:i7 u2:i3 [--user-column UserId] [--item-column ItemId] [--gpu 0] [--top 10]
//
// --top K also prints each user's top-K items from the zip (DeepRecServing.LoadRecommender: ONNX Runtime only), for a
// zip written by DeepRecServing.SaveModel.
//
// --gpu N scores on CUDA device N when the project references Microsoft.ML.OnnxRuntime.Gpu instead of
// Microsoft.ML.OnnxRuntime; with the CPU package it logs a warning and scores on the CPU (FallbackToCpu = true).
//
// Output lines are tab-separated so that a test can parse them:
//   PREDICTION <user> <item> <Score> <Probability>        (round-trip float formatting)
//   RECOMMENDATION <user> <rank> <item> <Score>           (with --top K: rank 1..K, best first)
//   NATIVE <path>                                          (each native library of interest mapped in the process)
//   TORCH_NATIVE_LOADED true|false
//   TORCHSHARP_MANAGED_ASSEMBLY_LOADED true|false   (metadata only: ML.NET enumerates MLNet.DeepRec's types when it
//                                                    loads the custom mapping; no TorchSharp code runs)
using System.Globalization;
using Microsoft.ML;
using MLNet.DeepRec.Serving;
using ServeSavedModel;

if (args.Length < 1 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: ServeSavedModel <model.zip> [user:item ...] [--user-column UserId] [--item-column ItemId] [--gpu N] [--top K]");
    return 2;
}

string modelPath = args[0];
string userIdColumnName = Option(args, "--user-column") ?? "UserId";
string itemIdColumnName = Option(args, "--item-column") ?? "ItemId";
int? gpu = Option(args, "--gpu") is string g ? int.Parse(g, CultureInfo.InvariantCulture) : null;
int top = Option(args, "--top") is string t ? int.Parse(t, CultureInfo.InvariantCulture) : 0;
var pairs = args.Skip(1).Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && !IsOptionValue(args, i + 1))
    .Select(p => p.Split(':', 2)).Where(p => p.Length == 2).Select(p => (User: p[0], Item: p[1])).ToList();

if (Environment.GetEnvironmentVariable("SERVE_TRACE_ASSEMBLY_LOADS") == "1")
    AppDomain.CurrentDomain.AssemblyLoad += (_, e) => Console.Error.WriteLine($"loaded {e.LoadedAssembly.GetName().Name}:\n{Environment.StackTrace}");

var mlContext = new MLContext { GpuDeviceId = gpu, FallbackToCpu = true };
mlContext.Log += (_, e) =>
{
    if (e.Kind is Microsoft.ML.Runtime.ChannelMessageKind.Warning or Microsoft.ML.Runtime.ChannelMessageKind.Error)
        Console.Error.WriteLine($"{e.Kind}: {e.Message}");
};
ITransformer model;
try
{
    // Registers the DeepRec score mappings with the context and rethrows an unreadable file as InvalidDataException.
    model = DeepRecServing.LoadModel(mlContext, modelPath, out _);
}
catch (Exception e) when (e is InvalidDataException or FileNotFoundException or InvalidOperationException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

using var engine = PairScorer.Create(mlContext, model, userIdColumnName, itemIdColumnName);
foreach (var (user, item) in pairs)
{
    var (score, probability) = engine.Predict(user, item);
    Console.WriteLine(string.Join('\t', "PREDICTION", user, item,
        score.ToString("R", CultureInfo.InvariantCulture), probability.ToString("R", CultureInfo.InvariantCulture)));
}

if (top > 0)
{
    // Top-K for every user named in the pairs, in one batched call; an unknown user gets the average user's list.
    DeepRecRecommender recommender;
    try
    {
        recommender = DeepRecServing.LoadRecommender(mlContext, modelPath);
    }
    catch (InvalidDataException e)
    {
        Console.Error.WriteLine($"error: {e.Message}");
        return 1;
    }
    using (recommender)
    {
        string[] users = pairs.Select(p => p.User).Distinct().ToArray();
        var lists = recommender.Recommend(users, top);
        for (int u = 0; u < users.Length; u++)
            for (int r = 0; r < lists[u].Count; r++)
                Console.WriteLine(string.Join('\t', "RECOMMENDATION", users[u], (r + 1).ToString(CultureInfo.InvariantCulture),
                    lists[u][r].ItemId ?? lists[u][r].ItemKey.ToString(CultureInfo.InvariantCulture), lists[u][r].Score.ToString("R", CultureInfo.InvariantCulture)));
    }
}

var natives = NativeLibraries.Mapped();
foreach (string path in natives.Where(NativeLibraries.IsOfInterest))
    Console.WriteLine($"NATIVE\t{path}");
bool torchNative = natives.Any(NativeLibraries.IsTorch);
bool torchAssembly = AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "TorchSharp");
Console.WriteLine($"TORCH_NATIVE_LOADED\t{(torchNative ? "true" : "false")}");
Console.WriteLine($"TORCHSHARP_MANAGED_ASSEMBLY_LOADED\t{(torchAssembly ? "true" : "false")}");
return 0;

static string? Option(string[] args, string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static bool IsOptionValue(string[] args, int index) =>
    index > 0 && args[index - 1] is "--user-column" or "--item-column" or "--gpu" or "--top";
