using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Sync;

/// <summary>asyncio's Semaphore behaviours (CPython test_locks.SemaphoreTests), on <see cref="AsyncSemaphore"/>.</summary>
public class AsyncSemaphoreTests
{
    [Fact]
    [Trait("asyncio", "test_initial_value_zero")]
    public void New_ValueZero_IsLocked() => Assert.True(new AsyncSemaphore(0).IsLocked);

    [Fact]
    [Trait("asyncio", "test_semaphore")]
    public void New_DefaultValue_IsOneAndUnlocked()
    {
        var sem = new AsyncSemaphore();
        Assert.Equal(1, sem.Value);
        Assert.False(sem.IsLocked);
    }

    [Fact]
    [Trait("asyncio", "test_semaphore_value")]
    public void New_NegativeValue_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncSemaphore(-1));

    [Fact]
    [Trait("asyncio", "test_acquire")]
    public void Acquire_MorePermitsThanFree_WaitersResumeAsPermitsAreReleased() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(3);
        var result = new List<int>();
        await sem.AcquireAsync();
        await sem.AcquireAsync();
        Assert.False(sem.IsLocked);
        AioTask C(int k) => Spawn(async () => { await sem.AcquireAsync(); result.Add(k); });
        var t1 = C(1);
        var t2 = C(2);
        var t3 = C(3);
        await Yield();
        Assert.Equal([1], result);
        Assert.True(sem.IsLocked);
        Assert.Equal(2, sem.WaiterCount);
        Assert.Equal(0, sem.Value);

        var t4 = C(4);
        sem.Release();
        sem.Release();
        Assert.Equal(0, sem.Value);
        await Yield();
        Assert.Equal(0, sem.Value);
        Assert.Equal(3, result.Count);
        Assert.True(sem.IsLocked);
        Assert.Equal(1, sem.WaiterCount);
        Assert.Equal([1, 2, 3], result); // FIFO: t4 arrived last

        sem.Release();
        await t4;
        await t1;
        await t2;
        await t3;
    });

    [Fact]
    [Trait("asyncio", "test_acquire_cancel")]
    public void Acquire_Cancelled_LeavesWaitListAtOnce() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore();
        await sem.AcquireAsync();
        var acquire = Spawn(async () => { await sem.AcquireAsync(); });
        await Yield();
        Assert.Equal(1, sem.WaiterCount);
        acquire.Cancel();
        Assert.Equal(0, sem.WaiterCount); // at once, before the task resumes
        await AssertCancelled(acquire);
        Assert.Equal(0, sem.Value);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_cancel_before_awoken")]
    public void Acquire_TwoCancelledBeforeARelease_PermitGoesToTheFirstLiveWaiter() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(0);
        var t1 = Spawn(async () => { await sem.AcquireAsync(); });
        var t2 = Spawn(async () => { await sem.AcquireAsync(); });
        var t3 = Spawn(async () => { await sem.AcquireAsync(); });
        var t4 = Spawn(async () => { await sem.AcquireAsync(); });
        await Yield();
        t1.Cancel();
        t2.Cancel();
        sem.Release();
        await Yield(2);
        Assert.True(t3.IsDone);
        Assert.False(t4.IsDone);
        t4.Cancel();
        await AssertCancelled(t1);
        await AssertCancelled(t2);
        await AssertCancelled(t4);
        Assert.Equal(0, sem.Value);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_hang")]
    public void Acquire_FirstCancelledAsAPermitArrives_SecondStillAcquires() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(0);
        var t1 = Spawn(async () => { await sem.AcquireAsync(); });
        var t2 = Spawn(async () => { await sem.AcquireAsync(); });
        await Yield();
        t1.Cancel();
        sem.Release();
        await Yield(2);
        Assert.True(sem.IsLocked);
        await t2;
        await AssertCancelled(t1);
    });

    [Fact]
    public void Acquire_CancelledAfterWakeup_PermitGoesToTheNextWaiter() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(0);
        var t1 = Spawn(async () => { await sem.AcquireAsync(); });
        var t2 = Spawn(async () => { await sem.AcquireAsync(); });
        await Yield();
        sem.Release();   // handed to t1, which has not resumed
        t1.Cancel();     // t1 gives it back; t2 gets it
        await AssertCancelled(t1);
        await t2;
        Assert.Equal(0, sem.Value);
        sem.Release();
        Assert.Equal(1, sem.Value);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_no_hang")]
    public void Acquire_HolderCancelledWhileAnotherWaits_SemaphoreStillUsable() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(1);
        AioTask? t2 = null;
        var t1 = Spawn(async () =>
        {
            using (await sem.AcquireAsync())
            {
                await Yield();
            }
            t2!.Cancel();
        });
        t2 = Spawn(async () =>
        {
            using (await sem.AcquireAsync())
            {
                Assert.Fail("must not acquire");
            }
        });
        await t1;
        await AssertCancelled(t2);
        await Aio.Timeout(1.0, async () => await sem.AcquireAsync());
    });

    [Fact]
    [Trait("asyncio", "test_release_no_waiters")]
    public void Release_NoWaiters_Unlocks() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore();
        await sem.AcquireAsync();
        Assert.True(sem.IsLocked);
        sem.Release();
        Assert.False(sem.IsLocked);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_fifo_order")]
    public void Acquire_ReacquiringTasks_KeepFifoOrder() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(1);
        var result = new List<string>();
        async Task Coro(string tag)
        {
            await sem.AcquireAsync();
            result.Add($"{tag}_1");
            await Aio.Sleep(0.01);
            sem.Release();
            await sem.AcquireAsync();
            result.Add($"{tag}_2");
            await Aio.Sleep(0.01);
            sem.Release();
        }
        await TaskGroup.Run(tg =>
        {
            tg.CreateTask(() => Coro("c1"));
            tg.CreateTask(() => Coro("c2"));
            tg.CreateTask(() => Coro("c3"));
            return Task.CompletedTask;
        });
        Assert.Equal(["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"], result);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_fifo_order_2")]
    public void Acquire_ReleaseThenAcquireAgain_GoesBehindTheQueue() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(1);
        var result = new List<int>();
        var t1 = Spawn(async () => { await sem.AcquireAsync(); result.Add(1); });
        var t2 = Spawn(async () =>
        {
            await sem.AcquireAsync();
            result.Add(2);
            sem.Release();
            await sem.AcquireAsync();
            result.Add(4);
        });
        var t3 = Spawn(async () => { await sem.AcquireAsync(); result.Add(3); });
        await Yield();
        sem.Release();
        sem.Release();
        await t1;
        await t2;
        await t3;
        Assert.Equal([1, 2, 3, 4], result);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_fifo_order_3")]
    public void Acquire_CancelledWaiterAtTheHead_OthersKeepTheirOrder() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(0);
        var result = new List<int>();
        AioTask C(int k) => Spawn(async () => { await sem.AcquireAsync(); result.Add(k); });
        var t1 = C(1);
        var t2 = C(2);
        var t3 = C(3);
        await Yield();
        t1.Cancel();
        await Yield();
        sem.Release();
        sem.Release();
        await AssertCancelled(t1);
        await t2;
        await t3;
        Assert.Equal([2, 3], result);
    });

    [Fact]
    [Trait("asyncio", "test_acquire_fifo_order_4")]
    public void Acquire_WhileAWokenWaiterHasNotResumed_NewAcquirerWaits() => AioTest.Run(async () =>
    {
        // asyncio 3.11+ fairness: permits released while the first waiter is woken but not resumed do
        // not let a new acquirer barge in; the woken waiter wakes the ones queued behind it.
        var sem = new AsyncSemaphore(0);
        var result = new List<int>();
        AioTask? t4 = null;
        var t1 = Spawn(async () =>
        {
            Assert.Equal(0, sem.Value);
            await sem.AcquireAsync();
            Assert.Equal(0, sem.Value);
            t4 = Spawn(async () => { result.Add(4); await Task.CompletedTask; });
            result.Add(1);
        });
        var t2 = Spawn(async () =>
        {
            sem.Release();
            sem.Release();
            sem.Release();
            Assert.Equal(2, sem.Value);
            Assert.True(sem.IsLocked); // t1 has not resumed yet
            await sem.AcquireAsync();
            result.Add(2);
        });
        var t3 = Spawn(async () =>
        {
            await sem.AcquireAsync();
            Assert.True(sem.IsLocked);
            result.Add(3);
        });
        await Yield();
        Assert.Equal(2, sem.Value);
        await t1;
        await t2;
        await t3;
        await t4!;
        Assert.Equal([1, 2, 3, 4], result);
    });

    [Fact]
    public void Acquire_ScopedForm_ReleasesOnDispose() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(2);
        using (await sem.AcquireAsync())
        {
            Assert.Equal(1, sem.Value);
        }
        Assert.Equal(2, sem.Value);
    });

    [Fact]
    public void TryAcquire_RespectsFairness() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(1);
        Assert.True(sem.TryAcquire());
        Assert.False(sem.TryAcquire());
        var t = Spawn(async () => { await sem.AcquireAsync(); });
        await Yield();
        sem.Release();             // handed to t
        Assert.False(sem.TryAcquire());
        await t;
    });

    [Fact]
    public void Acquire_TokenCancelled_LeavesWithoutAPermit() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore(0);
        using var cts = new CancellationTokenSource();
        var t1 = Spawn(async () => { await sem.AcquireAsync(cts.Token); });
        var t2 = Spawn(async () => { await sem.AcquireAsync(); });
        await Yield();
        await Task.Run(cts.Cancel);
        await Assert.ThrowsAsync<CancelledError>(async () => await t1);
        Assert.Equal(1, sem.WaiterCount);
        sem.Release();
        await t2;
        Assert.Equal(0, sem.Value);
    });

    [Fact]
    public void ToString_DescribesState() => AioTest.Run(async () =>
    {
        var sem = new AsyncSemaphore();
        Assert.Equal("<AsyncSemaphore [unlocked, value:1]>", sem.ToString());
        await sem.AcquireAsync();
        Assert.Equal("<AsyncSemaphore [locked]>", sem.ToString());
    });
}

/// <summary>asyncio's BoundedSemaphore behaviours, on <see cref="AsyncBoundedSemaphore"/>.</summary>
public class AsyncBoundedSemaphoreTests
{
    [Fact]
    [Trait("asyncio", "test_release_not_acquired")]
    public void Release_AboveTheInitialValue_Throws()
    {
        var sem = new AsyncBoundedSemaphore();
        var e = Assert.Throws<SemaphoreFullException>(sem.Release);
        Assert.Contains("released too many times", e.Message);
        Assert.Equal(1, sem.Value);
    }

    [Fact]
    public void Release_AfterAcquire_Allowed() => AioTest.Run(async () =>
    {
        var sem = new AsyncBoundedSemaphore(2);
        await sem.AcquireAsync();
        sem.Release();
        Assert.Equal(2, sem.Value);
        Assert.Throws<SemaphoreFullException>(sem.Release);
    });

    [Fact]
    public void Release_WithWaiters_HandsThePermitOn() => AioTest.Run(async () =>
    {
        var sem = new AsyncBoundedSemaphore(1);
        await sem.AcquireAsync();
        var t = Spawn(async () => { using (await sem.AcquireAsync()) { } });
        await Yield();
        sem.Release();
        await t;
        Assert.Equal(1, sem.Value);
        Assert.Equal("<AsyncBoundedSemaphore [unlocked, value:1]>", sem.ToString());
    });

    [Fact]
    public void Releaser_DisposedTwice_ReleasesOnePermit() => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(1);
        var r = await s.AcquireAsync();
        Assert.Equal(0, s.Value);
        r.Dispose();
        r.Dispose();   // IDisposable's rule: a second dispose does nothing
        Assert.Equal(1, s.Value);
        using (await s.AcquireAsync()) Assert.Equal(0, s.Value);
        Assert.Equal(1, s.Value);
    });

    [Fact]
    public void Releaser_DisposeRefusedFromAnotherThread_CanBeRetriedOnTheLoop() => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(1);
        await s.AcquireAsync();
        var waiter = Aio.CreateTask(async () => { using (await s.AcquireAsync()) { } });   // binds the semaphore
        await Aio.Sleep(0);
        s.Release();
        await waiter;
        var r = await s.AcquireAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => Task.Run(() => r.Dispose()));
        Assert.Equal(0, s.Value);   // the refused dispose released nothing, and kept the releaser
        r.Dispose();
        Assert.Equal(1, s.Value);
    });
}
