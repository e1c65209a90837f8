namespace Asyncio.Tests.Tasks;

/// <summary>asyncio's cancellation protocol: Task.cancel(), cancelling(), uncancel(), and the token.</summary>
public class CancellationTests
{
    [Fact]
    public void Cancel_BeforeStart_CoroutineNeverRuns() => AioTest.Run(async () =>
    {
        bool ran = false;
        var t = Aio.CreateTask(async () => { ran = true; await Aio.Sleep(1); });
        Assert.True(t.Cancel("early"));
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.False(ran);
        Assert.True(t.IsCancelled);
        Assert.Equal("early", e.CancelMessage);
    });

    [Fact]
    public void Cancel_WhileSleeping_SleepThrowsWithMessage() => AioTest.Run(async () =>
    {
        string? seen = null;
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(100); }
            catch (CancelledError e) { seen = e.CancelMessage; throw; }
        });
        await Aio.Sleep(1);
        Assert.True(t.Cancel("because"));
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("because", seen);
        Assert.Equal(1.0, Aio.GetRunningLoop().Time(), 6); // the sleep did not run to its deadline
    });

    [Fact]
    public void Cancel_DoneTask_ReturnsFalse() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => Task.CompletedTask);
        await t;
        Assert.False(t.Cancel());
        Assert.Equal(0, t.Cancelling());
    });

    [Fact]
    public void Cancel_Swallowed_TaskKeepsRunningAndCancellingCounts() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(100); } catch (CancelledError) { }
            Assert.Equal(1, Aio.CurrentTask!.Cancelling());
            await Aio.Sleep(1); // not cancelled again: one cancel, one error
            return "survived";
        });
        await Aio.Sleep(1);
        t.Cancel();
        Assert.Equal("survived", await t);
        Assert.False(t.IsCancelled);
    });

    [Fact]
    public void Uncancel_DecrementsCount_AndDropsAPendingCancellation() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            var me = Aio.CurrentTask!;
            me.Cancel();          // nothing is pending: kept for the next await
            me.Cancel();
            Assert.Equal(2, me.Cancelling());
            Assert.Equal(1, me.Uncancel());
            Assert.Equal(0, me.Uncancel());
            await Aio.Sleep(1);   // the pending cancellation was withdrawn
            return me.Cancelling();
        });
        Assert.Equal(0, await t);
    });

    [Fact]
    public void Cancel_NothingPending_NextAwaitThrows() => AioTest.Run(async () =>
    {
        int reached = 0;
        var t = Aio.CreateTask(async () =>
        {
            Aio.CurrentTask!.Cancel("self");
            reached = 1;
            await Aio.Sleep(0);
            reached = 2;
        });
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(1, reached);
        Assert.Equal("self", e.CancelMessage);
    });

    [Fact]
    public void Cancel_RightBeforeReturn_TaskEndsCancelled() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            await Aio.Sleep(0);
            Aio.CurrentTask!.Cancel();
            return 1; // asyncio still ends the task cancelled
        });
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.IsCancelled);
    });

    [Fact]
    public void Cancel_InTheFirstStepThenReturn_TaskEndsCancelled() => AioTest.Run(async () =>
    {
        CancellationToken token = default;
        var t = Aio.CreateTask(() =>
        {
            token = Aio.CancellationToken;   // the first step's scope is the task's own
            Aio.CurrentTask!.Cancel("first step");
            return Task.FromResult(1);       // finishes without ever suspending
        });
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.IsCancelled);
        Assert.Equal("first step", e.CancelMessage);
        Assert.True(token.IsCancellationRequested);
    });

    [Fact]
    public void Cancel_EagerTaskStartedInAnotherTasksFirstStep_EachKeepsItsOwnScope() => AioTest.Run(async () =>
    {
        AioTask? inner = null;
        CancellationToken innerToken = default, outerToken = default;
        var outer = Aio.CreateTask(async () =>
        {
            // Eager: the inner task's first step runs here, inside the outer task's first step.
            inner = Aio.CreateTask(async () =>
            {
                innerToken = Aio.CancellationToken;
                await Aio.Sleep(1);
            });
            Assert.False(inner.IsDone);
            outerToken = Aio.CancellationToken;
            Aio.CurrentTask!.Cancel("outer only");
            await Aio.Sleep(1);
        });
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.Equal("outer only", e.CancelMessage);
        Assert.NotEqual(innerToken, outerToken);
        Assert.True(outerToken.IsCancellationRequested);
        Assert.False(innerToken.IsCancellationRequested);
        await inner!;
        Assert.False(inner!.IsCancelled);
    }, new LoopOptions { VirtualTime = true, EagerTasks = true });

    [Fact]
    public void Cancel_AfterWakeupBeforeResume_ThrowsAtThatAwait() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        bool after = false;
        var t = Aio.CreateTask(async () => { await Aio.Sleep(1); after = true; });
        // At t=1 the sleep fires and the task is queued; cancel it in the same iteration, before it runs.
        loop.CallAt(1.0, () => Assert.True(t.Cancel()));
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.False(after);
    });

    [Fact]
    public void Cancel_AwaitingAnotherTask_CancelsThatTaskToo() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(() => Aio.Sleep(100).AsTask());
        var outer = Aio.CreateTask(async () => await inner);
        await Aio.Sleep(1);
        outer.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.True(inner.IsCancelled);
    });

    [Fact]
    public void Cancel_AwaitedTaskSwallows_AwaiterGetsItsResult() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(100); } catch (CancelledError) { }
            return 42;
        });
        var outer = Aio.CreateTask(async () => await inner);
        await Aio.Sleep(1);
        outer.Cancel();
        Assert.Equal(42, await outer); // as asyncio: the cancellation went to the awaited task
    });

    [Fact]
    public void Cancel_AwaitingAFuture_CancelsTheFuture() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        var t = Aio.CreateTask(async () => await f);
        await Aio.Sleep(0);
        t.Cancel("msg");
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(f.IsCancelled);
    });

    [Fact]
    public void Cancel_TaskWithHotSubCoroutines_ReachesEveryPendingAwait() => AioTest.Run(async () =>
    {
        int cancelled = 0;
        async Task Child(double d)
        {
            try { await Aio.Sleep(d); }
            catch (CancelledError) { cancelled++; throw; }
        }
        var t = Aio.CreateTask(async () =>
        {
            var children = new[] { Child(10), Child(20), Child(30) };
            await Task.WhenAll(children);
        });
        await Aio.Sleep(1);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(3, cancelled);
        Assert.Equal(1.0, Aio.GetRunningLoop().Time(), 6);
    });

    [Fact]
    public void Cancel_OperationCanceledExceptionFromCoroutine_TaskEndsCancelled() => AioTest.Run(async () =>
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var t = Aio.CreateTask(async () => { await Aio.Sleep(0); cts.Token.ThrowIfCancellationRequested(); });
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.IsCancelled);
    });

    [Fact]
    public void CancellationToken_SignalledOnCancel_InterruptsTaskDelay() => AioTest.RunReal(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            Assert.Equal(Aio.CurrentTask!.CancellationToken, Aio.CancellationToken);
            await Task.Delay(TimeSpan.FromMinutes(5), Aio.CancellationToken);
        });
        await Aio.Sleep(0.01);
        Assert.False(t.CancellationToken.IsCancellationRequested);
        t.Cancel();
        Assert.True(t.CancellationToken.IsCancellationRequested);
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.IsCancelled);
    });

    [Fact]
    public void Cancel_WithMessage_TaskEndsThroughTokenOfForeignApi_KeepsMessage() => AioTest.RunReal(async () =>
    {
        // Task.Delay stopped by the task's token throws a plain TaskCanceledException, without the message.
        var t = Aio.CreateTask(async () => await Task.Delay(TimeSpan.FromMinutes(5), Aio.CancellationToken));
        await Aio.Sleep(0.01);
        t.Cancel("bye");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("bye", e.CancelMessage);
        Assert.True(t.IsCancelled);
    });

    [Fact]
    public void Cancel_OperationCanceledExceptionWithoutRequest_EndsCancelledWithoutMessage() => AioTest.Run(async () =>
    {
        // No cancellation was requested: there is no message to take, even if an old one is on record.
        var t = Aio.CreateTask(async () =>
        {
            var me = Aio.CurrentTask!;
            try { await Aio.Sleep(10); } catch (CancelledError) { me.Uncancel(); }
            throw new OperationCanceledException();
        });
        await Aio.Sleep(1);
        t.Cancel("old");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Null(e.CancelMessage);
    });

    [Fact]
    public void CancellationToken_TaskDoneCancelled_IsCancelled() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => await Aio.Sleep(10));
        await Aio.Sleep(1);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.CancellationToken.IsCancellationRequested);

        var never = Aio.CreateTask(async () => await Aio.Sleep(10));
        never.Cancel();   // before it starts: it never runs, and never had a token
        await Assert.ThrowsAsync<CancelledError>(async () => await never);
        Assert.True(never.CancellationToken.IsCancellationRequested);
    });

    [Fact]
    public void CancellationToken_TaskDoneWithCancelRequestPending_IsCancelled() => AioTest.Run(async () =>
    {
        // The coroutine swallows the cancellation without Uncancel and returns: the request is still pending.
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); } catch (CancelledError) { }
        });
        await Aio.Sleep(1);
        t.Cancel();
        await t;
        Assert.False(t.IsCancelled);
        Assert.True(t.CancellationToken.IsCancellationRequested);
    });

    [Fact]
    public void CancellationToken_TaskDoneNormally_IsNeverCancelledAndReadWithoutAllocating() => AioTest.Run(async () =>
    {
        async Task Body()
        {
            _ = Aio.CancellationToken;   // the task had a token while it ran
            await Aio.Sleep(1);
        }
        var warm = Aio.CreateTask(Body);
        var t = Aio.CreateTask(Body);
        await warm;
        await t;
        _ = warm.CancellationToken;   // the first read of t is the one measured
        long before = GC.GetAllocatedBytesForCurrentThread();
        var token = t.CancellationToken;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);   // no new scope (nor token source) for a task that is done
        Assert.False(token.IsCancellationRequested);
        Assert.False(token.CanBeCanceled);
    });

    [Fact]
    public void CancellationToken_AfterUncancelToZero_IsFresh() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            var me = Aio.CurrentTask!;
            var first = me.CancellationToken;
            try { await Aio.Sleep(10); } catch (CancelledError) { me.Uncancel(); }
            Assert.True(first.IsCancellationRequested);
            Assert.False(me.CancellationToken.IsCancellationRequested);
            await Aio.Sleep(1);
            return true;
        });
        await Aio.Sleep(1);
        t.Cancel();
        Assert.True(await t);
    });

    [Fact]
    [Trait("asyncio", "uncancel() to zero withdraws the cancellation: inside a timeout body too, the code is no longer being cancelled")]
    public void CancellationToken_AfterUncancelToZeroInsideATimeoutBody_IsFreshThereAndInNewScopes() => AioTest.Run(async () =>
    {
        bool before = false, after = true, nested = true;
        Exception? foreign = null;
        var t = Aio.CreateTask(() => Aio.Timeout(100, async () =>
        {
            _ = Aio.CancellationToken;   // made before the cancellation, linked to the task's
            try { await Aio.Sleep(10); }
            catch (CancelledError) { before = Aio.CancellationToken.IsCancellationRequested; Aio.CurrentTask!.Uncancel(); }
            after = Aio.CancellationToken.IsCancellationRequested;
            try { await Task.Delay(0, Aio.CancellationToken); } catch (Exception e) { foreign = e; }
            await Aio.Timeout(100, () => { nested = Aio.CancellationToken.IsCancellationRequested; return Task.CompletedTask; });
            await Aio.Sleep(1);
        }));
        await Aio.Sleep(1);
        t.Cancel();
        await t;
        Assert.True(before);
        Assert.False(after);
        Assert.Null(foreign);
        Assert.False(nested);
        Assert.False(t.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "a timeout that expired stays expired when the task's own cancellation is withdrawn")]
    public void CancellationToken_ExpiredTimeoutBody_StaysSignalledWhenTheTasksCancellationIsWithdrawn() => AioTest.Run(async () =>
    {
        bool afterUncancel = false;
        var t = Aio.CreateTask(() => Aio.Timeout(1, async () =>
        {
            _ = Aio.CancellationToken;
            try { await Aio.Sleep(10); } catch (CancelledError) { }   // the timeout expires at t=1
            try { await Aio.Sleep(10); } catch (CancelledError) { Aio.CurrentTask!.Uncancel(); }   // the task is cancelled at t=2
            afterUncancel = Aio.CancellationToken.IsCancellationRequested;
        }));
        await Aio.Sleep(2);
        t.Cancel();
        await t;
        Assert.True(afterUncancel);
    });

    [Fact]
    public void CancellationToken_OutsideTasks_IsNone()
    {
        Assert.Equal(CancellationToken.None, Aio.CancellationToken);
        using var loop = new EventLoop();
        CancellationToken seen = new CancellationTokenSource().Token;
        loop.CallSoon(() => { seen = Aio.CancellationToken; loop.Stop(); });
        loop.RunForever();
        Assert.Equal(CancellationToken.None, seen);
    }

    [Fact]
    public void Cancel_ManyTimesWhileSleeping_TimersDoNotPileUp() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        for (int i = 0; i < 20_000; i++)
        {
            var t = Aio.CreateTask(() => Aio.Sleep(1000).AsTask());
            await Aio.Sleep(0);
            t.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await t);
        }
        Assert.True(loop.TimerSlotsHeld < 3000, $"{loop.TimerSlotsHeld} timer slots held");
    });

    [Fact]
    [Trait("asyncio", "Task.cancel: a second cancel() before the task resumes sets _must_cancel, and __step throws once")]
    public void Cancel_TwiceBeforeTheTaskResumes_DeliversOneCancelledError() => AioTest.Run(async () =>
    {
        var log = new List<string>();
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); } catch (CancelledError) { log.Add("cancelled"); }
            await Aio.Sleep(1);
            log.Add("slept");
        });
        await Aio.Sleep(1);
        t.Cancel();
        t.Cancel();
        await t;
        Assert.Equal(["cancelled", "slept"], log);
        Assert.Equal(2, t.Cancelling());
    });
}
