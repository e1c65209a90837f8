using System.Diagnostics;

namespace Asyncio;

// The loop's trace recorder (docs/design/diagnostics.md, "Traces").
//
// While a trace records, the loop runs its ready callbacks through its instrumented path (the one debug mode
// uses; the normal path pays one test of a field per iteration) and notes, for each callback, when it started,
// when it ended and what it was: a task's step (the task) or a plain callback (the delegate the program
// scheduled). It also notes when tasks are created and when they end, and how long the loop waited for I/O or
// timers. A note is a 32-byte struct in a ring of fixed size made when the trace starts: recording allocates
// nothing, and a long-running program keeps the latest notes (a flight recorder). Names are read only when the
// trace is read or written out, so a note holds its task or delegate, not a string.

/// <summary>What a <see cref="LoopTraceEvent"/> records.</summary>
public enum LoopTraceEventKind
{
    /// <summary>A step of a task: its coroutine ran from one suspension to the next (or to its end).</summary>
    Step,
    /// <summary>A plain callback ran (<see cref="EventLoop.CallSoon(Action)"/>, a timer's callback, a protocol's event, a done callback).</summary>
    Callback,
    /// <summary>The loop waited for I/O, a timer or a thread-safe callback.</summary>
    Idle,
    /// <summary>A task was created (an instant: <see cref="LoopTraceEvent.Duration"/> is zero).</summary>
    TaskCreated,
    /// <summary>A task ended: finished, failed or cancelled (an instant).</summary>
    TaskDone,
}

/// <summary>One event of a <see cref="LoopTrace"/>.</summary>
public readonly struct LoopTraceEvent
{
    internal LoopTraceEvent(LoopTraceEventKind kind, TimeSpan start, TimeSpan duration, AioTask? task, Delegate? callback)
    {
        Kind = kind;
        Start = start;
        Duration = duration;
        Task = task;
        Callback = callback;
    }

    /// <summary>What happened.</summary>
    public LoopTraceEventKind Kind { get; }

    /// <summary>When it began, counted from the start of the trace (real time, also on a loop with virtual time).</summary>
    public TimeSpan Start { get; }

    /// <summary>How long it took; zero for <see cref="LoopTraceEventKind.TaskCreated"/> and <see cref="LoopTraceEventKind.TaskDone"/>.</summary>
    public TimeSpan Duration { get; }

    /// <summary>The task of a step, or the task created or ended; <see langword="null"/> for callbacks and waits.</summary>
    public AioTask? Task { get; }

    /// <summary>The delegate the program scheduled, for a <see cref="LoopTraceEventKind.Callback"/>; otherwise <see langword="null"/>.</summary>
    public Delegate? Callback { get; }

    /// <summary>A short name: the task's name, the callback's <c>Type.Method</c>, or <c>idle</c>.</summary>
    public string Name => Kind switch
    {
        LoopTraceEventKind.Idle => "idle",
        LoopTraceEventKind.Callback => EventLoop.CallbackName(Callback),
        _ => Task?.Name ?? "?",
    };

    /// <inheritdoc/>
    public override string ToString() =>
        Duration == TimeSpan.Zero ? $"{Start.TotalMilliseconds:F3} ms {Kind} {Name}" : $"{Start.TotalMilliseconds:F3} ms {Kind} {Name} ({Duration.TotalMilliseconds:F3} ms)";
}

/// <summary>
/// A recording of what an event loop ran and when: every task step and callback with its start and duration,
/// the loop's waits for I/O and timers, and the tasks' creation and end. Start one with
/// <see cref="EventLoop.StartTrace(int)"/>; read it as <see cref="Events"/>, or write it out for Perfetto or
/// <c>chrome://tracing</c> (<see cref="WriteChromeTrace(Stream)"/>) or as a timeline picture
/// (<see cref="WriteSvg(Stream, int)"/>).
/// </summary>
/// <remarks>
/// <para>The trace keeps the latest <see cref="Capacity"/> events (older ones are counted in
/// <see cref="Dropped"/>), in memory allocated when it starts; recording allocates nothing. Events hold the
/// tasks and delegates they name, so a trace kept keeps those alive.</para>
/// <para>Thread safety: the loop writes the trace on its thread. Read it on the loop's thread, or on any thread
/// while the loop is not running or once the trace has stopped (<see cref="Stop"/>, or the loop closed).</para>
/// </remarks>
public sealed partial class LoopTrace
{
    internal struct Note
    {
        public long Start, End;    // Stopwatch ticks
        public object? Subject;    // the task, or the callback's delegate
        public LoopTraceEventKind Kind;
    }

    readonly EventLoop _loop;
    readonly Note[] _notes;
    readonly long _origin;          // Stopwatch ticks when the trace started
    long _written;                  // notes ever written; the ring holds the last Capacity of them
    long _stopped;                  // Stopwatch ticks when it stopped; 0 while recording
    int _threadId;                  // the managed id of the thread that recorded (Chrome's tid)
    volatile bool _recording;

    internal LoopTrace(EventLoop loop, int capacity)
    {
        _loop = loop;
        _notes = new Note[capacity];
        _origin = Stopwatch.GetTimestamp();
        _recording = true;
    }

    /// <summary>How many events the trace keeps: once full, each new event replaces the oldest.</summary>
    public int Capacity => _notes.Length;

    /// <summary>Whether the loop is still recording into this trace.</summary>
    public bool IsRecording => _recording;

    /// <summary>Events recorded and then replaced by newer ones because the trace was full.</summary>
    public long Dropped => Math.Max(0, _written - _notes.Length);

    /// <summary>How long the trace has recorded (until <see cref="Stop"/> once stopped).</summary>
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_origin, _recording ? Stopwatch.GetTimestamp() : _stopped);

    /// <summary>
    /// Stops recording; the trace keeps what it holds. Idempotent. Loop thread, or any thread while the loop does
    /// not run. The loop stops its trace when it closes.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop runs.</exception>
    public void Stop()
    {
        if (!_recording) return;
        _loop.CheckThread(nameof(LoopTrace), nameof(Stop));
        StopWithLoop();
    }

    /// <summary>The loop closes: stops recording without the thread check (Close may come from any thread once the loop has stopped).</summary>
    internal void StopWithLoop()
    {
        _loop.DetachTrace(this);
        _stopped = Stopwatch.GetTimestamp();
        _recording = false;
    }

    /// <summary>The events the trace holds, by start time (a copy).</summary>
    /// <exception cref="InvalidOperationException">Read from another thread while the loop records into the trace.</exception>
    public IReadOnlyList<LoopTraceEvent> Events
    {
        get
        {
            CheckReadable(nameof(Events));
            var notes = Held();
            var events = new LoopTraceEvent[notes.Length];
            for (int i = 0; i < notes.Length; i++) events[i] = ToEvent(in notes[i]);
            return events;
        }
    }

    LoopTraceEvent ToEvent(in Note n) => new(
        n.Kind, Stopwatch.GetElapsedTime(_origin, n.Start), Stopwatch.GetElapsedTime(n.Start, n.End),
        n.Subject as AioTask, n.Subject as Delegate);

    /// <summary>The notes held, by start time (a step is noted when it ends, after what happened inside it).</summary>
    Note[] Held()
    {
        int count = (int)Math.Min(_written, _notes.Length);
        var held = new Note[count];
        int first = (int)((_written - count) % _notes.Length);
        int tail = Math.Min(count, _notes.Length - first);
        Array.Copy(_notes, first, held, 0, tail);
        Array.Copy(_notes, 0, held, tail, count - tail);
        return held.OrderBy(n => n.Start).ToArray();   // stable: instants noted in the same tick keep their order
    }

    void CheckReadable(string member)
    {
        if (_recording && !_loop.IsLoopThread && _loop.IsRunning)
            throw new InvalidOperationException($"LoopTrace.{member} was read from another thread while the loop records into the trace; stop the trace first, or read it on the loop's thread.");
    }

    // ---- recording (loop thread) ----

    internal void Add(LoopTraceEventKind kind, long start, long end, object? subject)
    {
        ref var n = ref _notes[(int)(_written % _notes.Length)];
        n.Start = start;
        n.End = end;
        n.Subject = subject;
        n.Kind = kind;
        if (_written++ == 0) _threadId = Environment.CurrentManagedThreadId;
    }
}
