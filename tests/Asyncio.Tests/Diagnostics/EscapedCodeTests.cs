namespace Asyncio.Tests.Diagnostics;

/// <summary>Debug mode reports a task whose coroutine ended off the loop's thread (code after ConfigureAwait(false) escaped the loop).</summary>
[Collection("Console")] // one test redirects Console.Error
public class EscapedCodeTests
{
    /// <summary>Runs <paramref name="main"/> on a loop, debug mode as given, and returns the contexts its exception handler received.</summary>
    static List<ExceptionContext> Reports(Func<Task> main, bool debug = true)
    {
        var reports = new List<ExceptionContext>();
        using var loop = new EventLoop(new LoopOptions { Debug = debug });
        loop.SetExceptionHandler((_, context) => reports.Add(context));
        loop.RunUntilComplete(main);
        return reports;
    }

    static async Task EscapesWithConfigureAwaitFalse() => await Task.Delay(10).ConfigureAwait(false);

    static async Coroutine CoroutineEscapes() => await Task.Delay(10).ConfigureAwait(false);

    static async Task StaysOnTheLoop() => await Task.Delay(10);

    [Fact]
    public void AnAsyncTaskCoroutine_EndingAfterConfigureAwaitFalse_IsReportedWithItsTask()
    {
        AioTask? t = null;
        var reports = Reports(async () =>
        {
            t = Aio.CreateTask(EscapesWithConfigureAwaitFalse, "escaper");
            await t;
        });
        var report = Assert.Single(reports);
        Assert.Same(t, report.Task);
        Assert.Contains("Task escaper's coroutine ended on thread", report.Message);
        Assert.Contains("ConfigureAwait(false)", report.Message);
    }

    [Fact]
    public void ACoroutine_EndingAfterConfigureAwaitFalse_IsReportedWithItsTask()
    {
        AioTask? t = null;
        var reports = Reports(async () =>
        {
            t = Aio.CreateTask(CoroutineEscapes, "coroutine-escaper");
            await t;
        });
        Assert.Same(t, Assert.Single(reports).Task);
    }

    [Fact]
    public void AReportPostedToALoopThatClosesBeforeRunningIt_GoesToTheStandardError()
    {
        // The loop has stopped when the coroutine ends off its thread: the report cannot run there any more, and
        // Close hands it to the default handler instead of dropping it. The coroutine waits for a gate opened
        // once the loop has stopped (a race of Task.Delay(50) against a 10 ms sleep let a loaded machine end
        // the coroutine while the loop still ran, and the wait below then took its whole 30 s).
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string output = Loop.DebugModeTests.StandardErrorOf(() =>
        {
            var loop = new EventLoop(new LoopOptions { Debug = true });
            loop.RunUntilComplete(async () =>
            {
                _ = Aio.CreateTask(async () => await gate.Task.ConfigureAwait(false), "late-escaper");
                await Aio.Sleep(0);   // the task starts and waits at the gate
            });
            gate.SetResult();   // its continuation runs on the thread pool
            // The coroutine's end posts two callbacks to the stopped loop: the report, and the task's finish.
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (loop.ThreadsafePending < 2 && waited.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(1);
            loop.Close();
        });
        Assert.Contains("Task late-escaper's coroutine ended on thread", output);
    }

    [Fact]
    public void AReportMadeAfterTheLoopClosed_GoesToTheStandardError()
    {
        // The loop is closed before the coroutine ends off its thread: the post of the report is refused, and the
        // report is written to the standard error at once. (The refusal is what decides, not a check of IsClosed
        // before the post: a loop closing between the two dropped the report in silence. That window is not forced
        // here; with the refusal deciding, it no longer exists.)
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string output = Loop.DebugModeTests.StandardErrorOf(() =>
        {
            var loop = new EventLoop(new LoopOptions { Debug = true });
            AioTask? t = null;
            loop.RunUntilComplete(async () =>
            {
                Func<Task> body = async () => await gate.Task.ConfigureAwait(false);   // an async Task lambda, whose Task is watched
                t = Aio.CreateTask(body, "after-close-escaper");
                await Aio.Sleep(0);   // the task starts and waits at the gate
            });
            loop.Close();
            var inner = (Task)t!.GetCoroutine()!;
            var watchersRan = new ManualResetEventSlim();
            // Runs after the loop's own watch of the coroutine's end, registered when the task started.
            inner.ContinueWith(_ => watchersRan.Set(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            gate.SetResult();
            Assert.True(watchersRan.Wait(TimeSpan.FromSeconds(30)));
        });
        Assert.Contains("Task after-close-escaper's coroutine ended on thread", output);
    }

    [Fact]
    public void ATaskWhoseFunctionReturnsAForeignTask_IsNotReported()
    {
        // No code of the program runs where Task.Delay completes: nothing escaped.
        var reports = Reports(async () => await Aio.CreateTask(() => Task.Delay(10), "delay"));
        Assert.Empty(reports);
    }

    [Fact]
    public void ACoroutineThatStaysOnTheLoop_IsNotReported()
    {
        var reports = Reports(async () => await Aio.CreateTask(StaysOnTheLoop, "stays"));
        Assert.Empty(reports);
    }

    [Fact]
    public void OutsideDebugMode_NothingIsReported()
    {
        var reports = Reports(async () => await Aio.CreateTask(EscapesWithConfigureAwaitFalse, "escaper"), debug: false);
        Assert.Empty(reports);
    }

    [Fact]
    public void ALoopPrimitiveAwaitedAfterConfigureAwaitFalse_ThrowsSayingWhy()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Reports(async () =>
        {
            await Task.Delay(10).ConfigureAwait(false);
            await Aio.Sleep(0);
        }, debug: false));
        Assert.Contains("ConfigureAwait(false)", e.Message);
    }
}
