namespace Asyncio.Tests.Tasks;

/// <summary>to_thread, run_in_executor and run_coroutine_threadsafe.</summary>
public class ThreadBridgeTests
{
    [Fact]
    public void ToThread_RunsOffTheLoop_ResultComesBackOnTheLoop() => AioTest.RunReal(async () =>
    {
        int loopThread = Environment.CurrentManagedThreadId;
        int workerThread = await Aio.ToThread(() => Environment.CurrentManagedThreadId);
        Assert.NotEqual(loopThread, workerThread);
        Assert.Equal(loopThread, Environment.CurrentManagedThreadId);
    });

    [Fact]
    public void ToThread_Exception_PropagatesToTheAwaiter() => AioTest.RunReal(async () =>
    {
        await Assert.ThrowsAsync<FormatException>(async () => await Aio.ToThread<int>(() => throw new FormatException()));
        await Assert.ThrowsAsync<FormatException>(async () => await Aio.ToThread(() => throw new FormatException()));
    });

    [Fact]
    public void RunInExecutor_GivenScheduler_IsUsed() => AioTest.RunReal(async () =>
    {
        var scheduler = new CountingScheduler();
        var loop = Aio.GetRunningLoop();
        Assert.Equal(4, await loop.RunInExecutor(scheduler, () => 2 + 2));
        Assert.Equal(1, scheduler.Count);
        loop.SetDefaultExecutor(scheduler);
        await Aio.ToThread(() => 1);
        Assert.Equal(2, scheduler.Count);
    });

    [Fact]
    [Trait("asyncio", "after shutdown_default_executor, run_in_executor(None) raises 'Executor shutdown has been called'")]
    public void RunInExecutor_DefaultExecutorAfterShutdown_Throws() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        Assert.Equal(1, await Aio.ToThread(() => 1));
        await loop.ShutdownDefaultExecutor();
        Assert.Throws<InvalidOperationException>(() => { _ = Aio.ToThread(() => 1); });
        Assert.Throws<InvalidOperationException>(() => { _ = loop.RunInExecutor(null, () => { }); });
        // An executor given explicitly is not the default one: it still works.
        Assert.Equal(2, await loop.RunInExecutor(TaskScheduler.Default, () => 2));
    });

    [Fact]
    public void ShutdownDefaultExecutor_CalledTwiceWhileWorkRuns_BothFuturesComplete() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        using var gate = new ManualResetEventSlim();
        var work = Aio.ToThread(() => gate.Wait(30_000));
        var first = loop.ShutdownDefaultExecutor();
        var second = loop.ShutdownDefaultExecutor();
        Assert.False(first.IsDone);
        gate.Set();
        Assert.True(await work);
        await second;
        await Aio.Sleep(0);
        Assert.True(first.IsDone);
    });

    [Fact]
    [Trait("asyncio", "shutdown_default_executor() completes after the results of the work it waited for (they are posted first)")]
    public void ShutdownDefaultExecutor_LastReportStillQueued_CompletesAfterIt() => AioTest.RunReal(async () =>
    {
        // The worker posts its result, then counts itself done. A shutdown that came between the two used to find
        // the count at zero and complete at once, before the queued result ran: code after the await saw the work
        // unfinished. The order is forced by blocking the loop's thread (bounded) until the worker has done both
        // steps, its two posts (the result, and the release of its counts) waiting in the queue.
        var loop = Aio.GetRunningLoop();
        var work = loop.RunInExecutor(null, () => 1);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (loop.ThreadsafePending < 2 && waited.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
        Assert.Equal(2, loop.ThreadsafePending);
        Assert.False(work.IsDone);
        await loop.ShutdownDefaultExecutor();
        Assert.True(work.IsDone, "the shutdown completed before the work's result ran");
        Assert.Equal(1, await work);
    });

    [Fact]
    public void RunInExecutor_OnVirtualTime_EveryReportReleasesTheClock()
    {
        // Executor work holds the virtual clock until it reports back; the worker thread posts its result, then
        // releases the clock. A loop that has already run the result and found the clock held waits for outside
        // events, so the release must wake it too (it once did only for default-executor work: the loop slept for
        // ever with a sleep due). The race is narrow: many rounds, each on its own worker, bounded in real time.
        // The loop runs on a thread of its own so that a hang is bounded; what it throws is reported here.
        Exception? failed = null;
        var run = new Thread(() => failed = Record.Exception(() => AioTest.Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var scheduler = new ConcurrentExclusiveSchedulerPair().ConcurrentScheduler;
            for (int i = 0; i < 20_000; i++)
            {
                var sleeper = Aio.CreateTask(async () => await Aio.Sleep(1));
                int n = i;
                Assert.Equal(n, await loop.RunInExecutor(scheduler, () => n));
                await sleeper;
            }
        }))) { IsBackground = true };
        run.Start();
        Assert.True(run.Join(60_000), "the loop missed the clock's release and waited for ever");
        Assert.Null(failed);
    }

    [Fact]
    [Trait("asyncio", "shutdown_default_executor() shuts the default executor down only: work given to another executor is not waited for")]
    public void ShutdownDefaultExecutor_WorkOnAnExplicitExecutor_IsNotWaitedFor() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        using var gate = new ManualResetEventSlim();
        var work = loop.RunInExecutor(new CountingScheduler(), () => gate.Wait(30_000));
        var shutdown = loop.ShutdownDefaultExecutor();
        Assert.True(shutdown.IsDone);
        gate.Set();
        Assert.True(await work);
    });

    sealed class CountingScheduler : TaskScheduler
    {
        public int Count;
        protected override void QueueTask(Task task)
        {
            Interlocked.Increment(ref Count);
            ThreadPool.QueueUserWorkItem(_ => TryExecuteTask(task));
        }
        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;
        protected override IEnumerable<Task> GetScheduledTasks() => [];
    }

    [Fact]
    public void RunCoroutineThreadsafe_FromAnotherThread_ReturnsTheResult()
    {
        using var loop = new EventLoop();
        int? result = null;
        int ranOnLoop = 0;
        var thread = new Thread(() =>
        {
            result = loop.RunCoroutineThreadsafe(async () =>
            {
                await Aio.Sleep(0.001);
                ranOnLoop = Aio.CurrentTask != null ? 1 : 0;
                return 21 * 2;
            }).Result;
            loop.CallSoonThreadsafe(loop.Stop);
        });
        loop.CallSoon(thread.Start);
        loop.RunForever();
        thread.Join();
        Assert.Equal(42, result);
        Assert.Equal(1, ranOnLoop);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static async Task FailThroughTheBridge(EventLoop loop)
    {
        var bridged = loop.RunCoroutineThreadsafe<int>(async () => { await Aio.Sleep(1); throw new InvalidOperationException("bridged"); });
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => bridged);
        Assert.Equal("bridged", e.Message);
    }

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe: the task's exception goes to the concurrent future (retrieved there)")]
    public void RunCoroutineThreadsafe_CoroutineFails_TheExceptionIsNotReportedAsNeverRetrieved()
    {
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            await FailThroughTheBridge(Aio.GetRunningLoop());
            await Aio.CreateTask(() => Task.CompletedTask); // the loop lets go of the finished tasks
            await Aio.CreateTask(() => Task.CompletedTask);
            await FutureTests.CollectGarbage();
        }, new LoopOptions());
        Assert.Empty(errors);
    }

    [Fact]
    public void RunCoroutineThreadsafe_TokenCancelled_CancelsTheTask()
    {
        using var loop = new EventLoop();
        using var cts = new CancellationTokenSource();
        bool sawCancel = false;
        Exception? outcome = null;
        var thread = new Thread(() =>
        {
            var t = loop.RunCoroutineThreadsafe(async () =>
            {
                try { await Aio.Sleep(3600); }
                catch (CancelledError) { sawCancel = true; throw; }
                return 0;
            }, cts.Token);
            Thread.Sleep(20);
            cts.Cancel();
            try { t.Wait(); } catch (AggregateException e) { outcome = e.InnerException; }
            loop.CallSoonThreadsafe(loop.Stop);
        });
        loop.CallSoon(thread.Start);
        loop.RunForever();
        thread.Join();
        Assert.True(sawCancel);
        Assert.IsAssignableFrom<OperationCanceledException>(outcome);
    }

    /// <summary>
    /// Submits <paramref name="body"/> with a token from the loop's own thread, cancels the token once the body
    /// has begun, and returns the submitter's task once it has ended.
    /// </summary>
    static async Task<Task<int>> CancelThroughTheBridge(Func<Task<int>> body)
    {
        var loop = Aio.GetRunningLoop();
        using var cts = new CancellationTokenSource();
        var started = loop.CreateFuture();
        var bridged = loop.RunCoroutineThreadsafe(async () => { started.SetResult(); return await body(); }, cts.Token);
        await started;   // the body sleeps now
        cts.Cancel();
        try { await bridged; }
        catch (Exception) { }   // the caller looks at how it ended
        return bridged;
    }

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe: a cancelled concurrent future drops the task's result (_set_concurrent_future_state)")]
    public void RunCoroutineThreadsafe_TokenCancelled_CoroutineCatchesItAndReturns_TheTaskEndsCancelled() => AioTest.RunReal(async () =>
    {
        bool sawCancel = false;
        var bridged = await CancelThroughTheBridge(async () =>
        {
            try { await Aio.Sleep(3600); return 0; }
            catch (CancelledError) { sawCancel = true; return 42; }
        });
        Assert.True(sawCancel);
        Assert.True(bridged.IsCanceled);
    });

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe: a cancelled concurrent future drops the task's exception")]
    public void RunCoroutineThreadsafe_TokenCancelled_CleanUpFails_TheTaskEndsCancelledAndNothingIsReported()
    {
        Task<int>? bridged = null;
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            bridged = await CancelThroughTheBridge(async () =>
            {
                try { await Aio.Sleep(3600); return 0; }
                catch (CancelledError) { throw new FormatException("clean-up failed"); }
            });
            await Aio.CreateTask(() => Task.CompletedTask); // the loop lets go of the finished tasks
            await Aio.CreateTask(() => Task.CompletedTask);
            await FutureTests.CollectGarbage();
        }, new LoopOptions());
        Assert.True(bridged!.IsCanceled);
        Assert.Empty(errors);   // the clean-up's exception was dropped on purpose, not left unretrieved
    }

    [Fact]
    public void RunCoroutineThreadsafe_ClosedLoop_Throws()
    {
        var loop = new EventLoop();
        loop.Close();
        Exception? e = null;
        try { _ = loop.RunCoroutineThreadsafe(() => Task.FromResult(1)); }
        catch (Exception caught) { e = caught; }
        Assert.IsType<InvalidOperationException>(e);
    }

    [Fact]
    public void RunCoroutineThreadsafe_LoopClosedBeforeItStarts_TheTaskFailsInsteadOfWaitingForEver()
    {
        var loop = new EventLoop();
        bool ran = false;
        Task<int> submitted = null!;
        var thread = new Thread(() => submitted = loop.RunCoroutineThreadsafe(() => { ran = true; return Task.FromResult(1); }));
        thread.Start();
        thread.Join();
        Assert.False(submitted.IsCompleted);
        loop.Close();
        Assert.True(submitted.IsFaulted);   // at once: nothing was left to run
        Assert.IsType<InvalidOperationException>(submitted.Exception!.InnerException);
        Assert.False(ran);
    }

    static readonly AsyncLocal<string?> s_context = new();

    [Fact]
    [Trait("asyncio", "to_thread runs the function in a copy of the caller's context (test_to_thread_contextvars)")]
    public void ToThread_AsyncLocalOfTheCaller_FlowsToTheFunction() => AioTest.RunReal(async () =>
    {
        s_context.Value = "set in the loop";
        Assert.Equal("set in the loop", await Aio.ToThread(() => s_context.Value));
        // A change made on the thread stays there.
        await Aio.ToThread(() => { s_context.Value = "changed on the thread"; });
        Assert.Equal("set in the loop", s_context.Value);
    });

    [Fact]
    [Trait("asyncio", "to_thread calls the function once")]
    public void ToThread_CallsTheFunctionOnce() => AioTest.RunReal(async () =>
    {
        int calls = 0;
        await Aio.ToThread(() => { Interlocked.Increment(ref calls); });
        Assert.Equal(1, Volatile.Read(ref calls));
    });

    sealed class RefusingScheduler : TaskScheduler
    {
        protected override void QueueTask(Task task) => throw new InvalidOperationException("refused");
        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;
        protected override IEnumerable<Task> GetScheduledTasks() => [];
    }

    [Fact]
    [Trait("asyncio", "run_in_executor: an executor that refuses the work raises from run_in_executor, and the loop goes on")]
    public void RunInExecutor_ExecutorRefusesTheWork_ThrowsAndLeavesTheClockAndShutdownFree()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        // Bounds the test if the refused work were still counted as running (the clock would never jump).
        using var watchdog = new Timer(_ => loop.CallSoonThreadsafe(loop.Stop), null, 10_000, Timeout.Infinite);
        double after = loop.RunUntilComplete(async () =>
        {
            var l = Aio.GetRunningLoop();
            Assert.ThrowsAny<Exception>(() => { _ = l.RunInExecutor(new RefusingScheduler(), () => 1); });
            await Aio.Sleep(10);
            await l.ShutdownDefaultExecutor();
            return l.Time();
        });
        Assert.Equal(10.0, after, 6);
    }

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe: a task cancelled in the loop cancels the concurrent future (test_run_coroutine_threadsafe_task_cancelled)")]
    public void RunCoroutineThreadsafe_TaskCancelledInTheLoop_TheTaskEndsCancelled()
    {
        using var loop = new EventLoop();
        Exception? outcome = null;
        var thread = new Thread(() =>
        {
            var t = loop.RunCoroutineThreadsafe<int>(async () =>
            {
                Aio.CurrentTask!.Cancel();
                await Aio.Sleep(3600);
                return 1;
            });
            try { t.Wait(30_000); } catch (AggregateException e) { outcome = e.InnerException; }
            Assert.True(t.IsCanceled);
            loop.CallSoonThreadsafe(loop.Stop);
        });
        loop.CallSoon(thread.Start);
        loop.RunForever();
        thread.Join();
        Assert.IsAssignableFrom<OperationCanceledException>(outcome);
    }

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe: the caller may stop waiting (result(timeout)) and the task goes on in the loop")]
    public void RunCoroutineThreadsafe_CallerStopsWaiting_TheCoroutineStillCompletes()
    {
        using var loop = new EventLoop();
        using var gate = new ManualResetEventSlim();
        int? result = null;
        bool timedOut = false;
        var thread = new Thread(() =>
        {
            var t = loop.RunCoroutineThreadsafe(async () =>
            {
                while (!gate.IsSet) await Aio.Sleep(0.001);
                return 3;
            });
            timedOut = !t.Wait(0);
            gate.Set();
            result = t.Result;
            loop.CallSoonThreadsafe(loop.Stop);
        });
        loop.CallSoon(thread.Start);
        loop.RunForever();
        thread.Join();
        Assert.True(timedOut);
        Assert.Equal(3, result);
    }

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe with a future cancelled before the loop takes it: the task is cancelled and the future ends cancelled")]
    public void RunCoroutineThreadsafe_TokenCancelledBeforeSubmitting_TheTaskEndsCancelled()
    {
        using var loop = new EventLoop();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        bool reachedTheEnd = false;
        Task<int> submitted = null!;
        var thread = new Thread(() =>
        {
            submitted = loop.RunCoroutineThreadsafe(async () => { await Aio.Sleep(3600); reachedTheEnd = true; return 1; }, cts.Token);
            try { submitted.Wait(30_000); } catch (AggregateException) { }
            loop.CallSoonThreadsafe(loop.Stop);
        });
        loop.CallSoon(thread.Start);
        loop.RunForever();
        thread.Join();
        Assert.True(submitted.IsCanceled);
        Assert.False(reachedTheEnd);
    }

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe: the caller is never left waiting, also when the loop closes while the coroutine is suspended")]
    public void RunCoroutineThreadsafe_LoopClosedWhileTheCoroutineWaits_TheTaskFailsInsteadOfWaitingForEver()
    {
        var loop = new EventLoop();
        Task<int> submitted = null!;
        var thread = new Thread(() => submitted = loop.RunCoroutineThreadsafe(async () => { await Aio.Sleep(3600); return 1; }));
        thread.Start();
        thread.Join();
        loop.CallLater(0.01, loop.Stop);   // the coroutine has started and sleeps when the loop stops
        loop.RunForever();
        Assert.False(submitted.IsCompleted);
        loop.Close();
        Assert.True(submitted.IsFaulted);
        Assert.IsType<InvalidOperationException>(submitted.Exception!.InnerException);
    }

    [Fact]
    public async Task RunCoroutineThreadsafe_CoroutineEndsInTheLoopsLastIteration_CloseStillDeliversTheResult()
    {
        var loop = new EventLoop();
        Task<int> submitted = null!;
        var thread = new Thread(() => submitted = loop.RunCoroutineThreadsafe(() =>
        {
            Aio.GetRunningLoop().Stop();   // the task's done callbacks are still queued when the loop stops
            return Task.FromResult(5);
        }));
        thread.Start();
        thread.Join();
        loop.RunForever();
        Assert.False(submitted.IsCompleted);
        loop.Close();
        Assert.True(submitted.IsCompletedSuccessfully);
        Assert.Equal(5, await submitted);
    }

    [Fact]
    [Trait("asyncio", "run_in_executor: cancelling the future does not stop the function, whose later result is dropped without an error")]
    public void ToThread_FutureCancelledWhileTheFunctionRuns_TheFunctionFinishesAndItsResultIsDropped() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        using var gate = new ManualResetEventSlim();
        int finished = 0;
        var f = Aio.ToThread(() => { gate.Wait(30_000); Interlocked.Exchange(ref finished, 1); return 1; });
        f.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await f);
        Assert.Equal(0, Volatile.Read(ref finished));
        gate.Set();
        await loop.ShutdownDefaultExecutor();   // completes once the function has returned
        await Aio.Sleep(0);                     // its report (dropped) has run
        Assert.Equal(1, Volatile.Read(ref finished));
        Assert.True(f.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "the function given to to_thread runs with no running loop")]
    public void ToThread_TheFunction_SeesNoRunningLoop() => AioTest.RunReal(async () =>
    {
        Assert.Null(await Aio.ToThread(EventLoop.TryGetRunningLoop));
        Assert.NotNull(EventLoop.TryGetRunningLoop());
    });

    [Fact]
    [Trait("asyncio", "run_coroutine_threadsafe may be called from the loop's own thread if the caller awaits instead of blocking")]
    public void RunCoroutineThreadsafe_FromTheLoopsOwnThreadAwaited_ReturnsTheResult() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        int loopThread = Environment.CurrentManagedThreadId;
        int ranOn = 0;
        int result = await loop.RunCoroutineThreadsafe(async () => { await Aio.Sleep(0); ranOn = Environment.CurrentManagedThreadId; return 3; });
        Assert.Equal(3, result);
        Assert.Equal(loopThread, ranOn);
        Assert.Equal(loopThread, Environment.CurrentManagedThreadId);
    });
}
