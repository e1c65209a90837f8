using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Asyncio;

// Writing a trace out: Chrome's trace event format (JSON, which Perfetto, chrome://tracing and speedscope read)
// and an SVG timeline. Both are built from the same per-task summary: when a task was first seen (created, or
// its first step if its creation is older than the trace), when it ended, and its steps.

public sealed partial class LoopTrace
{
    /// <summary>
    /// Writes the trace in Chrome's trace event format (JSON), which <see href="https://ui.perfetto.dev">Perfetto</see>
    /// and <c>chrome://tracing</c> open: one track for the loop's thread with every step, callback and wait, and one
    /// track for each task from its creation to its end.
    /// </summary>
    /// <param name="stream">Where to write; left open.</param>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop records into the trace.</exception>
    public void WriteChromeTrace(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CheckReadable(nameof(WriteChromeTrace));
        var notes = Held();
        var end = EndTicks(notes);
        int pid = Environment.ProcessId, tid = _threadId;
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        w.WriteString("displayTimeUnit", "ms");
        w.WriteStartObject("otherData");
        w.WriteNumber("dropped", Dropped);
        w.WriteEndObject();
        w.WriteStartArray("traceEvents");
        WriteMetadata(w, "process_name", pid, tid, "Asyncio event loop");
        WriteMetadata(w, "thread_name", pid, tid, "loop");
        foreach (ref readonly var n in notes.AsSpan())
        {
            if (n.Kind is LoopTraceEventKind.TaskCreated or LoopTraceEventKind.TaskDone) continue;
            var e = ToEvent(in n);
            w.WriteStartObject();
            w.WriteString("ph", "X");
            w.WriteString("name", e.Name);
            w.WriteString("cat", e.Kind switch { LoopTraceEventKind.Step => "step", LoopTraceEventKind.Callback => "callback", _ => "idle" });
            WriteTimes(w, MicrosecondsOf(n.Start), pid, tid);
            w.WriteNumber("dur", Stopwatch.GetElapsedTime(n.Start, n.End).TotalMicroseconds);
            if (e.Task is { } task)
            {
                w.WriteStartObject("args");
                w.WriteNumber("task", task.Id);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        foreach (var life in Lifetimes(notes))
        {
            WriteTaskEdge(w, "b", life.Task, MicrosecondsOf(life.Begin), pid, tid);
            WriteTaskEdge(w, "e", life.Task, MicrosecondsOf(life.End ?? end), pid, tid);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Writes the trace as Chrome's trace event format to the file <paramref name="path"/> (created or replaced); see <see cref="WriteChromeTrace(Stream)"/>.</summary>
    /// <param name="path">The file to write, usually ending in <c>.json</c>.</param>
    public void SaveChromeTrace(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = File.Create(path);
        WriteChromeTrace(file);
    }

    static void WriteMetadata(Utf8JsonWriter w, string name, int pid, int tid, string value)
    {
        w.WriteStartObject();
        w.WriteString("ph", "M");
        w.WriteString("name", name);
        w.WriteNumber("pid", pid);
        w.WriteNumber("tid", tid);
        w.WriteStartObject("args");
        w.WriteString("name", value);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    static void WriteTimes(Utf8JsonWriter w, double ts, int pid, int tid)
    {
        w.WriteNumber("ts", ts);
        w.WriteNumber("pid", pid);
        w.WriteNumber("tid", tid);
    }

    static void WriteTaskEdge(Utf8JsonWriter w, string phase, AioTask task, double ts, int pid, int tid)
    {
        w.WriteStartObject();
        w.WriteString("ph", phase);
        w.WriteString("cat", "task");
        w.WriteString("name", task.Name);
        w.WriteNumber("id", task.Id);
        WriteTimes(w, ts, pid, tid);
        w.WriteEndObject();
    }

    double MicrosecondsOf(long ticks) => Stopwatch.GetElapsedTime(_origin, ticks).TotalMicroseconds;

    /// <summary>The end of the picture: when the trace stopped, or now, or its last event if that is later.</summary>
    long EndTicks(Note[] notes)
    {
        long end = _recording ? Stopwatch.GetTimestamp() : _stopped;
        foreach (ref readonly var n in notes.AsSpan()) end = Math.Max(end, n.End);
        return end;
    }

    /// <summary>A task as the trace saw it: from its creation (or first step) to its end, if the trace saw that.</summary>
    sealed class Lifetime(AioTask task, long begin)
    {
        public readonly AioTask Task = task;
        public readonly long Begin = begin;
        public long? End;
        public readonly List<(long Start, long End)> Steps = [];
    }

    /// <summary>Every task the held notes mention, in order of first appearance.</summary>
    static List<Lifetime> Lifetimes(Note[] notes)
    {
        var byTask = new Dictionary<AioTask, Lifetime>(ReferenceEqualityComparer.Instance);
        var order = new List<Lifetime>();
        foreach (ref readonly var n in notes.AsSpan())
        {
            if (n.Subject is not AioTask task) continue;
            if (!byTask.TryGetValue(task, out var life))
            {
                life = new Lifetime(task, n.Start);
                byTask.Add(task, life);
                order.Add(life);
            }
            if (n.Kind == LoopTraceEventKind.Step) life.Steps.Add((n.Start, n.End));
            else if (n.Kind == LoopTraceEventKind.TaskDone) life.End = n.End;
        }
        return order;
    }

    // ---- the SVG timeline ----

    const int SvgWidth = 1200, LabelWidth = 180, RightMargin = 20, Top = 56, RowHeight = 18, BarHeight = 12;
    const string StepColour = "#4c78a8", CallbackColour = "#f58518", IdleColour = "#d9d9d9", LifeColour = "#9a9a9a";

    /// <summary>
    /// Draws the trace as an SVG timeline: a row for the loop's thread (task steps, callbacks, waits) and a row for
    /// each task (a line from its creation to its end, a block for each step, a mark for how it ended). Events too
    /// close to tell apart at the picture's scale are drawn as one block.
    /// </summary>
    /// <param name="stream">Where to write; left open.</param>
    /// <param name="maxTaskRows">How many tasks get a row, in order of first appearance; the others are counted below the picture.</param>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxTaskRows"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop records into the trace.</exception>
    public void WriteSvg(Stream stream, int maxTaskRows = 40)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTaskRows);
        CheckReadable(nameof(WriteSvg));
        var notes = Held();
        long begin = notes.Length > 0 ? Math.Min(_origin, notes[0].Start) : _origin;
        long end = EndTicks(notes);
        double span = Math.Max(1, end - begin);
        double plot = SvgWidth - LabelWidth - RightMargin;
        double X(long ticks) => LabelWidth + (ticks - begin) / span * plot;

        var lives = Lifetimes(notes);
        int rows = 1 + Math.Min(lives.Count, maxTaskRows);
        int height = Top + rows * RowHeight + 40;
        var svg = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        svg.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{SvgWidth}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        svg.Append(inv, $"<rect width=\"{SvgWidth}\" height=\"{height}\" fill=\"white\"/>\n");
        string dropped = Dropped > 0 ? $", {Dropped:N0} older dropped" : "";
        svg.Append(inv, $"<text x=\"8\" y=\"16\" font-size=\"13\" font-weight=\"bold\">Event loop trace: {Stopwatch.GetElapsedTime(begin, end).TotalMilliseconds:F3} ms, {notes.Length:N0} events{dropped}</text>\n");
        AppendLegend(svg);
        AppendAxis(svg, begin, end, X);

        // The loop's row: its colours alternate at every event, so it is painted by columns of half a pixel, each in
        // the colour that covers most of it.
        double y = Top;
        AppendLabel(svg, y, "loop");
        var columns = new ColumnPainter(LabelWidth, plot);
        foreach (ref readonly var n in notes.AsSpan())
        {
            int colour = n.Kind switch
            {
                LoopTraceEventKind.Step => 0,
                LoopTraceEventKind.Callback => 1,
                LoopTraceEventKind.Idle => 2,
                _ => -1,
            };
            if (colour >= 0) columns.Add(X(n.Start), X(n.End), colour);
        }
        columns.Draw(svg, y + (RowHeight - BarHeight) / 2.0, BarHeight, [StepColour, CallbackColour, IdleColour]);

        // A row per task.
        for (int i = 0; i < rows - 1; i++)
        {
            var life = lives[i];
            y = Top + (i + 1) * RowHeight;
            AppendLabel(svg, y, life.Task.Name);
            double mid = y + RowHeight / 2.0;
            double x0 = X(life.Begin), x1 = X(life.End ?? end);
            svg.Append(inv, $"<line x1=\"{x0:F1}\" y1=\"{mid:F1}\" x2=\"{x1:F1}\" y2=\"{mid:F1}\" stroke=\"{LifeColour}\" stroke-width=\"1\"/>\n");
            var steps = new BlockMerger(svg, y + (RowHeight - BarHeight) / 2.0, BarHeight);
            foreach (var (s, e) in life.Steps) steps.Add(X(s), X(e), StepColour);
            steps.Flush();
            if (life.End != null)
            {
                string mark = life.Task.IsCancelled ? "#7f7f7f" : life.Task.IsFaulted ? "#d62728" : "#2ca02c";
                svg.Append(inv, $"<rect x=\"{x1 - 1:F1}\" y=\"{y + 2:F1}\" width=\"2\" height=\"{RowHeight - 4}\" fill=\"{mark}\"/>\n");
            }
        }
        if (lives.Count > rows - 1)
            svg.Append(inv, $"<text x=\"8\" y=\"{Top + rows * RowHeight + 14}\">… and {lives.Count - (rows - 1):N0} more tasks</text>\n");
        svg.Append("</svg>\n");
        var bytes = Encoding.UTF8.GetBytes(svg.ToString());
        stream.Write(bytes);
    }

    /// <summary>Writes the SVG timeline to the file <paramref name="path"/> (created or replaced); see <see cref="WriteSvg(Stream, int)"/>.</summary>
    /// <param name="path">The file to write, usually ending in <c>.svg</c>.</param>
    /// <param name="maxTaskRows">How many tasks get a row.</param>
    public void SaveSvg(string path, int maxTaskRows = 40)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = File.Create(path);
        WriteSvg(file, maxTaskRows);
    }

    static void AppendLegend(StringBuilder svg)
    {
        (string Colour, string Text)[] keys =
        [
            (StepColour, "task step"), (CallbackColour, "callback"), (IdleColour, "waiting for I/O or timers"),
            ("#2ca02c", "finished"), ("#d62728", "failed"), ("#7f7f7f", "cancelled"),
        ];
        double x = 8;
        foreach (var (colour, text) in keys)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x:F0}\" y=\"24\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{x + 14:F0}\" y=\"33\">{text}</text>\n");
            x += 24 + text.Length * 6;
        }
    }

    static void AppendAxis(StringBuilder svg, long begin, long end, Func<long, double> x)
    {
        double ms = Stopwatch.GetElapsedTime(begin, end).TotalMilliseconds;
        double step = NiceStep(ms / 8);
        for (double t = 0; t <= ms + 1e-9; t += step)
        {
            double px = x(begin + (long)(t / 1000 * Stopwatch.Frequency));
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{px:F1}\" y1=\"{Top - 4}\" x2=\"{px:F1}\" y2=\"{Top}\" stroke=\"#444\"/><text x=\"{px:F1}\" y=\"{Top - 6}\" text-anchor=\"middle\" fill=\"#444\">{FormatMs(t)}</text>\n");
        }
    }

    /// <summary>1, 2 or 5 times a power of ten, at least <paramref name="rough"/>.</summary>
    internal static double NiceStep(double rough)
    {
        if (rough <= 0) return 1;
        double power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        foreach (var m in (ReadOnlySpan<double>)[1, 2, 5, 10])
            if (m * power >= rough) return m * power;
        return 10 * power;
    }

    static string FormatMs(double ms) =>
        ms >= 1000 ? string.Create(CultureInfo.InvariantCulture, $"{ms / 1000:0.###} s")
        : ms >= 1 || ms == 0 ? string.Create(CultureInfo.InvariantCulture, $"{ms:0.###} ms")
        : string.Create(CultureInfo.InvariantCulture, $"{ms * 1000:0.###} µs");

    static void AppendLabel(StringBuilder svg, double y, string name)
    {
        string shown = name.Length > 28 ? name[..27] + "…" : name;
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"8\" y=\"{y + RowHeight - 5:F1}\">{Escape(shown)}</text>\n");
    }

    /// <summary>Text as XML takes it: the markup characters escaped, and characters XML 1.0 forbids (controls but tab, LF
    /// and CR; U+FFFE, U+FFFF; a lone surrogate) replaced with U+FFFD, so that any task name leaves the picture valid.</summary>
    internal static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) sb.Append(c).Append(text[++i]);
                    else if ((c < 0x20 && c is not ('\t' or '\n' or '\r')) || c is '\uFFFE' or '\uFFFF' || char.IsSurrogate(c)) sb.Append('\uFFFD');
                    else sb.Append(c);
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// Paints a row of several colours at the picture's scale: the row is cut into columns of half a pixel, each takes the
    /// colour that covers most of it, and a run of columns of one colour is one rectangle. However many events there are,
    /// the row has at most one rectangle per column.
    /// </summary>
    sealed class ColumnPainter(double left, double width)
    {
        const double ColumnWidth = 0.5;
        readonly double[,] _cover = new double[(int)Math.Ceiling(width / ColumnWidth), 3];

        public void Add(double x0, double x1, int colour)
        {
            int count = _cover.GetLength(0);
            double a = (x0 - left) / ColumnWidth, b = (x1 - left) / ColumnWidth;
            int first = Math.Clamp((int)a, 0, count - 1), last = Math.Clamp((int)b, 0, count - 1);
            for (int c = first; c <= last; c++)
                _cover[c, colour] += Math.Max(1e-6, Math.Min(b, c + 1) - Math.Max(a, c));   // an event too short to measure still counts
        }

        public void Draw(StringBuilder svg, double y, double height, string[] colours)
        {
            int count = _cover.GetLength(0), runStart = -1, runColour = -1;
            for (int c = 0; c <= count; c++)
            {
                int colour = c < count ? Dominant(c) : -1;
                if (colour == runColour) continue;
                if (runColour >= 0)
                    svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{left + runStart * ColumnWidth:F1}\" y=\"{y:F1}\" width=\"{(c - runStart) * ColumnWidth:F1}\" height=\"{height}\" fill=\"{colours[runColour]}\"/>\n");
                runStart = c;
                runColour = colour;
            }
        }

        int Dominant(int column)
        {
            int best = -1;
            double most = 0;
            for (int k = 0; k < _cover.GetLength(1); k++)
                if (_cover[column, k] > most) (most, best) = (_cover[column, k], k);
            return best;
        }
    }

    /// <summary>Draws a row's blocks of one colour, merging a block into the one before when they would touch at the picture's scale, so that the row has at most one block per half pixel.</summary>
    struct BlockMerger(StringBuilder svg, double y, double height)
    {
        double _x0 = double.NaN, _x1;
        string? _colour;

        public void Add(double x0, double x1, string colour)
        {
            if (_colour == colour && x0 <= _x1 + 0.5)
            {
                _x1 = Math.Max(_x1, x1);
                return;
            }
            Flush();
            (_x0, _x1, _colour) = (x0, x1, colour);
        }

        public void Flush()
        {
            if (_colour == null) return;
            double width = Math.Max(0.5, _x1 - _x0);
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{_x0:F1}\" y=\"{y:F1}\" width=\"{width:F1}\" height=\"{height}\" fill=\"{_colour}\"/>\n");
            _colour = null;
        }
    }
}
