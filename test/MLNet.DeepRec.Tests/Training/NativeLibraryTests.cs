using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Tests.Training;

/// <summary>
/// Proves that libtorch loads and works from the build output (on Debian 12 / Ubuntu 22.04 this needs the
/// build-integrated GLIBCXX_3.4.32 fix in build/MLNet.DeepRec.targets).
/// </summary>
public class NativeLibraryTests
{
    [Test]
    public void TensorsAutogradAndAnOptimizerStepWork()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 1, 2, 3 });
        Assert.That(x.sum().item<float>(), Is.EqualTo(6f));

        var w = tensor(new float[] { 0.5f, -1f, 2f }, requires_grad: true);
        var loss = (w * x).pow(2).sum();   // d/dw = 2 w x²
        loss.backward();
        Assert.That(w.grad!.data<float>().ToArray(), Is.EqualTo(new[] { 1f, -8f, 36f }).Within(1e-6));

        using var optimizer = optim.SGD(new[] { new TorchSharp.Modules.Parameter(w.detach().clone()) }, 0.1);
        var p = optimizer.parameters().First();
        var l2 = (p * x).pow(2).sum();
        optimizer.zero_grad();
        l2.backward();
        optimizer.step();
        Assert.That(p.data<float>().ToArray(), Is.EqualTo(new[] { 0.5f - 0.1f, -1f + 0.8f, 2f - 3.6f }).Within(1e-5));
    }

    [Test]
    public void PatchedLibraryIsOnlyWeakenedWhereTheSystemLacksGlibcxx3432()
    {
        string lib = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!OperatingSystem.IsLinux() || !File.Exists(lib)) Assert.Ignore("Linux x64 build output only.");
        string? system = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib64/libstdc++.so.6" }.FirstOrDefault(File.Exists);
        if (system == null) Assert.Ignore("No system libstdc++ found.");
        bool systemHasIt = Contains(File.ReadAllBytes(system!), "GLIBCXX_3.4.32\0");
        string nugetCopy = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
            "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(nugetCopy)) Assert.Ignore("NuGet cache copy not found at " + nugetCopy);
        byte[] original = File.ReadAllBytes(nugetCopy), built = File.ReadAllBytes(lib);
        int differences = original.Zip(built).Count(p => p.First != p.Second);
        Assert.That(built, Has.Length.EqualTo(original.Length));
        // Exactly the two bytes of one vna_flags field change (and only when needed); the NuGet cache stays pristine.
        Assert.That(differences, systemHasIt ? Is.EqualTo(0) : Is.InRange(1, 2));
    }

    private static bool Contains(byte[] haystack, string needle)
    {
        var n = System.Text.Encoding.ASCII.GetBytes(needle);
        return haystack.AsSpan().IndexOf(n) >= 0;
    }
}
