// MovieRecommendation: trains NeuMF and a dot-product MF baseline inside ML.NET pipelines and compares them with a
// popularity ranking under the NCF paper's protocol (leave-one-out, the held-out item among 99 sampled negatives).
//   dotnet run --project examples/MovieRecommendation -c Release                 # embedded synthetic data
//   dotnet run --project examples/MovieRecommendation -c Release -- path/u.data  # MovieLens u.data / ratings.dat / ratings.csv
//   dotnet run --project examples/MovieRecommendation -c Release -- --ratings [path/u.data]
//       rating prediction as in ML.NET's movie-recommendation tutorial (RMSE/MAE with Regression.Evaluate)
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MLNet.DeepRec;
using MLNet.DeepRec.Data;
using MovieRecommendation;

// Numbers print with '.' whatever the machine's locale.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string? path = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal));
int epochs = args.Contains("--quick") ? 5 : 20;
const int seed = 42;

var mlContext = new MLContext(seed);
// One progress line per epoch: the trainers log through ML.NET's channels like ML.NET's own trainers.
mlContext.Log += (_, e) =>
{
    if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info && e.Message.Contains("Epoch", StringComparison.Ordinal))
        Console.WriteLine($"    {e.Source.Split(";")[0],-5} {e.Message[(e.Message.IndexOf("] ", StringComparison.Ordinal) + 2)..]}");
};

if (args.Contains("--ratings"))
{
    IDataView ratings = path is null
        ? mlContext.DeepRec().Data.GenerateSyntheticInteractions(new SyntheticInteractionOptions { Seed = seed, Ratings = true })
        : mlContext.DeepRec().Data.LoadMovieLens(path);
    RatingPrediction.Run(mlContext, ratings, path is null ? $"synthetic 1–5 ratings with planted taste structure (seed {seed})" : Path.GetFileName(path),
        args.Contains("--quick") ? 8 : 25, seed);
    return;
}

IDataView interactions;
string dataName;
if (path is null)
{
    var options = new SyntheticInteractionOptions { Seed = seed };
    interactions = mlContext.DeepRec().Data.GenerateSyntheticInteractions(options);
    dataName = $"synthetic interactions with planted taste structure ({options.UserCount} users, {options.ItemCount} items, seed {seed})";
}
else
{
    interactions = mlContext.DeepRec().Data.LoadMovieLens(path);
    dataName = Path.GetFileName(path);
}
var split = mlContext.DeepRec().Data.LeaveOneOutSplit(interactions, holdOutValidation: true);
Console.WriteLine($"Data: {dataName}");
Console.WriteLine($"Protocol: leave-one-out (latest interaction per user = test, second latest = validation), sampled ranking with 99 negatives, K = 10");
Console.WriteLine();

var results = new List<(string Name, double Hr, double Ndcg, double Seconds)>();

Console.WriteLine("Training MF (dot product, BCE, 32 factors)…");
var watch = Stopwatch.StartNew();
var (keys, mf) = MovieRecommender.Train(mlContext, interactions, split.Train, split.Validation!, MovieRecommender.MatrixFactorization(mlContext, epochs, seed));
var mfMetrics = MovieRecommender.Evaluate(mlContext, keys, mf.LastTransformer, split.Train, split.Test);
results.Add(("MF", mfMetrics.HitRate, mfMetrics.Ndcg, watch.Elapsed.TotalSeconds));

Console.WriteLine("Training NeuMF (GMF 16 factors + MLP 64-32-16)…");
watch.Restart();
var (_, neumf) = MovieRecommender.Train(mlContext, interactions, split.Train, split.Validation!, MovieRecommender.NeuMF(mlContext, epochs, seed));
var neumfMetrics = MovieRecommender.Evaluate(mlContext, keys, neumf.LastTransformer, split.Train, split.Test);
results.Add(("NeuMF", neumfMetrics.HitRate, neumfMetrics.Ndcg, watch.Elapsed.TotalSeconds));

var popularity = mlContext.DeepRec().Evaluation.PopularityBaseline(keys.Transform(split.Train), "UserKey", "ItemKey");
var popMetrics = MovieRecommender.Evaluate(mlContext, keys, popularity, split.Train, split.Test);
results.Add(("Popularity", popMetrics.HitRate, popMetrics.Ndcg, 0));

Console.WriteLine();
Console.WriteLine($"Test metrics — {neumfMetrics.Protocol} protocol ({neumfMetrics.NegativesPerPositive} negatives), {neumfMetrics.CaseCount} users:");
Console.WriteLine($"  {"Model",-11} {"HR@10",7} {"NDCG@10",8} {"train s",8}");
foreach (var r in results)
    Console.WriteLine($"  {r.Name,-11} {r.Hr,7:F4} {r.Ndcg,8:F4} {r.Seconds,8:F1}");

// Save the whole chain (key mapping + NeuMF), then score through the Model Builder-style consumption code.
mlContext.Model.Save(neumf, split.Train.Schema, MovieRecommender.MLNetModelPath);
string someUser = neumf.LastTransformer.Vocabulary.UserId(1)!;
var top = neumf.LastTransformer.Recommend(someUser, 5);
Console.WriteLine();
Console.WriteLine($"Top 5 for user {someUser} (seen items excluded): {string.Join(", ", top.Select(t => $"{t.ItemId} ({t.Score:F2})"))}");
var prediction = MovieRecommender.Predict(new MovieRecommender.ModelInput { UserId = someUser, ItemId = top[0].ItemId! });
Console.WriteLine($"Saved model reloaded from {Path.GetFileName(MovieRecommender.MLNetModelPath)}: Predict({someUser}, {top[0].ItemId}) → Score {prediction.Score:F3}, Probability {prediction.Probability:F3}");
