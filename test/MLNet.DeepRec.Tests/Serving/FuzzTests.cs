using System.Globalization;
using MLNet.DeepRec.Tests.Examples;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>
/// Issue #12: a deterministic mutator (fixed seed) over a saved model zip, an exported ONNX file and a checkpoint
/// (truncations, bit flips, random bytes, manifest edits with huge/negative/missing numbers, removed and swapped zip
/// entries, damage inside entries with valid CRCs, ONNX initializer dims inflated, foreign operators) feeds a few hundred
/// mutants to <c>DeepRecServing.LoadModel</c>, the DeepRec transformer constructor and <c>LoadCheckpoint</c>, in the
/// probe <c>fuzz</c>, a child process with memory caps.
/// </summary>
/// <remarks>
/// Caps, and why three: .NET reserves address space far beyond what it uses (256 GB for the GC's regions unless a hard
/// limit is set) and libtorch and ONNX Runtime add thread stacks and allocator arenas, so an address-space limit alone
/// would either kill a healthy process or have to be so generous that a few-GB over-allocation passes. Hence:
/// <c>DOTNET_GCHeapHardLimit</c> = 1 GB (managed over-allocation throws, and the library's memory budget, which reads
/// the same limit, becomes 1 GB); <c>ulimit -v</c> 16 GB with <c>MALLOC_ARENA_MAX=2</c> (a native over-allocation like the
/// original 24 GB one fails instead of reaching the kernel's OOM killer; a healthy run peaks near 6 GB of address space);
/// and the peak resident memory (VmHWM) checked against 1 GB afterwards, which catches an allocation that fits in the
/// address space but is actually touched. The probe proves the first two are in force by asking for 20 GB from libtorch
/// and 1.5 GB from the GC and reporting the refusals.
/// </remarks>
[TestFixture]
public class FuzzTests
{
    private const int Cases = 300, Seed = 20261204;
    private const long PeakLimitMb = 1024;

    [Test]
    public void MutatedFiles_OnlyDocumentedExceptions_NoCrash_BoundedMemory_NoTempLeftovers()
    {
        string dll = ExampleProcess.ProjectDll(Path.Combine("test", "MLNet.DeepRec.Probes"), "MLNet.DeepRec.Probes");
        string root = Path.Combine(Path.GetTempPath(), "deeprec-fuzz-" + Guid.NewGuid().ToString("N"));
        string temp = Path.Combine(root, "tmp"), work = Path.Combine(root, "work");
        Directory.CreateDirectory(temp);
        Directory.CreateDirectory(work);
        try
        {
            // ulimit in KB; exec so that the limit and the environment apply to the probe itself.
            string[] arguments = ["-c", "ulimit -v $((16 * 1024 * 1024)) && exec \"$0\" \"$@\"",
                ExampleProcess.DotnetHost(), dll, "fuzz", Cases.ToString(CultureInfo.InvariantCulture), Seed.ToString(CultureInfo.InvariantCulture), work];
            var environment = new Dictionary<string, string?>
            {
                ["TMPDIR"] = temp,                            // Path.GetTempPath() of the child
                ["DOTNET_GCHeapHardLimit"] = "0x40000000",    // 1 GB
                ["MALLOC_ARENA_MAX"] = "2",
                ["DOTNET_EnableDiagnostics"] = "0",           // no diagnostics socket in TMPDIR
            };
            var run = ExampleProcess.RunProgram("bash", arguments, TimeSpan.FromMinutes(3), environment);
            string output = run.Stdout;
            TestContext.Out.WriteLine($"{run.Elapsed.TotalSeconds:F1} s\n{output}");
            Assert.That(run.ExitCode, Is.EqualTo(0), "the probe crashed or was killed:\n" + output + run.Stderr[^Math.Min(4000, run.Stderr.Length)..]);
            string summary = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith("cases=", StringComparison.Ordinal))
                ?? throw new AssertionException("no summary line: the probe ended early\n" + output);
            var values = summary.Split(' ').Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => double.Parse(kv[1], CultureInfo.InvariantCulture));

            Assert.That(values["cases"], Is.EqualTo(Cases));
            Assert.That(values["native_capped"], Is.EqualTo(1), "the address-space cap must refuse a 20 GB libtorch allocation");
            Assert.That(values["managed_capped"], Is.EqualTo(1), "the GC heap limit must refuse a 1.5 GB array");
            Assert.That(values["undocumented"], Is.EqualTo(0),
                "loaders threw exceptions other than InvalidDataException, IOException or ArgumentException:\n" +
                string.Join("\n", output.Split('\n').Where(l => l.StartsWith("undocumented", StringComparison.Ordinal))));
            Assert.That(values["loaded"], Is.GreaterThan(0), "some mutants (e.g. changed weights) are valid files and must still load");
            Assert.That(values["peak_mb"], Is.LessThan(PeakLimitMb), "peak resident memory of the whole child (VmHWM, MB)");
            // ONNX Runtime's logging creates one '.ses' session file per process in the temp folder, whatever is loaded.
            var left = Directory.EnumerateFileSystemEntries(temp).Where(p => Path.GetFileName(p) != ".ses").ToList();
            Assert.That(left, Is.Empty, "files the loaders left in the child's temp folder");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
