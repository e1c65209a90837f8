namespace Asyncio;

/// <summary>
/// Runs coroutines on an event loop that it creates and closes; asyncio's <c>Runner</c>. Most programs
/// use <see cref="Aio.Run(Func{Task}, LoopOptions?)"/>, which is one <see cref="Runner"/> used once.
/// </summary>
/// <remarks>
/// <see cref="Close"/> cancels the tasks still running and waits for them, waits for the default executor's work,
/// and closes the loop. The runner works from a thread that has its own
/// <see cref="SynchronizationContext"/> (a UI thread, a test runner) and restores it afterwards. While a
/// coroutine runs, the first Ctrl+C cancels it (the program may clean up); the second ends the process. A program
/// that sets its own SIGINT handler (<see cref="EventLoop.AddSignalHandler(int, Action)"/>) gets every Ctrl+C instead.
/// </remarks>
public sealed class Runner : IDisposable
{
    readonly LoopOptions? _options;
    EventLoop? _loop;
    bool _closed;

    /// <summary>Creates a runner; the loop is created on first use with <paramref name="options"/>.</summary>
    public Runner(LoopOptions? options = null) => _options = options;

    /// <summary>The runner's loop (created if needed).</summary>
    /// <exception cref="ObjectDisposedException">The runner is closed.</exception>
    public EventLoop GetLoop()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        return _loop ??= new EventLoop(_options);
    }

    /// <summary>Runs <paramref name="main"/> as a task until it completes and rethrows its failure; asyncio's <c>Runner.run()</c>.</summary>
    /// <exception cref="InvalidOperationException">An event loop is already running on this thread.</exception>
    public void Run(Func<Task> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        Run<bool>(async () => { await main().ConfigureAwait(true); return true; });
    }

    /// <summary>Runs <paramref name="main"/> as a task until it completes and returns its result.</summary>
    /// <exception cref="InvalidOperationException">An event loop is already running on this thread.</exception>
    public T Run<T>(Func<Task<T>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        if (EventLoop.TryGetRunningLoop() != null)
            throw new InvalidOperationException(
                "Aio.Run() cannot be called while an event loop is running on this thread; await the coroutine instead.");
        var loop = GetLoop();
        var task = loop.CreateTask(main, "main");
        int interrupts = 0;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // Ctrl+C only: .NET raises this event for SIGQUIT too (Ctrl+\, ControlBreak), which asyncio's runner leaves
            // alone, to its default action or to the program's handler (EventLoop.DumpTasksOnSignal).
            if (e.SpecialKey != ConsoleSpecialKey.ControlC) return;
            if (loop.HandlesSigint) return;   // the program handles SIGINT itself (EventLoop.AddSignalHandler)
            if (Interlocked.Increment(ref interrupts) > 1) return; // second Ctrl+C: let the process end
            e.Cancel = true;
            loop.PostInternal(static t => ((AioTask)t!).Cancel("interrupted"), task);   // dropped if the loop is closed
        };
        bool hooked = TryHook(onCancel);
        try
        {
            return loop.RunUntilComplete(task);
        }
        finally
        {
            if (hooked) Console.CancelKeyPress -= onCancel;
        }
    }

    static bool TryHook(ConsoleCancelEventHandler handler)
    {
        try
        {
            Console.CancelKeyPress += handler;
            return true;
        }
        catch (PlatformNotSupportedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Cancels the loop's remaining tasks and waits for them, waits for the default executor's work, and closes the
    /// loop; asyncio's <c>Runner.close()</c>. Idempotent.
    /// </summary>
    public void Close()
    {
        if (_closed) return;
        _closed = true;
        var loop = _loop;
        if (loop == null || loop.IsClosed) return;
        try
        {
            CancelAllTasks(loop);
            var drained = loop.ShutdownDefaultExecutor();
            if (!drained.IsDone)
            {
                // Wait for executor work, but not forever (asyncio waits up to 300 s too).
                drained.AddDoneCallback(_ => loop.Stop());
                var limit = loop.CallLater(300, loop.Stop);
                loop.RunForever();
                limit.Cancel();
            }
        }
        finally
        {
            loop.Close();
        }
    }

    static void CancelAllTasks(EventLoop loop)
    {
        var tasks = loop.AllTasks();
        if (tasks.Count == 0) return;
        foreach (var t in tasks) t.Cancel();
        var all = loop.CreateFuture();
        int remaining = tasks.Count;
        foreach (var t in tasks)
        {
            t.AddDoneCallback(_ =>
            {
                if (--remaining == 0) all.SetResult();
            });
        }
        loop.RunUntilComplete(all);
        foreach (var t in tasks)
        {
            if (!t.IsCancelled && t.RetrieveException() is { } e)
                loop.CallExceptionHandler(new ExceptionContext("Unhandled exception during Aio.Run() shutdown", e) { Task = t });
        }
    }

    /// <summary>Closes the runner (<see cref="Close"/>).</summary>
    public void Dispose() => Close();
}

public static partial class Aio
{
    /// <summary>
    /// Creates an event loop, runs <paramref name="main"/> in it until it completes, cancels what is left,
    /// waits for the default executor's work, closes the loop, and rethrows <paramref name="main"/>'s failure; asyncio's
    /// <c>asyncio.run()</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">An event loop is already running on this thread (await instead).</exception>
    public static void Run(Func<Task> main, LoopOptions? options = null)
    {
        using var runner = new Runner(options);
        runner.Run(main);
    }

    /// <summary>Runs <paramref name="main"/> as <see cref="Run(Func{Task}, LoopOptions?)"/> does and returns its result.</summary>
    public static T Run<T>(Func<Task<T>> main, LoopOptions? options = null)
    {
        using var runner = new Runner(options);
        return runner.Run(main);
    }
}
