using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// The progress bar of a long benchmark run: overall fraction (suites, the models within a suite, the epochs within a
/// model), the current model and epoch, elapsed time and a rough time left. On a terminal it stays on the last line
/// and the normal output scrolls above it; when the output is redirected (CI, a log file) it prints one bar line per
/// model instead of redrawing.
/// </summary>
internal sealed class BenchmarkProgress : TextWriter
{
    private readonly TextWriter _inner;
    private readonly bool _interactive;
    private readonly int _suiteCount;
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private readonly object _gate = new();
    private bool _barShown, _atLineStart = true;
    private int _suiteIndex = -1, _plannedSteps = 1, _stepsDone, _epoch, _epochs;
    private string _suite = "", _step = "";

    public BenchmarkProgress(TextWriter inner, int suiteCount, bool interactive)
    {
        _inner = inner;
        _suiteCount = Math.Max(1, suiteCount);
        _interactive = interactive;
    }

    public override Encoding Encoding => _inner.Encoding;

    /// <summary>A suite starts; <paramref name="plannedSteps"/> is how many models (or measurements) it will announce with <see cref="Step"/>.</summary>
    public void BeginSuite(string name, int plannedSteps)
    {
        lock (_gate) { _suiteIndex++; _suite = name; _plannedSteps = Math.Max(1, plannedSteps); _stepsDone = -1; _step = "starting"; _epoch = _epochs = 0; }
        Update(force: true);
    }

    /// <summary>The next model or measurement of the current suite starts.</summary>
    public void Step(string label)
    {
        lock (_gate) { _stepsDone = Math.Min(_plannedSteps, _stepsDone + 1); _step = label; _epoch = _epochs = 0; }
        Update(force: true);
    }

    /// <summary>A training epoch finished (from the trainers' log lines).</summary>
    public void Epoch(int epoch, int epochs)
    {
        lock (_gate) { _epoch = epoch; _epochs = epochs; }
        Update(force: false);
    }

    /// <summary>The current suite is done.</summary>
    public void EndSuite()
    {
        lock (_gate) { _stepsDone = _plannedSteps; _step = "done"; _epoch = _epochs = 0; }
        Update(force: false);
    }

    /// <summary>Removes the bar (end of the run).</summary>
    public void Finish()
    {
        lock (_gate) { Erase(); _inner.Flush(); }
    }

    private double Fraction()
    {
        if (_suiteIndex < 0) return 0;
        double withinStep = _epochs > 0 ? (double)_epoch / _epochs : 0;
        double withinSuite = (Math.Max(0, _stepsDone) + withinStep) / _plannedSteps;
        return Math.Clamp((_suiteIndex + Math.Min(1, withinSuite)) / _suiteCount, 0, 1);
    }

    private string Bar()
    {
        double f = Fraction();
        const int width = 30;
        int filled = (int)Math.Round(f * width);
        var elapsed = _watch.Elapsed;
        // Time left from the overall fraction: rough (suites differ in cost) but monotone enough to plan a coffee.
        string left = f > 0.02 ? $", ~{Format(TimeSpan.FromSeconds(elapsed.TotalSeconds * (1 - f) / f))} left" : "";
        string epoch = _epochs > 0 ? $" epoch {_epoch}/{_epochs}" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('-', width - filled)}] {f * 100,3:F0}% | suite {_suiteIndex + 1}/{_suiteCount} {_suite} | {Math.Max(0, _stepsDone) + 1}/{_plannedSteps} {_step}{epoch} | {Format(elapsed)} elapsed{left}");
    }

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : t.ToString(@"mm\:ss", CultureInfo.InvariantCulture);

    private void Update(bool force)
    {
        lock (_gate)
        {
            if (_interactive)
            {
                Erase();
                if (_atLineStart) { _inner.Write(Bar()); _barShown = true; }
                _inner.Flush();
            }
            else if (force)
            {
                if (!_atLineStart) _inner.WriteLine();
                _inner.WriteLine(Bar());
                _atLineStart = true;
            }
        }
    }

    private void Erase()
    {
        if (!_barShown) return;
        _inner.Write("\r\u001b[2K");
        _barShown = false;
    }

    public override void Write(char value)
    {
        lock (_gate)
        {
            Erase();
            _inner.Write(value);
            _atLineStart = value == '\n';
            if (_atLineStart && _interactive && _suiteIndex >= 0) { _inner.Write(Bar()); _barShown = true; }
        }
    }

    public override void Write(string? value)
    {
        if (string.IsNullOrEmpty(value)) return;
        lock (_gate)
        {
            Erase();
            _inner.Write(value);
            _atLineStart = value[^1] == '\n';
            if (_atLineStart && _interactive && _suiteIndex >= 0) { _inner.Write(Bar()); _barShown = true; }
        }
    }

    public override void WriteLine(string? value) => Write((value ?? "") + Environment.NewLine);

    public override void Flush() => _inner.Flush();
}
