namespace Asyncio.Tests.Audit;

/// <summary>
/// Audit probes: task life cycle, cancellation, futures, shield, wait_for, timeouts, sleep(0), each asserting
/// what CPython's asyncio (3.12/3.13) does.
///
/// Written as an audit (2026-12-04, session 19): edge cases the concept classes did not cover, each pinned to what
/// CPython's asyncio does (the comment or trait of each names where), or to a documented difference (docs/differences.md).
/// </summary>
public class TasksAuditTests
{
    static EventLoop Loop => Aio.GetRunningLoop();
    static double Now => Aio.GetRunningLoop().Time();
    static LoopOptions Eager => new() { VirtualTime = true, EagerTasks = true };

    // ---- futures: callbacks and misuse ----

    [Fact] // futures.py: _callbacks is one list; a task's __wakeup is registered by add_done_callback in await order
    public void Future_DoneCallbacksAndAwaiters_RunInOneRegistrationOrder() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture<int>();
        var order = new List<string>();
        f.AddDoneCallback(_ => order.Add("cb1"));
        var t = Aio.CreateTask(async () => { await f; order.Add("task"); });
        await Aio.Sleep(0);              // the task has started and awaits f
        f.AddDoneCallback(_ => order.Add("cb2"));
        f.SetResult(1);
        await t;
        await Aio.Sleep(0);
        Assert.Equal(["cb1", "task", "cb2"], order);
    });

    [Fact] // futures.py add_done_callback on a done future: loop.call_soon, FIFO with other call_soon
    public void Future_AddDoneCallbackWhenDone_IsFifoWithCallSoon() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture();
        f.SetResult();
        var order = new List<string>();
        Loop.CallSoon(() => order.Add("A"));
        f.AddDoneCallback(_ => order.Add("B"));
        Loop.CallSoon(() => order.Add("C"));
        await Aio.Sleep(0);
        Assert.Equal(["A", "B", "C"], order);
    });

    [Fact] // events.Handle._run: an exception in a callback goes to the exception handler; the others still run
    public void Future_DoneCallbackThrows_ReportedAndOthersStillRun()
    {
        var order = new List<string>();
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            var f = Loop.CreateFuture();
            f.AddDoneCallback(_ => { order.Add("1"); throw new InvalidOperationException("boom"); });
            f.AddDoneCallback(_ => order.Add("2"));
            f.SetResult();
            await Aio.Sleep(0);
            await Aio.Sleep(0);
        });
        Assert.Equal(["1", "2"], order);
        Assert.Single(errors);
        Assert.IsType<InvalidOperationException>(errors[0].Exception);
    }

    [Fact] // futures.py: __schedule_callbacks clears _callbacks, so remove after done removes nothing and the callback still runs
    public void Future_RemoveDoneCallbackAfterDoneBeforeItRan_ReturnsZeroAndItRuns() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture();
        int ran = 0;
        Action<Future> cb = _ => ran++;
        f.AddDoneCallback(cb);
        f.SetResult();
        Assert.Equal(0, f.RemoveDoneCallback(cb));
        await Aio.Sleep(0);
        Assert.Equal(1, ran);
    });

    [Fact] // futures.py: set_result on a cancelled future raises InvalidStateError; cancel on done returns False
    public void Future_Misuse_InvalidStateAndCancelFalse() => AioTest.Run(() =>
    {
        var f = Loop.CreateFuture<int>();
        Assert.Throws<InvalidStateError>(() => f.GetException());
        Assert.Throws<InvalidStateError>(() => f.Result);
        Assert.True(f.Cancel("first"));
        Assert.False(f.Cancel("second"));
        Assert.Throws<InvalidStateError>(() => f.SetResult(1));
        Assert.Throws<InvalidStateError>(() => f.SetException(new Exception()));
        Assert.True(f.IsDone);
        Assert.True(f.IsCancelled);
        Assert.False(f.IsFaulted);
        var e = Assert.Throws<CancelledError>(() => f.GetException());
        Assert.Equal("first", e.CancelMessage);
        var e2 = Assert.Throws<CancelledError>(() => f.Result);
        Assert.Equal("first", e2.CancelMessage);

        var g = Loop.CreateFuture<int>();
        g.SetResult(3);
        Assert.False(g.Cancel());
        Assert.Throws<InvalidStateError>(() => g.SetResult(4));
        Assert.Null(g.GetException());
        Assert.Equal(3, g.Result);
        return Task.CompletedTask;
    });

    [Fact] // tasks.py Task.cancel: the awaited future is cancelled; every task awaiting it gets the CancelledError
    public void Future_SharedByTwoTasks_CancellingOneTaskCancelsTheFutureForBoth() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture<int>();
        var a = Aio.CreateTask(async () => await f);
        var b = Aio.CreateTask(async () => await f);
        await Aio.Sleep(0);
        a.Cancel("m");
        var eb = await Assert.ThrowsAsync<CancelledError>(async () => await b);
        Assert.Equal("m", eb.CancelMessage);
        Assert.True(f.IsCancelled);
        Assert.True(a.IsCancelled);
        Assert.True(b.IsCancelled);
        Assert.Equal(0, b.Cancelling());
        Assert.Equal(1, a.Cancelling());
    });

    [Fact] // a future cancelled directly: the awaiting task ends cancelled with the message, its cancelling() stays 0
    public void Future_CancelledDirectly_AwaitingTaskEndsCancelledWithMessage() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture();
        var t = Aio.CreateTask(async () => await f);
        await Aio.Sleep(0);
        f.Cancel("direct");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("direct", e.CancelMessage);
        Assert.True(t.IsCancelled);
        Assert.Equal(0, t.Cancelling());
    });

    // ---- tasks: life cycle and accessors ----

    [Fact] // tasks.py: result()/exception() of a pending task raise InvalidStateError
    public void Task_PendingAccessors_ThrowInvalidState() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(1); return 1; });
        Assert.Throws<InvalidStateError>(() => t.Result);
        Assert.Throws<InvalidStateError>(() => t.GetException());
        Assert.Throws<InvalidStateError>(() => t.GetResult());
        Assert.Equal(1, await t);
    });

    [Fact] // tasks.py Task.cancel: the last message before the first step wins (_cancel_message overwritten)
    public void Task_CancelledTwiceBeforeStart_LastMessageWinsAndCountIsTwo() => AioTest.Run(async () =>
    {
        bool ran = false;
        var t = Aio.CreateTask(async () => { ran = true; await Aio.Sleep(1); });
        Assert.True(t.Cancel("one"));
        Assert.True(t.Cancel("two"));
        Assert.Equal(2, t.Cancelling());
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("two", e.CancelMessage);
        Assert.False(ran);
        Assert.Equal(2, t.Cancelling());
    });

    [Fact] // tasks.py 3.13 uncancel: reaching 0 clears _must_cancel, so a task cancelled then uncancelled before start runs
    public void Task_CancelThenUncancelBeforeStart_TaskRunsNormally() => AioTest.Run(async () =>
    {
        bool ran = false;
        var t = Aio.CreateTask(async () => { ran = true; await Aio.Sleep(1); return 5; });
        t.Cancel("x");
        Assert.Equal(0, t.Uncancel());
        Assert.Equal(5, await t);
        Assert.True(ran);
        Assert.False(t.IsCancelled);
    });

    [Fact] // tasks.py uncancel: never below zero
    public void Task_UncancelAtZero_StaysZero() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(1); });
        Assert.Equal(0, t.Uncancel());
        Assert.Equal(0, t.Cancelling());
        await t;
        Assert.Equal(0, t.Uncancel());
    });

    [Fact] // tasks.py: the first cancel goes to the sleep (msg1); the second only sets _must_cancel; __step keeps the CancelledError it has (msg1)
    public void Task_CancelledTwiceWhileSleeping_CoroutineSeesTheFirstMessageOnce() => AioTest.Run(async () =>
    {
        var seen = new List<string?>();
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); } catch (CancelledError e) { seen.Add(e.CancelMessage); }
            await Aio.Sleep(1);
            return 1;
        });
        await Aio.Sleep(1);
        t.Cancel("m1");
        t.Cancel("m2");
        Assert.Equal(1, await t);
        Assert.Equal(["m1"], seen);
    });

    [Fact] // asyncio delivers every cancel (the "controversial lines" are commented out in Task.cancel)
    public void Task_SwallowsACancelThenCancelledAgain_SecondErrorWithSecondMessage() => AioTest.Run(async () =>
    {
        var seen = new List<string?>();
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); } catch (CancelledError e) { seen.Add(e.CancelMessage); }
            try { await Aio.Sleep(10); } catch (CancelledError e) { seen.Add(e.CancelMessage); }
            return Aio.CurrentTask!.Cancelling();
        });
        await Aio.Sleep(1);
        t.Cancel("first");
        await Aio.Sleep(1);
        t.Cancel("second");
        Assert.Equal(2, await t);
        Assert.Equal(["first", "second"], seen);
        Assert.False(t.IsCancelled);
    });

    [Fact] // a cancelled task keeps cancelling() and gives its message to result() and exception()
    public void Task_CancelledTask_AccessorsCarryTheMessage() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(10); return 1; });
        await Aio.Sleep(1);
        t.Cancel("why");
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(1, t.Cancelling());
        Assert.Equal("why", Assert.Throws<CancelledError>(() => t.Result).CancelMessage);
        Assert.Equal("why", Assert.Throws<CancelledError>(() => t.GetException()).CancelMessage);
        Assert.False(t.Cancel());
        Assert.Equal(1, t.Cancelling()); // cancel() of a done task does not count
    });

    [Fact] // tasks.py __step: a coroutine raising CancelledError on its own ends the task cancelled (cancelling() 0)
    public void Task_CoroutineRaisesCancelledErrorOnItsOwn_TaskCancelledWithThatMessage() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(1); throw new CancelledError("own"); });
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.IsCancelled);
        Assert.Equal("own", e.CancelMessage);
        Assert.Equal(0, t.Cancelling());
    });

    [Fact] // a task that turns the cancellation into another exception fails with it, not cancelled
    public void Task_CancelConvertedToAnotherException_TaskFails() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { throw new InvalidOperationException("converted"); }
        });
        await Aio.Sleep(1);
        t.Cancel();
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await t);
        Assert.False(t.IsCancelled);
        Assert.IsType<InvalidOperationException>(t.GetException());
    });

    [Fact] // the outer's Task.cancel cancels _fut_waiter (the inner) each time: inner.cancelling() == 2
    public void Task_OuterCancelledTwiceWhileInnerSwallows_InnerCancelledTwice() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(async () =>
        {
            for (int i = 0; i < 2; i++)
                try { await Aio.Sleep(10); } catch (CancelledError) { }
            return 7;
        });
        var outer = Aio.CreateTask(async () => await inner);
        await Aio.Sleep(1);
        outer.Cancel();
        await Aio.Sleep(1);
        outer.Cancel();
        Assert.Equal(7, await outer);
        Assert.Equal(2, inner.Cancelling());
        Assert.Equal(2, outer.Cancelling());
        Assert.False(outer.IsCancelled);
    });

    [Fact] // tasks.py __step: a pending _must_cancel cancels the future handed over at the next yield, with the message
    public void Task_SelfCancelThenAwaitPendingFuture_FutureCancelledWithMessage() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture<int>();
        var t = Aio.CreateTask(async () =>
        {
            Aio.CurrentTask!.Cancel("self");
            return await f;
        });
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(f.IsCancelled);
        Assert.Equal("self", e.CancelMessage);
        Assert.Equal("self", Assert.Throws<CancelledError>(() => f.Result).CancelMessage);
    });

    [Fact] // awaiting a done future does not yield: a pending cancellation waits for the next real suspension
    public void Task_SelfCancelThenAwaitDoneFuture_NotInterruptedUntilNextSuspension() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture<int>();
        f.SetResult(4);
        var log = new List<string>();
        var t = Aio.CreateTask(async () =>
        {
            Aio.CurrentTask!.Cancel();
            log.Add($"got {await f}");
            await Aio.Sleep(0);
            log.Add("not reached");
        });
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(["got 4"], log);
    });

    [Fact] // done callbacks of a task cancelled before start see it cancelled
    public void Task_CancelledBeforeStart_DoneCallbackSeesCancelled() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => await Aio.Sleep(1));
        bool? cancelled = null;
        t.AddDoneCallback(x => cancelled = x.IsCancelled);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        await Aio.Sleep(0);
        Assert.True(cancelled);
    });

    // ---- eager tasks ----

    [Fact] // an eager task that finishes in its first step is done: cancel() returns False
    public void Eager_FinishedSynchronously_CancelReturnsFalse() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => Task.FromResult(3));
        Assert.True(t.IsDone);
        Assert.False(t.Cancel());
        Assert.Equal(0, t.Cancelling());
        Assert.Equal(3, await t);
    }, Eager);

    [Fact] // eager step that cancels itself and returns without yielding: the task ends cancelled
    public void Eager_SelfCancelInFirstStepThenReturn_EndsCancelled() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() =>
        {
            Aio.CurrentTask!.Cancel("eager");
            return Task.FromResult(1);
        });
        Assert.True(t.IsDone);
        Assert.True(t.IsCancelled);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("eager", e.CancelMessage);
    }, Eager);

    [Fact] // an eager task created inside a timeout body is its own task: the creator's timeout does not cancel it
    public void Eager_CreatedInsideATimeoutBody_NotCancelledByTheTimeout() => AioTest.Run(async () =>
    {
        AioTask<int>? child = null;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () =>
        {
            child = Aio.CreateTask(async () => { await Aio.Sleep(5); return 9; });
            await Aio.Sleep(10);
        }));
        Assert.False(child!.IsDone);
        Assert.Equal(9, await child);
        Assert.Equal(5, Now, 6);
    }, Eager);

    [Fact] // same for an eager task: the creator being cancelled does not reach the child
    public void Eager_CreatorCancelled_ChildRunsOn() => AioTest.Run(async () =>
    {
        AioTask<int>? child = null;
        var creator = Aio.CreateTask(async () =>
        {
            child = Aio.CreateTask(async () => { await Aio.Sleep(5); return 9; });
            await Aio.Sleep(10);
        });
        await Aio.Sleep(1);
        creator.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await creator);
        Assert.Equal(9, await child!);
        Assert.Equal(0, child!.Cancelling());
    }, Eager);

    // ---- shield ----

    [Fact] // the task awaiting a shield gets the message it was cancelled with
    public void Shield_AwaitingTaskCancelledWithMessage_MessageKept() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(async () => { await Aio.Sleep(5); return 1; });
        var t = Aio.CreateTask(async () => await Aio.Shield(inner));
        await Aio.Sleep(1);
        t.Cancel("msg");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("msg", e.CancelMessage);
        Assert.Equal(1, await inner);
        Assert.Equal(0, inner.Cancelling());
    });

    [Fact] // wait_for(shield(t), 1): the shield is cancelled on timeout, TimeoutError, t runs on
    public void Shield_UnderWaitForPositiveTimeout_TimesOutAndTheTaskRunsOn() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(async () => { await Aio.Sleep(5); return 2; });
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(Aio.Shield(inner), 1));
        Assert.Equal(1, Now, 6);
        Assert.False(inner.IsDone);
        Assert.Equal(2, await inner);
    });

    [Fact] // a timeout expiring while its body awaits a shielded task
    public void Shield_InsideExpiringTimeout_TimeoutAndTheTaskRunsOn() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(async () => { await Aio.Sleep(5); return 2; });
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () => { await Aio.Shield(inner); }));
        Assert.False(inner.IsDone);
        Assert.Equal(2, await inner);
    });

    // ---- wait_for ----

    [Fact] // 3.12 wait_for: caller cancelled; the inner task swallows and returns: the awaiting task gets the value
    public void WaitFor_CallerCancelledAndInnerSwallows_ReturnsTheValue() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); } catch (CancelledError) { }
            await Aio.Sleep(1);
            return 7;
        });
        var caller = Aio.CreateTask(async () => await Aio.WaitFor(inner, 100));
        await Aio.Sleep(1);
        caller.Cancel();
        Assert.Equal(7, await caller);
        Assert.Equal(1, caller.Cancelling());
        Assert.False(caller.IsCancelled);
    });

    [Fact] // wait_for(already-cancelled future, 5): await raises CancelledError, the timeout did not expire: CancelledError
    public void WaitFor_AlreadyCancelledFuture_ThrowsCancelledErrorNotTimeout() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture<int>();
        f.Cancel("pre");
        var e = await Assert.ThrowsAsync<CancelledError>(() => Aio.WaitFor(f, 5));
        Assert.Equal("pre", e.CancelMessage);
        await Assert.ThrowsAsync<CancelledError>(() => Aio.WaitFor(f, 0));
    });

    [Fact] // a future whose result is set by a timer at the very deadline: the timeout wins (the awaiter has not resumed)
    public void WaitFor_ResultSetAtTheDeadline_TimeoutWins() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture<int>();
        Loop.CallLater(1, () => { if (!f.IsDone) f.SetResult(5); });
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(f, 1));
    });

    [Fact] // a task that would end at the very deadline is cancelled at its last await: TimeoutError, task cancelled
    public void WaitFor_TaskEndingAtTheDeadline_TimeoutWinsAndTaskIsCancelled() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(1); return 3; });
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(t, 1));
        Assert.True(t.IsCancelled);
    });

    [Fact] // wait_for cancelled by its caller with a message: the inner task ends cancelled, the caller gets the message
    public void WaitFor_CallerCancelledWithMessage_MessageReachesTheCaller() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(async () => { await Aio.Sleep(10); return 1; });
        var caller = Aio.CreateTask(async () => await Aio.WaitFor(inner, 100));
        await Aio.Sleep(1);
        caller.Cancel("stop");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await caller);
        Assert.Equal("stop", e.CancelMessage);
        Assert.True(inner.IsCancelled);
    });

    // ---- timeouts ----

    [Fact] // timeouts.py __aexit__: exc_type None -> nothing raised; expired() stays True; later awaits are not cancelled again
    public void Timeout_BodySwallowsExpiryAndGoesOn_ReturnsNormallyExpiredTrue() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        int r = await Aio.Timeout(1, async t =>
        {
            cm = t;
            try { await Aio.Sleep(10); } catch (CancelledError) { }
            await Aio.Sleep(1);
            return 42;
        });
        Assert.Equal(42, r);
        Assert.True(cm!.Expired);
        Assert.Equal(2, Now, 6);
        Assert.Equal(0, Aio.CurrentTask!.Cancelling());
    });

    [Fact] // __aexit__ in EXPIRING state with a CancelledError of the body's own making -> TimeoutError
    public void Timeout_BodySwallowsExpiryThenRaisesCancelledError_Timeout() => AioTest.Run(async () =>
    {
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () =>
        {
            try { await Aio.Sleep(10); } catch (CancelledError) { }
            await Aio.Sleep(1);
            throw new CancelledError("mine");
        }));
    });

    [Fact] // the body's sleep ends at the same moment as the deadline: the timeout fires first -> TimeoutError
    public void Timeout_BodySleepEndsExactlyAtTheDeadline_TimesOut() => AioTest.Run(async () =>
    {
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () => { await Aio.Sleep(1); }));
    });

    [Fact] // an outer cancel with a message passes through a timeout unchanged and ends the task with that message
    public void Timeout_OuterCancelWithMessage_PassesThroughWithMessage() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        var t = Aio.CreateTask(() => Aio.Timeout(10, async s => { cm = s; await Aio.Sleep(100); }));
        await Aio.Sleep(1);
        t.Cancel("outer");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("outer", e.CancelMessage);
        Assert.True(t.IsCancelled);
        Assert.False(cm!.Expired);
    });

    [Fact] // timeout(None): when() is None; reschedule to a time makes it expire there
    public void Timeout_NoneThenRescheduled_ExpiresAtTheNewDeadline() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout((double?)null, async t =>
        {
            cm = t;
            Assert.Null(t.When());
            t.Reschedule(Now + 3);
            Assert.Equal(3, t.When()!.Value, 6);
            await Aio.Sleep(10);
        }));
        Assert.Equal(3, Now, 6);
        Assert.True(cm!.Expired);
    });

    [Fact] // timeout_at(past): expires on the next iteration (call_soon), so a body with no await completes normally
    public void TimeoutAt_PastDeadlineBodyWithoutAwait_CompletesNormally() => AioTest.Run(async () =>
    {
        await Aio.Sleep(1);
        TimeoutScope? cm = null;
        int r = await Aio.TimeoutAt(0.5, t => { cm = t; return Task.FromResult(8); });
        Assert.Equal(8, r);
        Assert.False(cm!.Expired);
        await Aio.Sleep(0);
        Assert.False(cm.Expired);
    });

    [Fact] // a timeout that expired and whose TimeoutError was caught by an outer body: outer goes on; cancelling() back to 0
    public void Timeout_InnerTimeoutCaughtInsideOuter_OuterNotExpired() => AioTest.Run(async () =>
    {
        TimeoutScope? outer = null;
        int r = await Aio.Timeout(10, async o =>
        {
            outer = o;
            try { await Aio.Timeout(1, async () => await Aio.Sleep(5)); }
            catch (TimeoutException) { }
            await Aio.Sleep(1);
            return Aio.CurrentTask!.Cancelling();
        });
        Assert.Equal(0, r);
        Assert.False(outer!.Expired);
        Assert.Equal(2, Now, 6);
    });

    // ---- sleep(0) ----

    [Fact] // a timer due now runs in the same iteration as the sleep(0) resumption, after it (timers are appended to _ready)
    public void Sleep0_TimerDueNow_RunsAfterTheResumeInTheSameIteration() => AioTest.Run(async () =>
    {
        var order = new List<string>();
        Loop.CallLater(0, () => order.Add("timer"));
        await Aio.Sleep(0);
        order.Add("resumed");
        await Aio.Sleep(0);
        Assert.Equal(["resumed", "timer"], order);
    });

    [Fact] // cancel() queued before the task's sleep(0) resumption: _must_cancel is set, __step throws at the sleep(0)
    public void Sleep0_CancelArrivesBeforeTheResume_ThrowsAtTheSleep() => AioTest.Run(async () =>
    {
        var log = new List<string>();
        AioTask? t = null;
        t = Aio.CreateTask(async () =>
        {
            Loop.CallSoon(() => t!.Cancel("zero"));
            try { await Aio.Sleep(0); log.Add("resumed"); }
            catch (CancelledError e) { log.Add("cancelled " + e.CancelMessage); throw; }
        });
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(["cancelled zero"], log);
    });

    [Fact] // sleep(0) N times = N iterations, counted by a callback that re-schedules itself each iteration
    public void Sleep0_NTimes_IsNIterations() => AioTest.Run(async () =>
    {
        int iterations = 0;
        bool stop = false;
        void Tick() { if (stop) return; iterations++; Loop.CallSoon(Tick); }
        Loop.CallSoon(Tick);
        for (int i = 0; i < 5; i++) await Aio.Sleep(0);
        stop = true;
        Assert.Equal(5, iterations);
    });

    // ---- token ----

    [Fact] // the token of a task cancelled while pending in a timeout body is the task's (signalled), the timeout's token too
    public void Token_TaskCancelledInsideTimeoutBody_BothTokensSignalled() => AioTest.Run(async () =>
    {
        CancellationToken inner = default, task = default;
        var t = Aio.CreateTask(() => Aio.Timeout(10, async () =>
        {
            inner = Aio.CancellationToken;
            task = Aio.CurrentTask!.CancellationToken;
            await Aio.Sleep(100);
        }));
        await Aio.Sleep(1);
        Assert.False(inner.IsCancellationRequested);
        t.Cancel();
        Assert.True(task.IsCancellationRequested);
        Assert.True(inner.IsCancellationRequested);
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
    });

    // ---- batch 2 ----

    static async Coroutine<int> CoSleepThen(double seconds, int value) { await Aio.Sleep(seconds); return value; }

    static async Coroutine<int> CoOuter(List<string?> seen)
    {
        try { return await CoSleepThen(10, 1); }
        catch (CancelledError e) { seen.Add(e.CancelMessage); throw; }
    }

    [Fact] // Coroutine-based task: a cancel reaches a nested coroutine's sleep; the message comes out; the task ends cancelled
    public void Coroutine_TaskCancelledInNestedCoroutine_MessagePropagates() => AioTest.Run(async () =>
    {
        var seen = new List<string?>();
        var t = Aio.CreateTask(() => CoOuter(seen));
        await Aio.Sleep(1);
        t.Cancel("co");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("co", e.CancelMessage);
        Assert.Equal(["co"], seen);
        Assert.True(t.IsCancelled);
    });

    static async Coroutine<int> CoSelfCancelThenReturn()
    {
        await Aio.Sleep(0);
        Aio.CurrentTask!.Cancel("late");
        return 1;
    }

    [Fact] // Coroutine-based task cancelled right before it returns ends cancelled (tasks.py __step: _must_cancel at StopIteration)
    public void Coroutine_SelfCancelRightBeforeReturn_EndsCancelled() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(CoSelfCancelThenReturn);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.IsCancelled);
        Assert.Equal("late", e.CancelMessage);
    });

    static async Coroutine<int> CoSwallow()
    {
        try { await Aio.Sleep(10); } catch (CancelledError) { }
        await Aio.Sleep(1);
        return Aio.CurrentTask!.Cancelling();
    }

    [Fact] // Coroutine-based task that swallows the cancel goes on; cancelling() counts it
    public void Coroutine_TaskSwallowsCancel_GoesOn() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(CoSwallow);
        await Aio.Sleep(1);
        t.Cancel();
        Assert.Equal(1, await t);
        Assert.False(t.IsCancelled);
    });

    [Fact] // Coroutine-based task cancelled before its first step never runs
    public void Coroutine_CancelBeforeStart_NeverRuns() => AioTest.Run(async () =>
    {
        bool ran = false;
        var t = Aio.CreateTask(async Coroutine<int> () => { ran = true; await Aio.Sleep(1); return 1; });
        t.Cancel("pre");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.False(ran);
        Assert.Equal("pre", e.CancelMessage);
    });

    [Fact] // nested: the inner expired and its body is cleaning up when the outer expires: the inner lets the CancelledError
           // through (uncancel() > its count at entry), the outer turns it into TimeoutError
    public void Timeout_OuterExpiresDuringInnerExpiredCleanup_OuterTimesOutInnerPassesThrough() => AioTest.Run(async () =>
    {
        bool innerConverted = false;
        TimeoutScope? outer = null, inner = null;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(2, async o =>
        {
            outer = o;
            try
            {
                await Aio.Timeout(1, async i =>
                {
                    inner = i;
                    try { await Aio.Sleep(10); }
                    catch (CancelledError) { await Aio.Sleep(10); } // cleanup, interrupted by the outer at t=2
                });
            }
            catch (TimeoutException) { innerConverted = true; throw; }
        }));
        Assert.False(innerConverted);
        Assert.True(inner!.Expired);
        Assert.True(outer!.Expired);
        Assert.Equal(2, Now, 6);
        Assert.Equal(0, Aio.CurrentTask!.Cancelling());
    });

    [Fact] // tasks.py: inner done, outer's __wakeup queued; a cancel in between finds _fut_waiter done -> _must_cancel ->
           // CancelledError thrown at the await; the result is not delivered
    public void Task_AwaitedTaskDoneButAwaiterNotResumed_CancelWinsOverTheResult() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(async () => { await Aio.Sleep(1); return 5; });
        AioTask<int>? outer = null;
        inner.AddDoneCallback(_ => outer!.Cancel("between"));   // registered before outer awaits: runs before outer resumes
        outer = Aio.CreateTask(async () => await inner);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.Equal("between", e.CancelMessage);
        Assert.Equal(5, inner.Result);
        Assert.True(outer.IsCancelled);
    });

    [Fact] // wait_for(task that already failed, 5): the exception at once, no wait
    public void WaitFor_TaskAlreadyFailed_ThrowsAtOnce() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask<int>(async () => { await Aio.Sleep(0); throw new ArgumentException("bad"); });
        await Assert.ThrowsAsync<ArgumentException>(async () => await t);
        await Assert.ThrowsAsync<ArgumentException>(() => Aio.WaitFor(t, 5));
        Assert.Equal(0, Now, 6);
    });

    [Fact] // the timeout cancels the awaited future itself (Task.cancel -> _fut_waiter.cancel())
    public void Timeout_ExpiryCancelsTheAwaitedFuture() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture<int>();
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () => { await f; }));
        Assert.True(f.IsCancelled);
    });

    [Fact] // eager first step cancels itself then awaits a sleep: the sleep is cancelled, the task ends on a later iteration
    public void Eager_SelfCancelThenSleep_EndsCancelledLater() => AioTest.Run(async () =>
    {
        bool after = false;
        var t = Aio.CreateTask(async () =>
        {
            Aio.CurrentTask!.Cancel("e");
            await Aio.Sleep(5);
            after = true;
        });
        Assert.False(t.IsDone);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("e", e.CancelMessage);
        Assert.False(after);
        Assert.Equal(0, Now, 6);
    }, Eager);

    [Fact] // a task's done callback added from inside the task runs once it is done, with the task
    public void Task_DoneCallbackAddedFromInside_RunsAfterDone() => AioTest.Run(async () =>
    {
        Future? got = null;
        bool doneThen = false;
        var t = Aio.CreateTask(async () =>
        {
            Aio.CurrentTask!.AddDoneCallback(f => { got = f; doneThen = f.IsDone; });
            await Aio.Sleep(1);
            return 2;
        });
        await t;
        await Aio.Sleep(0);
        Assert.Same(t, got);
        Assert.True(doneThen);
    });

    [Fact] // wait_for with a positive timeout on a task not started yet: the task runs and its result comes back
    public void WaitFor_TaskNotStartedPositiveTimeout_Runs() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(0.5); return 4; });
        Assert.Equal(4, await Aio.WaitFor(t, 1));
        Assert.Equal(0.5, Now, 6);
    });

    [Fact] // sleep(0) then cancel of the sleeping task from another task in the same iteration: CancelledError at sleep(0)
    public void Sleep0_TaskCancelledByAnotherTaskWhileYielding_Throws() => AioTest.Run(async () =>
    {
        int steps = 0;
        var t = Aio.CreateTask(async () => { while (true) { steps++; await Aio.Sleep(0); } });
        await Aio.Sleep(0);   // t has run one step and yields
        await Aio.Sleep(0);
        int before = steps;
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(before, steps); // not one more step after the cancel
    });

    // ---- batch 3 ----

    [Fact] // futures.py set_exception accepts a CancelledError instance: the future is finished (not cancelled); awaiting raises it
    public void Future_SetExceptionWithCancelledError_IsFaultedNotCancelled() => AioTest.Run(async () =>
    {
        var f = Loop.CreateFuture<int>();
        f.SetException(new CancelledError("as exception"));
        Assert.False(f.IsCancelled);
        Assert.IsType<CancelledError>(f.GetException());
        var t = Aio.CreateTask(async () => await f);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("as exception", e.CancelMessage);
        Assert.True(t.IsCancelled);
    });

    [Fact] // wait_for(current_task(), ...) -> the await of itself is refused (RuntimeError in asyncio)
    public void WaitFor_TheCurrentTaskItself_Throws() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask<int>(async () =>
        {
            var me = (AioTask<int>)Aio.CurrentTask!;
            await Assert.ThrowsAsync<InvalidOperationException>(() => Aio.WaitFor(me, 1));
            return 1;
        });
        Assert.Equal(1, await t);
    });
}
