// Benchmark program (not a unit test): every figure in docs/benchmarks.md comes from here. Rerun:
//   dotnet run --project test/MLNet.DeepRec.Benchmarks -c Release -- [--suite NAME[,NAME]] [--quick] [--output docs/benchmarks.md]
//   [--shared ../shared/datasets] [--threads N]
// Each suite prints a markdown section and, with --output, replaces its own section of that file.
using System.Globalization;
using Microsoft.ML;
using MLNet.DeepRec;
using MLNet.DeepRec.Benchmarks;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var context = new BenchmarkContext(args);
if (context.Arg("--threads") is string threads) TorchSharp.torch.set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));
if (args.Contains("--overhead"))
{
    // Our pipeline and the minimal loops back to back on the same synthetic data size, for profiling the overhead.
    var ml = new Microsoft.ML.MLContext(1);
    var syn = ml.DeepRec().Data.GenerateSyntheticInteractions(new MLNet.DeepRec.Data.SyntheticInteractionOptions { UserCount = 943, ItemCount = 1682, InteractionsPerUser = 100, Seed = 1 });
    var keyed = ml.Transforms.Conversion.MapValueToKey("UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemId")).Fit(syn).Transform(syn);
    for (int rep = 0; rep < 2; rep++)
    {
        using var gmf = ml.DeepRec().Trainers.Gmf(new MLNet.DeepRec.Trainers.GmfTrainer.Options { NumberOfEpochs = 3 }).Fit(keyed);
        foreach (var e in gmf.TrainingReport.Epochs) Console.WriteLine($"GMF epoch {e.Epoch}: {e.TrainSeconds:F3} s (data {e.DataSeconds:F3} s), {e.SamplesPerSecond:N0} samples/s");
        long n = (long)(gmf.TrainingReport.Epochs[0].SamplesPerSecond * gmf.TrainingReport.Epochs[0].TrainSeconds);
        Console.WriteLine($"minimal fused: {MinimalLoop.SamplesPerSecond("GMF", 943, 1682, n, 256, 1, fusedAdam: true):N0}");
    }
    return 0;
}
if (args.Contains("--minimal-only"))
{
    foreach (var m in new[] { "MF", "GMF", "MLP", "NeuMF" })
        foreach (int batch in new[] { 256, 1024 })
            Console.WriteLine($"{m} batch {batch}: TorchSharp Adam {MinimalLoop.SamplesPerSecond(m, 943, 1682, 400_000, batch, 1):N0} samples/s, fused flat Adam {MinimalLoop.SamplesPerSecond(m, 943, 1682, 400_000, batch, 1, fusedAdam: true):N0} samples/s");
    return 0;
}

var suites = typeof(IBenchmarkSuite).Assembly.GetTypes()
    .Where(t => typeof(IBenchmarkSuite).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
    .Select(t => (IBenchmarkSuite)Activator.CreateInstance(t)!)
    .OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
var wanted = context.Arg("--suite")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
if (wanted != null && wanted.Except(suites.Select(s => s.Name)).FirstOrDefault() is string unknown)
{
    Console.Error.WriteLine($"Unknown suite '{unknown}'. Available: {string.Join(", ", suites.Select(s => s.Name))}.");
    return 2;
}
foreach (var suite in suites.Where(s => wanted == null || wanted.Contains(s.Name)))
{
    Console.WriteLine($"=== {suite.Name} ===");
    string? section = suite.Run(context);
    if (section == null) continue;
    Console.WriteLine();
    Console.WriteLine(section);
    if (context.Arg("--output") is string output) Report.ReplaceSection(output, suite.Name, section);
}
return 0;
