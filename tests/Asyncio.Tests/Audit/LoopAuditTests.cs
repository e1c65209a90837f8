namespace Asyncio.Tests.Audit;

/// <summary>Audit probes: each asserts asyncio's documented behaviour of the loop, runner and thread bridges.
/// Written as an audit (2026-12-04, session 19): edge cases the concept classes did not cover, each pinned to what
/// CPython's asyncio does (the comment or trait of each names where), or to a documented difference (docs/differences.md).
/// </summary>
[Collection("Console")] // some probes redirect Console.Error
public class LoopAuditTests
{
    sealed class ThreadPerTaskScheduler : TaskScheduler
    {
        protected override void QueueTask(Task task) => new Thread(() => TryExecuteTask(task)) { IsBackground = true }.Start();
        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;
        protected override IEnumerable<Task>? GetScheduledTasks() => null;
    }

    // ---- run_until_complete ----

    [Fact]
    [Trait("asyncio", "the stop callback is a done callback (call_soon): callbacks queued alongside the completion still run")]
    public void RunUntilComplete_CallbackQueuedInTheCompletingIteration_RunsBeforeReturn()
    {
        using var loop = new EventLoop();
        var f = loop.CreateFuture<int>();
        bool b = false;
        loop.CallSoon(() => { f.SetResult(1); loop.CallSoon(() => b = true); });
        Assert.Equal(1, loop.RunUntilComplete(f));
        Assert.True(b);
    }

    [Fact]
    [Trait("asyncio", "stop() before run_until_complete: one iteration; a future completed in it is returned")]
    public void RunUntilComplete_PreStopped_FutureCompletedInTheOneIteration_ReturnsItsResult()
    {
        using var loop = new EventLoop();
        var f = loop.CreateFuture<int>();
        loop.CallSoon(() => f.SetResult(9));
        loop.Stop();
        Assert.Equal(9, loop.RunUntilComplete(f));
    }

    [Fact]
    [Trait("asyncio", "stop() and the completion in the same iteration: run_until_complete returns the result")]
    public void RunUntilComplete_StopAndCompletionInOneIteration_ReturnsTheResult()
    {
        using var loop = new EventLoop();
        var f = loop.CreateFuture<int>();
        loop.CallSoon(loop.Stop);
        loop.CallSoon(() => f.SetResult(4));
        Assert.Equal(4, loop.RunUntilComplete(f));
    }

    [Fact]
    public void RunUntilComplete_CancelledFuture_ThrowsCancelledError()
    {
        using var loop = new EventLoop();
        var f = loop.CreateFuture<int>();
        loop.CallSoon(() => f.Cancel());
        Assert.ThrowsAny<CancelledError>(() => loop.RunUntilComplete(f));
    }

    // ---- ordering ----

    [Fact]
    [Trait("asyncio", "_run_once: due timers are appended to _ready after the callbacks already there, same iteration")]
    public void CallLaterZero_RunsAfterCallSoonsAlreadyReady_InTheSameIteration()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var order = new List<string>();
        loop.CallSoon(() => order.Add("a"));
        loop.CallLater(0, () => { order.Add("b"); loop.Stop(); });
        loop.CallSoon(() => order.Add("c"));
        loop.RunForever();
        Assert.Equal(["a", "c", "b"], order);
    }

    [Fact]
    public void TimerCancelledByAnEarlierCallbackOfTheSameBatch_DoesNotRun()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var order = new List<string>();
        TimerHandle? second = null;
        loop.CallLater(1, () => { order.Add("first"); second!.Cancel(); });
        second = loop.CallLater(1, () => order.Add("second"));
        loop.CallLater(2, loop.Stop);
        loop.RunForever();
        Assert.Equal(["first"], order);
        Assert.True(second.IsCancelled);
    }

    [Fact]
    [Trait("asyncio", "a timer callback's call_soon and call_later(0) run in the next iteration, call_soon first")]
    public void TimerCallback_SchedulingCallSoonAndCallLaterZero_RunNextIterationSoonFirst()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var order = new List<string>();
        loop.CallLater(1, () =>
        {
            order.Add("timer");
            loop.CallLater(0, () => order.Add("later0"));
            loop.CallSoon(() => order.Add("soon"));
            loop.Stop();
        });
        loop.CallLater(1, () => order.Add("timer2"));
        loop.RunForever();
        Assert.Equal(["timer", "timer2"], order);
        loop.Stop();
        loop.RunForever();
        Assert.Equal(["timer", "timer2", "soon", "later0"], order);
    }

    [Fact]
    [Trait("asyncio", "TimerHandle.when() returns the when given to call_at (events.TimerHandle)")]
    public void TimerHandle_When_IsTheDeadlineGivenToCallAt()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        foreach (double w in new[] { 1.1, 0.3, 2.675, 12345.678 })
            Assert.Equal(w, loop.CallAt(w, () => { }).When);
    }

    [Fact]
    [Trait("asyncio", "a callback fires only once loop.time() >= when (virtual time)")]
    public void VirtualTime_CallAtCallback_SeesTimeAtOrPastItsDeadline()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        double seen = -1;
        var h = loop.CallAt(1.1, () => { seen = loop.Time(); loop.Stop(); });
        loop.RunForever();
        Assert.True(seen >= 1.1, $"fired at {seen}");
        Assert.True(seen >= h.When);
    }

    [Fact]
    [Trait("asyncio", "TimerHandle.cancel() after it ran: cancelled() is True")]
    public void TimerHandle_CancelledAfterItRan_ReportsCancelled()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var h = loop.CallLater(1, loop.Stop);
        loop.RunForever();
        h.Cancel();
        Assert.True(h.IsCancelled);
    }

    // ---- state, close ----

    [Fact]
    public void IsRunning_TrueInsideAfterStop_FalseAfterReturn_IsClosedAfterClose()
    {
        var loop = new EventLoop();
        var seen = new List<bool>();
        Assert.False(loop.IsRunning);
        loop.CallSoon(() => { seen.Add(loop.IsRunning); loop.Stop(); seen.Add(loop.IsRunning); });
        loop.CallSoon(() => seen.Add(loop.IsRunning));
        loop.RunForever();
        Assert.Equal([true, true, true], seen);
        Assert.False(loop.IsRunning);
        Assert.False(loop.IsClosed);
        loop.Close();
        Assert.True(loop.IsClosed);
        Assert.False(loop.IsRunning);
    }

    [Fact]
    [Trait("asyncio", "after close(): create_task and run_in_executor raise; create_future, stop, time, set_exception_handler do not")]
    public void AfterClose_WhichApisThrow()
    {
        var loop = new EventLoop();
        bool ran = false;
        loop.CallSoon(() => ran = true);
        loop.CallLater(0, () => ran = true);
        loop.Close();
        Assert.False(ran);
        Assert.Throws<InvalidOperationException>(() => { loop.CreateTask(async () => await Task.CompletedTask); });
        Assert.Throws<InvalidOperationException>(() => { loop.RunInExecutor(null, () => 1); });
        Assert.Throws<InvalidOperationException>(() => { loop.RunUntilComplete(loop.CreateFuture()); });
        var f = loop.CreateFuture();
        Assert.False(f.IsDone);
        loop.Stop();
        _ = loop.Time();
        loop.SetExceptionHandler((_, _) => { });
        Assert.NotNull(loop.GetExceptionHandler());
    }

    [Fact]
    [Trait("asyncio", "close() of a running loop raises RuntimeError, from any thread")]
    public void Close_FromAnotherThreadWhileRunning_Throws()
    {
        using var loop = new EventLoop();
        Exception? fromThread = null;
        var t = new Thread(() =>
        {
            fromThread = Record.Exception(loop.Close);
            loop.CallSoonThreadsafe(loop.Stop);
        });
        loop.CallSoon(t.Start);
        using var watchdog = new Timer(_ => { try { loop.CallSoonThreadsafe(loop.Stop); } catch (InvalidOperationException) { } }, null, 30_000, Timeout.Infinite);
        loop.RunForever();
        Assert.True(t.Join(30_000));
        Assert.IsType<InvalidOperationException>(fromThread);
        Assert.False(loop.IsClosed);
    }

    // ---- exception handler ----

    [Fact]
    [Trait("asyncio", "the handler is called as handler(loop, context)")]
    public void ExceptionHandler_ReceivesTheLoop_AndCallbackExceptionContext()
    {
        using var loop = new EventLoop();
        EventLoop? got = null;
        ExceptionContext? ctx = null;
        loop.SetExceptionHandler((l, c) => { got = l; ctx = c; });
        Action bad = () => throw new FormatException("x");
        loop.CallSoon(bad);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        Assert.Same(loop, got);
        Assert.Same(bad, ctx!.Callback);
        Assert.Null(ctx.Task);
    }

    [Fact]
    public void CallSoonThreadsafeCallbackThatThrows_ReportedNamingIt()
    {
        using var loop = new EventLoop();
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, c) => reported.Add(c));
        Action bad = () => throw new FormatException("ts");
        var t = new Thread(() => { loop.CallSoonThreadsafe(bad); loop.CallSoonThreadsafe(loop.Stop); });
        t.Start();
        Assert.True(t.Join(30_000));
        loop.RunForever();
        var c = Assert.Single(reported);
        Assert.Same(bad, c.Callback);
        Assert.IsType<FormatException>(c.Exception);
    }

    [Fact]
    [Trait("asyncio", "slow callbacks are logged (logger.warning), not given to the custom exception handler; timers too")]
    public void Debug_SlowTimerCallback_ReportedOnStderr_NotToTheCustomHandler()
    {
        int handlerCalls = 0;
        string output = Asyncio.Tests.Loop.DebugModeTests.StandardErrorOf(() =>
        {
            using var loop = new EventLoop(new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(5), VirtualTime = true });
            loop.SetExceptionHandler((_, _) => handlerCalls++);
            loop.CallLater(1, () => Thread.Sleep(40));
            loop.CallLater(2, loop.Stop);
            loop.RunForever();
        });
        Assert.Contains("took", output);
        Assert.Equal(0, handlerCalls);
    }

    // ---- running-loop accessors ----

    [Fact]
    [Trait("asyncio", "differs (docs/differences.md): asyncio.current_task() with no running loop raises RuntimeError; Aio.CurrentTask is null")]
    public void CurrentTask_NoRunningLoop_IsNull()
    {
        Assert.Null(Aio.CurrentTask);
        Assert.Throws<InvalidOperationException>(() => EventLoop.GetRunningLoop());
    }

    [Fact]
    [Trait("asyncio", "current_task() in a plain callback is None")]
    public void CurrentTask_InAPlainCallback_IsNull()
    {
        using var loop = new EventLoop();
        AioTask? seen = null;
        bool ran = false;
        loop.CallSoon(() => { seen = Aio.CurrentTask; ran = true; loop.Stop(); });
        loop.RunForever();
        Assert.True(ran);
        Assert.Null(seen);
    }

    // ---- thread affinity ----

    [Fact]
    public void MoreLoopApis_FromAnotherThread_ThrowNamingTheThreadsafeAlternative() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var timer = loop.CallLater(3600, () => { });
        var future = loop.CreateFuture<int>();
        var errors = await Task.Run(() => new[]
        {
            Record.Exception(() => loop.CallAt(loop.Time() + 10, () => { })),
            Record.Exception(() => { loop.RunInExecutor(null, () => 1); }),
            Record.Exception(() => loop.SetDefaultExecutor(TaskScheduler.Default)),
            Record.Exception(() => { loop.ShutdownDefaultExecutor(); }),
            Record.Exception(timer.Cancel),
            Record.Exception(() => future.SetResult(1)),
        });
        var names = new[] { "CallAt", "RunInExecutor", "SetDefaultExecutor", "ShutdownDefaultExecutor", "TimerHandle.Cancel", "Future.SetResult" };
        var wrong = names.Where((n, i) => errors[i] is not InvalidOperationException e || !e.Message.Contains("CallSoonThreadsafe")).ToList();
        Assert.True(wrong.Count == 0, "no thread error from: " + string.Join(", ", wrong));
        timer.Cancel();
    });

    // ---- executor ----

    [Fact]
    [Trait("asyncio", "set_default_executor: run_in_executor(None) and to_thread use it")]
    public void SetDefaultExecutor_UsedByToThread() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var sched = new ThreadPerTaskScheduler();
        loop.SetDefaultExecutor(sched);
        var seen = await Aio.ToThread(() => TaskScheduler.Current);
        Assert.Same(sched, seen);
    });

    [Fact]
    [Trait("asyncio", "after shutdown_default_executor, run_in_executor with an explicit executor still works")]
    public void AfterShutdownDefaultExecutor_ExplicitExecutorStillWorks() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        await loop.ShutdownDefaultExecutor();
        Assert.Equal(3, await loop.RunInExecutor(new ThreadPerTaskScheduler(), () => 3));
    });

    [Fact]
    [Trait("asyncio", "asyncio.run: a leftover task that swallows the cancel and goes on for a while is waited for")]
    public void AioRun_LeftoverTaskSwallowsCancelAndSleeps_IsWaitedFor()
    {
        bool finished = false;
        Aio.Run(async () =>
        {
            _ = Aio.CreateTask(async () =>
            {
                try { await Aio.Sleep(100); }
                catch (CancelledError) { }
                await Aio.Sleep(3);
                finished = true;
            });
            await Aio.Sleep(0);
        }, new LoopOptions { VirtualTime = true });
        Assert.True(finished);
    }

    static readonly AsyncLocal<string?> s_local = new();

    [Fact]
    [Trait("asyncio", "to_thread runs func in a copy of the context taken at the call: later changes are not seen, changes inside do not leak")]
    public void ToThread_ContextIsASnapshotAtTheCall() => AioTest.RunReal(async () =>
    {
        s_local.Value = "before";
        using var gate = new ManualResetEventSlim();
        var f = Aio.ToThread(() =>
        {
            gate.Wait(30_000);
            string? seen = s_local.Value;
            s_local.Value = "inside";
            return seen;
        });
        s_local.Value = "after";
        gate.Set();
        Assert.Equal("before", await f);
        Assert.Equal("after", s_local.Value);
    });

    [Fact]
    [Trait("asyncio", "asyncio.run() inside a to_thread function: the worker thread has no running loop")]
    public void AioRun_InsideToThread_Works()
    {
        int r = Aio.Run(async () => await Aio.ToThread(() => Aio.Run(async () => { await Aio.Sleep(0.001); return 5; })));
        Assert.Equal(5, r);
    }

    // ---- run_coroutine_threadsafe ----

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe before the loop runs: the coroutine runs once it does")]
    public void RunCoroutineThreadsafe_SubmittedBeforeTheLoopRuns_RunsWhenItDoes()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        Task<int>? t = null;
        var thread = new Thread(() => t = loop.RunCoroutineThreadsafe(async () => { await Aio.Sleep(5); return 7; }));
        thread.Start();
        Assert.True(thread.Join(30_000));
        Assert.False(t!.IsCompleted);
        Assert.Equal(7, loop.RunUntilComplete(async () => await t));
    }

    // ---- Runner / Aio.Run ----

    [Fact]
    [Trait("asyncio", "main calling loop.stop(): asyncio.run raises 'Event loop stopped before Future completed', then cancels main on close")]
    public void AioRun_MainStopsTheLoop_ThrowsStoppedBeforeCompleted_AndMainIsCancelledOnClose()
    {
        bool cancelled = false;
        var error = Record.Exception(() => Aio.Run(async () =>
        {
            Aio.GetRunningLoop().Stop();
            try { await Aio.Sleep(1); }
            catch (CancelledError) { cancelled = true; throw; }
        }, new LoopOptions { VirtualTime = true }));
        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("stopped before", error!.Message);
        Assert.True(cancelled);
    }

    [Fact]
    [Trait("asyncio", "Runner.run twice: a task left by the first run goes on in the second; close() cancels it")]
    public void Runner_TaskLeftByTheFirstRun_RunsOnInTheSecond_CancelledOnClose()
    {
        var runner = new Runner(new LoopOptions { VirtualTime = true });
        int ticks = 0;
        bool cancelled = false;
        runner.Run(async () =>
        {
            _ = Aio.CreateTask(async () =>
            {
                try { while (true) { await Aio.Sleep(1); ticks++; } }
                catch (CancelledError) { cancelled = true; throw; }
            });
            await Aio.Sleep(0);
        });
        int afterFirst = ticks;
        runner.Run(async () => await Aio.Sleep(5.5));
        Assert.True(ticks >= afterFirst + 5, $"{afterFirst} -> {ticks}");
        Assert.False(cancelled);
        runner.Close();
        Assert.True(cancelled);
        Assert.True(runner is not null);
    }

    [Fact]
    [Trait("asyncio", "Runner keeps one loop across run() calls; time goes on")]
    public void Runner_SameLoopAcrossRuns()
    {
        using var runner = new Runner(new LoopOptions { VirtualTime = true });
        var l1 = runner.Run(async () => { await Aio.Sleep(2); return Aio.GetRunningLoop(); });
        var l2 = runner.Run(async () => { await Aio.Sleep(3); return Aio.GetRunningLoop(); });
        Assert.Same(l1, l2);
        Assert.Same(l1, runner.GetLoop());
        Assert.Equal(5.0, l1.Time(), 6);
    }

    [Fact]
    [Trait("asyncio", "Runner.close(): the loop is closed afterwards; run() then raises")]
    public void Runner_AfterClose_LoopClosedAndRunRefused()
    {
        var runner = new Runner();
        var loop = runner.Run(async () => { await Aio.Sleep(0); return Aio.GetRunningLoop(); });
        runner.Close();
        Assert.True(loop.IsClosed);
        Assert.ThrowsAny<InvalidOperationException>(() => runner.Run(async () => await Aio.Sleep(0)));
        runner.Close();
    }

    sealed class CountingContext : SynchronizationContext
    {
        public int Posts;
        public override void Post(SendOrPostCallback d, object? state) { Interlocked.Increment(ref Posts); base.Post(d, state); }
    }

    [Fact]
    [Trait("asyncio", "asyncio.run from a thread with its own context: main fails, leftover tasks are cleaned up, the context is restored")]
    public void AioRun_ThreadWithSyncContext_MainFails_ContextRestoredAndLoopUsedInCleanup()
    {
        var mine = new CountingContext();
        var saved = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(mine);
        try
        {
            SynchronizationContext? inCleanup = null;
            Assert.Throws<FormatException>(() => Aio.Run(async () =>
            {
                _ = Aio.CreateTask(async () =>
                {
                    try { await Aio.Sleep(100); }
                    finally { await Task.Delay(1); inCleanup = SynchronizationContext.Current; }
                });
                await Aio.Sleep(0);
                throw new FormatException();
            }));
            Assert.NotNull(inCleanup);
            Assert.NotSame(mine, inCleanup);
            Assert.Same(mine, SynchronizationContext.Current);
            Assert.Equal(0, mine.Posts);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(saved);
        }
    }

    // ---- virtual time ----

    [Fact]
    [Trait("asyncio", "_run_once: stopping means timeout 0; a pre-stopped loop does not wait for (jump to) the next timer")]
    public void VirtualTime_PreStoppedLoopWithOnlyATimer_ClockDoesNotJump()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        bool fired = false;
        loop.CallLater(10, () => fired = true);
        loop.Stop();
        loop.RunForever();
        Assert.False(fired);
        Assert.Equal(0.0, loop.Time());
    }

    [Fact]
    public void VirtualTime_ClockStaysWhileCallbacksKeepBeingReady()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var times = new List<double>();
        int n = 0;
        void Again() { times.Add(loop.Time()); if (++n < 10) loop.CallSoon(Again); }
        loop.CallLater(5, () => { times.Add(loop.Time()); loop.Stop(); });
        loop.CallSoon(Again);
        loop.RunForever();
        Assert.Equal(11, times.Count);
        Assert.All(times.Take(10), t => Assert.Equal(0.0, t));
        Assert.Equal(5.0, times[10]);
    }

    [Fact]
    public void VirtualTime_TimeProviderElapsedTime_FollowsTheLoopClock() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        long t0 = loop.TimeProvider.GetTimestamp();
        await Aio.Sleep(2.5);
        Assert.Equal(TimeSpan.FromSeconds(2.5), loop.TimeProvider.GetElapsedTime(t0));
        await Task.Delay(TimeSpan.FromSeconds(1.5), loop.TimeProvider);
        Assert.Equal(TimeSpan.FromSeconds(4), loop.TimeProvider.GetElapsedTime(t0));
        Assert.Equal(4.0, loop.Time(), 9);
    });

    [Fact]
    [Trait("asyncio", "a timer whose deadline passes while a batch runs waits for the next iteration (real clock)")]
    public void RealClock_TimerComingDueDuringABatch_RunsAfterTheBatch()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallLater(0.001, () => { order.Add("timer"); loop.Stop(); });
        loop.CallSoon(() => { var sw = System.Diagnostics.Stopwatch.StartNew(); while (sw.ElapsedMilliseconds < 10) { } order.Add("busy"); });
        loop.CallSoon(() => order.Add("b"));
        loop.RunForever();
        Assert.Equal(["busy", "b", "timer"], order);
    }

    [Fact]
    [Trait("asyncio", "sleep and call_later timers with one deadline fire in scheduling order (both are TimerHandles in asyncio)")]
    public void VirtualTime_SleepAndCallLater_SameDeadline_FireInSchedulingOrder()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var order = new List<string>();
        var t = loop.CreateTask(async () => { await Aio.Sleep(1); order.Add("sleep"); });
        loop.CallSoon(() => loop.CallLater(1, () => order.Add("timer")));
        loop.RunUntilComplete(t);
        loop.Stop();
        loop.RunForever();
        Assert.Equal(["sleep", "timer"], order);
    }

    [Fact]
    [Trait("asyncio", "run_until_complete on a running loop from another thread raises 'already running'")]
    public void RunUntilComplete_FromAnotherThreadWhileRunning_Throws() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var e = await Aio.ToThread(() => Record.Exception(() => { loop.RunUntilComplete(loop.CreateFuture()); }));
        Assert.IsType<InvalidOperationException>(e);
        Assert.Contains("already running", e!.Message);
    });
}
