using System.Globalization;
using ScottPlot;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// Renders the report's charts as PNG with ScottPlot: per suite, the training curves (loss and validation metric per
/// epoch, one line per model), test quality against training time (one point per model), and the suite's own
/// cost-against-size figures (<see cref="SuiteResult.Figures"/>).
/// </summary>
internal static class Plots
{
    private static bool _fontsReady;

    /// <summary>
    /// Renders the suite's charts into <paramref name="folder"/> as <paramref name="filePrefix"/>-….png; returns
    /// (caption, file name) pairs, the captions naming <paramref name="suite"/>.
    /// </summary>
    public static List<(string Caption, string File)> Render(string filePrefix, string suite, SuiteResult result, string folder)
    {
        EnsureFont();
        Directory.CreateDirectory(folder);
        var files = new List<(string, string)>();
        // Curves with the same validation metric share a chart (frappe has a regression and a binary group).
        foreach (var group in result.Curves.Where(c => c.Epochs.Count > 1).GroupBy(c => c.ValidationMetricName ?? "none"))
        {
            string tag = group.Key == "none" ? "" : "-" + Slug(group.Key);
            string file = $"{filePrefix}{tag}-training-curves.png";
            RenderCurves(group.ToList(), group.Key == "none" ? null : group.Key, $"{result.Title}", Path.Combine(folder, file));
            files.Add(($"{suite}: training loss and validation {group.Key} per epoch", file));
        }
        if (result.Quality.Count > 0)
        {
            string file = $"{filePrefix}-quality-vs-training-time.png";
            RenderQuality(result.Quality, result.QualityAxis, result.Title, Path.Combine(folder, file));
            files.Add(($"{suite}: test {result.QualityAxis} against training time", file));
        }
        foreach (var figure in result.Figures)
        {
            string file = $"{filePrefix}-{figure.FileTag}.png";
            RenderFigure(figure, Path.Combine(folder, file));
            files.Add((figure.Caption, file));
        }
        return files;
    }

    /// <summary>Side-by-side line charts of measured quantities against a size, one line per series, targets dashed.</summary>
    private static void RenderFigure(SizeFigure figure, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(figure.Panels.Count);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var markers = new[] { MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond };
        for (int p = 0; p < figure.Panels.Count; p++)
        {
            var panel = figure.Panels[p];
            var plot = multiplot.GetPlot(p);
            plot.Title(panel.Title);
            plot.XLabel(panel.XLabel);
            plot.YLabel(panel.YLabel);
            double top = 0;
            int n = 0;
            foreach (var series in panel.Series.Where(s => s.Points.Count > 0))
            {
                var points = series.Points.OrderBy(q => q.X).ToList();
                double[] xs = points.Select(q => panel.LogX ? Math.Log10(q.X) : q.X).ToArray();
                var line = plot.Add.Scatter(xs, points.Select(q => q.Y).ToArray());
                line.LegendText = series.Name;
                line.MarkerSize = 8;
                line.MarkerShape = markers[n++ % markers.Length];
                top = Math.Max(top, points.Max(q => q.Y));
            }
            foreach (var (label, y) in panel.Targets ?? Array.Empty<(string, double)>())
            {
                var target = plot.Add.HorizontalLine(y);
                target.LinePattern = LinePattern.Dashed;
                target.LegendText = label;
                top = Math.Max(top, y);
            }
            double[] sizes = panel.Series.SelectMany(s => s.Points.Select(q => q.X)).Distinct().Order().ToArray();
            if (panel.LogX && sizes.Length > 0)
            {
                plot.Axes.Bottom.SetTicks(sizes.Select(Math.Log10).ToArray(), sizes.Select(CountLabel).ToArray());
                plot.Axes.SetLimitsX(Math.Log10(sizes[0]) - 0.25, Math.Log10(sizes[^1]) + 0.25);
            }
            else if (sizes.Length > 0)
                plot.Axes.SetLimitsX(0, sizes[^1] * 1.1);
            // Costs start at zero so that proportions read true.
            plot.Axes.SetLimitsY(0, top > 0 ? top * 1.2 : 1);
            plot.ShowLegend(Alignment.UpperLeft);
            UseFont(plot);
        }
        multiplot.SavePng(path, 700 * Math.Max(1, figure.Panels.Count), 520);
    }

    /// <summary>10000 → "10K", 1000000 → "1M".</summary>
    private static string CountLabel(double x) => x switch
    {
        >= 1e6 => (x / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (x / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "K",
        _ => x.ToString("0.##", CultureInfo.InvariantCulture),
    };

    private static void RenderCurves(List<TrainingCurve> curves, string? metric, string title, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(metric == null ? 1 : 2);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var loss = multiplot.GetPlot(0);
        loss.Title("Training loss");
        loss.XLabel("Epoch");
        loss.YLabel("Mean training loss");
        Plot? validation = null;
        if (metric != null)
        {
            validation = multiplot.GetPlot(1);
            validation.Title($"Validation {metric}");
            validation.XLabel("Epoch");
            validation.YLabel(metric);
        }
        foreach (var curve in curves)
        {
            double[] epochs = curve.Epochs.Select(e => (double)e.Epoch).ToArray();
            var l = loss.Add.Scatter(epochs, curve.Epochs.Select(e => e.Loss).ToArray());
            l.LegendText = curve.Model;
            l.MarkerSize = 4;
            if (validation != null && curve.Epochs.All(e => e.ValidationMetric.HasValue))
            {
                var v = validation.Add.Scatter(epochs, curve.Epochs.Select(e => e.ValidationMetric!.Value).ToArray());
                v.LegendText = curve.BestEpoch is int best ? $"{curve.Model} (best epoch {best})" : curve.Model;
                v.MarkerSize = 4;
                v.Color = l.Color;
            }
        }
        loss.ShowLegend(Alignment.UpperRight);
        validation?.ShowLegend(Alignment.LowerRight);
        foreach (var p in new[] { loss, validation }) if (p != null) { UseFont(p); p.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true }; }
        multiplot.SavePng(path, metric == null ? 800 : 1400, 520);
    }

    private static void RenderQuality(IReadOnlyList<QualityPoint> points, string axis, string title, string path)
    {
        var plot = new Plot();
        plot.Title($"Test quality vs training time — {title}");
        plot.XLabel("Training time (s, validation included)");
        plot.YLabel(axis);
        var markers = new[] { MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.FilledTriangleDown, MarkerShape.OpenCircle, MarkerShape.OpenSquare, MarkerShape.OpenTriangleUp };
        int n = 0;
        foreach (var p in points)
        {
            var s = plot.Add.ScatterPoints(new[] { p.TrainSeconds }, new[] { p.Quality });
            s.LegendText = string.Create(CultureInfo.InvariantCulture, $"{p.Model}: {p.Quality:F4} in {p.TrainSeconds:F1} s");
            s.MarkerSize = 12;
            s.MarkerShape = markers[n++ % markers.Length];
        }
        plot.Axes.Margins(0.1, 0.15);
        plot.Axes.SetLimitsX(0, points.Max(p => p.TrainSeconds) * 1.1);
        plot.ShowLegend(Edge.Right);
        UseFont(plot);
        plot.SavePng(path, 1200, 600);
    }

    /// <summary>
    /// ScottPlot on Linux draws text with SkiaSharp's fontconfig-free native build, which knows no system fonts; we
    /// register a common TrueType font file so axis labels and legends render.
    /// </summary>
    private static void EnsureFont()
    {
        if (_fontsReady) return;
        _fontsReady = true;
        string[] candidates =
        {
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        };
        if (candidates.FirstOrDefault(File.Exists) is string file)
        {
            Fonts.AddFontFile("BenchmarkSans", file);
            Fonts.Default = "BenchmarkSans";
        }
    }

    private static void UseFont(Plot plot)
    {
        if (Fonts.Default == "BenchmarkSans") plot.Font.Set("BenchmarkSans");
    }

    private static string Slug(string s) => new string(s.ToLowerInvariant().Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray()).Trim('-').Replace("--", "-");
}
