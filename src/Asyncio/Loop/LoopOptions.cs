namespace Asyncio;

/// <summary>Settings of an <see cref="EventLoop"/>, given to its constructor or to <see cref="Aio.Run(Func{Task}, LoopOptions?)"/>.</summary>
public sealed class LoopOptions
{
    /// <summary>
    /// Run on virtual time: the clock starts at zero and, whenever nothing is ready to run, jumps to the
    /// next timer's deadline instead of waiting (Trio's autojump clock). <c>await Aio.Sleep(3600)</c> then
    /// completes at once while <see cref="EventLoop.Time"/> advances by 3600. Default: off.
    /// </summary>
    public bool VirtualTime { get; init; }

    /// <summary>
    /// With <see cref="VirtualTime"/>, how long to wait in real time for outside events (thread-safe
    /// callbacks, I/O) before jumping the clock: the clock jumps only once the loop has had nothing to run
    /// for this long. Default: zero, jump as soon as nothing is ready. Work
    /// handed to threads through <see cref="EventLoop.RunInExecutor{T}(TaskScheduler?, Func{T})"/> always
    /// holds the clock until it reports back.
    /// </summary>
    public TimeSpan AutojumpThreshold { get; init; }

    /// <summary>
    /// Debug mode (asyncio's <c>debug=True</c>): slow callbacks are reported, a watchdog reports a callback that
    /// blocks the loop while it runs (<see cref="BlockedLoopThreshold"/>), closing the loop reports the tasks
    /// still pending, and a task whose coroutine ends off the loop's thread (<c>ConfigureAwait(false)</c>) is
    /// reported. Default: off, unless the environment variable <c>ASYNCIO_DEBUG</c> is set to a value other than
    /// <c>0</c> or <c>false</c> (asyncio's <c>PYTHONASYNCIODEBUG</c>, which any non-empty value sets, <c>0</c> included),
    /// which turns it on for every loop the process creates, so that a deployed program can be debugged without a
    /// rebuild; these options cannot turn it off then (<see cref="EventLoop.Debug"/> can, once the loop exists).
    /// </summary>
    public bool Debug { get; init; }

    /// <summary>In debug mode, callbacks that run longer than this are reported. Default: 100 ms, as in asyncio.</summary>
    public TimeSpan SlowCallbackDuration { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// In debug mode, a callback still running after this long is reported while it runs, by a watchdog thread
    /// (asyncio reports only once the callback returns, so a loop that hangs says nothing). Default: 1 s;
    /// <see cref="TimeSpan.Zero"/> turns the watchdog off.
    /// </summary>
    public TimeSpan BlockedLoopThreshold { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Start tasks eagerly: <c>CreateTask</c> runs the coroutine at once, up to its first suspension
    /// (asyncio's <c>eager_task_factory</c>). Default: off, tasks start on a later iteration.
    /// </summary>
    public bool EagerTasks { get; init; }

    /// <summary>
    /// A seed that shuffles the order of each iteration's ready callbacks reproducibly, to expose code that
    /// depends, without meaning to, on the order in which tasks and callbacks become ready. The shuffle also breaks
    /// the one order asyncio does promise, <c>call_soon</c>'s FIFO order (and so the start order of tasks created one
    /// after another): code that relies on that on purpose fails under it too, correctly written or not.
    /// <see langword="null"/> (the default) keeps FIFO order.
    /// </summary>
    public int? ScheduleSeed { get; init; }

    /// <summary>
    /// Whether and how long a loop with nothing to do keeps polling for I/O and thread-safe callbacks,
    /// without blocking, before it blocks: latency for CPU. Waking a blocked thread costs tens of
    /// microseconds on some machines (a virtual machine's inter-processor interrupt and the scheduler), more
    /// than serving a small request, so a server that answers one client at a time serves it two to three
    /// times as often when its loop spins for about 50 µs (docs/design/performance.md).
    /// <list type="bullet">
    /// <item><see langword="null"/> (the default): adaptive. The loop spins for up to 50 µs only after an
    /// idle wait that ended within 250 µs, and backs off after spins that caught nothing (after three in a
    /// row, at most one in 64 then spins), so loops whose waits are long (timers, idle servers) do not spin
    /// at all. Off on virtual time.</item>
    /// <item><see cref="TimeSpan.Zero"/>: never spin; block at once, as asyncio, uvloop and Tokio do.</item>
    /// <item>A positive span: spin that long before every blocking wait.</item>
    /// </list>
    /// The loop never spins past its next timer.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, or a second or more (given to the loop).</exception>
    public TimeSpan? IdleSpin { get; init; }

    /// <summary>Use the portable reactor even where epoll is available (for tests of the portable path).</summary>
    public bool PortableReactor { get; init; }
}
