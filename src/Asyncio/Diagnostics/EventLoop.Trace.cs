using System.Diagnostics;

namespace Asyncio;

// Where the loop feeds its trace (LoopTrace.cs): the instrumented path of RunOnce (RunItemTimed) notes each
// callback, PollReactor each wait that may block, Schedule and TaskEnded each task's creation and end.

public sealed partial class EventLoop
{
    LoopTrace? _trace;

    /// <summary>
    /// Whether ready callbacks run through the instrumented path (<see cref="RunItemTimed"/>): in debug mode or while
    /// a trace records. One field, so the normal path tests one thing.
    /// </summary>
    bool _instrumented;

    void UpdateInstrumented() => _instrumented = _debug || _trace != null;

    /// <summary>
    /// Starts recording what the loop runs and when: each task step and callback with its duration, the waits for
    /// I/O and timers, and the tasks' creation and end (see <see cref="LoopTrace"/>). The trace records until
    /// <see cref="LoopTrace.Stop"/> or until the loop closes; write it out with
    /// <see cref="LoopTrace.WriteChromeTrace(Stream)"/> (Perfetto, <c>chrome://tracing</c>) or
    /// <see cref="LoopTrace.WriteSvg(Stream, int)"/> (a timeline picture). While it records, callbacks run through
    /// the loop's instrumented path, as in debug mode (on the benchmark machine 50-90 ns more per callback, nothing
    /// allocated). Loop thread, or
    /// any thread while the loop does not run.
    /// </summary>
    /// <param name="capacity">How many events to keep: once full, the newest replace the oldest. 32 bytes each.</param>
    /// <returns>The trace, recording.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is not positive.</exception>
    /// <exception cref="InvalidOperationException">A trace is recording already, the loop is closed, or the call comes from another thread while the loop runs.</exception>
    public LoopTrace StartTrace(int capacity = 65_536)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        CheckThread(nameof(StartTrace));
        CheckNotClosed();
        if (_trace != null) throw new InvalidOperationException("A trace is already recording on this loop; stop it first (LoopTrace.Stop).");
        _trace = new LoopTrace(this, capacity);
        UpdateInstrumented();
        return _trace;
    }

    /// <summary>The trace recording now, or <see langword="null"/>.</summary>
    public LoopTrace? Trace => _trace;

    internal void DetachTrace(LoopTrace trace)
    {
        if (!ReferenceEquals(_trace, trace)) return;
        _trace = null;
        UpdateInstrumented();
    }

    /// <summary>The task a ready item runs a step of: the one whose scope it resumes in, or the one it starts.</summary>
    static AioTask? TaskOfItem(in ReadyItem item) =>
        item.Scope?.Task ?? (ReferenceEquals(item.Callback, AioTask.s_start) ? item.State as AioTask : AioTask.StartedBy(item.Callback, item.State) ?? FirstOfRun(item.Callback, item.State));

    /// <summary>Notes a task's creation or end, an instant, while a trace records.</summary>
    void TraceTask(LoopTraceEventKind kind, AioTask task)
    {
        if (_trace is { } trace)
        {
            long now = Stopwatch.GetTimestamp();
            trace.Add(kind, now, now, task);
        }
    }
}
