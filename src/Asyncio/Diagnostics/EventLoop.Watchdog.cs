using System.Diagnostics;

namespace Asyncio;

// The blocked-loop watchdog of debug mode.
//
// asyncio's debug mode reports a slow callback once it has returned. A callback that never returns (a deadlock
// on a lock another thread holds, a blocking read, `.Result` on a task that needs the loop to complete) is
// never reported that way, and the program just hangs. So in debug mode the loop notes when each callback
// starts (RunItemTimed, the debug path: the normal path pays nothing), and a timer on a thread-pool thread
// looks at that note every quarter of BlockedLoopThreshold while the loop runs: a callback that has run longer
// than the threshold is reported while it still runs, once, naming its task or its method. The report goes
// where slow callbacks go, the default exception handler (the standard error), from the timer's thread: the
// loop's own thread is the one that is stuck. The slow-callback report still follows if the callback returns.

public sealed partial class EventLoop
{
    long _debugCallbackStart;          // Stopwatch ticks when the running callback started (debug mode), or 0
    Delegate? _debugCallback;
    AioTask? _debugTask;
    long _watchdogReported;            // the start already reported
    Timer? _watchdog;

    /// <summary>
    /// In debug mode, a callback still running after this long is reported while it runs (a watchdog thread
    /// watches the loop), so that a loop that hangs says where. <see cref="TimeSpan.Zero"/> turns the watchdog
    /// off. Default: <see cref="LoopOptions.BlockedLoopThreshold"/> (1 s).
    /// </summary>
    public TimeSpan BlockedLoopThreshold { get; set; }

    /// <summary>Notes the callback about to run in debug mode, and starts the watchdog if it is needed.</summary>
    void WatchdogEnter(Delegate callback, AioTask? task, long start)
    {
        _debugCallback = callback;
        _debugTask = task;
        Volatile.Write(ref _debugCallbackStart, start);
        if (_watchdog == null && BlockedLoopThreshold > TimeSpan.Zero) StartWatchdog();
    }

    void WatchdogLeave()
    {
        Volatile.Write(ref _debugCallbackStart, 0);
        _debugCallback = null;   // keeps nothing alive past its run
        _debugTask = null;
    }

    void StartWatchdog()
    {
        var period = TimeSpan.FromTicks(Math.Clamp(BlockedLoopThreshold.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond));
        // A weak reference: a loop dropped without Close is not kept alive by its watchdog, which then stops.
        var self = new WeakReference<EventLoop>(this);
        Timer? timer = null;
        timer = new Timer(_ =>
        {
            if (self.TryGetTarget(out var loop)) loop.WatchdogTick();
            else timer?.Dispose();
        }, null, period, period);
        _watchdog = timer;
    }

    /// <summary>On the timer's thread: reports the running callback once it has run longer than the threshold.</summary>
    void WatchdogTick()
    {
        long start = Volatile.Read(ref _debugCallbackStart);
        if (start == 0 || start == Volatile.Read(ref _watchdogReported)) return;
        long threshold = BlockedLoopThreshold.Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond;
        long running = Stopwatch.GetTimestamp() - start;
        if (threshold <= 0 || running < threshold) return;
        var callback = _debugCallback;
        var task = _debugTask;
        if (Volatile.Read(ref _debugCallbackStart) != start) return;   // it returned meanwhile: the names may be the next one's
        Volatile.Write(ref _watchdogReported, start);
        string what = task != null ? $"task {task.Name}" : $"callback {callback?.Method.DeclaringType?.Name}.{callback?.Method.Name}";
        GuardedDefaultExceptionHandler(new ExceptionContext(
            $"The event loop is blocked: {what} has been running for {(double)running / Stopwatch.Frequency:F3} seconds (thread {_threadId})"));
    }

    /// <summary>Stops the watchdog (the loop stopped running, or closed); the next debug callback starts it again.</summary>
    void StopWatchdog()
    {
        _watchdog?.Dispose();
        _watchdog = null;
    }
}
