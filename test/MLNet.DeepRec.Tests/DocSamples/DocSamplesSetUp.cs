using NUnit.Framework;
using TorchSharp;

namespace MLNet.DeepRec.Tests.DocSamples;

/// <summary>
/// The doc samples train with the default options (NumberOfThreads = 0: libtorch's own thread count). On a busy 2-core
/// machine libtorch's OpenMP threads spin against other processes and tiny models train several times slower, so the
/// samples run with one libtorch thread; the previous setting is restored afterwards.
/// </summary>
[SetUpFixture]
public class DocSamplesSetUp
{
    private int _threads;

    [OneTimeSetUp]
    public void UseOneLibTorchThread()
    {
        _threads = torch.get_num_threads();
        torch.set_num_threads(1);
    }

    [OneTimeTearDown]
    public void RestoreLibTorchThreads() => torch.set_num_threads(_threads);
}
