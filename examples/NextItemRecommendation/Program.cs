// NextItemRecommendation: SASRec (self-attentive sequential recommendation) predicts a user's next item from the order
// of their history. Leave-one-out split, training with early stopping, HR@10 / NDCG@10 against a popularity ranking,
// then the model is saved as an ML.NET chain that takes item ids and returns item ids, reloaded, and asked for the next
// items of a live history through a PredictionEngine.
//   dotnet run --project examples/NextItemRecommendation -c Release                      # generated sequences
//   dotnet run --project examples/NextItemRecommendation -c Release -- path/Video.txt    # a `user item` file (SASRec format)
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MLNet.DeepRec;
using MLNet.DeepRec.Evaluation;
using NextItemRecommendation;
using static NextItemRecommendation.NextItemRecommender;

// Numbers print with '.' whatever the machine's locale.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string? path = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal));
int epochs = args.Contains("--quick") ? 5 : 30;
const int seed = 42;

var mlContext = new MLContext(seed);
// One progress line per epoch: the trainer logs through ML.NET's channels like ML.NET's own trainers.
mlContext.Log += (_, e) =>
{
    if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info && e.Message.Contains("Epoch", StringComparison.Ordinal))
        Console.WriteLine($"    {e.Message[(e.Message.IndexOf("] ", StringComparison.Ordinal) + 2)..]}");
};

// Both sources are `user item` lines, each user's lines in time order; the loader numbers them 0, 1, 2, … per user.
IReadOnlyDictionary<string, string>? plantedSuccessor = null;
string file = path ?? Path.Combine(AppContext.BaseDirectory, "synthetic-sequences.txt");
if (path is null)
    plantedSuccessor = SyntheticSequences.Write(file, seed: seed);
IDataView log = mlContext.DeepRec().Data.LoadUserItemSequences(file);
Splits data = Split(mlContext, log);
Console.WriteLine(path is null
    ? $"Data: generated sequences with a planted next item ({Path.GetFileName(file)}, seed {seed})"
    : $"Data: {Path.GetFileName(file)}");
Console.WriteLine("Protocol: leave-one-out (last item per user = test, second last = validation), K = 10");
Console.WriteLine();

var trainer = SasRec(mlContext, smallModel: path is null, epochs, seed);
Console.WriteLine(path is null
    ? "Training SASRec (small: 1 block, hidden 32, histories up to 20 items; sampled softmax with 100 negatives)…"
    : "Training SASRec (the paper's: 2 blocks, hidden 50, histories up to 50 items; sampled softmax with 100 negatives)…");
var watch = Stopwatch.StartNew();
using var model = trainer.Fit(data.Train, data.Validation);
double trainSeconds = watch.Elapsed.TotalSeconds;

// The test item is scored with the training and validation items as history (the paper's test input).
using var scorer = (IDisposable)model.CreateScorer(data.Train, data.Validation);
var popularity = mlContext.DeepRec().Evaluation.PopularityBaseline(data.Train, "UserKey", "ItemKey");
var results = new List<(string Name, TopKMetrics Sampled, TopKMetrics Full, double Seconds)>();
void Add(string name, IItemScorer s, double seconds) =>
    results.Add((name, Evaluate(mlContext, s, data, RankingProtocol.Sampled), Evaluate(mlContext, s, data, RankingProtocol.FullRanking), seconds));
Add("Popularity", popularity, 0);
Add("SASRec", (IItemScorer)scorer, trainSeconds);
Console.WriteLine();
Console.WriteLine($"Test metrics, {results[0].Sampled.CaseCount} users, {results[0].Sampled.ItemCount} items (sampled: the test item among 100 items the user has not seen; full: among all items):");
Console.WriteLine($"  {"",-11} {"sampled",16}   {"full ranking",16}");
Console.WriteLine($"  {"Model",-11} {"HR@10",7} {"NDCG@10",8}   {"HR@10",7} {"NDCG@10",8}  {"train s",8}");
foreach (var r in results)
    Console.WriteLine($"  {r.Name,-11} {r.Sampled.HitRate,7:F4} {r.Sampled.Ndcg,8:F4}   {r.Full.HitRate,7:F4} {r.Full.Ndcg,8:F4}  {r.Seconds,8:F1}");

// Save the serving chain (ids → keys → SASRec → ids) and score a live history through the consumption code.
var serving = BuildServingModel(mlContext, model);
mlContext.Model.Save(serving, mlContext.Data.LoadFromEnumerable(new List<ModelInput>()).Schema, MLNetModelPath);

// A live history: the first test user's training + validation items, in order; their test item is what came next.
var events = mlContext.Data.CreateEnumerable<Event>(log, reuseRowObject: false).ToList();
Event next = mlContext.Data.CreateEnumerable<Event>(data.Test, reuseRowObject: false).First();
string[] history = events.Where(e => e.UserId == next.UserId && e.Timestamp < next.Timestamp).OrderBy(e => e.Timestamp).Select(e => e.ItemId).ToArray();

ModelOutput prediction = Predict(new ModelInput { History = history, ItemId = next.ItemId });
var inMemory = model.Recommend(history, k: 10);
Console.WriteLine();
Console.WriteLine($"Saved to {Path.GetFileName(MLNetModelPath)} and reloaded. Live history of {next.UserId} ({history.Length} items, last 5): {string.Join(" → ", history.TakeLast(5))}");
Console.WriteLine($"  Predict → top 5 next items: {string.Join(", ", prediction.TopKItemIds.Zip(prediction.TopKScores).Take(5).Select(p => $"{p.First} ({p.Second:F2})"))}");
Console.WriteLine($"  In-memory model.Recommend gives the same top 10: {inMemory.Select(r => r.ItemId).SequenceEqual(prediction.TopKItemIds)}");
int rank = Array.IndexOf(prediction.TopKItemIds, next.ItemId);
Console.WriteLine($"  Actual next item: {next.ItemId}, score {prediction.Score:F2}, {(rank >= 0 ? $"rank {rank + 1} of the top 10" : "not in the top 10")}");
if (plantedSuccessor != null)
    Console.WriteLine($"  Planted successor of {history[^1]}: {plantedSuccessor[history[^1]]}");

/// <summary>One row of the loaded log (LoadUserItemSequences' columns).</summary>
internal sealed class Event
{
    public string UserId { get; set; } = "";
    public string ItemId { get; set; } = "";
    public double Timestamp { get; set; }
}
