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

    /// <summary>Debug mode (asyncio's <c>debug=True</c>): slow callbacks are reported. Default: off.</summary>
    public bool Debug { get; init; }

    /// <summary>In debug mode, callbacks that run longer than this are reported. Default: 100 ms, as in asyncio.</summary>
    public TimeSpan SlowCallbackDuration { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Start tasks eagerly: <c>CreateTask</c> runs the coroutine at once, up to its first suspension
    /// (asyncio's <c>eager_task_factory</c>). Default: off, tasks start on a later iteration.
    /// </summary>
    public bool EagerTasks { get; init; }

    /// <summary>
    /// A seed that shuffles the order of each iteration's ready callbacks, to expose code that depends on
    /// an order that asyncio does not promise. <see langword="null"/> (the default) keeps FIFO order.
    /// </summary>
    public int? ScheduleSeed { get; init; }

    /// <summary>
    /// How long the loop keeps polling for I/O and thread-safe callbacks, without blocking, before it
    /// blocks when nothing is ready: latency for CPU. Waking a blocked thread costs tens of microseconds on
    /// some machines (a virtual machine's inter-processor interrupt and the scheduler), more than serving a
    /// small request, so a server that answers one client at a time can serve it two to three times as
    /// often with a spin of about 50 µs (docs/design/performance.md). The loop never spins past its next
    /// timer. Default: zero, block at once (asyncio, uvloop and Tokio do not spin).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, or a second or more (given to the loop).</exception>
    public TimeSpan IdleSpin { get; init; }

    /// <summary>Use the portable reactor even where epoll is available (for tests of the portable path).</summary>
    public bool PortableReactor { get; init; }
}
