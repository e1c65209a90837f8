using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Audit;

/// <summary>
/// Audit probes: Lock, Event, Condition, Semaphore, Barrier and the queues, each asserting what CPython's asyncio
/// (3.13: Lib/asyncio/locks.py, queues.py) does, or a documented difference (docs/differences.md). The trait of each
/// names the CPython test or function it follows. Written as an audit (2026-12-04, session 19).
/// </summary>
public class SyncAuditTests
{
    // ---------------------------------------------------------------- Lock

    [Fact]
    [Trait("asyncio", "test_acquire_cancel (middle waiter)")]
    public void Lock_MiddleWaiterCancelled_OthersKeepFifoOrder() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        var order = new List<int>();
        AioTask W(int k) => Spawn(async () => { await l.AcquireAsync(); order.Add(k); await Yield(); l.Release(); });
        var a = W(1); var b = W(2); var c = W(3);
        await Yield();
        b.Cancel();
        l.Release();
        await a; await c;
        await AssertCancelled(b);
        Assert.Equal([1, 3], order);
        Assert.False(l.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "locks.Lock.acquire: fast path does not suspend (pending cancel delivered at the next await)")]
    public void Lock_FreeLockWithPendingCancel_AcquiresThenCancelledAtNextAwait() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        bool acquired = false;
        var t = Spawn(async () =>
        {
            Aio.CurrentTask!.Cancel();
            await l.AcquireAsync();
            acquired = true;
            await Yield();
        });
        await AssertCancelled(t);
        Assert.True(acquired);
        Assert.True(l.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "locks.Lock.acquire: contended, pending cancel -> CancelledError, lock not taken")]
    public void Lock_ContendedWithPendingCancel_NotAcquired_NextWaiterStillServed() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        var t = Spawn(async () => { Aio.CurrentTask!.Cancel(); await l.AcquireAsync(); });
        var u = Spawn(async () => { await l.AcquireAsync(); });
        await Yield();
        await AssertCancelled(t);
        l.Release();
        await u;
        Assert.True(l.IsLocked);
        l.Release();
        Assert.False(l.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_finished_waiter_cancelled (two woken in turn)")]
    public void Lock_TwoConsecutiveWokenWaitersCancelled_ThirdGetsLock() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        var a = Spawn(async () => { await l.AcquireAsync(); });
        var b = Spawn(async () => { await l.AcquireAsync(); });
        var got = false;
        var c = Spawn(async () => { await l.AcquireAsync(); got = true; l.Release(); });
        await Yield();
        l.Release();   // a is woken
        a.Cancel();    // a passes to b
        b.Cancel();    // b (woken now) passes to c
        await AssertCancelled(a);
        await AssertCancelled(b);
        await c;
        Assert.True(got);
        Assert.False(l.IsLocked);
    });

    // ---------------------------------------------------------------- Event

    [Fact]
    [Trait("asyncio", "locks.Event.wait: set flag returns without suspending (pending cancel)")]
    public void Event_SetWithPendingCancel_WaitReturns() => AioTest.Run(async () =>
    {
        var e = new AsyncEvent();
        e.Set();
        bool passed = false;
        var t = Spawn(async () => { Aio.CurrentTask!.Cancel(); await e.WaitAsync(); passed = true; await Yield(); });
        await AssertCancelled(t);
        Assert.True(passed);
    });

    [Fact]
    [Trait("asyncio", "locks.Event.wait: waiter woken by set then cancelled raises CancelledError; others still wake")]
    public void Event_WokenThenCancelled_RaisesAndOthersStillWake() => AioTest.Run(async () =>
    {
        var e = new AsyncEvent();
        var a = Spawn(async () => { await e.WaitAsync(); });
        var b = Spawn(async () => { await e.WaitAsync(); });
        await Yield();
        e.Set();
        e.Clear();
        a.Cancel();
        await AssertCancelled(a);
        await b;
        Assert.False(e.IsSet);
    });

    [Fact]
    [Trait("asyncio", "test_clear_with_waiters (set/clear/set)")]
    public void Event_SetClearSet_WaitersWokenOnce_NewWaiterWaits() => AioTest.Run(async () =>
    {
        var e = new AsyncEvent();
        int woken = 0;
        var a = Spawn(async () => { await e.WaitAsync(); woken++; });
        await Yield();
        e.Set(); e.Clear(); e.Set(); e.Clear();
        var b = Spawn(async () => { await e.WaitAsync(); woken++; });
        await Yield(3);
        Assert.Equal(1, woken);
        Assert.True(a.IsDone);
        Assert.False(b.IsDone);
        e.Set();
        await b;
        Assert.Equal(2, woken);
    });

    // ---------------------------------------------------------------- Condition

    [Fact]
    [Trait("asyncio", "locks.Condition.notify: n <= 0 wakes nobody; n > waiters wakes all")]
    public void Condition_NotifyZeroNegativeAndLarge() => AioTest.Run(async () =>
    {
        var c = new AsyncCondition();
        int woken = 0;
        AioTask W() => Spawn(async () => { await c.AcquireAsync(); await c.WaitAsync(); woken++; c.Release(); });
        var ts = new[] { W(), W(), W() };
        await Yield();
        await c.AcquireAsync();
        c.Notify(0);
        c.Notify(-3);
        c.Release();
        await Yield(3);
        Assert.Equal(0, woken);
        await c.AcquireAsync();
        c.Notify(10);
        c.Release();
        foreach (var t in ts) await t;
        Assert.Equal(3, woken);
    });

    [Fact]
    [Trait("asyncio", "locks.Condition.wait: pending cancel -> releases, the lock's waiter runs first, wait raises holding the lock")]
    public void Condition_WaitWithPendingCancel_ReleasesLockThenRaisesHoldingIt() => AioTest.Run(async () =>
    {
        var c = new AsyncCondition();
        var order = new List<string>();
        bool heldAtCatch = false;
        var waiter = Spawn(async () =>
        {
            await c.AcquireAsync();
            await Yield(); // other queues for the lock
            Aio.CurrentTask!.Cancel();
            try { await c.WaitAsync(); }
            catch (CancelledError) { heldAtCatch = c.IsLocked; order.Add("waiter"); c.Release(); throw; }
        });
        var other = Spawn(async () => { await c.AcquireAsync(); order.Add("other"); await Yield(); c.Release(); });
        await AssertCancelled(waiter);
        await other;
        Assert.True(heldAtCatch);
        Assert.Equal(["other", "waiter"], order);
        Assert.False(c.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "locks.Condition.wait_for: predicate exception propagates with the lock held")]
    public void Condition_WaitForPredicateThrows_PropagatesHoldingLock() => AioTest.Run(async () =>
    {
        var c = new AsyncCondition();
        int calls = 0;
        bool held = false;
        var t = Spawn(async () =>
        {
            await c.AcquireAsync();
            try
            {
                await c.WaitForAsync(() => { if (++calls == 2) throw new FormatException("p"); return false; });
            }
            catch (FormatException) { held = c.IsLocked; c.Release(); throw; }
        });
        await Yield();
        await c.AcquireAsync();
        c.Notify();
        c.Release();
        await Assert.ThrowsAsync<FormatException>(async () => await t);
        Assert.True(held);
        Assert.Equal(2, calls);
        Assert.False(c.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_wait_for (predicate re-checked after each notify, wait_for loops)")]
    public void Condition_WaitFor_LoopsUntilPredicate() => AioTest.Run(async () =>
    {
        var c = new AsyncCondition();
        int value = 0, calls = 0;
        var t = Spawn(async () => { await c.AcquireAsync(); await c.WaitForAsync(() => { calls++; return value == 2; }); c.Release(); });
        await Yield();
        for (int i = 1; i <= 2; i++)
        {
            await c.AcquireAsync();
            value = i;
            c.Notify();
            c.Release();
            await Yield(2);
        }
        await t;
        Assert.Equal(3, calls);
    });

    [Fact]
    [Trait("asyncio", "test_cancelled_wakeup (notify_all, one cancelled; rest in order, none lost)")]
    public void Condition_NotifyAll_OneCancelledInLockQueue_OthersAllResumeInOrder() => AioTest.Run(async () =>
    {
        var c = new AsyncCondition();
        var order = new List<int>();
        AioTask W(int k) => Spawn(async () =>
        {
            await c.AcquireAsync();
            try { await c.WaitAsync(); order.Add(k); }
            finally { c.Release(); }
        });
        var ts = new[] { W(1), W(2), W(3) };
        await Yield();
        await c.AcquireAsync();
        c.NotifyAll();
        ts[1].Cancel();
        c.Release();
        await ts[0]; await ts[2];
        await AssertCancelled(ts[1]);
        Assert.Equal([1, 3], order);
        Assert.False(c.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "locks.Condition.wait: double cancel while re-acquiring; raises once, lock held")]
    public void Condition_CancelledTwiceWhileReacquiring_RaisesHoldingLock() => AioTest.Run(async () =>
    {
        var c = new AsyncCondition();
        bool held = false;
        var t = Spawn(async () =>
        {
            await c.AcquireAsync();
            try { await c.WaitAsync(); }
            catch (CancelledError) { held = c.IsLocked; c.Release(); throw; }
        });
        await Yield();
        await c.AcquireAsync();
        t.Cancel("one");
        await Yield();
        t.Cancel("two");
        await Yield();
        Assert.False(t.IsDone);
        c.Release();
        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await t);
        Assert.True(held);
        Assert.True(t.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "locks.Condition.wait: notify on un-acquired raises even with no waiters")]
    public void Condition_NotifyAllUnacquired_Throws()
    {
        var c = new AsyncCondition();
        Assert.Throws<InvalidOperationException>(() => c.NotifyAll());
        Assert.Throws<InvalidOperationException>(() => c.Notify(0));
    }

    // ---------------------------------------------------------------- Semaphore

    [Fact]
    [Trait("asyncio", "locks.Semaphore.release/_wake_up_next: value is handed to the woken waiter")]
    public void Semaphore_ReleaseWithWaiter_ValueStaysZeroAndLocked() => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(0);
        var t = Spawn(async () => { await s.AcquireAsync(); });
        await Yield();
        s.Release();
        Assert.Equal(0, s.Value);
        Assert.True(s.IsLocked);
        await t;
        Assert.Equal(0, s.Value);
        s.Release();
        Assert.Equal(1, s.Value);
        Assert.False(s.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_hang (two woken, first cancelled -> permit returned, value 1)")]
    public void Semaphore_TwoWokenFirstCancelled_PermitReturned() => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(0);
        var a = Spawn(async () => { await s.AcquireAsync(); });
        var b = Spawn(async () => { await s.AcquireAsync(); });
        await Yield();
        s.Release(); s.Release();
        a.Cancel();
        await AssertCancelled(a);
        await b;
        Assert.Equal(1, s.Value);
        Assert.False(s.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_cancel_before_awoken (woken cancelled gives permit to the next pending waiter)")]
    public void Semaphore_WokenCancelled_NextPendingGetsPermit_NewcomerWaits() => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(0);
        var order = new List<string>();
        var a = Spawn(async () => { await s.AcquireAsync(); order.Add("a"); });
        var b = Spawn(async () => { await s.AcquireAsync(); order.Add("b"); });
        await Yield();
        s.Release();        // a woken
        a.Cancel();         // permit goes to b
        var n = Spawn(async () => { await s.AcquireAsync(); order.Add("n"); });
        await AssertCancelled(a);
        await b;
        await Yield(2);
        Assert.Equal(["b"], order);
        Assert.False(n.IsDone);
        s.Release();
        await n;
        Assert.Equal(["b", "n"], order);
    });

    [Fact]
    [Trait("asyncio", "locks.Semaphore.acquire finally: woken waiter resuming wakes more if permits free")]
    public void Semaphore_ReleasesWhileWokenPending_AllEligibleWaitersRun() => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(0);
        int got = 0;
        var ts = Enumerable.Range(0, 4).Select(_ => Spawn(async () => { await s.AcquireAsync(); got++; })).ToArray();
        await Yield();
        s.Release(); s.Release(); s.Release();
        await Yield(3);
        Assert.Equal(3, got);
        Assert.Equal(0, s.Value);
        s.Release();
        foreach (var t in ts) await t;
        Assert.Equal(4, got);
    });

    [Fact]
    [Trait("asyncio", "test_release_not_acquired (bounded; released after a handed permit)")]
    public void BoundedSemaphore_ReleaseAtBound_Throws_ValueUnchanged() => AioTest.Run(async () =>
    {
        var s = new AsyncBoundedSemaphore(2);
        await s.AcquireAsync();
        s.Release();
        Assert.Throws<SemaphoreFullException>(() => s.Release());
        Assert.Equal(2, s.Value);
        await s.AcquireAsync(); await s.AcquireAsync();
        Assert.True(s.IsLocked);
        s.Release(); s.Release();
        Assert.Throws<SemaphoreFullException>(() => s.Release());
    });

    [Fact]
    [Trait("asyncio", "locks.Semaphore.acquire: pending waiter cancelled while permits free wakes the next")]
    public void Semaphore_PendingWaiterCancelledWhileWokenPending_NoPermitLost() => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(0);
        var a = Spawn(async () => { await s.AcquireAsync(); });
        var b = Spawn(async () => { await s.AcquireAsync(); });
        var c = Spawn(async () => { await s.AcquireAsync(); });
        await Yield();
        s.Release();  // a woken
        b.Cancel();   // pending b leaves
        s.Release();  // c woken
        await a; await c;
        await AssertCancelled(b);
        Assert.Equal(0, s.Value);
        Assert.True(s.IsLocked);
    });

    // ---------------------------------------------------------------- Barrier

    [Fact]
    [Trait("asyncio", "differs (docs/differences.md): the last party let in after draining opens the barrier an iteration later, so a reset in between breaks it too")]
    public void Barrier_ResetRightAfterBlockedTasksRefill_TheLastPartyLetInIsBrokenToo() => AioTest.Run(async () =>
    {
        // asyncio, iteration by iteration: k: A waits. k+1: O opens (A woken), C and D block (draining).
        // k+2: A resumes and leaves. k+3: C arrives and waits, D arrives and opens; a reset() then breaks C only.
        // Here D opens at k+4, so the reset at k+3 breaks both.
        var b = new AsyncBarrier(2);
        var a = Spawn(async () => await b.WaitAsync());
        await Yield();
        var o = Spawn(async () => await b.WaitAsync());
        var c = Spawn(async () => await b.WaitAsync());
        var d = Spawn(async () => await b.WaitAsync());
        await Yield();   // k+1
        Assert.Equal(1, o.Result);
        await Yield();   // k+2
        Assert.Equal(0, a.Result);
        await Yield();   // k+3: C and D have been let in; D opens on the next iteration
        b.Reset();
        await Yield(3);
        Assert.IsType<BrokenBarrierError>(d.GetException());
        Assert.IsType<BrokenBarrierError>(c.GetException());
    });

    [Fact]
    [Trait("asyncio", "locks.Barrier._wait: abort while draining -> woken tasks that have not resumed raise")]
    public void Barrier_AbortWhileDraining_UnresumedRaise() => AioTest.Run(async () =>
    {
        var b = new AsyncBarrier(3);
        var x = Spawn(async () => await b.WaitAsync());
        var y = Spawn(async () => await b.WaitAsync());
        await Yield();
        Assert.Equal(2, await b.WaitAsync());
        b.Abort();
        await Assert.ThrowsAsync<BrokenBarrierError>(async () => await x);
        await Assert.ThrowsAsync<BrokenBarrierError>(async () => await y);
        Assert.True(b.IsBroken);
        await Assert.ThrowsAsync<BrokenBarrierError>(async () => await b.WaitAsync());
    });

    [Fact]
    [Trait("asyncio", "locks.Barrier.reset: broken barrier with nobody inside -> filling, usable")]
    public void Barrier_ResetAfterAbort_Usable() => AioTest.Run(async () =>
    {
        var b = new AsyncBarrier(2);
        b.Abort();
        Assert.True(b.IsBroken);
        b.Reset();
        Assert.False(b.IsBroken);
        var x = Spawn(async () => await b.WaitAsync());
        await Yield();
        Assert.Equal(1, b.WaitingCount);
        Assert.Equal(1, await b.WaitAsync());
        Assert.Equal(0, await x);
    });

    [Fact]
    [Trait("asyncio", "locks.Barrier.n_waiting: 0 while draining/resetting")]
    public void Barrier_WaitingCount_ZeroWhileDrainingAndResetting() => AioTest.Run(async () =>
    {
        var b = new AsyncBarrier(2);
        var x = Spawn(async () => await b.WaitAsync());
        await Yield();
        Assert.Equal(1, b.WaitingCount);
        await b.WaitAsync();
        Assert.Equal(0, b.WaitingCount);
        await x;
        var y = Spawn(async () => await b.WaitAsync());
        await Yield();
        b.Reset();
        Assert.Equal(0, b.WaitingCount);
        await Assert.ThrowsAsync<BrokenBarrierError>(async () => await y);
        Assert.Equal(0, b.WaitingCount);
        Assert.False(b.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "locks.Barrier.wait: cancelled arrival (last to be released) after the barrier opened returns nothing broken")]
    public void Barrier_WokenThenCancelled_OthersUnaffected_NextRoundWorks() => AioTest.Run(async () =>
    {
        var b = new AsyncBarrier(2);
        var x = Spawn(async () => await b.WaitAsync());
        await Yield();
        Assert.Equal(1, await b.WaitAsync()); // x woken
        x.Cancel();
        await AssertCancelled(x);
        Assert.False(b.IsBroken);
        var y = Spawn(async () => await b.WaitAsync());
        await Yield(2);
        Assert.Equal(1, b.WaitingCount);
        Assert.Equal(1, await b.WaitAsync());
        Assert.Equal(0, await y);
    });

    // ---------------------------------------------------------------- Queues

    [Fact]
    [Trait("asyncio", "queues.Queue.put_nowait: shutdown checked before full")]
    public void Queue_PutNowaitFullAndShutDown_ThrowsShutDown() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        q.Shutdown();
        Assert.Throws<QueueShutDownError>(() => q.PutNowait(2));
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.PutAsync(2));
        Assert.Equal(1, await q.GetAsync());
        Assert.Throws<QueueShutDownError>(() => q.GetNowait());
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
    });

    [Fact]
    [Trait("asyncio", "queues.Queue.get_nowait: empty and not shut down -> QueueEmpty")]
    public void Queue_GetNowaitEmpty_QueueEmpty_ThenShutDown() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        Assert.Throws<QueueEmptyError>(() => q.GetNowait());
        q.Shutdown(immediate: true);
        Assert.Throws<QueueShutDownError>(() => q.GetNowait());
        await Task.CompletedTask;
    });

    [Fact]
    [Trait("asyncio", "test_shutdown_immediate_with_unfinished")]
    public void Queue_ImmediateShutdownWithUnfinished_JoinWaitsForTaskDone() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1); q.PutNowait(2);
        Assert.Equal(1, q.GetNowait());
        var join = Spawn(async () => await q.JoinAsync());
        await Yield();
        q.Shutdown(immediate: true);
        Assert.True(q.IsEmpty);
        await Yield(2);
        Assert.False(join.IsDone);
        q.TaskDone();
        await join;
        Assert.Throws<InvalidOperationException>(() => q.TaskDone());
    });

    [Fact]
    [Trait("asyncio", "queues.Queue.shutdown(immediate): item put for a woken getter is drained; the getter raises")]
    public void Queue_ImmediateShutdownAfterItemHandedToGetter_GetterRaises_JoinEnds() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var g = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(7);
        var join = Spawn(async () => await q.JoinAsync());
        q.Shutdown(immediate: true);
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await g);
        await join;
        Assert.Throws<InvalidOperationException>(() => q.TaskDone());
    });

    [Fact]
    [Trait("asyncio", "queues.Queue.put: putter woken by get_nowait, queue shut down before it resumes -> QueueShutDown, nothing put")]
    public void Queue_WokenPutterThenShutdown_RaisesAndPutsNothing() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        var p = Spawn(async () => await q.PutAsync(2));
        await Yield();
        Assert.Equal(1, q.GetNowait()); // p woken
        q.Shutdown();
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await p);
        Assert.True(q.IsEmpty);
        Assert.Equal(0, q.Count);
        q.TaskDone();
        Assert.Throws<InvalidOperationException>(() => q.TaskDone());
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
    });

    [Fact]
    [Trait("asyncio", "test_shutdown_putter_immediate / queues.Queue.put loop")]
    public void Queue_ImmediateShutdownWithPutters_PuttersRaise_ItemsDrained() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(2);
        q.PutNowait(1); q.PutNowait(2);
        var p1 = Spawn(async () => await q.PutAsync(3));
        var p2 = Spawn(async () => await q.PutAsync(4));
        await Yield();
        q.Shutdown(immediate: true);
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await p1);
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await p2);
        Assert.Equal(0, q.Count);
        await q.JoinAsync();
    });

    [Fact]
    [Trait("asyncio", "queues.Queue.shutdown: all waiting getters raise on an empty queue")]
    public void Queue_PlainShutdownManyGetters_AllRaise() => AioTest.Run(async () =>
    {
        var q = new AsyncLifoQueue<string>();
        var gs = Enumerable.Range(0, 3).Select(_ => Spawn(async () => await q.GetAsync())).ToArray();
        await Yield();
        q.Shutdown();
        foreach (var g in gs) await Assert.ThrowsAsync<QueueShutDownError>(async () => await g);
    });

    [Fact]
    [Trait("asyncio", "queues.LifoQueue: woken getter takes the top at resumption")]
    public void LifoQueue_TwoPutsBeforeGetterResumes_GetterGetsNewest() => AioTest.Run(async () =>
    {
        var q = new AsyncLifoQueue<int>();
        var g = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(1);
        q.PutNowait(2);
        Assert.Equal(2, await g);
        Assert.Equal(1, q.GetNowait());
    });

    [Fact]
    [Trait("asyncio", "queues.PriorityQueue: woken getter takes the smallest at resumption")]
    public void PriorityQueue_PutsBeforeGetterResumes_GetterGetsSmallest() => AioTest.Run(async () =>
    {
        var q = new AsyncPriorityQueue<int>();
        var g = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(5);
        q.PutNowait(1);
        q.PutNowait(3);
        Assert.Equal(1, await g);
        Assert.Equal(3, q.GetNowait());
        Assert.Equal(5, q.GetNowait());
    });

    [Fact]
    [Trait("asyncio", "test_blocking_put_wait (priority, bounded): putter waits, get frees a slot")]
    public void PriorityQueue_Bounded_PutterWaitsThenPuts() => AioTest.Run(async () =>
    {
        var q = new AsyncPriorityQueue<int>(2);
        q.PutNowait(4); q.PutNowait(2);
        Assert.True(q.IsFull);
        Assert.Throws<QueueFullError>(() => q.PutNowait(1));
        var p = Spawn(async () => await q.PutAsync(1));
        await Yield();
        Assert.False(p.IsDone);
        Assert.Equal(2, await q.GetAsync());
        await p;
        Assert.Equal(1, await q.GetAsync());
        Assert.Equal(4, await q.GetAsync());
    });

    [Fact]
    [Trait("asyncio", "test_task_done_underflow / join with no items")]
    public void Queue_TaskDoneUnderflowOnFresh_JoinImmediate() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        Assert.Throws<InvalidOperationException>(() => q.TaskDone());
        await q.JoinAsync();
        q.PutNowait(1);
        var j = Spawn(async () => await q.JoinAsync());
        await Yield();
        q.GetNowait();
        Assert.False(j.IsDone);
        q.TaskDone();
        await j;
    });

    [Fact]
    [Trait("asyncio", "queues.Queue.join: put after task_done brought the count to zero re-arms join")]
    public void Queue_JoinRearmsAfterNewPut() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        q.GetNowait();
        q.TaskDone();
        await q.JoinAsync();
        q.PutNowait(2);
        var j = Spawn(async () => await q.JoinAsync());
        await Yield(2);
        Assert.False(j.IsDone);
        q.GetNowait();
        q.TaskDone();
        await j;
    });

    [Fact]
    [Trait("asyncio", "test_float_maxsize / maxsize <= 0 unbounded")]
    public void Queue_NegativeMaxsize_NeverFull() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(-1);
        for (int i = 0; i < 100; i++) await q.PutAsync(i);
        Assert.False(q.IsFull);
        Assert.Equal(100, q.Count);
        Assert.Equal(-1, q.MaxSize);
    });

    [Fact]
    [Trait("asyncio", "test_get_cancel_drop_one_pending_reader")]
    public void Queue_GetterCancelledBeforeItem_ItemGoesToNextGetterInOrder() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var g1 = Spawn(async () => await q.GetAsync());
        var g2 = Spawn(async () => await q.GetAsync());
        var g3 = Spawn(async () => await q.GetAsync());
        await Yield();
        g1.Cancel();
        await AssertCancelled(g1);
        q.PutNowait(10);
        q.PutNowait(20);
        Assert.Equal(10, await g2);
        Assert.Equal(20, await g3);
    });

    [Fact]
    [Trait("asyncio", "test_shutdown_get_task_done_join: plain shutdown, join after gets and task_done")]
    public void Queue_PlainShutdown_GetsThenTaskDone_JoinReturns() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(2);
        q.PutNowait(1); q.PutNowait(2);
        var join = Spawn(async () => await q.JoinAsync());
        q.Shutdown();
        Assert.Equal(1, await q.GetAsync());
        q.TaskDone();
        Assert.Equal(2, await q.GetAsync());
        Assert.False(join.IsDone);
        q.TaskDone();
        await join;
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
    });

    [Fact]
    [Trait("asyncio", "queues.Queue.shutdown: repeated shutdown, then immediate drains")]
    public void Queue_ShutdownThenImmediate_Drains() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1); q.PutNowait(2);
        q.Shutdown();
        q.Shutdown();
        Assert.Equal(2, q.Count);
        q.Shutdown(immediate: true);
        Assert.Equal(0, q.Count);
        await q.JoinAsync();
        Assert.Throws<QueueShutDownError>(() => q.GetNowait());
    });

    [Fact]
    [Trait("asyncio", "test_put_cancelled_race: woken putter cancelled, next putter puts")]
    public void Queue_WokenPutterCancelled_NextPutterPuts() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(0);
        var p1 = Spawn(async () => await q.PutAsync(1));
        var p2 = Spawn(async () => await q.PutAsync(2));
        await Yield();
        Assert.Equal(0, q.GetNowait());
        p1.Cancel();
        await AssertCancelled(p1);
        await p2;
        Assert.Equal(2, q.GetNowait());
        Assert.True(q.IsEmpty);
    });
}
