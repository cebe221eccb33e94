using TorchSharp;

namespace MLNet.DeepRec.Training;

/// <summary>
/// Creates a network with its initial weights drawn from libtorch's process-wide generator seeded with the fit's seed.
/// libtorch's <c>nn.init</c> functions and module constructors draw from that one generator, so two fits that seeded it and
/// created their networks at the same time in one process would take each other's numbers; the lock makes "seed, then
/// create" one step, so that each fit's initial weights depend on its seed alone. Everything random after that (batch
/// order, negatives, dropout) draws from the fit's own generator in the training core.
/// </summary>
internal static class SeededInitialization
{
    private static readonly Lock s_globalGenerator = new();

    public static T Create<T>(long seed, Func<T> create)
    {
        lock (s_globalGenerator)
        {
            torch.random.manual_seed(seed);
            return create();
        }
    }
}
