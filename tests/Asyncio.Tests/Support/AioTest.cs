namespace Asyncio.Tests;

/// <summary>
/// Runs a test body in a fresh event loop (virtual time by default) and fails the test if the loop's
/// exception handler was called, so that errors nobody awaited cannot pass silently.
/// </summary>
public static class AioTest
{
    /// <summary>Runs <paramref name="body"/> on a new loop with virtual time.</summary>
    public static void Run(Func<Task> body, LoopOptions? options = null)
    {
        Run<bool>(async () => { await body(); return true; }, options);
    }

    /// <summary>Runs <paramref name="body"/> on a new loop with virtual time and returns its result.</summary>
    public static T Run<T>(Func<Task<T>> body, LoopOptions? options = null)
    {
        options ??= new LoopOptions { VirtualTime = true };
        var errors = new List<ExceptionContext>();
        using var runner = new Runner(options);
        runner.GetLoop().SetExceptionHandler((_, ctx) => errors.Add(ctx));
        var result = runner.Run(body);
        runner.Close();
        Assert.True(errors.Count == 0, "The loop reported errors:\n" + string.Join("\n", errors));
        return result;
    }

    /// <summary>
    /// Runs <paramref name="loop"/> forever until another thread, once the loop has blocked in its reactor
    /// (and 20 ms more), posts <paramref name="fromOtherThread"/> (if any) and a stop; a 30 s watchdog bounds
    /// the run. Returns what <see cref="EventLoop.RunForever"/> threw, or <see langword="null"/>.
    /// </summary>
    public static Exception? RunForeverUntilStoppedFromAnotherThread(EventLoop loop, Action? fromOtherThread = null)
    {
        int pollsBefore = loop.BlockingPolls;
        var poster = new Thread(() =>
        {
            // On a loaded machine the loop may take a while to reach its wait: post only once it has
            // blocked, so that the post has to wake it (give up waiting after 10 s and post anyway).
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (loop.BlockingPolls == pollsBefore && waited.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
            Thread.Sleep(20);
            loop.CallSoonThreadsafe(() => { fromOtherThread?.Invoke(); loop.Stop(); });
        });
        loop.CallSoon(poster.Start);
        using var watchdog = new Timer(_ => loop.CallSoonThreadsafe(loop.Stop), null, 30_000, Timeout.Infinite);
        var error = Record.Exception(loop.RunForever);
        poster.Join();
        return error;
    }

    /// <summary>Runs on real (monotonic) time.</summary>
    public static void RunReal(Func<Task> body) => Run(body, new LoopOptions());

    /// <summary>Runs <paramref name="body"/> and returns the errors the loop reported instead of failing on them.</summary>
    public static List<ExceptionContext> RunCollectingErrors(Func<Task> body, LoopOptions? options = null)
    {
        var errors = new List<ExceptionContext>();
        using var runner = new Runner(options ?? new LoopOptions { VirtualTime = true });
        runner.GetLoop().SetExceptionHandler((_, ctx) => errors.Add(ctx));
        runner.Run(body);
        runner.Close();
        return errors;
    }
}
