using System.Diagnostics;

namespace Asyncio;

// The blocked-loop watchdog of debug mode.
//
// asyncio's debug mode reports a slow callback once it has returned. A callback that never returns (a deadlock
// on a lock another thread holds, a blocking read, `.Result` on a task that needs the loop to complete) is
// never reported that way, and the program just hangs. So in debug mode the loop notes when each callback
// starts (RunItemTimed, the debug path: the normal path pays nothing; one small note object per callback), and a timer on a thread-pool thread
// looks at that note every quarter of BlockedLoopThreshold while the loop runs: a callback that has run longer
// than the threshold is reported while it still runs, once, naming its task or its method. The report goes
// where slow callbacks go, the default exception handler (the standard error), from the timer's thread: the
// loop's own thread is the one that is stuck. The slow-callback report still follows if the callback returns.

public sealed partial class EventLoop
{
    RunningCallback? _debugRunning;    // the callback running now (debug mode), published whole for the watchdog's thread
    RunningCallback? _watchdogReported;
    Timer? _watchdog;

    /// <summary>What the watchdog reads: one immutable note per debug callback, so its start and its names always agree.</summary>
    sealed record RunningCallback(long Start, Delegate Callback, AioTask? Task);

    /// <summary>
    /// In debug mode, a callback still running after this long is reported while it runs (a watchdog thread
    /// watches the loop), so that a loop that hangs says where. <see cref="TimeSpan.Zero"/> turns the watchdog
    /// off. Default: <see cref="LoopOptions.BlockedLoopThreshold"/> (1 s).
    /// </summary>
    public TimeSpan BlockedLoopThreshold { get; set; }

    /// <summary>Notes the callback about to run in debug mode, and starts the watchdog if it is needed.</summary>
    void WatchdogEnter(Delegate callback, AioTask? task, long start)
    {
        if (BlockedLoopThreshold <= TimeSpan.Zero) return;   // no watchdog: no note
        Volatile.Write(ref _debugRunning, new RunningCallback(start, callback, task));
        if (_watchdog == null) StartWatchdog();
    }

    void WatchdogLeave() => Volatile.Write(ref _debugRunning, null);

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
        var running = Volatile.Read(ref _debugRunning);
        var reported = Volatile.Read(ref _watchdogReported);
        if (running == null || ReferenceEquals(running, reported)) return;
        long threshold = BlockedLoopThreshold.Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond;
        long elapsed = Stopwatch.GetTimestamp() - running.Start;
        if (threshold <= 0 || elapsed < threshold) return;
        if (Interlocked.CompareExchange(ref _watchdogReported, running, reported) != reported) return;   // an overlapping tick reports it
        string what = DescribeRun(running.Callback, running.Task);
        GuardedDefaultExceptionHandler(new ExceptionContext(
            $"The event loop is blocked: {what} has been running for {(double)elapsed / Stopwatch.Frequency:F3} seconds (thread {_threadId})"));
    }

    /// <summary>Stops the watchdog (the loop stopped running, or closed); the next debug callback starts it again.</summary>
    void StopWatchdog()
    {
        _watchdog?.Dispose();
        _watchdog = null;
    }
}
