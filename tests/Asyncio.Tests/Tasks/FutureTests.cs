namespace Asyncio.Tests.Tasks;

/// <summary>asyncio.Future: result, exception, cancellation, done callbacks, awaiting, loop binding.</summary>
public class FutureTests
{
    [Fact]
    public void SetResult_ThenAwait_ReturnsResult() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        Aio.GetRunningLoop().CallSoon(() => f.SetResult(7));
        Assert.Equal(7, await f);
        Assert.True(f.IsDone);
        Assert.Equal(7, f.Result);
    });

    [Fact]
    public void SetResult_Twice_ThrowsInvalidStateError() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.SetResult(1);
        Assert.Throws<InvalidStateError>(() => f.SetResult(2));
        Assert.Throws<InvalidStateError>(() => f.SetException(new Exception()));
        Assert.False(f.Cancel());
        Assert.Equal(1, await f);
    });

    [Fact]
    public void Result_NotDone_ThrowsInvalidStateError() => AioTest.Run(() =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        Assert.Throws<InvalidStateError>(() => f.Result);
        Assert.Throws<InvalidStateError>(() => f.GetException());
        return Task.CompletedTask;
    });

    [Fact]
    public void Cancel_WithMessage_AwaiterGetsCancelledErrorWithMessage() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture();
        Aio.GetRunningLoop().CallSoon(() => Assert.True(f.Cancel("stop now")));
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await f);
        Assert.Equal("stop now", e.CancelMessage);
        Assert.True(f.IsCancelled);
        Assert.Throws<CancelledError>(() => f.GetException());
        Assert.Throws<CancelledError>(() => f.GetResult());
    });

    [Fact]
    public void SetException_Await_RethrowsTheSameException() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<string>();
        var boom = new FormatException("bad");
        f.SetException(boom);
        Assert.True(f.IsFaulted);
        Assert.Same(boom, f.GetException());
        var e = await Assert.ThrowsAsync<FormatException>(async () => await f);
        Assert.Same(boom, e);
    });

    [Fact]
    public void DoneCallbacks_RunInRegistrationOrder_OnALaterIteration() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        var order = new List<string>();
        f.AddDoneCallback(_ => order.Add("first"));
        f.AddDoneCallback(x => order.Add("second:" + ((Future<int>)x).Result));
        f.SetResult(3);
        order.Add("after SetResult");
        await Aio.Sleep(0);
        Assert.Equal(["after SetResult", "first", "second:3"], order);
    });

    [Fact]
    public void AddDoneCallback_AlreadyDone_ScheduledNotInline() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture();
        f.SetResult();
        bool ran = false;
        f.AddDoneCallback(_ => ran = true);
        Assert.False(ran);
        await Aio.Sleep(0);
        Assert.True(ran);
    });

    [Fact]
    public void RemoveDoneCallback_RemovesEveryRegistration_ReturnsCount() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture();
        int calls = 0;
        Action<Future> cb = _ => calls++;
        f.AddDoneCallback(cb);
        f.AddDoneCallback(cb);
        f.AddDoneCallback(_ => calls += 10);
        Assert.Equal(2, f.RemoveDoneCallback(cb));
        f.SetResult();
        await Aio.Sleep(0);
        Assert.Equal(10, calls);
    });

    [Fact]
    public void SetResult_AwaiterResumes_AfterTheCompleterContinues() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var f = loop.CreateFuture<int>();
        var order = new List<string>();
        var waiter = Aio.CreateTask(async () => { order.Add("got " + await f); });
        await Aio.Sleep(0); // let the waiter suspend
        f.SetResult(1);
        order.Add("completer continues");
        await waiter;
        Assert.Equal(["completer continues", "got 1"], order);
    });

    [Fact]
    public void Await_SeveralAwaiters_AllResumedInOrder() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        var order = new List<int>();
        var tasks = Enumerable.Range(0, 3).Select(i => Aio.CreateTask(async () => { await f; order.Add(i); })).ToList();
        await Aio.Sleep(0);
        f.SetResult(0);
        foreach (var t in tasks) await t;
        Assert.Equal([0, 1, 2], order);
    });

    [Fact]
    public void Await_FromAnotherLoop_Throws()
    {
        using var other = new EventLoop();
        var foreign = other.CreateFuture();
        AioTest.Run(async () =>
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await foreign);
            Assert.Contains("another event loop", e.Message);
        });
    }

    [Fact]
    public void AsTask_CompletesWithTheFuture() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        var t = f.AsTask();
        Assert.False(t.IsCompleted);
        f.SetResult(5);
        Assert.Equal(5, await t);
        var c = Aio.GetRunningLoop().CreateFuture();
        var ct = c.AsTask();
        c.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ct);
    });

    [Fact]
    public void SetResult_FromAnotherThreadWhileRunning_Throws() => AioTest.RunReal(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        var e = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => f.SetResult(1)));
        Assert.Contains("CallSoonThreadsafe", e.Message);
        Assert.False(f.IsDone);
    });

    [Fact]
    public void ToString_ShowsState()
    {
        using var loop = new EventLoop();
        var f = loop.CreateFuture<int>();
        Assert.Contains("pending", f.ToString());
        f.SetResult(4);
        Assert.Contains("result=4", f.ToString());
    }

    // ---- exceptions never retrieved ----

    /// <summary>Collects garbage, runs the finalizers, and lets the loop run the reports they posted.</summary>
    internal static async Task CollectGarbage()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        await Aio.Sleep(0);
        await Aio.Sleep(0);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static void FailAndDrop(EventLoop loop)
    {
        var f = loop.CreateFuture<int>();
        f.SetException(new InvalidOperationException("lost"));
    }

    [Fact]
    [Trait("asyncio", "test_futures: test_tb_logger_exception_unretrieved")]
    public void SetException_NeverRetrieved_ReportedToTheExceptionHandlerOnceCollected()
    {
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            FailAndDrop(Aio.GetRunningLoop());
            await CollectGarbage();
        });
        var ctx = Assert.Single(errors);
        Assert.Contains("never retrieved", ctx.Message);
        Assert.Equal("lost", ctx.Exception!.Message);
        Assert.NotNull(ctx.Future);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static async Task RetrieveInEveryWay()
    {
        var loop = Aio.GetRunningLoop();
        static AioTask<int> FailAfter(double s) => Aio.CreateTask<int>(async () => { await Aio.Sleep(s); throw new InvalidOperationException("x"); });

        var awaited = loop.CreateFuture<int>();
        awaited.SetException(new InvalidOperationException("awaited"));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await awaited);

        var asked = loop.CreateFuture();
        asked.SetException(new InvalidOperationException("asked"));
        Assert.NotNull(asked.GetException());

        // gather takes over every child's exception, also those failing after the first
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await Aio.Gather(FailAfter(1), FailAfter(2)));
        await Aio.Sleep(2);

        // (a shielded task that fails after its shield was cancelled is reported: ShieldTests)

        await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(tg => { tg.CreateTask(async () => { await Aio.Sleep(1); throw new InvalidOperationException("child"); }); }));
    }

    [Fact]
    [Trait("asyncio", "test_futures: test_tb_logger_result_retrieved, test_tb_logger_exception_retrieved")]
    public void SetException_RetrievedByAwaitOrCombinator_NotReported()
    {
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            await RetrieveInEveryWay();
            await CollectGarbage();
        });
        Assert.Empty(errors);
    }

    // ---- a closed loop: asyncio's call_soon raises "Event loop is closed" ----

    [Fact]
    public void AddDoneCallback_DoneFutureOfAClosedLoop_Throws()
    {
        var loop = new EventLoop();
        var f = loop.CreateFuture<int>();
        f.SetResult(1);
        loop.Close();
        Assert.Contains("closed", Assert.Throws<InvalidOperationException>(() => f.AddDoneCallback(_ => { })).Message);
    }

    [Fact]
    public void SetResult_ClosedLoopAndADoneCallbackWaits_ThrowsAndTheFutureStaysPending()
    {
        var loop = new EventLoop();
        var f = loop.CreateFuture<int>();
        f.AddDoneCallback(_ => { });
        loop.Close();
        Assert.Throws<InvalidOperationException>(() => f.SetResult(1));
        Assert.False(f.IsDone);   // nothing changed: the callback is not silently dropped
        Assert.Throws<InvalidOperationException>(() => f.Cancel());
        Assert.False(f.IsDone);
    }

    [Fact]
    public async Task SetResult_ClosedLoopAndNoCallbackOrOnlyADotNetTask_Completes()
    {
        var loop = new EventLoop();
        var plain = loop.CreateFuture<int>();
        var viaTask = loop.CreateFuture<int>();
        var task = viaTask.AsTask();
        loop.Close();
        plain.SetResult(1);
        viaTask.SetResult(2);   // a .NET Task needs no loop to complete
        Assert.Equal(1, plain.Result);
        Assert.Equal(2, await task);
    }
}
