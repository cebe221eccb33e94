using MLNet.DeepRec.Tests.Examples;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Packaging;

/// <summary>
/// The NuGet package as a new user gets it: the library is packed into a folder feed, and brand-new console apps outside
/// the repository reference only that package and the native packages the README's Install section names.
/// </summary>
/// <remarks>
/// The apps restore into a NuGet packages folder of their own (so a stale MLNet.DeepRec 0.2.0 in the user's cache can never
/// be tested instead of this build), with the user's global packages folder as a read-only fallback (so nothing already
/// downloaded is downloaded again).
/// </remarks>
[TestFixture]
[NonParallelizable]
[Category("Packaging")]
public sealed class PackageConsumerTests
{
    private const string InstallPackages = """
            <PackageReference Include="MLNet.DeepRec" Version="0.2.0" />
            <PackageReference Include="libtorch-cpu-linux-x64" Version="2.10.0" />
            <PackageReference Include="Microsoft.ML.OnnxRuntime" Version="1.31.1" />
        """;

    private string _root = "";
    private string _feed = "";

    [OneTimeSetUp]
    public void PackIntoAFolderFeed()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("The consumer apps reference the linux-x64 native packages.");
        _root = Path.Combine(Path.GetTempPath(), $"deeprec-package-{Guid.NewGuid():N}");
        _feed = Path.Combine(_root, "feed");
        Directory.CreateDirectory(_feed);
        string repository = RepositoryRoot();
        string configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        // --no-build: the library this test run was built with is what gets packed.
        var pack = Dotnet(repository, "pack", Path.Combine(repository, "src", "MLNet.DeepRec"), "-c", configuration, "--no-build", "-o", _feed);
        Assert.That(pack.ExitCode, Is.EqualTo(0), pack.Output);
        Assert.That(File.Exists(Path.Combine(_feed, "MLNet.DeepRec.0.2.0.nupkg")), Is.True, pack.Output);
        Assert.That(File.Exists(Path.Combine(_feed, "MLNet.DeepRec.0.2.0.snupkg")), Is.True, "symbols package");
    }

    [OneTimeTearDown]
    public void DeleteEverything()
    {
        if (_root.Length > 0 && Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Test]
    public void TheNuspecListsOnlyTheLibrarysOwnDependenciesAndItsMetadata()
    {
        using var package = System.IO.Compression.ZipFile.OpenRead(Path.Combine(_feed, "MLNet.DeepRec.0.2.0.nupkg"));
        string nuspec;
        using (var reader = new StreamReader(package.GetEntry("MLNet.DeepRec.nuspec")!.Open())) nuspec = reader.ReadToEnd();
        var dependencies = System.Text.RegularExpressions.Regex.Matches(nuspec, "<dependency id=\"([^\"]+)\"").Select(m => m.Groups[1].Value).Order().ToArray();
        Assert.That(dependencies, Is.EqualTo(new[] { "Google.Protobuf", "Microsoft.ML", "Microsoft.ML.OnnxRuntime.Managed", "Microsoft.ML.OnnxTransformer", "TorchSharp" }));
        Assert.That(nuspec, Does.Contain("<license type=\"expression\">MIT</license>"));
        Assert.That(nuspec, Does.Contain("<readme>README.md</readme>"));
        Assert.That(nuspec, Does.Contain("<repository type=\"git\" url=\""));
        Assert.That(nuspec, Does.Contain("<tags>"));
        Assert.That(nuspec, Does.Contain("<releaseNotes>"));
        string[] entries = package.Entries.Select(e => e.FullName).ToArray();
        Assert.That(entries, Does.Contain("README.md").And.Contain("LICENSE").And.Contain("lib/net10.0/MLNet.DeepRec.dll").And.Contain("lib/net10.0/MLNet.DeepRec.xml")
            .And.Contain("buildTransitive/net10.0/MLNet.DeepRec.targets").And.Contain("buildTransitive/net10.0/WeakenGlibcxxRequirement.cs"));
        Assert.That(entries.Where(e => e.StartsWith("buildTransitive/", StringComparison.Ordinal) && e.Count(c => c == '/') == 1), Is.Empty,
            "nothing framework-neutral under buildTransitive/, or net8.0 projects would restore the package");
        Assert.That(entries.Where(e => e.StartsWith("runtimes/", StringComparison.Ordinal)), Is.Empty, "no native binaries: the app picks them");

        // The symbols package holds the portable PDB with a SourceLink map to the repository's raw files at this commit.
        using var symbols = System.IO.Compression.ZipFile.OpenRead(Path.Combine(_feed, "MLNet.DeepRec.0.2.0.snupkg"));
        var pdb = symbols.GetEntry("lib/net10.0/MLNet.DeepRec.pdb");
        Assert.That(pdb, Is.Not.Null, "the PDB is in the .snupkg");
        using var pdbBytes = new MemoryStream();
        using (var stream = pdb!.Open()) stream.CopyTo(pdbBytes);
        string pdbText = System.Text.Encoding.UTF8.GetString(pdbBytes.ToArray());
        Assert.That(pdbText, Does.Match(@"\{""documents"":\{""[^""]+"":""https://raw\.githubusercontent\.com/[^""]+/[0-9a-f]{40}/\*""\}\}"),
            "SourceLink JSON in the PDB");
    }

    [Test]
    public void ANewConsoleAppTrainsPredictsSavesAndLoadsThroughThePackage()
    {
        string app = CreateApp("Consumer", "net10.0", InstallPackages, """
            using Microsoft.ML;
            using Microsoft.ML.Data;
            using MLNet.DeepRec;
            using MLNet.DeepRec.Data;
            using MLNet.DeepRec.Serving;
            using MLNet.DeepRec.Trainers;

            var ml = new MLContext(seed: 0);
            IDataView data = ml.DeepRec().Data.GenerateSyntheticInteractions(
                new SyntheticInteractionOptions { UserCount = 60, ItemCount = 40, InteractionsPerUser = 8, Seed = 1 });
            var pipeline = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId")
                .Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId"))
                .Append(ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
                {
                    UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", NumberOfEpochs = 2, Seed = 42,
                }));
            var model = pipeline.Fit(data);
            var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
            float trained = engine.Predict(new Pair { UserId = "u0", ItemId = "i7" }).Score;
            Console.WriteLine($"recommendations={model.LastTransformer.Recommend("u0", k: 3).Count}");

            string path = Path.Combine(AppContext.BaseDirectory, "model.zip");
            DeepRecServing.SaveModel(ml, model, data.Schema, path);
            var serving = new MLContext();
            ITransformer loaded = DeepRecServing.LoadModel(serving, path);
            float reloaded = serving.Model.CreatePredictionEngine<Pair, Prediction>(loaded).Predict(new Pair { UserId = "u0", ItemId = "i7" }).Score;
            Console.WriteLine($"trained={trained:R} reloaded={reloaded:R}");
            return trained == reloaded && float.IsFinite(trained) ? 0 : 3;

            public sealed class Pair { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; }
            public sealed class Prediction { public float Score { get; set; } }
            """);
        var build = Dotnet(app, "build", "-c", "Release");
        Assert.That(build.ExitCode, Is.EqualTo(0), build.Output);
        var run = Dotnet(app, Path.Combine(app, "bin", "Release", "net10.0", "Consumer.dll"));
        TestContext.Out.WriteLine(run.Output);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        Assert.That(run.Output, Does.Contain("recommendations=3"));
        Assert.That(run.Output, Does.Match(@"trained=(\S+) reloaded=\1"), "the reloaded model scores exactly as the trained one");

        // The Install table's scoring-only row: MLNet.DeepRec and ONNX Runtime, no libtorch package. It scores the model the
        // first app saved, to the same number.
        string scorer = CreateApp("ScoringOnly", "net10.0", """
                <PackageReference Include="MLNet.DeepRec" Version="0.2.0" />
                <PackageReference Include="Microsoft.ML.OnnxRuntime" Version="1.31.1" />
            """, """
            using Microsoft.ML;
            using MLNet.DeepRec.Serving;

            var serving = new MLContext();
            ITransformer loaded = DeepRecServing.LoadModel(serving, args[0]);
            float score = serving.Model.CreatePredictionEngine<Pair, Prediction>(loaded).Predict(new Pair { UserId = "u0", ItemId = "i7" }).Score;
            Console.WriteLine($"scored={score:R}");

            public sealed class Pair { public string UserId { get; set; } = ""; public string ItemId { get; set; } = ""; }
            public sealed class Prediction { public float Score { get; set; } }
            """);
        var scorerBuild = Dotnet(scorer, "build", "-c", "Release");
        Assert.That(scorerBuild.ExitCode, Is.EqualTo(0), scorerBuild.Output);
        string scorerOutput = Path.Combine(scorer, "bin", "Release", "net10.0");
        Assert.That(Directory.EnumerateFiles(scorerOutput, "libtorch*", SearchOption.AllDirectories), Is.Empty, "no libtorch deployed");
        var scored = Dotnet(scorer, Path.Combine(scorerOutput, "ScoringOnly.dll"), Path.Combine(app, "bin", "Release", "net10.0", "model.zip"));
        Assert.That(scored.ExitCode, Is.EqualTo(0), scored.Output);
        string trainedScore = System.Text.RegularExpressions.Regex.Match(run.Output, @"trained=(\S+)").Groups[1].Value;
        Assert.That(scored.Output, Does.Contain($"scored={trainedScore}"), "the scoring-only app gives the trained model's score");
    }

    [Test]
    public void AnAppForAnUnsupportedFrameworkGetsNuGetsIncompatibilityErrorAtRestore()
    {
        string app = CreateApp("OldFramework", "net8.0", """<PackageReference Include="MLNet.DeepRec" Version="0.2.0" />""",
            "System.Console.WriteLine(typeof(MLNet.DeepRec.DeepRecCatalog));");
        var restore = Dotnet(app, "restore");
        Assert.That(restore.ExitCode, Is.Not.EqualTo(0), restore.Output);
        Assert.That(restore.Output, Does.Contain("NU1202").And.Contain("net10.0"), "NuGet names the incompatibility, not the compiler");
    }

    private string CreateApp(string name, string framework, string packageReferences, string program)
    {
        string folder = Path.Combine(_root, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, name + ".csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>{framework}</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
            {packageReferences}
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(folder, "Program.cs"), program);
        string globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(folder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(_root, "packages")}" />
              </config>
              <packageSources>
                <add key="deeprec-feed" value="{_feed}" />
              </packageSources>
              <fallbackPackageFolders>
                <add key="user-packages" value="{globalPackages}" />
              </fallbackPackageFolders>
              <packageSourceMapping>
                <packageSource key="deeprec-feed">
                  <package pattern="MLNet.DeepRec" />
                </packageSource>
                <packageSource key="nuget.org">
                  <package pattern="*" />
                </packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        return folder;
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory != null && !File.Exists(Path.Combine(directory.FullName, "MLNet.DeepRec.sln"))) directory = directory.Parent;
        Assert.That(directory, Is.Not.Null, "no MLNet.DeepRec.sln above the test output");
        return directory!.FullName;
    }

    private static (int ExitCode, string Output) Dotnet(string workingDirectory, params string[] arguments)
    {
        // The test host runs inside `dotnet test`, whose MSBuild settings must not leak into a separate build.
        var environment = Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k == "NUGET_PACKAGES")
            .ToDictionary(k => k, _ => (string?)null);
        environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        environment["DOTNET_NOLOGO"] = "1";
        var run = ExampleProcess.RunProgram(ExampleProcess.DotnetHost(), arguments, TimeSpan.FromMinutes(3), environment, workingDirectory);
        return (run.ExitCode, run.Stdout + run.Stderr);
    }
}
