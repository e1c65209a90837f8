// Draws the charts of BENCHMARKS.md with ScottPlot. bench/run computes every figure (medians, spreads)
// and writes them as a chart list; this program only draws:
//
//   Charts SPEC.json OUTDIR
//
// SPEC: {"charts": [{"file", "title", "kind": "bars"|"lines", "xlabel", "ylabel", ...}]}
//   bars:  "groups": [category...], "series": [{"name", "values": [v|null...], "errors": [e...], "labels": [text...]}],
//          "highlight": category drawn in the accent colour when there is one series
//   lines: "xs": [x...], "logx", "logy", "series": [{"name", "values": [v|null...]}], "highlight": series name
using System.Globalization;
using System.Text.Json;
using ScottPlot;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: Charts SPEC.json OUTDIR");
    return 2;
}
using var doc = JsonDocument.Parse(File.ReadAllText(args[0]));
Directory.CreateDirectory(args[1]);
foreach (var chart in doc.RootElement.GetProperty("charts").EnumerateArray())
{
    var plot = chart.GetProperty("kind").GetString() == "lines" ? ChartDrawing.Lines(chart) : ChartDrawing.Bars(chart);
    plot.Title(chart.GetProperty("title").GetString() ?? "");
    if (chart.TryGetProperty("xlabel", out var xl)) plot.XLabel(xl.GetString() ?? "");
    if (chart.TryGetProperty("ylabel", out var yl)) plot.YLabel(yl.GetString() ?? "");
    int width = chart.TryGetProperty("width", out var w) ? w.GetInt32() : 900;
    int height = chart.TryGetProperty("height", out var h) ? h.GetInt32() : 460;
    string file = Path.Combine(args[1], chart.GetProperty("file").GetString()!);
    plot.SavePng(file, width, height);
    Console.WriteLine("wrote " + file);
}
return 0;

static class ChartDrawing
{
    static readonly Color Accent = Color.FromHex("#d62728");
    static readonly Color Plain = Color.FromHex("#7f9fbf");
    static readonly Color[] SeriesColors = new ScottPlot.Palettes.Category10().Colors;

    static double Num(JsonElement e) => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : double.NaN;

    static double[] Nums(JsonElement series, string name) =>
        series.TryGetProperty(name, out var a) ? a.EnumerateArray().Select(Num).ToArray() : [];

    static string[] Strings(JsonElement e, string name) =>
        e.TryGetProperty(name, out var a) ? a.EnumerateArray().Select(x => x.GetString() ?? "").ToArray() : [];

    /// <summary>Grouped bars: one group per category, one bar per series in each group.</summary>
    public static Plot Bars(JsonElement chart)
    {
        var plot = new Plot();
        string[] groups = Strings(chart, "groups");
        var series = chart.GetProperty("series").EnumerateArray().ToArray();
        string? highlight = chart.TryGetProperty("highlight", out var hl) ? hl.GetString() : null;
        bool horizontal = chart.TryGetProperty("horizontal", out var hz) && hz.GetBoolean();
        double slot = 0.8 / series.Length;
        var bars = new List<Bar>();
        for (int s = 0; s < series.Length; s++)
        {
            double[] values = Nums(series[s], "values");
            double[] errors = Nums(series[s], "errors");
            string[] labels = Strings(series[s], "labels");
            for (int g = 0; g < groups.Length && g < values.Length; g++)
            {
                if (double.IsNaN(values[g])) continue;
                var color = series.Length > 1 ? SeriesColors[s % SeriesColors.Length] : groups[g] == highlight ? Accent : Plain;
                bars.Add(new Bar
                {
                    Position = g - 0.4 + slot * (s + 0.5),
                    Value = values[g],
                    Size = slot * 0.9,
                    Error = g < errors.Length && !double.IsNaN(errors[g]) ? errors[g] : 0,
                    FillColor = color,
                    Label = g < labels.Length ? labels[g] : "",
                    Orientation = horizontal ? Orientation.Horizontal : Orientation.Vertical,
                });
            }
            if (series.Length > 1)
                plot.Legend.ManualItems.Add(new LegendItem { LabelText = series[s].GetProperty("name").GetString() ?? "", FillColor = SeriesColors[s % SeriesColors.Length] });
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 11;
        var ticks = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, groups.Length).Select(i => (double)i).ToArray(), groups);
        var categoryAxis = horizontal ? (ScottPlot.IAxis)plot.Axes.Left : plot.Axes.Bottom;
        categoryAxis.TickGenerator = ticks;
        if (horizontal) plot.Axes.Margins(left: 0, right: 0.15); else plot.Axes.Margins(bottom: 0, top: 0.15);
        if (series.Length > 1) { plot.Legend.IsVisible = true; plot.Legend.Alignment = Alignment.UpperRight; }
        return plot;
    }

    /// <summary>One line per series over shared x values; log axes plot log10 of the data with decade ticks.</summary>
    public static Plot Lines(JsonElement chart)
    {
        var plot = new Plot();
        bool logx = chart.TryGetProperty("logx", out var lx) && lx.GetBoolean();
        bool logy = chart.TryGetProperty("logy", out var ly) && ly.GetBoolean();
        string? highlight = chart.TryGetProperty("highlight", out var hl) ? hl.GetString() : null;
        double[] xs = Nums(chart, "xs");
        int i = 0;
        foreach (var s in chart.GetProperty("series").EnumerateArray())
        {
            double[] ys = Nums(s, "values");
            var pts = Enumerable.Range(0, Math.Min(xs.Length, ys.Length))
                .Where(k => !double.IsNaN(ys[k]) && (!logy || ys[k] > 0))
                .Select(k => new Coordinates(logx ? Math.Log10(xs[k]) : xs[k], logy ? Math.Log10(ys[k]) : ys[k])).ToArray();
            string name = s.GetProperty("name").GetString() ?? "";
            var color = name == highlight ? Accent : SeriesColors[i++ % SeriesColors.Length];
            if (name != highlight && color == Accent) color = SeriesColors[i++ % SeriesColors.Length];
            if (pts.Length == 0) continue;
            var line = plot.Add.Scatter(pts, color);
            line.LegendText = name;
            line.LineWidth = name == highlight ? 3.5f : 1.5f;
            line.MarkerSize = name == highlight ? 9 : 6;
        }
        if (logx) plot.Axes.Bottom.TickGenerator = LogTicks();
        if (logy) plot.Axes.Left.TickGenerator = LogTicks();
        plot.Legend.IsVisible = true;
        plot.Legend.Alignment = Alignment.UpperLeft;
        return plot;
    }

    static ScottPlot.TickGenerators.NumericAutomatic LogTicks() => new()
    {
        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = v => FormatDecade(Math.Pow(10, v)),
    };

    static string FormatDecade(double v) => v switch
    {
        >= 1e6 => (v / 1e6).ToString("0.#", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (v / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "k",
        >= 1 => v.ToString("0.#", CultureInfo.InvariantCulture),
        _ => v.ToString("0.###", CultureInfo.InvariantCulture),
    };
}
