using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Sync;

/// <summary>asyncio's Condition behaviours (CPython test_locks.ConditionTests), on <see cref="AsyncCondition"/>.</summary>
public class AsyncConditionTests
{
    [Fact]
    [Trait("asyncio", "test_wait")]
    public void Wait_Notified_ResumesHoldingTheLock_OneAtATime() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var result = new List<int>();
        AioTask C(int k) => Spawn(async () =>
        {
            await cond.AcquireAsync();
            await cond.WaitAsync();
            result.Add(k);
            Assert.True(cond.IsLocked);
        });
        var t1 = C(1);
        var t2 = C(2);
        var t3 = C(3);
        await Yield();
        Assert.Empty(result);
        Assert.False(cond.IsLocked);

        await cond.AcquireAsync();
        cond.Notify();
        await Yield();
        Assert.Empty(result);
        Assert.True(cond.IsLocked);

        cond.Release();
        await Yield();
        Assert.Equal([1], result);
        Assert.True(cond.IsLocked);

        cond.Notify(2);
        await Yield();
        Assert.Equal([1], result);

        cond.Release();
        await Yield();
        Assert.Equal([1, 2], result);
        cond.Release();
        await Yield();
        Assert.Equal([1, 2, 3], result);
        Assert.True(cond.IsLocked);
        await t1;
        await t2;
        await t3;
    });

    [Fact]
    [Trait("asyncio", "test_wait_cancel")]
    public void Wait_Cancelled_LeavesWaitListAndReacquiresTheLock() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        await cond.AcquireAsync();
        var wait = Spawn(async () => { await cond.WaitAsync(); });
        Aio.GetRunningLoop().CallSoon(() => wait.Cancel());
        await AssertCancelled(wait);
        Assert.Equal(0, cond.WaiterCount);
        Assert.True(cond.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_wait_cancel_contested")]
    public void Wait_CancelledWhileTheLockIsContested_EndsHoldingTheLock() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        await cond.AcquireAsync();
        var waitTask = Spawn(async () => { await cond.WaitAsync(); });
        await Yield();
        Assert.False(cond.IsLocked);

        await cond.AcquireAsync();
        cond.Notify();
        var loop = Aio.GetRunningLoop();
        loop.CallSoon(() => waitTask.Cancel());
        loop.CallSoon(cond.Release);
        try { await waitTask; }
        catch (CancelledError) { }
        Assert.True(cond.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_wait_cancel_after_notify")]
    public void Wait_CancelledAfterNotify_TaskEndsCancelled() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        bool waited = false;
        var waiter = Spawn(async () =>
        {
            using (await cond.AcquireAsync())
            {
                waited = true;
                await cond.WaitAsync();
            }
        });
        await Yield();
        await cond.AcquireAsync();
        cond.Notify();
        await Yield();
        waiter.Cancel();
        await Yield();
        cond.Release();
        await AssertCancelled(waiter);
        Assert.True(waited);
        Assert.False(cond.IsLocked); // the waiter's scoped releaser gave the lock back
    });

    [Fact]
    [Trait("asyncio", "test_wait_unacquired")]
    public void Wait_LockNotHeld_Throws() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await cond.WaitAsync());
    });

    [Fact]
    [Trait("asyncio", "Condition.wait() re-acquires the lock when it resumes: until then nobody holds it, and release() and notify() raise")]
    public void Wait_CancelledWhileTheLockIsFree_NobodyHoldsTheLockUntilTheWaiterResumes() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var t = Spawn(async () =>
        {
            await cond.AcquireAsync();
            try { await cond.WaitAsync(); }
            finally { cond.Release(); }
        });
        await Yield();   // t waits for a notification; the lock is free
        Assert.False(cond.IsLocked);
        t.Cancel();      // the wait takes the lock for when it resumes
        Assert.True(cond.IsLocked);
        Assert.Throws<InvalidOperationException>(() => cond.Release());
        Assert.Throws<InvalidOperationException>(() => cond.Notify());
        await AssertCancelled(t);
        Assert.False(cond.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_wait_for")]
    public void WaitFor_ReturnsOnceThePredicateHoldsAfterANotify() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        bool presult = false;
        var result = new List<int>();
        var t = Spawn(async () =>
        {
            await cond.AcquireAsync();
            await cond.WaitForAsync(() => presult);
            result.Add(1);
            cond.Release();
        });
        await Yield();
        Assert.Empty(result);

        await cond.AcquireAsync();
        cond.Notify();
        cond.Release();
        await Yield();
        Assert.Empty(result);

        presult = true;
        await cond.AcquireAsync();
        cond.Notify();
        cond.Release();
        await Yield(2);
        Assert.Equal([1], result);
        await t;
    });

    [Fact]
    [Trait("asyncio", "test_wait_for_unacquired")]
    public void WaitFor_PredicateTrueAtOnce_NeedsNoLock_ElseThrows() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        await cond.WaitForAsync(() => true);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await cond.WaitForAsync(() => false));
    });

    [Fact]
    [Trait("asyncio", "test_notify")]
    public void Notify_N_WakesUpToNWaiters() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var result = new List<int>();
        AioTask C(int k) => Spawn(async () =>
        {
            await cond.AcquireAsync();
            await cond.WaitAsync();
            result.Add(k);
            cond.Release();
        });
        var tasks = new[] { C(1), C(2), C(3) };
        await Yield();
        Assert.Empty(result);

        await cond.AcquireAsync();
        cond.Notify(1);
        cond.Release();
        await Yield();
        Assert.Equal([1], result);

        await cond.AcquireAsync();
        cond.Notify(1);
        cond.Notify(2048);
        cond.Release();
        await Yield(3);
        Assert.Equal([1, 2, 3], result);
        foreach (var t in tasks) await t;
    });

    [Fact]
    [Trait("asyncio", "test_notify_all")]
    public void NotifyAll_WakesEveryWaiter() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var result = new List<int>();
        AioTask C(int k) => Spawn(async () =>
        {
            await cond.AcquireAsync();
            await cond.WaitAsync();
            result.Add(k);
            cond.Release();
        });
        var t1 = C(1);
        var t2 = C(2);
        await Yield();
        await cond.AcquireAsync();
        cond.NotifyAll();
        cond.Release();
        await Yield(2);
        Assert.Equal([1, 2], result);
        await t1;
        await t2;
    });

    [Fact]
    [Trait("asyncio", "test_notify_unacquired")]
    public void Notify_LockNotHeld_Throws()
    {
        var cond = new AsyncCondition();
        Assert.Throws<InvalidOperationException>(() => cond.Notify());
        Assert.Throws<InvalidOperationException>(cond.NotifyAll);
    }

    [Fact]
    public void Notify_FromAnotherThreadWithWaiters_ThrowsAndLosesNothing() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var t = Spawn(async () => { using (await cond.AcquireAsync()) await cond.WaitAsync(); });
        await Yield();
        using (await cond.AcquireAsync()) // released even if an assertion fails, so that the waiter can end
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => Task.Run(() => cond.Notify()));
            Assert.Equal(1, cond.WaiterCount);      // still waiting for a notification
            Assert.Equal(0, cond.Lock.WaiterCount); // not moved to the lock's queue
            cond.Notify();
        }
        await t;
        Assert.False(cond.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_ambiguous_loops")]
    public void Wait_ConditionOrItsLockBoundToAnotherLoop_ThrowsAndKeepsTheLock()
    {
        var cond = new AsyncCondition();
        AioTest.Run(async () =>
        {
            var t = Spawn(async () => { using (await cond.AcquireAsync()) await cond.WaitAsync(); }); // binds both to this loop
            await Yield();
            using (await cond.AcquireAsync()) cond.Notify();
            await t;
        });
        AioTest.Run(async () =>
        {
            Assert.True(cond.Lock.TryAcquire()); // the fast path involves no loop, as in asyncio
            var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await cond.WaitAsync());
            Assert.Contains("different event loop", e.Message);
            Assert.True(cond.IsLocked);          // the failed wait did not release the lock
            Assert.Equal(0, cond.WaiterCount);

            var overBoundLock = new AsyncCondition(cond.Lock);
            e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await overBoundLock.WaitAsync());
            Assert.Contains("different event loop", e.Message);
            Assert.True(cond.IsLocked);
            Assert.Equal(0, overBoundLock.WaiterCount);
            cond.Release();
            Assert.False(cond.IsLocked);
        });
    }

    [Fact]
    [Trait("asyncio", "test_explicit_lock")]
    public void Ctor_ExplicitLock_SharesItsState() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        var cond = new AsyncCondition(l);
        Assert.Same(l, cond.Lock);
        using (await cond.AcquireAsync())
        {
            Assert.True(l.IsLocked);
            Assert.True(cond.IsLocked);
        }
        Assert.False(l.IsLocked);
        using (await l.AcquireAsync())
        {
            Assert.True(cond.IsLocked);
        }
        Assert.False(cond.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_timeout_in_block")]
    public void Wait_TimesOut_ThrowsTimeoutHoldingTheLock() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        using (await cond.AcquireAsync())
        {
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(0.5, async () => await cond.WaitAsync()));
            Assert.True(cond.IsLocked);
        }
        Assert.False(cond.IsLocked);
    });

    [Fact]
    public void Wait_TimesOutWhileAnotherTaskHoldsTheLock_ThrowsTimeoutOnceItHoldsTheLockAgain() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var cond = new AsyncCondition();
        double timedOutAt = -1;
        bool held = false;
        var t = Spawn(async () =>
        {
            using (await cond.AcquireAsync())
            {
                try { await Aio.Timeout(1, async () => await cond.WaitAsync()); }
                catch (TimeoutException) { timedOutAt = loop.Time(); held = cond.IsLocked; }
            }
        });
        await Yield();
        double t0 = loop.Time();
        using (await cond.AcquireAsync())
        {
            await Aio.Sleep(5); // holds the lock well past the deadline
        }
        await t;
        Assert.True(held);
        Assert.True(timedOutAt - t0 >= 5, $"timed out after {timedOutAt - t0}s");
        Assert.False(cond.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_cancelled_error_wakeup")]
    public void Wait_CancelledWhileWaitingForTheNotification_CarriesTheMessage() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        bool wake = false;
        var task = Spawn(async () =>
        {
            using (await cond.AcquireAsync())
            {
                await cond.WaitForAsync(() => wake);
            }
        });
        await Yield();
        task.Cancel("foo");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.Equal("foo", e.CancelMessage);
        Assert.False(cond.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_cancelled_error_re_aquire")]
    public void Wait_CancelledWhileReacquiringTheLock_CarriesTheMessage() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        bool wake = false;
        bool heldWhenCancelled = false;
        var task = Spawn(async () =>
        {
            using (await cond.AcquireAsync())
            {
                try { await cond.WaitForAsync(() => wake); }
                catch (CancelledError) { heldWhenCancelled = cond.IsLocked; throw; }
            }
        });
        await Yield();
        await cond.AcquireAsync();
        wake = true;
        cond.Notify();
        await Yield();
        task.Cancel("foo");   // the task waits for the lock now
        cond.Release();
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.Equal("foo", e.CancelMessage);
        Assert.True(heldWhenCancelled);
        Assert.False(cond.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_cancelled_wakeup")]
    public void Notify_WaiterCancelledBeforeItResumes_NotificationGoesToTheNext() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        int state = 0;
        async Task Consumer()
        {
            using (await cond.AcquireAsync())
            {
                while (true)
                {
                    await cond.WaitForAsync(() => state != 0);
                    if (state < 0) return;
                    state--;
                }
            }
        }
        var c = new[] { Spawn(Consumer), Spawn(Consumer) };
        await Yield();
        using (await cond.AcquireAsync())
        {
            state++;
            cond.Notify(1);
            c[0].Cancel();   // before it runs
            try { await Aio.Timeout(0.01, async () => await cond.WaitForAsync(() => state == 0)); }
            catch (TimeoutException) { }
            Assert.Equal(0, state);
            state = -1;
            cond.NotifyAll();
        }
        await c[1];
        await AssertCancelled(c[0]);
    });

    [Fact]
    [Trait("asyncio", "test_cancelled_wakeup_relock")]
    public void Notify_WaiterCancelledWhileReacquiring_NotificationGoesToTheNext() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        int state = 0;
        async Task Consumer()
        {
            using (await cond.AcquireAsync())
            {
                while (true)
                {
                    await cond.WaitForAsync(() => state != 0);
                    if (state < 0) return;
                    state--;
                }
            }
        }
        var c = new[] { Spawn(Consumer), Spawn(Consumer) };
        await Yield();
        using (await cond.AcquireAsync())
        {
            state++;
            cond.Notify(1);
            await Yield();   // the notified consumer now waits for the lock
            c[0].Cancel();
            try { await Aio.Timeout(0.01, async () => await cond.WaitForAsync(() => state == 0)); }
            catch (TimeoutException) { }
            Assert.Equal(0, state);
            state = -1;
            cond.NotifyAll();
        }
        await c[1];
        await AssertCancelled(c[0]);
    });

    [Fact]
    public void Wait_CancelledTwiceWhileReacquiring_SecondIsAbsorbed() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        int cancelledErrors = 0;
        var task = Spawn(async () =>
        {
            await cond.AcquireAsync();
            try { await cond.WaitAsync(); }
            catch (CancelledError) { cancelledErrors++; }
            Assert.True(cond.IsLocked);
            cond.Release();
        });
        await Yield();
        await cond.AcquireAsync();
        task.Cancel();
        task.Cancel();
        cond.Release();
        await task;
        Assert.Equal(1, cancelledErrors);
    });

    [Fact]
    public void Wait_CancelledTwiceWhileReacquiring_ThrowsTheLatestCancellation() => AioTest.Run(async () =>
    {
        // asyncio's re-acquire loop re-raises the most recent CancelledError.
        var cond = new AsyncCondition();
        string? message = null;
        var task = Spawn(async () =>
        {
            await cond.AcquireAsync();
            try { await cond.WaitAsync(); }
            catch (CancelledError e) { message = e.CancelMessage; }
            cond.Release();
        });
        await Yield();
        await cond.AcquireAsync();  // contest the lock: the cancelled wait queues for it
        task.Cancel("first");
        await Yield();
        task.Cancel("second");
        cond.Release();
        await task;
        Assert.Equal("second", message);
        Assert.False(cond.IsLocked);
    });

    [Fact]
    public void Wait_TaskAlreadyCancelled_StillEndsHoldingTheLock() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        bool held = false;
        var task = Spawn(async () =>
        {
            await cond.AcquireAsync();
            Aio.CurrentTask!.Cancel();  // pending before the wait suspends
            try { await cond.WaitAsync(); }
            catch (CancelledError) { held = cond.IsLocked; }
            cond.Release();
        });
        await task;
        Assert.True(held);
        Assert.False(cond.IsLocked);
    });

    [Fact]
    public void Wait_TokenCancelled_ReacquiresTheLockThenThrowsWithTheToken() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        using var cts = new CancellationTokenSource();
        var task = Spawn(async () =>
        {
            await cond.AcquireAsync();
            var e = await Assert.ThrowsAsync<CancelledError>(async () => await cond.WaitAsync(cts.Token));
            Assert.Equal(cts.Token, e.CancellationToken);
            Assert.True(cond.IsLocked);
            cond.Release();
        });
        await Yield();
        await cond.AcquireAsync();  // contest the lock: the cancelled wait must queue for it
        await Task.Run(cts.Cancel);
        await Yield(2);
        Assert.False(task.IsDone);
        cond.Release();
        await task;
        Assert.False(cond.IsLocked);
    });

    // asyncio's wait re-raises the most recent cancellation of its re-acquire loop. A task cancelled while
    // a token-cancelled wait re-acquires must get the task's cancellation, not the token's, or code that
    // handles its own token would swallow the task's cancellation.
    [Fact]
    public void Wait_TokenCancelledThenTaskCancelledWhileReacquiring_ThrowsTheTasksCancellation() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        using var cts = new CancellationTokenSource();
        bool continuedAfterTheWait = false;
        CancelledError? error = null;
        var task = Spawn(async () =>
        {
            await cond.AcquireAsync();
            try { await cond.WaitAsync(cts.Token); }
            catch (CancelledError e) when (e.CancellationToken == cts.Token) { }
            catch (CancelledError e) { error = e; throw; }
            finally { cond.Release(); }
            continuedAfterTheWait = true;
        });
        await Yield();
        await cond.AcquireAsync();   // contest the lock: the cancelled wait queues for it
        await Task.Run(cts.Cancel);
        await Yield(2);
        Assert.False(task.IsDone);
        task.Cancel("stop");
        cond.Release();
        await AssertCancelled(task);
        Assert.False(continuedAfterTheWait);
        Assert.Equal("stop", error!.Message);
        Assert.False(error.CancellationToken.CanBeCanceled);
    });

    [Fact]
    public void Wait_ScopedReleaserOfTheOuterAcquire_StillReleasesAfterTheWait() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var t = Spawn(async () =>
        {
            using (await cond.AcquireAsync())
            {
                await cond.WaitAsync();
            }
        });
        await Yield();
        using (await cond.AcquireAsync())
        {
            cond.Notify();
        }
        await t;
        Assert.False(cond.IsLocked);
    });
    [Fact]
    public void Notify_WaiterHandedTheLockThenCancelledBeforeItRuns_PassesTheNotificationOn() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var woke = new List<int>();
        AioTask Waiter(int k) => Spawn(async () =>
        {
            using (await cond.AcquireAsync())
            {
                await cond.WaitAsync();
                woke.Add(k);
            }
        });
        var first = Waiter(1);
        var second = Waiter(2);
        await Yield();
        Assert.Equal(2, cond.WaiterCount);

        await cond.AcquireAsync();
        cond.Notify(1);   // the first waiter now waits for the lock
        cond.Release();   // ...and is handed it, to resume on a later iteration
        Assert.True(cond.IsLocked);
        first.Cancel();   // before it runs: it keeps the lock, to release it, and passes the notification on
        await AssertCancelled(first);
        await Yield(3);
        Assert.Equal([2], woke);
        await second;
        Assert.False(cond.IsLocked);
    });

    [Fact]
    public void Wait_CancelledWhileWaitingForANotification_LeavesTheWaitListAtOnce() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var wait = Spawn(async () => { using (await cond.AcquireAsync()) await cond.WaitAsync(); });
        await Yield();
        Assert.Equal(1, cond.WaiterCount);
        wait.Cancel();
        Assert.Equal(0, cond.WaiterCount); // at once, before the task resumes
        await AssertCancelled(wait);
        Assert.False(cond.IsLocked);
    });
}
