using System.Diagnostics;
using System.Globalization;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// How much CPU other processes used while a measurement ran: the machine's busy time (/proc/stat) minus this
/// process's own (/proc/self/stat), in cores on average. Unlike the load average, it does not count our own threads,
/// so it says whether a timing was disturbed by someone else. Linux only; elsewhere <see cref="Cores"/> is null.
/// With <c>childrenAreOwn</c>, the CPU time of child processes this process has started and reaped (and of their
/// reaped children: /proc/self/stat's cutime and cstime) counts as its own, e.g. a peer implementation run as a child
/// process; a child still running is counted once it has exited and been waited for.
/// </summary>
internal sealed class OtherProcessesCpu
{
    /// <summary>Above this many cores of foreign work on average, a timing is reported as disturbed.</summary>
    public const double DisturbedAbove = 0.2;

    private readonly bool _childrenAreOwn;
    private readonly long? _machineBusy0, _self0;
    private readonly Stopwatch _watch = Stopwatch.StartNew();

    public OtherProcessesCpu(bool childrenAreOwn = false)
    {
        _childrenAreOwn = childrenAreOwn;
        _machineBusy0 = MachineBusyTicks();
        _self0 = SelfTicks();
    }

    /// <summary>Average number of cores other processes kept busy since construction; null where /proc is unavailable.</summary>
    public double? Cores
    {
        get
        {
            if (MachineBusyTicks() is not long busy || SelfTicks() is not long self || _machineBusy0 is not long busy0 || _self0 is not long self0) return null;
            double seconds = _watch.Elapsed.TotalSeconds;
            if (seconds <= 0) return null;
            const double ticksPerSecond = 100; // USER_HZ: 100 on every Linux architecture .NET runs on
            return Math.Max(0, (busy - busy0 - (self - self0)) / ticksPerSecond / seconds);
        }
    }

    /// <summary>A sentence for the report.</summary>
    public string Describe()
    {
        if (Cores is not double cores) return "CPU use of other processes: not measured (no /proc).";
        string verdict = cores > DisturbedAbove
            ? " **Timings are disturbed**: other processes competed for the CPU, so speed figures are pessimistic and noisier than on an idle machine."
            : " The machine was otherwise idle.";
        return string.Create(CultureInfo.InvariantCulture, $"Other processes used {cores:F2} of the {Environment.ProcessorCount} cores on average (machine busy time from /proc/stat minus this process's{(_childrenAreOwn ? " and its child processes'" : "")}).{verdict}");
    }

    private static long? MachineBusyTicks()
    {
        try
        {
            string line = File.ReadLines("/proc/stat").First();
            long[] v = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait (guest time is inside user).
            return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
        {
            return null;
        }
    }

    private long? SelfTicks()
    {
        try
        {
            string stat = File.ReadAllText("/proc/self/stat");
            // Fields after the command name (which may hold spaces) start at field 3; utime and stime are fields 14 and
            // 15, the reaped children's cutime and cstime 16 and 17.
            string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long own = long.Parse(rest[11], CultureInfo.InvariantCulture) + long.Parse(rest[12], CultureInfo.InvariantCulture);
            return _childrenAreOwn ? own + long.Parse(rest[13], CultureInfo.InvariantCulture) + long.Parse(rest[14], CultureInfo.InvariantCulture) : own;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
