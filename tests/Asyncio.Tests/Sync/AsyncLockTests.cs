using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Sync;

/// <summary>asyncio's Lock behaviours (CPython test_locks.LockTests), on <see cref="AsyncLock"/>.</summary>
public class AsyncLockTests
{
    [Fact]
    [Trait("asyncio", "test_lock")]
    public void New_IsUnlocked() => Assert.False(new AsyncLock().IsLocked);

    [Fact]
    [Trait("asyncio", "test_release_no_waiters")]
    public void Release_NoWaiters_Unlocks() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        Assert.True(l.IsLocked);
        l.Release();
        Assert.False(l.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_release_not_acquired")]
    public void Release_NotAcquired_Throws()
    {
        var l = new AsyncLock();
        var e = Assert.Throws<InvalidOperationException>(l.Release);
        Assert.Contains("not acquired", e.Message);
    }

    [Fact]
    [Trait("asyncio", "test_acquire")]
    public void Acquire_Contended_WaitersAcquireInFifoOrder() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        var result = new List<int>();
        await l.AcquireAsync();
        AioTask C(int k) => Spawn(async () => { await l.AcquireAsync(); result.Add(k); });
        var t1 = C(1);
        var t2 = C(2);
        await Yield();
        Assert.Empty(result);
        l.Release();
        await Yield();
        Assert.Equal([1], result);
        await Yield();
        Assert.Equal([1], result);
        var t3 = C(3);
        l.Release();
        await Yield();
        Assert.Equal([1, 2], result);
        l.Release();
        await Yield();
        Assert.Equal([1, 2, 3], result);
        await t1;
        await t2;
        await t3;
    });

    [Fact]
    [Trait("asyncio", "test_acquire_cancel")]
    public void Acquire_CancelledWhileWaiting_LeavesWaitListAtOnce() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        var t = Spawn(async () => { await l.AcquireAsync(); });
        await Yield();
        Assert.Equal(1, l.WaiterCount);
        t.Cancel();
        Assert.Equal(0, l.WaiterCount); // at once, before the task resumes
        await AssertCancelled(t);
        Assert.True(l.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_cancel_race")]
    public void Acquire_WaiterCancelledAsHolderReleases_NextWaiterGetsTheLock() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        var order = new List<string>();
        var fa = Aio.GetRunningLoop().CreateFuture();
        async Task LockIt(string name, Future? blocker)
        {
            await l.AcquireAsync();
            try
            {
                order.Add(name);
                if (blocker != null) await blocker;
            }
            finally { l.Release(); }
        }
        var ta = Spawn(() => LockIt("A", fa));
        await Yield();
        Assert.True(l.IsLocked);
        var tb = Spawn(() => LockIt("B", null));
        await Yield();
        Assert.Equal(1, l.WaiterCount);
        var tc = Spawn(() => LockIt("C", null));
        await Yield();
        Assert.Equal(2, l.WaiterCount);

        fa.SetResult();
        tb.Cancel();
        await ta;
        await AssertCancelled(tb);
        await tc;
        Assert.Equal(["A", "C"], order);
        Assert.False(l.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_cancel_release_race")]
    public void Acquire_CancelAndReleaseInOneCallback_OnlyOneTaskAcquires() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        int lockCount = 0, callCount = 0;
        async Task LockIt()
        {
            callCount++;
            await l.AcquireAsync();
            lockCount++;
        }
        await l.AcquireAsync();
        var t1 = Spawn(LockIt);
        var t2 = Spawn(LockIt);
        var t3 = Spawn(LockIt);
        await Yield();
        Aio.GetRunningLoop().CallSoon(() =>
        {
            t1.Cancel();
            l.Release();
        });
        await AssertCancelled(t1);
        await t2;
        Assert.Equal(1, lockCount);
        Assert.Equal(3, callCount);
        t3.Cancel();
        await AssertCancelled(t3);
    });

    [Fact]
    [Trait("asyncio", "test_finished_waiter_cancelled")]
    public void Acquire_CancelledAfterWakeup_WakesNextWaiter() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        var tb = Spawn(async () => { await l.AcquireAsync(); });
        await Yield();
        var tc = Spawn(async () => { await l.AcquireAsync(); });
        await Yield();
        l.Release();    // hands the lock to tb, which has not resumed yet
        tb.Cancel();    // tb passes the hand-over on to tc
        await AssertCancelled(tb);
        await tc;
        Assert.True(l.IsLocked); // held by tc
        l.Release();
        Assert.False(l.IsLocked);
    });

    [Fact]
    public void Acquire_CancelledAfterWakeupWithNoOtherWaiter_LockEndsUnlocked() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        var tb = Spawn(async () => { await l.AcquireAsync(); });
        await Yield();
        l.Release();
        tb.Cancel();
        await AssertCancelled(tb);
        Assert.False(l.IsLocked);
        Assert.True(l.TryAcquire());
    });

    [Fact]
    [Trait("asyncio", "test_context_manager")]
    public void AcquireAsync_ScopedForm_ReleasesWhenDisposed() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        using (await l.AcquireAsync())
        {
            Assert.True(l.IsLocked);
        }
        Assert.False(l.IsLocked);
    });

    [Fact]
    public void Releaser_DisposedTwice_ThrowsAndKeepsTheNextHolder() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        var r = await l.AcquireAsync();
        r.Dispose();
        var again = await l.AcquireAsync();
        Assert.Throws<InvalidOperationException>(r.Dispose);
        Assert.True(l.IsLocked);
        again.Dispose();
        Assert.False(l.IsLocked);
    });

    // A condition wait gets back the hold it had before it waited. Regression: the next acquisition then
    // reused the hold of a releaser disposed in between, which could release the new holder's lock.
    [Fact]
    public void Releaser_DisposedTwiceAfterAConditionWaitGotTheLockBack_ThrowsAndKeepsTheNextHolder() => AioTest.Run(async () =>
    {
        var cond = new AsyncCondition();
        var l = cond.Lock;
        var waiter = Spawn(async () =>
        {
            using (await cond.AcquireAsync()) await cond.WaitAsync();
        });
        await Yield();               // the waiter waits; the lock is free
        var notifier = await l.AcquireAsync();
        cond.Notify();
        notifier.Dispose();          // hands the lock back to the waiter, with its old hold
        await waiter;                // which releases it
        Assert.False(l.IsLocked);
        var next = await l.AcquireAsync();
        Assert.Throws<InvalidOperationException>(notifier.Dispose);
        Assert.True(l.IsLocked);
        next.Dispose();
        Assert.False(l.IsLocked);
    });

    [Fact]
    public void Releaser_OfAWaiterHandedTheLock_ReleasesIt() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        var first = await l.AcquireAsync();
        var t = Spawn(async () =>
        {
            using (await l.AcquireAsync()) await Yield();
        });
        await Yield();
        first.Dispose();
        Assert.Throws<InvalidOperationException>(first.Dispose); // the hold moved to the waiter
        await t;
        Assert.False(l.IsLocked);
    });

    [Fact]
    public void Release_WithWaiters_LockStaysHeldForTheNextWaiter() => AioTest.Run(async () =>
    {
        // Differences from asyncio: the lock is handed over, so it never looks free in between.
        var l = new AsyncLock();
        await l.AcquireAsync();
        var t = Spawn(async () => { await l.AcquireAsync(); });
        await Yield();
        l.Release();
        Assert.True(l.IsLocked);
        Assert.False(l.TryAcquire());
        await t;
        Assert.True(l.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "Lock.release() unlocks and wakes a waiter: a second release() before it resumes raises RuntimeError('Lock is not acquired.')")]
    public void Release_TwiceBeforeTheWokenWaiterResumes_ThrowsAndNeverMakesTwoHolders() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        int inside = 0, maxInside = 0, laterReleaseErrors = 0;
        async Task Worker()
        {
            await l.AcquireAsync();
            maxInside = Math.Max(maxInside, ++inside);
            await Yield();
            inside--;
            try { l.Release(); } catch (InvalidOperationException) { laterReleaseErrors++; }
        }
        var t1 = Spawn(Worker);
        var t2 = Spawn(Worker);
        await Yield();
        l.Release();
        var second = Record.Exception(l.Release);
        await t1;
        await t2;
        Assert.IsType<InvalidOperationException>(second);
        Assert.Equal(1, maxInside);
        Assert.Equal(0, laterReleaseErrors);
        Assert.False(l.IsLocked);
    });

    [Fact]
    public void TryAcquire_FreeThenHeld_AcquiresOnce()
    {
        var l = new AsyncLock();
        Assert.True(l.TryAcquire());
        Assert.False(l.TryAcquire());
        l.Release();
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Acquire_ManyWaitersCancelled_WaitListDoesNotGrow() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        for (int round = 0; round < 10; round++)
        {
            var tasks = Enumerable.Range(0, 100).Select(_ => Spawn(async () => { await l.AcquireAsync(); })).ToList();
            await Yield();
            Assert.Equal(100, l.WaiterCount);
            foreach (var t in tasks) t.Cancel();
            Assert.Equal(0, l.WaiterCount);
            foreach (var t in tasks) await AssertCancelled(t);
        }
        l.Release();
        Assert.False(l.IsLocked);
    });

    [Fact]
    public void Acquire_TokenCancelledWhileWaiting_ThrowsCancelledErrorCarryingTheToken() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        using var cts = new CancellationTokenSource();
        var t = Spawn(async () =>
        {
            var e = await Assert.ThrowsAsync<CancelledError>(async () => await l.AcquireAsync(cts.Token));
            Assert.Equal(cts.Token, e.CancellationToken);
        });
        await Yield();
        cts.Cancel();
        await t;
        Assert.Equal(0, l.WaiterCount);
        l.Release();
        Assert.False(l.IsLocked); // nobody was handed the lock
    });

    // The token ended the wait, and the task was cancelled before it resumed. asyncio throws the task's
    // cancellation into the coroutine when its awaited future was already cancelled; here too the task's
    // must win, or code handling its own token would swallow it.
    [Fact]
    public void Acquire_TokenCancelledThenTaskCancelledBeforeItResumes_ThrowsTheTasksCancellation() => AioTest.Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        var l = new AsyncLock();
        await l.AcquireAsync();
        using var cts = new CancellationTokenSource();
        bool continued = false;
        CancelledError? error = null;
        AioTask? t = null;
        t = Spawn(async () =>
        {
            try { await l.AcquireAsync(cts.Token); }
            catch (CancelledError e) when (e.CancellationToken == cts.Token) { }
            catch (CancelledError e) { error = e; throw; }
            continued = true;
        });
        await Yield();
        cts.Cancel();   // its callback posts to the loop: the wait ends on the next iteration
        int waitersAtCancel = -1;
        bool doneAtCancel = true;
        // Queued behind the token's post (a CallSoon keeps the order of earlier thread-safe posts): runs in the
        // iteration where the token ends the wait, after it, before the task resumes.
        loop.CallSoon(() =>
        {
            waitersAtCancel = l.WaiterCount;
            doneAtCancel = t.IsDone;
            t.Cancel("stop");
        });
        await Aio.GatherOutcomes([t]);
        Assert.Equal(0, waitersAtCancel);
        Assert.False(doneAtCancel);
        Assert.True(t.IsCancelled);
        Assert.False(continued);
        Assert.Equal("stop", error!.Message);
        Assert.Equal(0, l.WaiterCount);
        l.Release();
        Assert.False(l.IsLocked);
    });

    [Fact]
    public void Acquire_TokenCancelledOnAnotherThread_WaiterLeaves() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        using var cts = new CancellationTokenSource();
        var t = Spawn(async () => { await l.AcquireAsync(cts.Token); });
        await Yield();
        await Task.Run(cts.Cancel);
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(0, l.WaiterCount);
    });

    [Fact]
    public void Acquire_TokenAlreadyCancelled_FailsEvenWhenFree() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await l.AcquireAsync(new CancellationToken(true)));
        Assert.False(l.IsLocked);
    });

    [Fact]
    public void Acquire_TokenCancelledAfterTheWaitWasGranted_IsIgnored() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        using var cts = new CancellationTokenSource();
        var t = Spawn(async () => { await l.AcquireAsync(cts.Token); });
        await Yield();
        l.Release();
        await t;
        cts.Cancel();
        await Yield(2);
        Assert.True(l.IsLocked);
        // The pooled waiter was reused or parked; a later wait is not disturbed by the late callback.
        var t2 = Spawn(async () => { await l.AcquireAsync(); });
        await Yield();
        l.Release();
        await t2;
    });

    [Fact]
    [Trait("asyncio", "test_ambiguous_loops")]
    public void Acquire_FromAnotherLoop_Throws()
    {
        var l = new AsyncLock();
        AioTest.Run(async () =>
        {
            await l.AcquireAsync();
            var t = Spawn(async () => { using (await l.AcquireAsync()) { } }); // binds the lock to this loop
            await Yield();
            l.Release();
            await t;
        });
        AioTest.Run(async () =>
        {
            Assert.True(l.TryAcquire()); // the fast path involves no loop, as in asyncio
            var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await l.AcquireAsync());
            Assert.Contains("different event loop", e.Message);
            Assert.Equal(0, l.WaiterCount);
            l.Release();
        });
    }

    [Fact]
    public void Acquire_ResumedFromWaitThenSleep_SleepStillWaits() => AioTest.Run(async () =>
    {
        // Regression: the flags of the callback that resumed a waiter were read by the next sleep as its
        // own completion, so the sleep returned at once.
        var l = new AsyncLock();
        await l.AcquireAsync();
        var loop = Aio.GetRunningLoop();
        var t = Spawn(async () =>
        {
            await l.AcquireAsync();
            double t0 = loop.Time();
            await Aio.Sleep(1);
            Assert.True(loop.Time() - t0 >= 1);
        });
        await Yield();
        l.Release();
        await t;
    });

    [Fact]
    public void ToString_DescribesStateAndWaiters() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        Assert.Equal("<AsyncLock [unlocked]>", l.ToString());
        await l.AcquireAsync();
        var t = Spawn(async () => { await l.AcquireAsync(); });
        await Yield();
        Assert.Equal("<AsyncLock [locked, waiters:1]>", l.ToString());
        l.Release();
        await t;
    });
}
