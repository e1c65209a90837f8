using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Asyncio;

public sealed partial class EventLoop
{
    long _virtualNow;
    readonly long _autojumpTicks;
    readonly List<TimerSlot> _scanBuffer = new();

    /// <summary>
    /// The loop's clock in seconds; asyncio's <c>loop.time()</c>. Monotonic (the system's monotonic clock),
    /// or virtual time starting at zero when the loop runs on <see cref="LoopOptions.VirtualTime"/>.
    /// </summary>
    public double Time() => TicksToSeconds(NowTicks());

    /// <summary>The loop's clock as a <see cref="System.TimeProvider"/>: timestamps follow <see cref="Time"/>
    /// and timers are loop timers, so <c>Task.Delay(t, loop.TimeProvider)</c> and <see cref="PeriodicTimer"/>
    /// follow virtual time too. Timer callbacks run on the loop thread.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>The loop clock in <see cref="Stopwatch"/> ticks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal long NowTicks() => IsVirtualTime ? Volatile.Read(ref _virtualNow) : Stopwatch.GetTimestamp();

    internal double TicksToSeconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    /// <summary>
    /// The deadline that infinite (or absurdly far) delays are clamped to, in ticks: such a timer never
    /// fires, and virtual time never jumps to it (asyncio: <c>call_later(math.inf)</c> never runs).
    /// </summary>
    internal const long NeverTicks = long.MaxValue / 4;

    /// <summary>A deadline in seconds on the loop's clock: <see cref="double.PositiveInfinity"/> for one clamped to <see cref="NeverTicks"/>.</summary>
    internal static double DeadlineToSeconds(long due) => due >= NeverTicks ? double.PositiveInfinity : (double)due / Stopwatch.Frequency;

    /// <summary>Converts a delay in seconds to ticks, rounding up so that a timer is never early.</summary>
    internal static long DelayToTicks(double seconds, string paramName)
    {
        if (double.IsNaN(seconds)) throw new ArgumentException("A delay cannot be NaN.", paramName);
        if (seconds <= 0) return 0;
        double ticks = Math.Ceiling(seconds * Stopwatch.Frequency);
        return ticks >= NeverTicks ? NeverTicks : (long)ticks;
    }

    internal static long DelayToTicks(TimeSpan delay)
    {
        // Infinite first: it is -1 ms, and must not be read as a delay already over.
        if (delay == System.Threading.Timeout.InfiniteTimeSpan) return NeverTicks;
        if (delay <= TimeSpan.Zero) return 0;
        Int128 t = ((Int128)delay.Ticks * Stopwatch.Frequency + TimeSpan.TicksPerSecond - 1) / TimeSpan.TicksPerSecond;
        return t >= NeverTicks ? NeverTicks : (long)t;
    }

    internal long WhenToTicks(double when, string paramName)
    {
        if (double.IsNaN(when)) throw new ArgumentException("A deadline cannot be NaN.", paramName);
        double ticks = Math.Ceiling(when * Stopwatch.Frequency);
        if (ticks >= NeverTicks) return NeverTicks;
        if (ticks <= long.MinValue / 4) return long.MinValue / 4;
        return (long)ticks;
    }

    internal static long AddTicks(long now, long delay) => delay >= NeverTicks - now ? NeverTicks : now + delay;

    // ---- handle timers ----

    /// <summary>
    /// Schedules <paramref name="callback"/> to run <paramref name="delay"/> seconds from now; asyncio's
    /// <c>call_later</c>. It runs once <see cref="Time"/> has reached the deadline, never before; timers
    /// with the same deadline run in the order they were scheduled. Loop thread only. A negative delay runs it on
    /// the next iteration; a delay beyond what the clock's ticks hold (about 290 years) means never
    /// (<see cref="TimerHandle.When"/> is then infinite). Deadlines are kept in the clock's ticks, so
    /// <see cref="TimerHandle.When"/> may differ from the time asked for in its last digits.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="delay"/> is NaN (asyncio accepts it).</exception>
    public TimerHandle CallLater(double delay, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return CallLater(delay, s_invokeAction, callback);
    }

    /// <summary>
    /// Schedules <paramref name="callback"/> after <paramref name="delay"/>; see <see cref="CallLater(double, Action)"/>.
    /// <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> means never.
    /// </summary>
    public TimerHandle CallLater(TimeSpan delay, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (delay < TimeSpan.Zero && delay != System.Threading.Timeout.InfiniteTimeSpan)
            return AddPastTimer(s_invokeAction, callback, delay == TimeSpan.MinValue ? NeverTicks : DelayToTicks(delay.Negate()));
        return AddTimer(s_invokeAction, callback, DelayToTicks(delay), relative: true);
    }

    /// <summary>Schedules <paramref name="callback"/> with <paramref name="state"/> after <paramref name="delay"/> seconds.</summary>
    public TimerHandle CallLater(double delay, Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (delay < 0) return AddPastTimer(callback, state, DelayToTicks(-delay, nameof(delay)));
        return AddTimer(callback, state, DelayToTicks(delay, nameof(delay)), relative: true);
    }

    /// <summary>
    /// A negative delay is a deadline in the past: the timer runs on the next iteration, ordered by that
    /// deadline among the other due timers (asyncio: <c>call_later(-2)</c> runs before <c>call_later(-1)</c>).
    /// </summary>
    TimerHandle AddPastTimer(Action<object?> callback, object? state, long ticksAgo)
    {
        CheckThread(nameof(CallLater));
        CheckNotClosed();
        return new TimerHandle(ScheduleTimerEntry(callback, state, NowTicks() - ticksAgo, relative: false));
    }

    /// <summary>
    /// Schedules <paramref name="callback"/> to run when <see cref="Time"/> reaches <paramref name="when"/>;
    /// asyncio's <c>call_at</c>. Loop thread only. See <see cref="CallLater(double, Action)"/> for the deadline's range
    /// and precision.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="when"/> is NaN.</exception>
    public TimerHandle CallAt(double when, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return CallAt(when, s_invokeAction, callback);
    }

    /// <summary>Schedules <paramref name="callback"/> with <paramref name="state"/> at loop time <paramref name="when"/>.</summary>
    public TimerHandle CallAt(double when, Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return AddTimer(callback, state, WhenToTicks(when, nameof(when)), relative: false);
    }

    TimerHandle AddTimer(Action<object?> callback, object? state, long ticks, bool relative)
    {
        CheckThread(relative ? nameof(CallLater) : nameof(CallAt));
        CheckNotClosed();
        return new TimerHandle(ScheduleTimerEntry(callback, state, ticks, relative));
    }

    internal TimerEntry ScheduleTimerEntry(Action<object?> callback, object? state, long ticks, bool relative)
    {
        long due = relative ? AddTicks(NowTicks(), ticks) : ticks;
        var entry = new TimerEntry(this, callback, state, due) { Queued = true, Context = ContextToHandOn() };
        _timers.Add(due, ++_seq, entry, null, 0, relative ? ticks : -1);
        return entry;
    }

    internal void CancelTimer(TimerEntry entry)
    {
        if (entry.Cancelled) return;
        CheckThread(nameof(TimerHandle), nameof(TimerHandle.Cancel));
        entry.Cancelled = true;
        entry.Callback = null;
        entry.State = null;
        entry.Context = null;
        if (entry.Queued)
        {
            entry.Queued = false;
            _timers.NoteEntryCancelled();
        }
    }

    /// <summary>Timers held, cancelled ones not yet dropped included (tests of compaction).</summary>
    internal int TimerSlotsHeld => _timers.HeldCount;

    /// <summary>Slots the timer heap can hold without taking more memory (tests of its memory).</summary>
    internal int TimerHeapCapacity => _timers.HeapCapacity;

    /// <summary>64 KiB slot chunks held by the timer heap and lanes (tests of their memory).</summary>
    internal int TimerChunksInUse => _timers.ChunksInUse;

    /// <summary>Timer lanes made so far (tests).</summary>
    internal int TimerLanes => _timers.LaneCount;

    /// <summary>Enters a continuation into the timers' table, as a sleep would (tests of a full table).</summary>
    internal bool TryAddTimerContinuation(Action<object?> continuation) => _timers.KindOf(continuation) > 0;

    // ---- sleeps ----

    readonly SleepSource _sleepSource;
    [ThreadStatic] static Exception? t_sleepMisuse;
    short _sleepToken;
    long _stashedDue, _stashedLane;
    bool _sleepPrepared;           // a sleep's awaiter was obtained and has not suspended yet
    string? _resumeMessage;

    /// <summary>Called by <see cref="SleepAwaitable.GetAwaiter"/>: remembers the deadline for the OnCompleted that follows.</summary>
    internal ValueTaskAwaiter PrepareSleep(long due, long laneKey)
    {
        CheckAwaitThread();
        _stashedDue = due;
        _stashedLane = laneKey;
        _sleepPrepared = true;
        return new ValueTask(_sleepSource, ++_sleepToken).GetAwaiter();
    }

    void RegisterSleep(Action<object?> cont, object? state)
    {
        _sleepPrepared = false;
        var scope = _current;
        if (MustCancelCount != 0 && scope.TryConsumeCancel(out var message))
        {
            EnqueueCancelledResume(cont, state, scope, message);
            return;
        }
        long due = _stashedDue;
        if (_stashedLane == 0)
        {
            // Sleep(0): yield exactly one iteration.
            _ready.Enqueue(cont, state, scope, ReadyFlags.Resume);
            return;
        }
        int kind = _timers.KindOf(cont);
        if (kind < 0)
        {
            // The table of continuations is full (more than 60 distinct ones: not seen in practice; async
            // methods all pass the same one): wrap this one with its state in an object of its own.
            state = new ContinuationBox(cont, state);
            cont = ContinuationBox.Run;
            kind = _timers.KindOf(cont);
            System.Diagnostics.Debug.Assert(kind > 0);
        }
        int seq = ++_seq;
        scope.AddSleep(seq, kind, state);
        _timers.Add(due, seq, state, scope, kind, _stashedLane);
    }

    internal void CancelSleep(int seq, int kind, object? state, CancelScope scope, string? message)
    {
        _timers.CancelSleep(seq);
        EnqueueCancelledResume(_timers.ContinuationOf(kind), state, scope, message);
    }

    internal void CancelSleepsOf(CancelScope scope, string? message)
    {
        _scanBuffer.Clear();
        _timers.TakeSleepsOf(scope, _scanBuffer);
        foreach (var slot in _scanBuffer)
        {
            scope.SleepCancelledByScan(slot.Seq);
            EnqueueCancelledResume(_timers.ContinuationOf(slot.Kind), slot.State, scope, message);
        }
        _scanBuffer.Clear();
    }

    void EnqueueCancelledResume(Action<object?> cont, object? state, CancelScope scope, string? message) =>
        _ready.Enqueue(CancelledResume.Run, new CancelledResume(cont, state, message), scope, ReadyFlags.Resume | ReadyFlags.Cancelled);

    /// <summary>A resumption that carries a cancellation message to the awaiter's GetResult.</summary>
    sealed class CancelledResume(Action<object?> cont, object? state, string? message)
    {
        public static readonly Action<object?> Run = static o =>
        {
            var r = (CancelledResume)o!;
            var loop = t_running!;
            loop._resumeMessage = r.Message;
            r.Cont(r.State);
        };
        public readonly Action<object?> Cont = cont;
        public readonly object? State = state;
        public readonly string? Message = message;
    }

    /// <summary>A continuation kept with its state when the timer's continuation table is full.</summary>
    sealed class ContinuationBox(Action<object?> cont, object? state)
    {
        public static readonly Action<object?> Run = static o =>
        {
            var b = (ContinuationBox)o!;
            b._cont(b._state);
        };
        readonly Action<object?> _cont = cont;
        readonly object? _state = state;
    }

    /// <summary>
    /// Ends a sleep: throws <see cref="CancelledError"/> if the resumption carries a cancellation, or if the
    /// scope was cancelled after the timer fired but before the awaiter resumed.
    /// </summary>
    void CompleteSleep()
    {
        var flags = _resumeFlags;
        _resumeFlags = ReadyFlags.None;
        if ((flags & ReadyFlags.Cancelled) != 0)
        {
            var msg = _resumeMessage;
            _resumeMessage = null;
            // This one error also answers any cancellation that came after the sleep was cancelled but
            // before it resumed (asyncio's __step throws once, however many cancel() calls came in).
            if (MustCancelCount != 0) _current.TryConsumeCancel(out _);
            throw new CancelledError(msg);
        }
        if ((flags & ReadyFlags.Resume) != 0 && MustCancelCount != 0 && _current.TryConsumeCancel(out var message))
            throw new CancelledError(message);
    }

    /// <summary>The one value-task source behind every sleep of this loop.</summary>
    /// <remarks>
    /// A sleep has no object of its own: its deadline travels from <see cref="PrepareSleep"/> to
    /// <see cref="OnCompleted"/> through the loop (the two calls are adjacent in every await), and its
    /// outcome travels from the loop to <see cref="GetResult"/> through the flags of the callback that
    /// resumes it (<c>GetResult</c> is the first thing a resumed awaiter calls). The token catches a
    /// sleep awaited out of order.
    /// </remarks>
    sealed class SleepSource(EventLoop loop) : IValueTaskSource
    {
        public ValueTaskSourceStatus GetStatus(short token)
        {
            // A sleep never completes before it suspends; after it resumes, the resumption says how it ended.
            if (loop._sleepPrepared && token == loop._sleepToken) return ValueTaskSourceStatus.Pending;
            var flags = loop._resumeFlags;
            if ((flags & ReadyFlags.Resume) == 0) return ValueTaskSourceStatus.Pending;
            return (flags & ReadyFlags.Cancelled) != 0 ? ValueTaskSourceStatus.Canceled : ValueTaskSourceStatus.Succeeded;
        }

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            // Never throw here (it would crash the process): report misuse through GetResult.
            if (!loop.IsAwaitableHere || token != loop._sleepToken)
            {
                var error = !loop.IsAwaitableHere
                    ? loop.MakeBadAwaitError()
                    : new InvalidOperationException("A Sleep must be awaited as soon as its awaiter is obtained; another Sleep was awaited in between.");
                ThreadPool.UnsafeQueueUserWorkItem(static o =>
                {
                    var (c, s, e) = ((Action<object?>, object?, Exception))o!;
                    t_sleepMisuse = e;
                    try { c(s); } finally { t_sleepMisuse = null; }
                }, (continuation, state, error), preferLocal: false);
                return;
            }
            if ((flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0)
                FlowingContinuation.Wrap(ref continuation, ref state);
            loop.RegisterSleep(continuation, state);
        }

        public void GetResult(short token)
        {
            if (t_sleepMisuse is { } misuse)
            {
                t_sleepMisuse = null;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(misuse);
            }
            loop.CompleteSleep();
        }
    }
}
