namespace Asyncio.Tests.Loop;

/// <summary>asyncio's ordering rules: FIFO ready callbacks, next-iteration scheduling, stop and close.</summary>
[Collection("Console")] // one test redirects Console.Error
public class LoopOrderingTests
{
    [Fact]
    public void CallSoon_SeveralCallbacks_RunInFifoOrder()
    {
        using var loop = new EventLoop();
        var order = new List<int>();
        for (int i = 0; i < 5; i++) { int k = i; loop.CallSoon(() => order.Add(k)); }
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        Assert.Equal([0, 1, 2, 3, 4], order);
    }

    [Fact]
    public void CallSoon_ScheduledDuringIteration_RunsInNextIteration()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallSoon(() =>
        {
            order.Add("a");
            loop.CallSoon(() => order.Add("c"));
        });
        loop.CallSoon(() => { order.Add("b"); loop.Stop(); });
        loop.RunForever();
        // Stop takes effect after the iteration: "c" was scheduled during it and has not run.
        Assert.Equal(["a", "b"], order);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        Assert.Equal(["a", "b", "c"], order);
    }

    // A task's start is a ready callback like any other: tasks made in a row start one by one, in the order
    // of creation, in FIFO order with the callbacks scheduled around them.
    [Fact]
    public void CreateTask_TasksMadeInARowBetweenCallbacks_StartInFifoOrder()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        Func<Task> Logs(string name) => () => { order.Add(name); return Task.CompletedTask; };
        loop.CallSoon(() =>
        {
            loop.CallSoon(() => order.Add("x1"));
            loop.CreateTask(Logs("A"));
            loop.CreateTask(Logs("B"));
            loop.CallSoon(() => order.Add("x2"));
            loop.CreateTask(Logs("C"));
            loop.CreateTask(Logs("D"));
            loop.CallSoon(loop.Stop);
        });
        loop.RunForever();
        Assert.Equal(["x1", "A", "B", "x2", "C", "D"], order);
    }

    [Fact]
    public void CreateTask_MadeWhileTheTasksMadeBeforeItStart_StartsInTheNextIteration()
    {
        // A makes C while B, made in the same row as A, still waits to start: like any work scheduled during
        // an iteration, C starts in the next one. B stops the loop, which ends the iteration: C must not have
        // started.
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallSoon(() =>
        {
            loop.CreateTask(() =>
            {
                order.Add("A");
                loop.CreateTask(() => { order.Add("C"); return Task.CompletedTask; });
                return Task.CompletedTask;
            });
            loop.CreateTask(() => { order.Add("B"); loop.Stop(); return Task.CompletedTask; });
        });
        loop.RunForever();   // the callback's iteration, then A and B's
        Assert.Equal(["A", "B"], order);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        Assert.Equal(["A", "B", "C"], order);
    }

    // Tasks made in a row share one ready item (EventLoop.Tasks.cs, "runs"): what separate items would do, they do.

    [Fact]
    public void CreateTask_OneOfARowStopsTheLoop_TheRestOfTheRowStillStartsInThatIteration()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallSoon(() =>
        {
            loop.CreateTask(() => { order.Add("A"); loop.Stop(); return Task.CompletedTask; });
            loop.CreateTask(() => { order.Add("B"); return Task.CompletedTask; });
            loop.CallSoon(() => order.Add("x"));
        });
        loop.RunForever();
        Assert.Equal(["A", "B", "x"], order);
    }

    [Fact]
    public void CreateTask_OneOfARowCancelledBeforeItStarts_NeverRuns_TheOthersDo() => AioTest.Run(async () =>
    {
        var order = new List<string>();
        Func<Task> Logs(string name) => () => { order.Add(name); return Task.CompletedTask; };
        var a = Aio.CreateTask(Logs("A"));
        var b = Aio.CreateTask(Logs("B"));
        var c = Aio.CreateTask(Logs("C"));
        b.Cancel();
        await Aio.Wait([a, b, c]);
        Assert.Equal(["A", "C"], order);
        Assert.True(b.IsCancelled);
        Assert.True(a.IsDone && !a.IsCancelled && c.IsDone && !c.IsCancelled);
    });

    static readonly AsyncLocal<string?> s_local = new();

    [Fact]
    public void CreateTask_ARowBrokenByATaskMadeInAnotherContext_StartsInOrder_EachInItsContext() => AioTest.Run(async () =>
    {
        var seen = new List<string>();
        Func<Task> Logs(string name) => () => { seen.Add($"{name}:{s_local.Value}"); return Task.CompletedTask; };
        var tasks = new List<AioTask> { Aio.CreateTask(Logs("A")), Aio.CreateTask(Logs("B")) };
        s_local.Value = "v";
        tasks.Add(Aio.CreateTask(Logs("C")));
        s_local.Value = null;
        tasks.Add(Aio.CreateTask(Logs("D")));
        tasks.Add(Aio.CreateTask(Logs("E")));
        await Aio.Wait(tasks);
        Assert.Equal(["A:", "B:", "C:v", "D:", "E:"], seen);
    });

    [Fact]
    public void CreateTask_ARowWhoseFirstStepsThrowAndSuspend_EndsEachTaskOnItsOwn() => AioTest.Run(async () =>
    {
        var gate = Aio.GetRunningLoop().CreateFuture();
        var fails = Aio.CreateTask(() => throw new InvalidOperationException("at once"));
        var waits = Aio.CreateTask(async () => { await gate; return 2; });
        var returns = Aio.CreateTask(() => Task.FromResult(3));
        await Aio.Sleep(0);
        Assert.IsType<InvalidOperationException>(fails.GetException());
        Assert.False(waits.IsDone);
        Assert.Equal(3, returns.Result);
        gate.SetResult();
        Assert.Equal(2, await waits);
    });

    [Fact]
    public void Handle_CancelledBeforeRunning_CallbackDoesNotRun()
    {
        using var loop = new EventLoop();
        bool ran = false;
        var h = loop.CallSoon(() => ran = true);
        h.Cancel();
        Assert.True(h.IsCancelled);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        Assert.False(ran);
        Assert.True(h.IsCancelled);
    }

    [Fact]
    public void Handle_CancelledAfterRunning_IsNoOpAndDoesNotAffectLaterCallbacks()
    {
        using var loop = new EventLoop();
        int count = 0;
        var h = loop.CallSoon(() => count++);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        // The pooled record is reused by the next CallSoon; the stale handle must not cancel it.
        loop.CallSoon(() => count++);
        h.Cancel();
        Assert.False(h.IsCancelled);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        Assert.Equal(2, count);
    }

    [Fact]
    public void CallbackThatThrows_ReportedToHandler_LoopKeepsRunning()
    {
        using var loop = new EventLoop();
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, ctx) => reported.Add(ctx));
        bool after = false;
        loop.CallSoon(() => throw new InvalidOperationException("boom"));
        loop.CallSoon(() => { after = true; loop.Stop(); });
        loop.RunForever();
        Assert.True(after);
        var ctx = Assert.Single(reported);
        Assert.IsType<InvalidOperationException>(ctx.Exception);
    }

    [Fact]
    public void ExceptionHandler_ThatThrows_FallsBackToDefaultWithoutEscaping()
    {
        using var loop = new EventLoop();
        loop.SetExceptionHandler((_, _) => throw new InvalidOperationException("handler broken"));
        var savedErr = Console.Error;
        var sink = new StringWriter();
        Console.SetError(sink);
        try
        {
            loop.CallExceptionHandler(new ExceptionContext("original problem"));
        }
        finally
        {
            Console.SetError(savedErr);
        }
        Assert.Contains("original problem", sink.ToString());
        Assert.Contains("handler broken", sink.ToString());
    }

    [Fact]
    [Trait("asyncio", "call_exception_handler guards the default handler too: an error while reporting never stops the loop")]
    public void DefaultExceptionHandler_FailingToReport_DoesNotStopTheLoop()
    {
        using var loop = new EventLoop();
        bool after = false;
        Exception? escaped = null;
        var savedErr = Console.Error;
        var sink = new StringWriter();
        Console.SetError(sink);
        try
        {
            loop.CallSoon(() => throw new UnprintableException());
            loop.CallSoon(() => { after = true; loop.Stop(); });
            escaped = Record.Exception(loop.RunForever);
            // The same through a custom handler that fails: the default one then reports both.
            loop.SetExceptionHandler((_, _) => throw new UnprintableException());
            loop.CallSoon(() => throw new FormatException("second"));
            loop.CallSoon(loop.Stop);
            escaped ??= Record.Exception(loop.RunForever);
        }
        finally
        {
            Console.SetError(savedErr);
        }
        Assert.Null(escaped);
        Assert.True(after);
        Assert.Contains("second", sink.ToString());
    }

    sealed class UnprintableException : Exception
    {
        public override string ToString() => throw new InvalidOperationException("cannot be printed");
    }

    [Fact]
    public void RunForever_WhileRunning_Throws()
    {
        using var loop = new EventLoop();
        Exception? error = null;
        loop.CallSoon(() =>
        {
            try { loop.RunForever(); } catch (InvalidOperationException e) { error = e; }
            loop.Stop();
        });
        loop.RunForever();
        Assert.NotNull(error);
    }

    [Fact]
    public void Close_RunningOrClosedLoop_BehavesAsAsyncio()
    {
        var loop = new EventLoop();
        Exception? whileRunning = null;
        loop.CallSoon(() =>
        {
            try { loop.Close(); } catch (InvalidOperationException e) { whileRunning = e; }
            loop.Stop();
        });
        loop.RunForever();
        Assert.NotNull(whileRunning);
        loop.Close();
        loop.Close(); // idempotent
        Assert.True(loop.IsClosed);
        Assert.Throws<InvalidOperationException>(() => loop.CallSoon(() => { }));
        Assert.Throws<InvalidOperationException>(() => loop.RunForever());
        Assert.Throws<InvalidOperationException>(() => loop.CallSoonThreadsafe(() => { }));
    }

    [Fact]
    public void GetRunningLoop_NoLoop_ThrowsClearError()
    {
        var e = Assert.Throws<InvalidOperationException>(() => EventLoop.GetRunningLoop());
        Assert.Contains("No event loop is running", e.Message);
        Assert.Null(EventLoop.TryGetRunningLoop());
        Assert.Throws<InvalidOperationException>(() => Aio.Sleep(1));
    }

    [Fact]
    public void RunUntilComplete_StoppedBeforeFutureDone_Throws()
    {
        using var loop = new EventLoop();
        var f = loop.CreateFuture();
        loop.CallSoon(loop.Stop);
        var e = Assert.Throws<InvalidOperationException>(() => loop.RunUntilComplete(f));
        Assert.Contains("stopped before the future completed", e.Message);
    }

    [Fact]
    public void RunUntilComplete_Coroutine_ReturnsResultAndRethrowsFailure()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        Assert.Equal(42, loop.RunUntilComplete(async () => { await Aio.Sleep(1); return 42; }));
        Assert.Throws<FormatException>(() => loop.RunUntilComplete(async () => { await Aio.Sleep(1); throw new FormatException(); }));
    }

    [Fact]
    [Trait("asyncio", "run_until_complete checks that the loop is not running before it wraps the coroutine or looks at the future")]
    public void RunUntilComplete_WhileALoopRuns_ThrowsWithoutStartingTheCoroutine()
    {
        using var loop = new EventLoop();
        using var other = new EventLoop();
        var done = loop.CreateFuture<int>();
        done.SetResult(1);
        var otherDone = other.CreateFuture<int>();
        otherDone.SetResult(2);
        bool started = false;
        var errors = new List<Exception>();
        void Try(Action a)
        {
            try { a(); } catch (InvalidOperationException e) { errors.Add(e); }
        }
        loop.CallSoon(() =>
        {
            Try(() => loop.RunUntilComplete(done));
            Try(() => loop.RunUntilComplete(async () => { started = true; await Task.Yield(); }));
            Try(() => loop.RunUntilComplete(async () => { started = true; await Task.Yield(); return 3; }));
            // Another loop cannot run on this thread either.
            Try(() => other.RunUntilComplete(otherDone));
            Try(() => other.RunUntilComplete(async () => { started = true; await Task.Yield(); }));
            loop.CallSoon(() => loop.CallSoon(loop.Stop));
        });
        loop.RunForever();
        Assert.Equal(5, errors.Count);
        Assert.False(started);
        Assert.Empty(loop.AllTasks());
        Assert.Empty(other.AllTasks());
    }

    [Fact]
    [Trait("asyncio", "a done callback that raises is reported with the callback and the future it was added to")]
    public void DoneCallbackThatThrows_ContextNamesTheCallbackAndTheFuture()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, ctx) => reported.Add(ctx));
        Action<Future> onDone = _ => throw new FormatException("done");
        Future? future = null;
        AioTask? task = null;
        loop.RunUntilComplete(async () =>
        {
            future = loop.CreateFuture();
            future.AddDoneCallback(onDone);
            future.SetResult();
            await Aio.Sleep(0);
            task = Aio.CreateTask(async () => await Aio.Sleep(0), "t1");
            task.AddDoneCallback(onDone);
            await task;
            await Aio.Sleep(0);
        });
        Assert.Equal(2, reported.Count);
        Assert.All(reported, c => Assert.Same(onDone, c.Callback));
        Assert.All(reported, c => Assert.IsType<FormatException>(c.Exception));
        Assert.All(reported, c => Assert.Contains("Exception in callback", c.Message));
        Assert.Same(future, reported[0].Future);
        Assert.Same(task, reported[1].Future);
        Assert.Contains($"callback: LoopOrderingTests.{nameof(DoneCallbackThatThrows_ContextNamesTheCallbackAndTheFuture)} (lambda)", reported[1].ToString());
        Assert.Contains("name='t1'", reported[1].ToString());
    }

    [Fact]
    [Trait("asyncio", "a callback that raises is reported with its handle, which names the callback")]
    public void CallbackThatThrows_ContextNamesTheCallbackItself()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, ctx) => reported.Add(ctx));
        Action soon = () => throw new FormatException("soon");
        Action<object?> withState = _ => throw new FormatException("state");
        Action later = () => throw new FormatException("later");
        Action<object?> laterWithState = _ => throw new FormatException("later state");
        loop.CallSoon(soon);
        loop.CallSoon(withState, "x");
        loop.CallLater(1, later);
        loop.CallAt(2, laterWithState, "y");
        loop.CallLater(3, loop.Stop);
        loop.RunForever();
        Assert.Equal(4, reported.Count);
        Assert.Same(soon, reported[0].Callback);
        Assert.Same(withState, reported[1].Callback);
        Assert.Same(later, reported[2].Callback);
        Assert.Same(laterWithState, reported[3].Callback);
        Assert.All(reported, c => Assert.IsType<FormatException>(c.Exception));
        Assert.All(reported, c => Assert.Contains("Exception in callback", c.Message));
    }

    [Fact]
    public void ScheduleSeed_ShufflesReadyCallbacks_Reproducibly()
    {
        List<int> RunWith(int seed)
        {
            using var loop = new EventLoop(new LoopOptions { ScheduleSeed = seed });
            var order = new List<int>();
            for (int i = 0; i < 20; i++) { int k = i; loop.CallSoon(() => order.Add(k)); }
            loop.CallSoon(loop.Stop);
            loop.RunForever();
            loop.CallSoon(loop.Stop);
            loop.RunForever();
            return order;
        }
        var a = RunWith(7);
        Assert.Equal(a, RunWith(7));
        Assert.NotEqual(Enumerable.Range(0, 20), a);
        Assert.Equal(Enumerable.Range(0, 20), a.Order());
    }

    [Fact]
    public void CallSoon_ManyChunksOfCallbacks_StayInFifoOrderAcrossBursts()
    {
        using var loop = new EventLoop();
        var seen = new List<int>();
        foreach (int burst in new[] { 5000, 1, 10_000, 3 })   // crosses the queue's 2048-item chunks
        {
            seen.Clear();
            for (int i = 0; i < burst; i++) { int k = i; loop.CallSoon(() => seen.Add(k)); }
            loop.CallSoon(loop.Stop);
            loop.RunForever();
            Assert.Equal(Enumerable.Range(0, burst), seen);
        }
    }

    [Fact]
    [Trait("asyncio", "stop() before run_forever(): the loop runs one iteration, then returns")]
    public void RunForever_StoppedBeforeItRuns_RunsOneIterationThenReturns()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallSoon(() => { order.Add("ready"); loop.CallSoon(() => order.Add("next")); });
        loop.Stop();
        loop.RunForever();
        Assert.Equal(["ready"], order);
        // The stop request was used up: the next run goes on until it is stopped again.
        loop.CallSoon(() => loop.CallSoon(loop.Stop));
        loop.RunForever();
        Assert.Equal(["ready", "next"], order);
    }

    [Fact]
    [Trait("asyncio", "run_until_complete(future of another loop) raises ValueError")]
    public void RunUntilComplete_FutureOfAnotherLoop_ThrowsWithoutRunning()
    {
        using var loop = new EventLoop();
        using var other = new EventLoop();
        bool ran = false;
        loop.CallSoon(() => ran = true);
        Assert.Throws<ArgumentException>(() => loop.RunUntilComplete(other.CreateFuture()));
        Assert.False(ran);
        Assert.False(loop.IsRunning);
    }

    [Fact]
    [Trait("asyncio", "run_until_complete: a future left pending by a stopped run does not stop a later run (test_run_until_complete_loop_orphan_future_close_loop)")]
    public void RunUntilComplete_StoppedEarly_TheFutureDoesNotStopALaterRun()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var first = loop.CreateFuture();
        loop.CallSoon(loop.Stop);
        Assert.Throws<InvalidOperationException>(() => loop.RunUntilComplete(first));
        var steps = new List<string>();
        int result = loop.RunUntilComplete(async () =>
        {
            first.SetResult();           // the first run's stop hook must be gone by now
            await Aio.Sleep(0);
            await Aio.Sleep(1);
            steps.Add("after");
            return 7;
        });
        Assert.Equal(7, result);
        Assert.Equal(["after"], steps);
    }

    [Fact]
    [Trait("asyncio", "stop() from a callback: the callbacks already ready in that iteration still run")]
    public void Stop_FromACallback_TheRestOfTheIterationStillRuns()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallSoon(() => { order.Add("stop"); loop.Stop(); });
        loop.CallSoon(() => { order.Add("after stop"); loop.CallSoon(() => order.Add("next iteration")); });
        loop.RunForever();
        Assert.Equal(["stop", "after stop"], order);
    }

    [Fact]
    [Trait("asyncio", "call_later/call_at on a closed loop raise RuntimeError")]
    public void CallLaterAndCallAt_ClosedLoop_Throw()
    {
        var loop = new EventLoop();
        loop.Close();
        Assert.Throws<InvalidOperationException>(() => loop.CallLater(1, () => { }));
        Assert.Throws<InvalidOperationException>(() => loop.CallAt(loop.Time() + 1, () => { }));
        Assert.Throws<InvalidOperationException>(() => loop.RunUntilComplete(() => Task.CompletedTask));
    }

    [Fact]
    [Trait("asyncio", "run_forever() pre-stopped polls for I/O without blocking (test_run_forever_pre_stopped)")]
    public void RunForever_StoppedBeforeItRunsWithOnlyAFarTimer_ReturnsWithoutBlocking()
    {
        using var loop = new EventLoop();
        loop.CallLater(3600, () => { });
        // Bounds the test if the loop blocked until the timer.
        using var watchdog = new Timer(_ => loop.CallSoonThreadsafe(loop.Stop), null, 10_000, Timeout.Infinite);
        int blockingBefore = loop.BlockingPolls;
        loop.Stop();
        loop.RunForever();
        Assert.Equal(blockingBefore, loop.BlockingPolls);
    }

    [Fact]
    [Trait("asyncio", "run_until_complete() of a task that failed leaves no stop() pending for the next run (bpo-22429)")]
    public void RunUntilComplete_TaskFailed_LeavesNoStopForTheNextRun()
    {
        using var loop = new EventLoop();
        Assert.Throws<FormatException>(() => loop.RunUntilComplete(async () => { await Aio.Sleep(0); throw new FormatException(); }));
        bool called = false;
        // Stops the loop in its second iteration: a stale stop would end the run in the first.
        loop.CallSoon(() => loop.CallSoon(() => { called = true; loop.Stop(); }));
        loop.RunForever();
        Assert.True(called);
    }

    [Fact]
    [Trait("asyncio", "run_until_complete() of a done future still runs the loop: its done callback is scheduled with call_soon")]
    public void RunUntilComplete_FutureAlreadyDone_RunsOneIteration()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallSoon(() => { order.Add("ready"); loop.CallSoon(() => order.Add("next iteration")); });
        var f = loop.CreateFuture<int>();
        f.SetResult(5);
        Assert.Equal(5, loop.RunUntilComplete(f));
        Assert.Equal(["ready"], order);
        Assert.False(loop.IsRunning);
    }

    [Fact]
    [Trait("asyncio", "run_until_complete() of a done future uses up a stop() made before it")]
    public void RunUntilComplete_FutureAlreadyDone_UsesUpAPendingStop()
    {
        using var loop = new EventLoop();
        var f = loop.CreateFuture<int>();
        f.SetResult(1);
        loop.Stop();
        Assert.Equal(1, loop.RunUntilComplete(f));
        int iterations = 0;
        void Tick() { if (++iterations < 3) loop.CallSoon(Tick); else loop.Stop(); }
        loop.CallSoon(Tick);
        loop.RunForever();
        Assert.Equal(3, iterations);   // a stop left pending would have ended this run after one
    }

    [Fact]
    [Trait("asyncio", "run_until_complete() of a task already done runs the callbacks already ready")]
    public void RunUntilComplete_TaskAlreadyDone_RunsWhatIsReady()
    {
        using var loop = new EventLoop();
        var t = loop.CreateTask(async () => { await Task.CompletedTask; return 3; });
        Assert.Equal(3, loop.RunUntilComplete(t));
        bool ran = false;
        loop.CallSoon(() => ran = true);
        Assert.Equal(3, loop.RunUntilComplete(t));
        Assert.True(ran);
    }

    [Fact]
    [Trait("asyncio", "set_exception_handler(None) restores the default handler (test_set_exc_handler_custom)")]
    public void SetExceptionHandler_Null_RestoresTheDefaultHandler()
    {
        using var loop = new EventLoop();
        int customCalls = 0;
        Action<EventLoop, ExceptionContext> custom = (_, _) => customCalls++;
        Assert.Null(loop.GetExceptionHandler());
        loop.SetExceptionHandler(custom);
        Assert.Same(custom, loop.GetExceptionHandler());
        loop.SetExceptionHandler(null);
        Assert.Null(loop.GetExceptionHandler());
        var savedErr = Console.Error;
        var sink = new StringWriter();
        Console.SetError(sink);
        try
        {
            loop.CallSoon(() => throw new DivideByZeroException("zero"));
            loop.CallSoon(loop.Stop);
            loop.RunForever();
        }
        finally
        {
            Console.SetError(savedErr);
        }
        Assert.Equal(0, customCalls);
        Assert.Contains("Exception in callback", sink.ToString());
        Assert.Contains("DivideByZeroException", sink.ToString());
    }
}
