// ContextAwareRecommendation: the factorization-machine family on context-aware data (user, app, time of day, weekday,
// weather → did the user open the app?). Trains FM (= NFM-0), NFM and AFM from MLNet.DeepRec next to ML.NET's logistic
// regression and field-aware FM, evaluates them with ML.NET's binary classification evaluator, shows what AFM's
// attention explains, then saves the NFM pipeline, reloads it and predicts with a PredictionEngine.
//   dotnet run --project examples/ContextAwareRecommendation -c Release                     # generated data
//   dotnet run --project examples/ContextAwareRecommendation -c Release -- usage.csv        # your CSV, ModelInput's columns
//   dotnet run --project examples/ContextAwareRecommendation -c Release -- frappe.libfm     # a libFM file (e.g. frappe)
//       [--fields User,Item,…]  names for the libFM fields, in line order (default Field0, Field1, …)
//   --quick: at most 5 epochs per model instead of 30
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;
using ContextAwareRecommendation;
using static ContextAwareRecommendation.ContextAwareRecommender;

// Numbers print with '.' whatever the machine's locale.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string? fieldNames = args.SkipWhile(a => a != "--fields").Skip(1).FirstOrDefault();
string? path = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || args[i - 1] != "--fields")).FirstOrDefault();
int epochs = args.Contains("--quick") ? 5 : 30;
const int seed = 42;

var mlContext = new MLContext(seed);
// One progress line per epoch: the trainers log through ML.NET's channels like ML.NET's own trainers.
mlContext.Log += (_, e) =>
{
    if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info && e.Message.Contains("Epoch", StringComparison.Ordinal))
        Console.WriteLine($"    {e.Message[(e.Message.IndexOf("] ", StringComparison.Ordinal) + 2)..]}");
};

Dataset data;
if (path is null)
{
    // Written next to the executable, then read exactly as your own CSV would be.
    string csv = Path.Combine(AppContext.BaseDirectory, "app-usage.csv");
    SyntheticAppUsage.WriteCsv(csv, seed: seed);
    data = LoadCsv(mlContext, csv, $"generated app-usage log with planted context interactions ({Path.GetFileName(csv)}, seed {seed})", seed);
}
else if (path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
    data = LoadCsv(mlContext, path, Path.GetFileName(path), seed);
else
    data = LoadLibFm(mlContext, path, fieldNames?.Split(','), seed);
Console.WriteLine($"Data: {data.Description}");
Console.WriteLine($"Fields: {string.Join(", ", data.Fields)}; label: {LabelColumn}. Rows: {Count(data.Train)} train, {Count(data.Validation)} validation, {Count(data.Test)} test");
Console.WriteLine();

var results = new List<(string Name, CalibratedBinaryClassificationMetrics Metrics, double Seconds)>();
T Run<T>(string name, string description, Func<T> train) where T : ITransformer
{
    Console.WriteLine($"Training {description}…");
    var watch = Stopwatch.StartNew();
    T model = train();
    double seconds = watch.Elapsed.TotalSeconds;
    results.Add((name, Evaluate(mlContext, model, data), seconds));
    return model;
}

Run("Logistic regression", "logistic regression (ML.NET, one-hot fields, no interactions)", () => TrainLogisticRegression(mlContext, data));
Run("ML.NET FFM", "field-aware FM (ML.NET)", () => TrainFieldAwareFm(mlContext, data));
var fm = Run("FM", "FM (NFM-0: NFM without hidden layers)", () => Train(mlContext, data, Fm(mlContext, data, epochs, seed)));
var nfm = Run("NFM", "NFM (bi-interaction pooling + one hidden layer)", () => Train(mlContext, data, Nfm(mlContext, data, epochs, seed)));
var afm = Run("AFM", "AFM (attention over feature pairs, embeddings initialised from the FM)", () => Train(mlContext, data, Afm(mlContext, data, fm.LastTransformer, epochs, seed)));

Console.WriteLine();
Console.WriteLine($"Test metrics — binary classification, {Count(data.Test)} test rows:");
Console.WriteLine($"  {"Model",-20} {"AUC",7} {"LogLoss",8} {"Accuracy",9} {"train s",8}");
foreach (var r in results)
    Console.WriteLine($"  {r.Name,-20} {r.Metrics.AreaUnderRocCurve,7:F4} {r.Metrics.LogLoss,8:F4} {r.Metrics.Accuracy,9:F4} {r.Seconds,8:F1}");

// AFM's attention: which feature pairs did the scores rest on? (Explain runs the TorchSharp network, in memory.)
// The chain is (key mapping, AFM): Explain reads the key columns, so the test rows go through the key mapping first.
IReadOnlyList<AfmExplanation> explained = afm.LastTransformer.Explain(afm.First().Transform(data.Test), maxRows: 1000);
Console.WriteLine();
Console.WriteLine($"AFM: field pairs by mean |contribution| to the score over {explained.Count} test rows (mean attention weight):");
foreach (var (pair, contribution, weight) in FieldPairImportance(explained).Take(10))
    Console.WriteLine($"  {pair,-20} {contribution,7:F3}  ({weight:F3})");
AfmExplanation row = explained[0];
var features = row.Pairs.SelectMany(p => new[] { (p.FirstColumn, p.FirstFeature), (p.SecondColumn, p.SecondFeature) }).Distinct()
    .OrderBy(f => Array.IndexOf(data.Fields, f.Item1)).Select(f => f.Item2);
Console.WriteLine($"AFM on test row {row.Row} ({string.Join(", ", features)}): probability {1 / (1 + Math.Exp(-row.Score)):F3}; top pairs:");
foreach (var pair in row.Pairs.OrderByDescending(p => Math.Abs(p.Contribution)).Take(4))
    Console.WriteLine($"  {pair.FirstFeature} × {pair.SecondFeature}: attention {pair.Weight:F3}, contribution {pair.Contribution:F3}");

// Save the NFM chain (key mapping + NFM), load it back in a fresh context and compare on the whole test split.
// DeepRecServing.LoadModel is what a scoring service calls: it registers the DeepRec score mappings, then Model.Load.
mlContext.Model.Save(nfm, data.Train.Schema, MLNetModelPath);
ITransformer reloaded = DeepRecServing.LoadModel(new MLContext(), MLNetModelPath);
float[] before = nfm.Transform(data.Test).GetColumn<float>("Probability").ToArray();
float[] after = reloaded.Transform(data.Test).GetColumn<float>("Probability").ToArray();
Console.WriteLine();
Console.WriteLine($"Saved NFM to {Path.GetFileName(MLNetModelPath)} and reloaded it: max |probability difference| over {after.Length} test rows = {before.Zip(after, (a, b) => Math.Abs(a - b)).Max():G3}");

if (!data.Categorical)
{
    Console.WriteLine("(The ModelInput/Predict demo needs the CSV columns; skipped for libFM data.)");
    return;
}

// Model Builder-style consumption (ContextAwareRecommendation.consumption.cs): Predict on the reloaded model.
var first = mlContext.Data.CreateEnumerable<ModelInput>(data.Test, reuseRowObject: false).First();
ModelOutput prediction = Predict(first);
using var inMemory = mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(nfm);
Console.WriteLine($"Predict({Describe(first)}) → probability {prediction.Probability:F4} (in-memory model: {inMemory.Predict(first).Probability:F4}; actual: {(first.Used ? "used" : "not used")})");

// A context-aware ranking: the same user's best apps in two different contexts.
string[] apps = data.Train.GetColumn<string>("App").Distinct().Order(StringComparer.Ordinal).ToArray();
foreach (var (dayTime, weekday, weather) in new[] { ("morning", "mon", "sunny"), ("night", "sat", "rainy") })
{
    var top = apps.Select(a => (App: a, Predict(new ModelInput { User = first.User, App = a, DayTime = dayTime, Weekday = weekday, Weather = weather }).Probability))
        .OrderByDescending(t => t.Probability).Take(5);
    Console.WriteLine($"Top 5 apps for {first.User} ({dayTime}, {weekday}, {weather}): {string.Join(", ", top.Select(t => $"{t.App} ({t.Probability:F2})"))}");
}

static string Describe(ModelInput r) => $"{r.User}, {r.App}, {r.DayTime}, {r.Weekday}, {r.Weather}";

static long Count(IDataView view)
{
    long n = 0;
    using var cursor = view.GetRowCursor(Array.Empty<DataViewSchema.Column>());
    while (cursor.MoveNext()) n++;
    return n;
}
