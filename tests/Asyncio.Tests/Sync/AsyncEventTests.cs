using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Sync;

/// <summary>asyncio's Event behaviours (CPython test_locks.EventTests), on <see cref="AsyncEvent"/>.</summary>
public class AsyncEventTests
{
    [Fact]
    [Trait("asyncio", "test_wait")]
    public void Set_WakesEveryWaiter_InTheOrderTheyWaited() => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        Assert.False(ev.IsSet);
        var result = new List<int>();
        AioTask C(int k) => Spawn(async () => { await ev.WaitAsync(); result.Add(k); });
        var t1 = C(1);
        var t2 = C(2);
        await Yield();
        Assert.Empty(result);
        var t3 = C(3); // starts after the set: finds the event set at once
        ev.Set();
        await Yield();
        Assert.Equal([3, 1, 2], result);
        await t1;
        await t2;
        await t3;
    });

    [Fact]
    [Trait("asyncio", "test_wait_on_set")]
    public void WaitAsync_AlreadySet_CompletesAtOnce() => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        ev.Set();
        var vt = ev.WaitAsync();
        Assert.True(vt.IsCompletedSuccessfully);
        await vt;
    });

    [Fact]
    [Trait("asyncio", "test_wait_cancel")]
    public void Wait_Cancelled_LeavesWaitListAtOnce() => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        var t = Spawn(async () => { await ev.WaitAsync(); });
        await Yield();
        Assert.Equal(1, ev.WaiterCount);
        t.Cancel();
        Assert.Equal(0, ev.WaiterCount);
        await AssertCancelled(t);
    });

    [Fact]
    [Trait("asyncio", "test_clear")]
    public void Clear_AfterSet_Unsets()
    {
        var ev = new AsyncEvent();
        ev.Set();
        Assert.True(ev.IsSet);
        ev.Clear();
        Assert.False(ev.IsSet);
    }

    [Fact]
    [Trait("asyncio", "test_clear_with_waiters")]
    public void Set_ClearedBeforeWaitersResume_WaitersStillWake() => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        var result = new List<int>();
        var t = Spawn(async () => { await ev.WaitAsync(); result.Add(1); });
        await Yield();
        ev.Set();
        ev.Clear();
        Assert.False(ev.IsSet);
        ev.Set();
        ev.Set();
        await Yield();
        Assert.Equal([1], result);
        Assert.Equal(0, ev.WaiterCount);
        await t;
    });

    [Fact]
    public void Set_WaiterCancelledBeforeItResumes_OtherWaitersStillWake() => AioTest.Run(async () =>
    {
        // asyncio: a set wakes every waiter, including one that is then cancelled (nothing to pass on).
        var ev = new AsyncEvent();
        var woke = new List<int>();
        var t1 = Spawn(async () => { await ev.WaitAsync(); woke.Add(1); });
        var t2 = Spawn(async () => { await ev.WaitAsync(); woke.Add(2); });
        await Yield();
        ev.Set();
        t1.Cancel();
        await AssertCancelled(t1);
        await t2;
        Assert.Equal([2], woke);
        Assert.True(ev.IsSet);
    });

    [Fact]
    public void Wait_TokenCancelled_ThrowsCancelledErrorAndLeaves() => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        using var cts = new CancellationTokenSource();
        var t = Spawn(async () =>
        {
            var e = await Assert.ThrowsAsync<CancelledError>(async () => await ev.WaitAsync(cts.Token));
            Assert.Equal(cts.Token, e.CancellationToken);
        });
        await Yield();
        Assert.Equal(1, ev.WaiterCount);
        cts.CancelAfter(TimeSpan.FromMilliseconds(1)); // fires on a timer thread
        await t;
        Assert.Equal(0, ev.WaiterCount);
    });

    [Fact]
    public void Wait_TokenCancelledButAlreadySet_FailsWithTheToken() => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        ev.Set();
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await ev.WaitAsync(new CancellationToken(true)));
        Assert.True(e.CancellationToken.IsCancellationRequested);
    });

    [Fact]
    public void Set_FromAnotherThreadWithWaiters_ThrowsAndLosesNothing() => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        var t = Spawn(async () => { await ev.WaitAsync(); });
        await Yield();
        await Assert.ThrowsAsync<InvalidOperationException>(() => Task.Run(ev.Set));
        Assert.False(ev.IsSet);
        Assert.Equal(1, ev.WaiterCount);
        ev.Set();
        await t;
    });

    [Fact]
    public void ToString_DescribesState() => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        Assert.Equal("<AsyncEvent [unset]>", ev.ToString());
        var t = Spawn(async () => { await ev.WaitAsync(); });
        await Yield();
        Assert.Equal("<AsyncEvent [unset, waiters:1]>", ev.ToString());
        ev.Set();
        Assert.Equal("<AsyncEvent [set]>", ev.ToString());
        await t;
    });
}
