using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Training;

/// <summary>
/// Numbers for libtorch calls that stay alive. TorchSharp 0.107 turns a number argument into a temporary
/// <see cref="Scalar"/> and hands its native handle to libtorch without keeping the object reachable (no
/// <c>GC.KeepAlive</c>); <c>a + b</c> on tensors does so internally (<c>add(b, 1)</c>). A collection triggered by another
/// thread at that moment lets the finalizer free the scalar while libtorch reads it, which surfaces as a rare native
/// "Expected false to be true … toFloat" error (seen in a 20-minute benchmark and a parallel test run). Hot paths
/// therefore pass constants from here (rooted in static fields, never finalized) and per-call numbers as
/// <c>using Scalar</c> locals, and add tensors with <see cref="Plus"/> instead of <c>+</c>.
/// </summary>
internal static class LiveScalars
{
    /// <summary>The cache is for constants (model sizes, masks); past this many values a call gets an uncached Scalar
    /// rather than growing the cache without bound (per-fit values such as an output bias's initial logit add one each).</summary>
    private const int MaxCached = 4096;
    private static readonly ConcurrentDictionary<double, Scalar> s_floats = new();
    private static readonly ConcurrentDictionary<long, Scalar> s_integers = new();

    /// <summary>Uncached Scalars stay referenced here until this many later ones replace them: long after the native call
    /// they were made for, and then the finalizer frees them.</summary>
    private const int RecentKept = 1024;
    private static readonly Scalar?[] s_recent = new Scalar?[RecentKept];
    private static int s_nextRecent = -1;

    private static Scalar Kept(Scalar scalar)
    {
        s_recent[(int)((uint)Interlocked.Increment(ref s_nextRecent) % RecentKept)] = scalar;
        return scalar;
    }

    /// <summary>1 as an integer: the alpha of an addition (valid for integer and floating tensors alike).</summary>
    public static readonly Scalar One = Of(1L);

    /// <summary>0 as an integer, for comparisons with key tensors.</summary>
    public static readonly Scalar Zero = Of(0L);

    /// <summary>A floating-point constant, created once per value and kept for the life of the process.</summary>
    public static Scalar Of(double value) => s_floats.TryGetValue(value, out var s) ? s
        : s_floats.Count < MaxCached ? s_floats.GetOrAdd(value, static v => v.ToScalar()) : Kept(value.ToScalar());

    /// <summary>An integer constant (keeps integer tensors integer), created once per value and kept.</summary>
    public static Scalar Of(long value) => s_integers.TryGetValue(value, out var s) ? s
        : s_integers.Count < MaxCached ? s_integers.GetOrAdd(value, static v => v.ToScalar()) : Kept(value.ToScalar());

    /// <summary><paramref name="a"/> + <paramref name="b"/> with a live alpha (what the <c>+</c> operator does with a temporary one).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>In-place <paramref name="a"/> += <paramref name="b"/> with a live alpha.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);
}
