namespace Asyncio.Tests.Tasks;

/// <summary>asyncio's <c>timeout()</c>/<c>timeout_at()</c>: expiry, rescheduling, nesting, outer cancellation.</summary>
public class TimeoutTests
{
    static double Now => Aio.GetRunningLoop().Time();

    // ---- expiry ----

    [Fact]
    [Trait("asyncio", "test_timeouts: test_timeout_basic, test_timeout_exception_cause")]
    public void Timeout_Expires_ThrowsTimeoutExceptionCausedByTheCancellation() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        double t0 = Now;
        var e = await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async t =>
        {
            cm = t;
            await Aio.Sleep(10);
        }));
        Assert.Equal(1, Now - t0, 6);
        Assert.True(cm!.Expired);
        Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_timeout_at_basic")]
    public void TimeoutAt_Expires_ThrowsAndWhenIsTheDeadline() => AioTest.Run(async () =>
    {
        double deadline = Now + 2;
        TimeoutScope? cm = null;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.TimeoutAt(deadline, async t =>
        {
            cm = t;
            await Aio.Sleep(10);
        }));
        Assert.Equal(deadline, Now, 6);
        Assert.True(cm!.Expired);
        Assert.Equal(deadline, cm.When()!.Value, 6);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_waiter_cancelled")]
    public void Timeout_Expires_BodySeesCancelledError() => AioTest.Run(async () =>
    {
        bool cancelled = false;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { cancelled = true; throw; }
        }));
        Assert.True(cancelled);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_timeout_not_called")]
    public void Timeout_BodyEndsInTime_ReturnsItsResult() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        int r = await Aio.Timeout(10, async t =>
        {
            cm = t;
            await Aio.Sleep(1);
            return 5;
        });
        Assert.Equal(5, r);
        Assert.False(cm!.Expired);
        Assert.True(cm.When() > Now);
        await Aio.Sleep(20); // the deadline passing later does nothing
        Assert.False(cm.Expired);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_timeout_disabled, test_timeout_at_disabled")]
    public void Timeout_Null_NeverExpires() => AioTest.Run(async () =>
    {
        await Aio.Timeout(null, async t =>
        {
            Assert.Null(t.When());
            await Aio.Sleep(100_000);
            Assert.False(t.Expired);
        });
        Assert.Equal(7, await Aio.TimeoutAt(null, async t => { await Aio.Sleep(1); return 7; }));
    });

    [Theory]
    [InlineData(0.0)]
    [InlineData(-11.0)]
    [Trait("asyncio", "test_timeouts: test_timeout_zero_sleep_zero, test_timeout_in_the_past_sleep_zero")]
    public void Timeout_ZeroOrNegative_ExpiresAtTheFirstAwait(double delay) => AioTest.Run(async () =>
    {
        double t0 = Now;
        TimeoutScope? cm = null;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(delay, async t =>
        {
            cm = t;
            await Aio.Sleep(0);
            await Aio.Sleep(10);
        }));
        Assert.Equal(t0, Now, 6);
        Assert.True(cm!.Expired);
        Assert.True(cm.When() <= t0);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_foreign_exception_passed")]
    public void Timeout_BodyThrows_ExceptionPassesUnchanged() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        await Assert.ThrowsAsync<KeyNotFoundException>(() => Aio.Timeout(1, t =>
        {
            cm = t;
            throw new KeyNotFoundException();
        }));
        Assert.False(cm!.Expired);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_foreign_exception_on_timeout")]
    public void Timeout_CleanupThrowsAfterExpiry_ItsExceptionPasses() => AioTest.Run(async () =>
    {
        await Assert.ThrowsAsync<DivideByZeroException>(() => Aio.Timeout(1, async () =>
        {
            try { await Aio.Sleep(10); }
            finally { throw new DivideByZeroException(); }
        }));
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_outer_task_is_not_cancelled")]
    public void Timeout_Expired_TaskIsNotLeftCancelled() => AioTest.Run(async () =>
    {
        var task = Aio.CreateTask(async () =>
        {
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, () => Aio.Sleep(10).AsTask()));
            await Aio.Sleep(1); // not interrupted
            return Aio.CurrentTask!.Cancelling();
        });
        Assert.Equal(0, await task);
        Assert.False(task.IsCancelled);
        Assert.False(task.CancellationToken.IsCancellationRequested);
    });

    [Fact]
    public void Timeout_Expires_CancelsTheBodysTokenAndInterruptsForeignAwaits() => AioTest.Run(async () =>
    {
        var taskToken = Aio.CancellationToken;
        CancellationToken bodyToken = default;
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () =>
        {
            bodyToken = Aio.CancellationToken;
            await Task.Delay(TimeSpan.FromHours(1), bodyToken);
        }));
        Assert.Equal(1, Now - t0, 6);
        Assert.True(bodyToken.IsCancellationRequested);
        Assert.False(taskToken.IsCancellationRequested);
    });

    [Fact]
    public void Timeout_TimeSpanDelay_BehavesAsSeconds() => AioTest.Run(async () =>
    {
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(TimeSpan.FromMilliseconds(1500), () => Aio.Sleep(10).AsTask()));
        Assert.Equal(1.5, Now - t0, 6);
        Assert.Equal(3, await Aio.Timeout(TimeSpan.FromSeconds(5), () => Aio.Sleep(1, 3)));
        await Aio.Timeout(TimeSpan.FromSeconds(5), t => { Assert.Equal(Now + 5, t.When()!.Value, 6); return Task.CompletedTask; });
    });

    [Fact]
    public void Timeout_InfiniteTimeSpan_MeansNoDeadline() => AioTest.Run(async () =>
    {
        await Aio.Timeout(System.Threading.Timeout.InfiniteTimeSpan, async t =>
        {
            Assert.Null(t.When());
            await Aio.Sleep(100);
        });
        var task = Aio.CreateTask(() => Aio.Sleep(100, 1));
        Assert.Equal(1, await Aio.WaitFor(task, System.Threading.Timeout.InfiniteTimeSpan));
        var (done, _) = await Aio.Wait([Aio.CreateTask(() => Aio.Sleep(100, 2))], System.Threading.Timeout.InfiniteTimeSpan);
        Assert.True(Assert.Single(done).IsDone);
    });

    [Fact]
    [Trait("asyncio", "timeout(math.inf) and reschedule(math.inf): never expire, when() is inf")]
    public void Timeout_InfiniteDelay_WhenIsInfinityAndItNeverExpires() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        Assert.Equal(1, await Aio.Timeout(double.PositiveInfinity, async t => { cm = t; await Aio.Sleep(1000); return 1; }));
        Assert.False(cm!.Expired);
        Assert.Equal(double.PositiveInfinity, cm.When());
        await Aio.Timeout(1, async t =>
        {
            t.Reschedule(double.PositiveInfinity);
            Assert.Equal(double.PositiveInfinity, t.When());
            await Aio.Sleep(5);
        });
    });

    [Fact]
    public void Timeout_NaNDelay_Throws() => AioTest.Run(() =>
    {
        Assert.Throws<ArgumentException>(() => { _ = Aio.Timeout(double.NaN, () => Task.CompletedTask); });
        Assert.Throws<ArgumentException>(() => { _ = Aio.TimeoutAt(double.NaN, _ => Task.CompletedTask); });
        return Task.CompletedTask;
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_repr_active, test_repr_expired, test_repr_finished, test_repr_disabled")]
    public void ToString_ShowsTheState() => AioTest.Run(async () =>
    {
        TimeoutScope? expired = null, finished = null;
        await Aio.Timeout(null, t => { Assert.Equal("<TimeoutScope [active] when=None>", t.ToString()); return Task.CompletedTask; });
        await Aio.Timeout(10, t =>
        {
            Assert.Matches(@"^<TimeoutScope \[active\] when=\d+(\.\d+)?>$", t.ToString());
            finished = t;
            return Task.CompletedTask;
        });
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, t => { expired = t; return Aio.Sleep(5).AsTask(); }));
        Assert.Equal("<TimeoutScope [finished]>", finished!.ToString());
        Assert.Equal("<TimeoutScope [expired]>", expired!.ToString());
    });

    // ---- outer cancellation ----

    [Fact]
    [Trait("asyncio", "test_timeouts: test_foreign_cancel_doesnt_timeout_if_not_expired")]
    public void Timeout_TaskCancelledBeforeExpiry_PropagatesCancelledError() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        var task = Aio.CreateTask(() => Aio.Timeout(10, async t =>
        {
            cm = t;
            await Aio.Sleep(100);
        }));
        await Aio.Sleep(1);
        task.Cancel("outer");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.Equal("outer", e.CancelMessage);
        Assert.True(task.IsCancelled);
        Assert.False(cm!.Expired);
    });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    [Trait("asyncio", "an outer cancellation at the moment of expiry is never swallowed")]
    public void Timeout_TaskCancelledAtTheMomentOfExpiry_PropagatesCancelledError(bool cancelFirst) => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        AioTask? task = null;
        if (cancelFirst) loop.CallLater(1, () => task!.Cancel());
        task = Aio.CreateTask(async () =>
        {
            if (!cancelFirst) loop.CallLater(1, () => task!.Cancel());
            await Aio.Timeout(1, () => Aio.Sleep(10).AsTask());
        });
        await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.True(task.IsCancelled);
    });

    [Fact]
    public void Timeout_TaskCancelledAtTheMomentOfExpiry_DeliversOneCancelledError() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var log = new List<string>();
        AioTask? task = null;
        task = Aio.CreateTask(async () =>
        {
            try
            {
                await Aio.Timeout(1, async () =>
                {
                    loop.CallLater(1, () => task!.Cancel()); // same iteration as the expiry, after it
                    await Aio.Sleep(10);
                });
            }
            catch (Exception e) { log.Add(e.GetType().Name); }
            try { await Aio.Sleep(1); log.Add("slept"); }
            catch (CancelledError) { log.Add("cancelled again"); }
        });
        await task;
        Assert.Equal(["CancelledError", "slept"], log);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_cancel_in_timeout_after_cancellation")]
    public void Timeout_TaskCancelledInsideBody_PropagatesCancelledError() => AioTest.Run(async () =>
    {
        await Assert.ThrowsAsync<CancelledError>(() => Aio.Timeout(1, async () =>
        {
            Aio.CurrentTask!.Cancel();
            await Aio.Sleep(2);
        }));
        Aio.CurrentTask!.Uncancel();
    });

    // ---- an await the scope cannot interrupt: a .NET Task not given the task's token ----

    [Fact]
    public void Timeout_ExpiresDuringADotNetAwait_ThrowsOnceTheBodyReturns() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var tcs = new TaskCompletionSource();
        loop.CallLater(3, () => tcs.SetResult());
        double t0 = Now;
        bool returned = false;
        var e = await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () =>
        {
            await tcs.Task;     // not a loop await: the cancellation at 1 s waits for the next one
            returned = true;
        }));
        Assert.True(returned);
        Assert.Equal(3, Now - t0, 6);
        Assert.IsType<CancelledError>(e.InnerException);
        await Aio.Sleep(0);     // nothing left over: the task's own awaits are not cancelled
        Assert.Equal(0, Aio.CurrentTask!.Cancelling());
    });

    [Fact]
    public void WaitFor_FunctionExpiresDuringADotNetAwait_ThrowsOnceItReturns() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var tcs = new TaskCompletionSource<int>();
        loop.CallLater(3, () => tcs.SetResult(1));
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => tcs.Task, 1));
    });

    [Fact]
    public void Timeout_ExpiresDuringADotNetAwait_BodyThatCatchesItAtItsNextAwaitReturns() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var tcs = new TaskCompletionSource();
        loop.CallLater(3, () => tcs.SetResult());
        bool caught = false;
        await Aio.Timeout(1, async t =>
        {
            await tcs.Task;
            try { await Aio.Sleep(0); }           // the first loop await takes the cancellation
            catch (CancelledError) { caught = true; }
            Assert.True(t.Expired);
        });
        Assert.True(caught);   // asyncio too: a body that swallows the cancellation ends the timeout normally
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_timeout_after_cancellation")]
    public void Timeout_AfterASwallowedCancellation_StillTimesOut() => AioTest.Run(async () =>
    {
        try
        {
            Aio.CurrentTask!.Cancel();
            await Aio.Sleep(1);
        }
        catch (CancelledError) { }
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(0, () => Aio.Sleep(1).AsTask()));
        Aio.CurrentTask!.Uncancel();
    });

    [Theory]
    [InlineData(true, typeof(TimeoutException))]
    [InlineData(false, typeof(CancelledError))]
    [Trait("asyncio", "timeouts: an outer cancellation swallowed counts until it is uncancelled")]
    public void Timeout_OuterCancellationSwallowed_ExpiryRaisesTimeoutOnlyIfUncancelled(bool uncancel, Type expected) => AioTest.Run(async () =>
    {
        var task = Aio.CreateTask(async () =>
        {
            await Aio.Timeout(10, async () =>
            {
                try { await Aio.Sleep(5); }
                catch (CancelledError) { if (uncancel) Aio.CurrentTask!.Uncancel(); }
                await Aio.Sleep(100);
            });
        });
        await Aio.Sleep(1);
        task.Cancel();
        await Assert.ThrowsAsync(expected, async () => await task);
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    [Trait("asyncio", "uncancel() withdraws a kept cancellation only at zero, and a timeout's own request counts until its exit")]
    public void Timeout_OuterExpiryKeptByAGroupInAnInnerTimeout_TheTasksUncancelToZeroDoesNotWithdrawIt(bool caughtInTheInnerTimeout) => AioTest.Run(async () =>
    {
        // The outer timeout expires inside a group in an inner timeout; a child's error wins and the group
        // keeps the expiry in the inner timeout's scope, which passes it out if the error leaves it. Either
        // way the task's own Cancel and Uncancel leave it: the next await is cancelled, the outer timeout raises.
        var me = Aio.CurrentTask!;
        var log = new List<string>();
        void CancelAndUncancel()
        {
            log.Add("group failed");
            me.Cancel();
            Assert.Equal(0, me.Uncancel());
        }
        double t0 = Now;
        var e = await Record.ExceptionAsync(() => Aio.Timeout(1, async () =>
        {
            try
            {
                await Aio.Timeout(100, async () =>
                {
                    try
                    {
                        await TaskGroup.Run(async tg =>
                        {
                            _ = tg.CreateTask(TaskGroupTests.FailInCleanup);
                            await Aio.Sleep(10);
                        });
                    }
                    catch (ExceptionGroup) when (caughtInTheInnerTimeout) { CancelAndUncancel(); }
                    await Aio.Sleep(5);
                    log.Add("slept inside");
                });
            }
            catch (ExceptionGroup) when (!caughtInTheInnerTimeout) { CancelAndUncancel(); }
            await Aio.Sleep(5);
            log.Add("slept");
        }));
        Assert.IsType<TimeoutException>(e);
        Assert.Equal(1, Now - t0, 6);
        Assert.Equal(["group failed"], log);
        Assert.Equal(0, me.Cancelling());
        await Aio.Sleep(1); // nothing left over
    });

    [Fact]
    [Trait("asyncio", "timeouts: __aexit__ runs as the body ends; a later cancel reaches the next await")]
    public void Timeout_TaskCancelledJustAfterTheBodyTimedOut_TimeoutThenOneCancelledError() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var log = new List<string>();
        AioTask? task = null;
        task = Aio.CreateTask(async () =>
        {
            try
            {
                await Aio.Timeout(1, async () =>
                {
                    // Runs in the expiry's iteration, after the timeout's own timer: the cancel lands in
                    // the next iteration, right after the body has ended with the timeout's cancellation.
                    loop.CallLater(1, () => loop.CallSoon(() => task!.Cancel()));
                    await Aio.Sleep(10);
                });
            }
            catch (Exception e) { log.Add(e.GetType().Name); }
            for (int i = 0; i < 2; i++)
            {
                try { await Aio.Sleep(1); log.Add("slept"); }
                catch (CancelledError) { log.Add("cancelled"); }
            }
        });
        await task;
        Assert.Equal(["TimeoutException", "cancelled", "slept"], log);
    });

    [Fact]
    public void Timeout_BodyEnds_CallerResumesInTheSameIteration() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        bool? resumedFirst = null;
        bool marker = false;
        await Aio.Timeout(5, async () =>
        {
            await Aio.Sleep(0);
            loop.CallSoon(() => { marker = true; });
        });
        resumedFirst = !marker;
        Assert.True(resumedFirst);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_timeout_taskgroup")]
    public void Timeout_ExpiresAndAGroupChildFailsInItsCleanup_ExceptionGroupPassesAndNothingIsLeftCancelled() => AioTest.Run(async () =>
    {
        double t0 = Now;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => Aio.Timeout(1, () => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(async () =>
            {
                try { await Aio.Sleep(2); }
                finally { throw new DivideByZeroException(); }
            });
            try { throw new FormatException(); }
            finally { await Aio.Sleep(5); }
        })));
        Assert.IsType<DivideByZeroException>(Assert.Single(eg.Exceptions));
        Assert.Equal(1, Now - t0, 6);
        await Aio.Sleep(1); // the timeout's own cancellation does not outlive it
        Assert.Equal(0, Aio.CurrentTask!.Cancelling());
    });

    [Fact]
    [Trait("asyncio", "taskgroups: errors win over an outside cancellation, which stays on the task (past an enclosing timeout)")]
    public void Timeout_GroupInsideKeepsAnOutsideCancellation_ItReachesTheNextAwaitAfterTheTimeout() => AioTest.Run(async () =>
    {
        var log = await TaskGroupTests.CancelledFromOutside(steps => Aio.Timeout(10, () => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(TaskGroupTests.FailInCleanup);
            await Aio.Sleep(10);
        })));
        Assert.Equal(["cleanup failed", "cancelled"], log);
    });

    // ---- nesting ----

    [Fact]
    [Trait("asyncio", "test_timeouts: test_nested_timeouts")]
    public void Timeout_NestedWithTheSameDeadline_OnlyTheOuterThrows() => AioTest.Run(async () =>
    {
        double deadline = Now + 1;
        bool innerCancelled = false;
        TimeoutScope? cm1 = null, cm2 = null;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.TimeoutAt(deadline, async t1 =>
        {
            cm1 = t1;
            try
            {
                await Aio.TimeoutAt(deadline, async t2 =>
                {
                    cm2 = t2;
                    await Aio.Sleep(10);
                });
            }
            catch (CancelledError)
            {
                innerCancelled = true;
                throw;
            }
        }));
        Assert.True(innerCancelled);
        Assert.True(cm1!.Expired);
        Assert.True(cm2!.Expired);
    });

    [Fact]
    public void Timeout_InnerExpires_OuterBodyCatchesTheTimeoutAndGoesOn() => AioTest.Run(async () =>
    {
        double t0 = Now;
        TimeoutScope? outer = null;
        int r = await Aio.Timeout(10, async t =>
        {
            outer = t;
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, () => Aio.Sleep(5).AsTask()));
            await Aio.Sleep(2); // not interrupted
            return 3;
        });
        Assert.Equal(3, r);
        Assert.False(outer!.Expired);
        Assert.Equal(3, Now - t0, 6);
    });

    [Fact]
    public void Timeout_OuterExpiresWhileInnerPending_OuterThrowsAndInnerDoesNot() => AioTest.Run(async () =>
    {
        TimeoutScope? inner = null;
        Exception? fromInner = null;
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () =>
        {
            try
            {
                await Aio.Timeout(10, async t =>
                {
                    inner = t;
                    await Aio.Sleep(100);
                });
            }
            catch (Exception e)
            {
                fromInner = e;
                throw;
            }
        }));
        Assert.Equal(1, Now - t0, 6);
        Assert.IsType<CancelledError>(fromInner);
        Assert.False(inner!.Expired);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_nested_timeouts_loop_busy")]
    public void Timeout_InnerExpiredAndCaught_OuterStillInterruptsLaterAwaits() => AioTest.Run(async () =>
    {
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(2, async () =>
        {
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, () => Aio.Sleep(10).AsTask()));
            await Aio.Sleep(10); // interrupted by the outer
        }));
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_nested_timeout_in_finally")]
    public void Timeout_InsideTheCleanupOfAnExpiredOne_ExpiresOnItsOwn() => AioTest.Run(async () =>
    {
        bool innerTimedOut = false;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () =>
        {
            try { await Aio.Sleep(10); }
            finally
            {
                try { await Aio.Timeout(1, () => Aio.Sleep(10).AsTask()); }
                catch (TimeoutException) { innerTimedOut = true; }
            }
        }));
        Assert.True(innerTimedOut);
    });

    // ---- reschedule ----

    [Fact]
    public void Reschedule_Later_DoesNotExpireAtTheOldDeadline() => AioTest.Run(async () =>
    {
        double t0 = Now;
        await Aio.Timeout(1, async t =>
        {
            t.Reschedule(Now + 10);
            Assert.Equal(t0 + 10, t.When()!.Value, 6);
            await Aio.Sleep(5);
        });
        Assert.Equal(5, Now - t0, 6);
    });

    [Fact]
    public void Reschedule_Earlier_ExpiresAtTheNewDeadline() => AioTest.Run(async () =>
    {
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(10, async t =>
        {
            t.Reschedule(Now + 1);
            await Aio.Sleep(5);
        }));
        Assert.Equal(1, Now - t0, 6);
    });

    [Fact]
    public void Reschedule_ToNull_NeverExpires() => AioTest.Run(async () =>
    {
        await Aio.Timeout(1, async t =>
        {
            t.Reschedule(null);
            Assert.Null(t.When());
            await Aio.Sleep(100);
            Assert.False(t.Expired);
        });
    });

    [Fact]
    public void Reschedule_ToThePast_ExpiresAtOnce() => AioTest.Run(async () =>
    {
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(10, async t =>
        {
            await Aio.Sleep(2);
            t.Reschedule(Now - 5);
            await Aio.Sleep(5);
        }));
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_reschedule")]
    public void Reschedule_FromAnotherTask_MovesTheDeadline() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var entered = loop.CreateFuture<TimeoutScope>();
        double deadline1 = Now + 10, deadline2 = deadline1 + 20;
        var task = Aio.CreateTask(() => Aio.TimeoutAt(deadline1, async t =>
        {
            entered.SetResult(t);
            await Aio.Sleep(50);
        }));
        var cm = await entered;
        Assert.Equal(deadline1, cm.When()!.Value, 6);
        cm.Reschedule(deadline2);
        Assert.Equal(deadline2, cm.When()!.Value, 6);
        cm.Reschedule(null);
        Assert.Null(cm.When());
        task.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.False(cm.Expired);
    });

    [Fact]
    [Trait("asyncio", "test_timeouts: test_timeout_finished")]
    public void Reschedule_AfterTheBodyEnded_Throws() => AioTest.Run(async () =>
    {
        TimeoutScope? cm = null;
        await Aio.Timeout(1, t => { cm = t; return Task.CompletedTask; });
        Assert.Throws<InvalidOperationException>(() => cm!.Reschedule(Now + 5));
    });

    [Fact]
    public void Reschedule_AfterExpiry_Throws() => AioTest.Run(async () =>
    {
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async t =>
        {
            try { await Aio.Sleep(5); }
            finally { Assert.Throws<InvalidOperationException>(() => t.Reschedule(Now + 10)); }
        }));
    });
    [Fact]
    public void Cancel_AfterATimeoutThatEndedAndAForeignAwait_ReachesTheNextSleep() => AioTest.Run(async () =>
    {
        // After a timeout whose body ended asynchronously, the thread's synchronisation context must be the
        // task's scope again: a foreign Task awaited next captures it, and its continuation's awaits must
        // belong to the task, not to the timeout's closed scope, or cancelling the task would not reach them.
        var loop = Aio.GetRunningLoop();
        double cancelledAt = -1;
        var worker = Aio.CreateTask((Func<Task>)(async () =>
        {
            await Aio.Timeout(10, async () => { await Aio.Sleep(1); });
            await Aio.Sleep(0);
            var foreign = new TaskCompletionSource();
            loop.CallLater(1, () => foreign.SetResult());
            await foreign.Task;
            try { await Aio.Sleep(100); }
            catch (CancelledError) { cancelledAt = Now; throw; }
        }));
        await Aio.Sleep(50);
        worker.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await worker);
        Assert.Equal(50, cancelledAt, 6);
    });
}
