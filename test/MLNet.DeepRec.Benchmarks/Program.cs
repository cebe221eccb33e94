// Benchmark program (not a unit test): every figure in docs/benchmarks.md comes from here. Rerun:
//   dotnet run --project test/MLNet.DeepRec.Benchmarks -c Release -- [--suite NAME[,NAME]] [--quick] [--output docs/benchmarks.md]
//   [--shared ../shared/datasets] [--threads N]
// Each suite prints a markdown section and, with --output, replaces its own section of that file.
using System.Globalization;
using MLNet.DeepRec.Benchmarks;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var context = new BenchmarkContext(args);
if (context.Arg("--threads") is string threads) TorchSharp.torch.set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));
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
