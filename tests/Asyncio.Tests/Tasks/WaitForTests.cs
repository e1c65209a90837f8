namespace Asyncio.Tests.Tasks;

using static Asyncio.Tests.Coroutines;

/// <summary>asyncio's <c>wait_for()</c>: timeout cancels and waits, swallowed cancellation, outer cancellation.</summary>
public class WaitForTests
{
    static double Now => Aio.GetRunningLoop().Time();

    /// <summary>A task that sleeps until it is cancelled, then cleans up for <paramref name="cleanup"/> seconds and ends cancelled.</summary>
    static AioTask<int> SlowToCancel(double cleanup, Action? cleanedUp = null) => Aio.CreateTask(async () =>
    {
        try { await Aio.Sleep(10); }
        catch (CancelledError)
        {
            await Aio.Sleep(cleanup);
            cleanedUp?.Invoke();
            throw;
        }
        return 1;
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_result")]
    public void WaitFor_DoneBeforeTimeout_ReturnsResult() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => After(1, 7));
        double t0 = Now;
        Assert.Equal(7, await Aio.WaitFor(t, 5));
        Assert.Equal(1, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_waits_for_task_cancellation")]
    public void WaitFor_Timeout_CancelsTheTaskAndWaitsForItBeforeThrowing() => AioTest.Run(async () =>
    {
        bool cleanedUp = false;
        var t = SlowToCancel(2, () => cleanedUp = true);
        double t0 = Now;
        var e = await Assert.ThrowsAsync<TimeoutException>(async () => await Aio.WaitFor(t, 1));
        Assert.Equal(3, Now - t0, 6);
        Assert.True(cleanedUp);
        Assert.True(t.IsCancelled);
        Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_cancel_suppressed")]
    public void WaitFor_TaskSwallowsCancellationAndReturns_ReturnsItsValue() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { return 42; }
            return 1;
        });
        double t0 = Now;
        Assert.Equal(42, await Aio.WaitFor(t, 1));
        Assert.Equal(1, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_timeout_none")]
    public void WaitFor_NullTimeout_WaitsForever() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => After(100_000, 3));
        Assert.Equal(3, await Aio.WaitFor(t, null));
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_with_zero_timeout_and_done_future")]
    public void WaitFor_ZeroTimeoutAndDoneFuture_ReturnsResult() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.SetResult(5);
        Assert.Equal(5, await Aio.WaitFor(f, 0));
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_timeout_less_then_0_or_0")]
    public void WaitFor_ZeroTimeoutAndPendingFuture_CancelsItAndThrows() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(async () => await Aio.WaitFor(f, 0));
        Assert.True(f.IsCancelled);
        Assert.Equal(0, Now - t0, 6);
    });

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [Trait("asyncio", "wait_for: a timeout of 0 or less cancels the task at once (tasks._cancel_and_wait)")]
    public void WaitFor_ZeroOrNegativeTimeoutAndATaskNotStartedYet_CancelsItBeforeItRuns(double timeout) => AioTest.Run(async () =>
    {
        bool ran = false;
        var t = Aio.CreateTask(() => { ran = true; return Task.FromResult(1); });
        await Assert.ThrowsAsync<TimeoutException>(async () => await Aio.WaitFor(t, timeout));
        Assert.True(t.IsCancelled);
        Assert.False(ran);
    });

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [Trait("asyncio", "test_waitfor: test_wait_for_timeout_less_then_0_or_0, test_wait_for_waits_for_task_cancellation_w_timeout_0")]
    public void WaitFor_ZeroOrNegativeTimeoutAndARunningTask_CancelsItAndWaitsForItsCleanup(double timeout) => AioTest.Run(async () =>
    {
        bool cleanedUp = false;
        var t = SlowToCancel(2, () => cleanedUp = true);
        await Aio.Sleep(1);
        double t0 = Now;
        var e = await Assert.ThrowsAsync<TimeoutException>(async () => await Aio.WaitFor(t, timeout));
        Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
        Assert.True(cleanedUp);
        Assert.True(t.IsCancelled);
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "wait_for: with a timeout of 0 the caller's own cancellation is not turned into a timeout")]
    public void WaitFor_ZeroTimeoutAndCallerCancelledWhileTheTaskCleansUp_ThrowsCancelledError() => AioTest.Run(async () =>
    {
        var inner = SlowToCancel(5);
        await Aio.Sleep(1);
        var outer = Aio.CreateTask(async () => await Aio.WaitFor(inner, 0));
        await Aio.Sleep(1);
        outer.Cancel("outer");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.Equal("outer", e.CancelMessage);
        Assert.True(outer.IsCancelled);
    });

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [Trait("asyncio", "test_waitfor: test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started")]
    public void WaitFor_ZeroOrNegativeTimeoutAndACoroutineFunction_NeverStartsIt(double timeout) => AioTest.Run(async () =>
    {
        bool started = false;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => { started = true; return Task.FromResult(1); }, timeout));
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => { started = true; return Task.CompletedTask; }, TimeSpan.FromSeconds(timeout)));
        Assert.False(started);
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: WaitForShieldTests.test_zero_timeout")]
    public void WaitFor_ShieldedTaskAndZeroTimeout_ThrowsAndTheTaskRunsOn() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => After(1, 5));
        var shielded = Aio.Shield(t);
        await Assert.ThrowsAsync<TimeoutException>(async () => await Aio.WaitFor(shielded, 0));
        Assert.True(shielded.IsCancelled);
        Assert.False(t.IsDone);
        Assert.Equal(5, await t);
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_cancel_suppressed (a coroutine)")]
    public void WaitFor_CoroutineSwallowsTheTimeoutsCancellation_ReturnsItsValue() => AioTest.Run(async () =>
    {
        double t0 = Now;
        int r = await Aio.WaitFor(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { return 42; }
            return 1;
        }, 1);
        Assert.Equal(42, r);
        Assert.Equal(1, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_reraises_exception_during_cancellation")]
    public void WaitFor_TaskFailsWhileCancelledForTheTimeout_ThrowsItsException() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            finally { throw new FormatException("cleanup failed"); }
        });
        var e = await Assert.ThrowsAsync<FormatException>(async () => await Aio.WaitFor(t, 1));
        Assert.Equal("cleanup failed", e.Message);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_cancel_awaited_task (bpo-34872), through wait_for")]
    public void WaitFor_CallerCancellationPendingWhenItStarts_CancelsTheTask() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(() => After(10, 1));
        var outer = Aio.CreateTask(async () =>
        {
            Aio.CurrentTask!.Cancel("self");   // nothing pending: kept for the next await
            return await Aio.WaitFor(inner, 5);
        });
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.Equal("self", e.CancelMessage);
        Assert.True(outer.IsCancelled);
        Assert.True(inner.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_cancel_wait_for")]
    public void WaitFor_CallerCancelled_PropagatesCancelledErrorAndCancelsTheTask() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(() => After(10, 1));
        var outer = Aio.CreateTask(async () => await Aio.WaitFor(inner, 5));
        await Aio.Sleep(1);
        outer.Cancel("outer");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.Equal("outer", e.CancelMessage);
        Assert.True(outer.IsCancelled);
        Assert.True(inner.IsCancelled);
    });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    [Trait("asyncio", "test_waitfor: test_cancel_at_end / gh-86296: cancellation at the moment of the timeout is not lost")]
    public void WaitFor_CallerCancelledAtTheTimeout_PropagatesCancelledError(bool cancelFirst) => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var inner = Aio.CreateTask(() => After(10, 1));
        AioTask<int>? outer = null;
        if (cancelFirst) loop.CallLater(1, () => outer!.Cancel());
        outer = Aio.CreateTask(async () => await Aio.WaitFor(inner, 1));
        if (!cancelFirst) loop.CallLater(1, () => outer.Cancel());
        await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.True(outer.IsCancelled);
        Assert.True(inner.IsCancelled);
    });

    [Fact]
    public void WaitFor_CoroutineFunction_TimeoutCancelsItsAwaits() => AioTest.Run(async () =>
    {
        bool cancelled = false;
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(async () => await Aio.WaitFor(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { cancelled = true; throw; }
            return 1;
        }, 1));
        Assert.True(cancelled);
        Assert.Equal(1, Now - t0, 6);
        Assert.Equal(0, Aio.CurrentTask!.Cancelling());
    });

    [Fact]
    public void WaitFor_CoroutineFunctionDoneInTime_ReturnsResult() => AioTest.Run(async () =>
    {
        Assert.Equal(4, await Aio.WaitFor(() => After(1, 4), TimeSpan.FromSeconds(2)));
        await Aio.WaitFor(() => Aio.Sleep(1).AsTask(), 2);
    });

    [Fact]
    public void WaitFor_RunningCoroutineTimesOut_ThrowsAndLeavesItRunning() => AioTest.Run(async () =>
    {
        var hot = After(5, 9);
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(async () => await Aio.WaitFor(hot, 1));
        Assert.Equal(1, Now - t0, 6);
        Assert.False(hot.IsCompleted);
        Assert.Equal(9, await hot);
        Assert.Equal(5, Now - t0, 6);
    });

    [Fact]
    public void WaitFor_RunningCoroutineDoneInTime_ReturnsResult() => AioTest.Run(async () =>
    {
        double t0 = Now;
        Assert.Equal(9, await Aio.WaitFor(After(1, 9), 5));
        Assert.Equal(1, Now - t0, 6);
        Task done = Task.CompletedTask;
        await Aio.WaitFor(done, 0);
    });

    [Fact]
    [Trait("asyncio", "test_waitfor: test_wait_for_raises_exception")]
    public void WaitFor_TaskFails_ThrowsItsException() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask<int>(async () => { await Aio.Sleep(1); throw new InvalidOperationException("boom"); });
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Aio.WaitFor(t, 5));
        Assert.Equal("boom", e.Message);
    });

    [Fact]
    public void WaitFor_UntypedFutureTimesOut_CancelsIt() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture();
        await Assert.ThrowsAsync<TimeoutException>(async () => await Aio.WaitFor(f, 1));
        Assert.True(f.IsCancelled);
    });

    // ---- a function returning a ValueTask: a stream read, a queue get ----

    [Fact]
    public void WaitFor_FunctionReturningAValueTask_OnTimeoutTheOperationIsCancelledAndLosesNothing() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => q.GetAsync(), 1));
        Assert.Equal(0, q.GetterCount);          // the get left the queue: the next item is not lost to it
        q.PutNowait(7);
        Assert.Equal(7, await Aio.WaitFor(() => q.GetAsync(), TimeSpan.FromSeconds(1)));
        q.PutNowait(8);
        Assert.Equal(8, await Aio.WaitFor(async () => await q.GetAsync(), 1));   // an async lambda still compiles (the Task form)
    });

    [Fact]
    public void WaitFor_FunctionReturningANonGenericValueTask_OnTimeoutNothingIsPut() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => q.PutAsync(2), 1));
        Assert.Equal(1, q.Count);
        Assert.Equal(0, q.PutterCount);
        q.GetNowait();
        await Aio.WaitFor(() => q.PutAsync(3), TimeSpan.FromSeconds(1));
        Assert.Equal(3, q.GetNowait());
    });

    [Fact]
    public void WaitFor_FunctionReturningAValueTask_ZeroTimeout_IsNotCalled() => AioTest.Run(async () =>
    {
        int calls = 0;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => { calls++; return new ValueTask<int>(1); }, 0));
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => { calls++; return ValueTask.CompletedTask; }, 0));
        Assert.Equal(0, calls);
        Assert.Throws<ArgumentNullException>("operation", () => { _ = Aio.WaitFor((Func<ValueTask<int>>)null!, 1); });
    });

    [Fact]
    public void Timeout_BodyReturningAValueTask_CancelsItAndThrowsOrReturnsItsResult() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        double start = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(2, () => q.GetAsync()));
        Assert.Equal(2, Now - start, 6);
        Assert.Equal(0, q.GetterCount);
        q.PutNowait(5);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(TimeSpan.FromSeconds(1), () => q.PutAsync(6)));
        Assert.Equal(0, q.PutterCount);
        Assert.Equal(5, await Aio.Timeout(TimeSpan.FromSeconds(1), () => q.GetAsync()));
        await Aio.Timeout(1, () => q.PutAsync(6));
        Assert.Equal(6, q.GetNowait());
    });

    // ---- a function returning a Coroutine ----

    static async Coroutine<int> CoroutineSleeping(double seconds, List<double> cancelledAt)
    {
        try { await Aio.Sleep(seconds); return 1; }
        catch (CancelledError) { cancelledAt.Add(Now); throw; }
    }

    [Fact]
    public void WaitFor_FunctionReturningACoroutine_OnTimeoutItsAwaitsAreCancelled() => AioTest.Run(async () =>
    {
        var log = new List<double>();
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => CoroutineSleeping(10, log), 1));
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(async () => { await CoroutineSleeping(10, log); }, TimeSpan.FromSeconds(1)));
        Assert.Equal(2, log.Count);
        Assert.Equal(t0 + 1, log[0], 6);
        Assert.Equal(t0 + 2, log[1], 6);
        Assert.Equal(1, await Aio.WaitFor(() => CoroutineSleeping(1, log), 5));
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, () => CoroutineSleeping(10, log)));
        Assert.Equal(1, await Aio.Timeout(TimeSpan.FromSeconds(5), () => CoroutineSleeping(1, log)));
        Assert.Equal(3, log.Count);
    });

    [Fact]
    public void TimeoutAt_BodyWithoutTheScope_ExpiresAtTheDeadline() => AioTest.Run(async () =>
    {
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.TimeoutAt(t0 + 2, () => Aio.Sleep(20).AsTask()));
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal(7, await Aio.TimeoutAt(Now + 5, async () => { await Aio.Sleep(1); return 7; }));
    });
}
