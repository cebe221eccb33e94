using System.Diagnostics;
using System.Globalization;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>Samples the process's resident set every 50 ms and keeps the maximum (libtorch's native allocations included, unlike the GC's figures).</summary>
internal sealed class PeakMemory : IDisposable
{
    private readonly Timer _timer;
    private long _peak;

    public PeakMemory()
    {
        Sample();
        _timer = new Timer(_ => Sample(), null, 0, 50);
    }

    /// <summary>The largest resident set seen so far, in MB.</summary>
    public double PeakMb { get { Sample(); return Interlocked.Read(ref _peak) / 1048576.0; } }

    private void Sample()
    {
        long rss = CurrentRss();
        long seen;
        while (rss > (seen = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, rss, seen) != seen) { }
    }

    private static long CurrentRss()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        using var p = Process.GetCurrentProcess();
        return p.WorkingSet64;
    }

    public void Dispose() => _timer.Dispose();
}
