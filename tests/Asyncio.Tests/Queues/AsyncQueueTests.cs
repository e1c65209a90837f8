using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Queues;

/// <summary>asyncio's Queue behaviours (CPython test_queues), on <see cref="AsyncQueue{T}"/>.</summary>
public class AsyncQueueTests
{
    // ---- basics ----

    [Fact]
    [Trait("asyncio", "test_empty")]
    public void IsEmpty_FollowsPutAndGet()
    {
        var q = new AsyncQueue<int>();
        Assert.True(q.IsEmpty);
        q.PutNowait(1);
        Assert.False(q.IsEmpty);
        Assert.Equal(1, q.GetNowait());
        Assert.True(q.IsEmpty);
    }

    [Fact]
    [Trait("asyncio", "test_full")]
    public void IsFull_BoundedQueue_TrueAtMaxSize()
    {
        var q = new AsyncQueue<int>();
        Assert.False(q.IsFull);
        var b = new AsyncQueue<int>(maxSize: 1);
        b.PutNowait(1);
        Assert.True(b.IsFull);
    }

    [Fact]
    [Trait("asyncio", "test_maxsize")]
    public void MaxSize_ZeroOrLess_IsUnbounded()
    {
        Assert.Equal(0, new AsyncQueue<int>().MaxSize);
        var q = new AsyncQueue<int>(-1);
        for (int i = 0; i < 1000; i++) q.PutNowait(i);
        Assert.False(q.IsFull);
        Assert.Equal(1000, q.Count);
    }

    [Fact]
    [Trait("asyncio", "test_order")]
    public void Get_ReturnsItemsInFifoOrder() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        foreach (var i in new[] { 1, 3, 2 }) q.PutNowait(i);
        var items = new List<int>();
        for (int i = 0; i < 3; i++) items.Add(await q.GetAsync());
        Assert.Equal([1, 3, 2], items);
    });

    [Fact]
    [Trait("asyncio", "test_nonblocking_get_exception")]
    public void GetNowait_Empty_ThrowsQueueEmpty()
    {
        var q = new AsyncQueue<int>();
        Assert.Throws<QueueEmptyError>(() => q.GetNowait());
        Assert.False(q.TryGet(out _));
    }

    [Fact]
    [Trait("asyncio", "test_nonblocking_put_exception")]
    public void PutNowait_Full_ThrowsQueueFull()
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        Assert.Throws<QueueFullError>(() => q.PutNowait(2));
        Assert.False(q.TryPut(2));
        Assert.Equal(1, q.Count);
    }

    [Fact]
    [Trait("asyncio", "test_maxsize")]
    public void Put_BoundedQueue_WaitsForAFreeSlot() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(maxSize: 2);
        Assert.Equal(2, q.MaxSize);
        var have = new List<int>();
        var putter = Spawn(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                await q.PutAsync(i);
                have.Add(i);
            }
        });
        await Yield();
        Assert.Equal([0, 1], have);
        Assert.Equal(0, await q.GetAsync());
        await putter;
        Assert.Equal([0, 1, 2], have);
        Assert.True(q.IsFull);
    });

    [Fact]
    [Trait("asyncio", "test_blocking_get")]
    public void Get_Empty_WaitsForAPut() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<string>();
        var getter = Spawn(async () => await q.GetAsync());
        await Yield();
        Assert.Equal(1, q.GetterCount);
        await q.PutAsync("x");
        Assert.Equal("x", await getter);
        Assert.True(q.IsEmpty);
    });

    [Fact]
    [Trait("asyncio", "test_get_with_putters")]
    public void Get_FullQueueWithAPutter_ThePutterPutsItsItem() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        var putter = Spawn(async () => { await q.PutAsync(2); });
        await Yield();
        Assert.Equal(1, q.PutterCount);
        Assert.Equal(1, q.GetNowait());
        await putter;
        Assert.Equal(2, q.GetNowait());
    });

    [Fact]
    [Trait("asyncio", "test_why_are_getters_waiting")]
    public void Get_ManyGettersAndPutters_AllItemsDelivered() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(2);
        var got = new List<int>();
        var consumers = Enumerable.Range(0, 3).Select(_ => Spawn(async () => { for (int i = 0; i < 5; i++) got.Add(await q.GetAsync()); })).ToList();
        var producers = Enumerable.Range(0, 3).Select(p => Spawn(async () => { for (int i = 0; i < 5; i++) await q.PutAsync(p * 10 + i); })).ToList();
        foreach (var t in producers.Concat(consumers)) await t;
        Assert.Equal(15, got.Count);
        Assert.Equal(Enumerable.Range(0, 3).SelectMany(p => Enumerable.Range(0, 5).Select(i => p * 10 + i)).Order(), got.Order());
        Assert.True(q.IsEmpty);
    });

    // ---- fairness and claims ----

    [Fact]
    public void Put_WithAWaitingGetter_ItemIsPromisedToIt() => AioTest.Run(async () =>
    {
        // Differences from asyncio: the woken getter keeps its item; a later arrival cannot take it.
        var q = new AsyncQueue<int>();
        var getter = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(7);
        Assert.True(q.IsEmpty);
        Assert.Equal(0, q.Count);
        Assert.False(q.TryGet(out _));
        Assert.Equal(7, await getter);
    });

    [Fact]
    public void Get_WaitersServedInFifoOrder() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var order = new List<int>();
        var getters = Enumerable.Range(0, 3).Select(k => Spawn(async () => { await q.GetAsync(); order.Add(k); })).ToList();
        await Yield();
        for (int i = 0; i < 3; i++) q.PutNowait(i);
        foreach (var t in getters) await t;
        Assert.Equal([0, 1, 2], order);
    });

    [Fact]
    public void Put_WaitersServedInFifoOrder() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(-1);
        var putters = Enumerable.Range(0, 3).Select(k => Spawn(async () => { await q.PutAsync(k); })).ToList();
        await Yield();
        var items = new List<int>();
        for (int i = 0; i < 4; i++) items.Add(await q.GetAsync());
        Assert.Equal([-1, 0, 1, 2], items);
        foreach (var t in putters) await t;
    });

    // ---- cancellation: nothing lost ----

    [Fact]
    [Trait("asyncio", "test_cancelled_getters_not_being_held_in_self_getters")]
    public void Get_Cancelled_LeavesTheGetterListAtOnce() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        var t = Spawn(async () => await q.GetAsync());
        await Yield();
        Assert.Equal(1, q.GetterCount);
        t.Cancel();
        Assert.Equal(0, q.GetterCount);
        await AssertCancelled(t);
    });

    [Fact]
    public void Get_WaitersCancelledAtEitherEnd_TheOthersAreServedInArrivalOrder() => AioTest.Run(async () =>
    {
        // The wait list stores no tail while it holds one waiter: cancelling its last or first waiter, and
        // appending after either, must keep the order.
        var q = new AsyncQueue<int>();
        var g1 = Spawn(async () => await q.GetAsync());
        await Yield();
        var g2 = Spawn(async () => await q.GetAsync());
        await Yield();
        g2.Cancel();                                     // the last of two
        var g3 = Spawn(async () => await q.GetAsync());  // appended behind g1
        await Yield();
        g1.Cancel();                                     // the first: g3 alone is left
        var g4 = Spawn(async () => await q.GetAsync());  // appended behind g3
        await Yield();
        Assert.Equal(2, q.GetterCount);
        q.PutNowait(1);
        q.PutNowait(2);
        Assert.Equal(1, await g3);
        Assert.Equal(2, await g4);
        await AssertCancelled(g1);
        await AssertCancelled(g2);
        var g5 = Spawn(async () => await q.GetAsync());  // alone, then cancelled: the list is empty again
        await Yield();
        g5.Cancel();
        Assert.Equal(0, q.GetterCount);
        var g6 = Spawn(async () => await q.GetAsync());
        var g7 = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(3);
        q.PutNowait(4);
        Assert.Equal(3, await g6);
        Assert.Equal(4, await g7);
        await AssertCancelled(g5);
    });

    [Fact]
    [Trait("asyncio", "test_cancelled_puts_not_being_held_in_self_putters")]
    public void Put_Cancelled_LeavesThePutterListAndPutsNothing() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        var t = Spawn(async () => { await q.PutAsync(2); });
        await Yield();
        Assert.Equal(1, q.PutterCount);
        t.Cancel();
        Assert.Equal(0, q.PutterCount);
        await AssertCancelled(t);
        Assert.Equal(1, q.GetNowait());
        Assert.True(q.IsEmpty);
    });

    [Fact]
    [Trait("asyncio", "test_get_cancelled_race")]
    public void Get_CancelledAfterAnItemWasPromisedToIt_ItemGoesToTheNextGetter() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<string>();
        var t1 = Spawn(async () => await q.GetAsync());
        var t2 = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait("a");  // promised to t1, which has not resumed
        t1.Cancel();       // t1 gives it to t2
        await AssertCancelled(t1);
        Assert.Equal("a", await t2);
        Assert.True(q.IsEmpty);
    });

    [Fact]
    public void Get_CancelledAfterAnItemWasPromisedToIt_NoOtherGetter_ItemStaysInTheQueue() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<string>();
        var t1 = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait("a");
        q.PutNowait("b");
        t1.Cancel();
        await AssertCancelled(t1);
        Assert.Equal(2, q.Count);
        Assert.Equal("a", q.GetNowait());   // order kept
        Assert.Equal("b", q.GetNowait());
    });

    [Fact]
    [Trait("asyncio", "test_get_cancel_drop_many_pending_readers")]
    public void Get_OneOfTwoGettersPromisedAnItemCancelled_TheWaitingThirdGetsIt() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var r1 = Spawn(async () => await q.GetAsync());
        var r2 = Spawn(async () => await q.GetAsync());
        var r3 = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(1);   // promised to r1
        q.PutNowait(2);   // promised to r2; r3 still waits
        r1.Cancel();      // r1's item goes to r3
        await AssertCancelled(r1);
        Assert.Equal(new[] { 1, 2 }, new[] { await r2, await r3 }.Order());
        Assert.True(q.IsEmpty);
        Assert.Equal(0, q.GetterCount);
    });

    [Theory]
    [Trait("asyncio", "test_cancelled_put_silence_value_error_exception")]
    [Trait("asyncio", "test_put_cancel_drop")]
    [InlineData(true)]
    [InlineData(false)]
    public void Put_CancelledAfterASlotWasPromisedToIt_SlotGoesToTheNextPutterOrStaysFree(bool anotherPutterWaits) => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(0);
        var t1 = Spawn(async () => { await q.PutAsync(1); });
        var t2 = anotherPutterWaits ? Spawn(async () => { await q.PutAsync(2); }) : null;
        await Yield();
        Assert.Equal(0, q.GetNowait()); // the slot is promised to t1
        t1.Cancel();                     // t1 passes it on; its own item is not put
        await AssertCancelled(t1);
        if (t2 != null) await t2;
        else
        {
            Assert.False(q.IsFull);      // the slot is free again: a put takes it at once
            var put = q.PutAsync(2);
            Assert.True(put.IsCompletedSuccessfully);
            await put;
        }
        Assert.Equal(2, q.GetNowait());
        Assert.True(q.IsEmpty);
        Assert.Equal(2, q.Unfinished);   // 0 and 2 were put; 1 never was
    });

    [Fact]
    [Trait("asyncio", "test_put_cancelled_race")]
    public void Put_LastWaitingPutterCancelled_TheOtherPutsInTurn() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<string>(1);
        var putA = Spawn(async () => { await q.PutAsync("a"); });
        var putB = Spawn(async () => { await q.PutAsync("b"); });
        var putC = Spawn(async () => { await q.PutAsync("X"); });
        await Yield();
        Assert.True(putA.IsDone);
        Assert.False(putB.IsDone);
        putC.Cancel();
        await AssertCancelled(putC);
        Assert.Equal(1, q.PutterCount);
        Assert.Equal("a", q.GetNowait());
        await putB;
        Assert.Equal("b", q.GetNowait());
        Assert.True(q.IsEmpty);
        Assert.Equal(0, q.PutterCount);
    });

    [Fact]
    [Trait("asyncio", "test_why_are_putters_waiting")]
    public void GetNowait_TwiceInARowWithTwoPuttersWaiting_BothPut() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(2);
        var putters = Enumerable.Range(0, 4).Select(k => Spawn(async () => { await q.PutAsync(k); })).ToList();
        await Yield();
        Assert.Equal(2, q.PutterCount);
        Assert.Equal(0, q.GetNowait()); // a slot for the first waiting putter
        Assert.Equal(1, q.GetNowait()); // and one for the second
        Assert.Equal(0, q.PutterCount);
        foreach (var p in putters) await p;
        Assert.Equal(2, q.GetNowait());
        Assert.Equal(3, q.GetNowait());
    });

    [Fact]
    public void Get_TokenCancelled_ItemLaterPutStaysForTheNextGetter() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        using var cts = new CancellationTokenSource();
        var t = Spawn(async () =>
        {
            var e = await Assert.ThrowsAsync<CancelledError>(async () => await q.GetAsync(cts.Token));
            Assert.Equal(cts.Token, e.CancellationToken);
        });
        await Yield();
        await Task.Run(cts.Cancel);
        await t;
        Assert.Equal(0, q.GetterCount);
        q.PutNowait(5);
        Assert.Equal(5, await q.GetAsync());
    });

    [Fact]
    public void Put_TokenCancelled_ItemNotPut() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        using var cts = new CancellationTokenSource();
        var t = Spawn(async () => { await q.PutAsync(2, cts.Token); });
        await Yield();
        cts.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(1, q.GetNowait());
        Assert.True(q.IsEmpty);
    });

    [Fact]
    public void Get_TimeoutExpires_ItemPutLaterIsNotLost() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(async () => await q.GetAsync(), 0.1));
        q.PutNowait(1);
        Assert.Equal(1, q.GetNowait());
    });

    // ---- task_done / join ----

    [Fact]
    [Trait("asyncio", "test_task_done_underflow")]
    public void TaskDone_MoreThanPut_Throws()
    {
        var q = new AsyncQueue<int>();
        Assert.Throws<InvalidOperationException>(q.TaskDone);
    }

    [Fact]
    [Trait("asyncio", "test_shutdown_nonempty")]
    public void TaskDone_OnceMoreThanItemsPut_ThrowsAndKeepsTheCount()
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        q.PutNowait(2);
        q.GetNowait();
        q.GetNowait();
        q.TaskDone();
        q.TaskDone();
        Assert.Throws<InvalidOperationException>(q.TaskDone);
        Assert.Equal(0, q.Unfinished);
        q.PutNowait(3);                  // the count goes on from zero
        Assert.Equal(1, q.Unfinished);
    }

    [Fact]
    [Trait("asyncio", "test_task_done")]
    public void Join_ReturnsOnceEveryItemIsDone() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        for (int i = 0; i < 100; i++) q.PutNowait(i);
        int accumulator = 0;
        bool running = true;
        async Task Worker()
        {
            while (running)
            {
                int item = await q.GetAsync();
                accumulator += item;
                q.TaskDone();
            }
        }
        var workers = new[] { Spawn(Worker), Spawn(Worker) };
        await q.JoinAsync();
        Assert.Equal(Enumerable.Range(0, 100).Sum(), accumulator);
        running = false;
        foreach (var w in workers) w.Cancel();
        foreach (var w in workers) await AssertCancelled(w);
    });

    [Fact]
    [Trait("asyncio", "test_join_empty_queue")]
    public void Join_NothingPut_ReturnsAtOnce() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var vt = q.JoinAsync();
        Assert.True(vt.IsCompletedSuccessfully);
        await vt;
        q.PutNowait(1);
        q.GetNowait();
        q.TaskDone();
        await q.JoinAsync();
    });

    [Fact]
    public void Join_ItemsPutAgainAfterAJoin_WaitsForThemToo() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        var j1 = Spawn(async () => await q.JoinAsync());
        await Yield();
        q.GetNowait();
        q.TaskDone();
        await j1;
        q.PutNowait(2);
        var j2 = Spawn(async () => await q.JoinAsync());
        await Yield(3);
        Assert.False(j2.IsDone);
        q.GetNowait();
        q.TaskDone();
        await j2;
    });

    [Fact]
    public void Join_TaskCancelledWhileWaiting_EndsCancelled_OtherJoinersStillWait() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        var cancelled = Spawn(async () => await q.JoinAsync());
        var other = Spawn(async () => await q.JoinAsync());
        await Yield();
        cancelled.Cancel("enough");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await cancelled);
        Assert.Equal("enough", e.CancelMessage);
        await Yield(3);
        Assert.False(other.IsDone);
        q.GetNowait();
        q.TaskDone();
        await other;
        await q.JoinAsync(); // the cancelled join left nothing behind
    });

    [Fact]
    public void Join_TokenCancelledWhileWaiting_ThrowsCancelledErrorCarryingTheToken() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        using var cts = new CancellationTokenSource();
        var join = Spawn(async () => await Assert.ThrowsAsync<CancelledError>(async () => await q.JoinAsync(cts.Token)));
        await Yield();
        Assert.False(join.IsDone);
        cts.Cancel();
        var e = await join;
        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.Equal(1, q.Count);
    });

    [Fact]
    [Trait("asyncio", "test_shutdown_nonempty")]
    public void Join_PlainShutdown_DoesNotEndAJoinWhileItemsAreNotDone() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        q.PutNowait(2);
        var join = Spawn(async () => await q.JoinAsync());
        await Yield();
        q.Shutdown();
        await Yield(3);
        Assert.False(join.IsDone);
        q.GetNowait();
        q.TaskDone();
        await Yield(3);
        Assert.False(join.IsDone);
        q.GetNowait();
        q.TaskDone();
        await join;
    });

    // ---- shutdown (asyncio 3.13) ----

    [Fact]
    [Trait("asyncio", "test_shutdown_empty")]
    public void Shutdown_Empty_PutAndGetRaise() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.Shutdown();
        Assert.True(q.IsShutDown);
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.PutAsync(1));
        Assert.Throws<QueueShutDownError>(() => q.PutNowait(1));
        Assert.False(q.TryPut(1));
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
        Assert.Throws<QueueShutDownError>(() => q.GetNowait());
        Assert.False(q.TryGet(out _));
    });

    [Fact]
    [Trait("asyncio", "test_shutdown_nonempty")]
    public void Shutdown_NotImmediate_GetsDrainThenRaise() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        q.PutNowait(2);
        q.Shutdown();
        Assert.Equal(1, await q.GetAsync());
        Assert.Equal(2, q.GetNowait());
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
        q.TaskDone();
        q.TaskDone();
        await q.JoinAsync();
    });

    [Fact]
    [Trait("asyncio", "test_shutdown_immediate")]
    public void Shutdown_Immediate_DiscardsItemsAndUnblocksJoin() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        q.PutNowait(2);
        var join = Spawn(async () => await q.JoinAsync());
        await Yield();
        q.Shutdown(immediate: true);
        Assert.True(q.IsEmpty);
        Assert.Equal(0, q.Unfinished);
        await join;
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
        Assert.Throws<InvalidOperationException>(q.TaskDone);
    });

    [Theory]
    [Trait("asyncio", "test_shutdown_immediate_with_unfinished")]
    [InlineData("fifo", false)]
    [InlineData("lifo", false)]
    [InlineData("priority", false)]
    [InlineData("fifo", true)]
    public void Shutdown_Immediate_DiscardsTheItemsLeftAndCountsThemDone(string kind, bool plainShutdownFirst) => AioTest.Run(async () =>
    {
        AsyncQueue<int> q = kind switch
        {
            "fifo" => new AsyncQueue<int>(),
            "lifo" => new AsyncLifoQueue<int>(),
            _ => new AsyncPriorityQueue<int>(),
        };
        foreach (var i in new[] { 3, 1, 4, 0, 2 }) q.PutNowait(i);
        if (plainShutdownFirst) q.Shutdown();
        q.GetNowait();                   // taken, not yet done; the four others are drained and count as done
        var join = Spawn(async () => await q.JoinAsync());
        await Yield();
        q.Shutdown(immediate: true);
        Assert.True(q.IsEmpty);
        Assert.Equal(1, q.Unfinished);
        Assert.Throws<QueueShutDownError>(() => q.GetNowait());
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.PutAsync(9));
        await Yield(2);
        Assert.False(join.IsDone);
        q.TaskDone();
        await join;
        Assert.Throws<InvalidOperationException>(q.TaskDone);
    });

    [Fact]
    [Trait("asyncio", "test_shutdown_getter")]
    public void Shutdown_WakesWaitingGetters_TheyRaise() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var getters = Enumerable.Range(0, 3).Select(_ => Spawn(async () => await q.GetAsync())).ToList();
        await Yield();
        q.Shutdown();
        Assert.Equal(0, q.GetterCount);
        foreach (var g in getters) await Assert.ThrowsAsync<QueueShutDownError>(async () => await g);
    });

    [Fact]
    [Trait("asyncio", "test_shutdown_putter")]
    public void Shutdown_WakesWaitingPutters_TheyRaiseAndPutNothing() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        var putters = Enumerable.Range(0, 3).Select(k => Spawn(async () => { await q.PutAsync(k + 10); })).ToList();
        await Yield();
        q.Shutdown();
        foreach (var p in putters) await Assert.ThrowsAsync<QueueShutDownError>(async () => await p);
        Assert.Equal(1, q.GetNowait());
        Assert.Throws<QueueShutDownError>(() => q.GetNowait());
    });

    [Fact]
    public void Shutdown_PutterPromisedASlotBeforeIt_RaisesWithoutPutting() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(1);
        q.PutNowait(1);
        var putter = Spawn(async () => { await q.PutAsync(2); });
        await Yield();
        q.GetNowait();       // slot promised to the putter
        q.Shutdown();
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await putter);
        Assert.True(q.IsEmpty);
        Assert.False(q.IsFull);
    });

    [Fact]
    public void Shutdown_NotImmediate_GetterPromisedAnItemStillGetsIt() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var getter = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(3);
        q.Shutdown();
        Assert.Equal(3, await getter);
    });

    [Fact]
    public void Shutdown_GetterWaitingBesideAPromisedItem_TakesItWhenGivenBack() => AioTest.Run(async () =>
    {
        // asyncio: a get throws only once the queue is empty; the item promised to first is still in it.
        var q = new AsyncQueue<int>();
        var first = Spawn(async () => await q.GetAsync());
        var second = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(7);    // promised to first
        q.Shutdown();      // second waits for the promise
        Assert.Equal(1, q.GetterCount);
        first.Cancel();    // first gives 7 back, to second
        await AssertCancelled(first);
        Assert.Equal(7, await second);
        Assert.True(q.IsEmpty);
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
    });

    /// <summary>Each kind of queue, with the promised getter cancelled or not.</summary>
    public static TheoryData<string, bool> KindsAndPromisedGetterCancelled => new()
    {
        { "fifo", true }, { "lifo", true }, { "priority", true },
        { "fifo", false }, { "lifo", false }, { "priority", false },
    };

    /// <summary>A queue of the given kind: "fifo", "lifo" or "priority".</summary>
    static AsyncQueue<int> NewQueue(string kind) => kind switch
    {
        "fifo" => new AsyncQueue<int>(),
        "lifo" => new AsyncLifoQueue<int>(),
        _ => new AsyncPriorityQueue<int>(),
    };

    [Theory]
    [MemberData(nameof(KindsAndPromisedGetterCancelled))]
    public void Shutdown_EveryItemLeftPromised_NewGetWaitsForThePromise(string kind, bool promisedGetterCancelled) => AioTest.Run(async () =>
    {
        // asyncio throws only once the queue is empty. A promised item is still in the queue: a get must not
        // give up on it, or a promise withdrawn later (the getter cancelled) leaves the item to nobody.
        var q = NewQueue(kind);
        var promised = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(7);    // promised to the getter, which has not resumed
        q.Shutdown();
        var late = q.GetAsync();
        Assert.False(late.IsCompleted);
        Assert.Throws<QueueEmptyError>(() => q.GetNowait()); // nothing to take now, but the queue has not ended
        if (promisedGetterCancelled)
        {
            promised.Cancel(); // the promise passes to the waiting get
            await AssertCancelled(promised);
            Assert.Equal(7, await late);
        }
        else
        {
            Assert.Equal(7, await promised);
            await Assert.ThrowsAsync<QueueShutDownError>(async () => await late);
        }
        Assert.Equal(0, q.GetterCount);
        Assert.Throws<QueueShutDownError>(() => q.GetNowait());
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
    });

    [Theory]
    [InlineData("fifo")]
    [InlineData("lifo")]
    [InlineData("priority")]
    public void Shutdown_GettersWaitingBesidePromisedItems_EachItemTakenOnceTheRestRaise(string kind) => AioTest.Run(async () =>
    {
        var q = NewQueue(kind);
        var getters = Enumerable.Range(0, 4).Select(_ => Spawn(async () => await q.GetAsync())).ToList();
        await Yield();
        q.PutNowait(1);    // promised to getters[0]
        q.PutNowait(2);    // promised to getters[1]
        q.Shutdown();      // getters[2] and [3] wait while a promise is outstanding
        Assert.Equal(2, q.GetterCount);
        getters[0].Cancel(); // its promise passes to getters[2]
        await AssertCancelled(getters[0]);
        var got = new List<int> { await getters[1], await getters[2] };
        Assert.Equal([1, 2], got.Order());
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await getters[3]);
        Assert.Equal(0, q.GetterCount);
        Assert.Equal(2, q.Unfinished);
    });

    [Fact]
    public void Shutdown_Immediate_GetterPromisedAnItemRaises() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var getter = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(3);
        q.Shutdown(immediate: true);
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await getter);
        Assert.Equal(0, q.Unfinished);
    });

    // ---- IAsyncEnumerable view ----

    /// <summary>Starts a task that enumerates <paramref name="q"/> into <paramref name="seen"/> until the enumeration ends.</summary>
    static AioTask StartReader(AsyncQueue<int> q, List<int> seen) => Spawn(async () =>
    {
        await foreach (var item in q.ReadAllAsync()) seen.Add(item);
    });

    [Fact]
    public void ReadAllAsync_YieldsItemsAndEndsAtShutdown() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var seen = new List<int>();
        var reader = StartReader(q, seen);
        q.PutNowait(1);
        await Yield(2);
        q.PutNowait(2);
        q.PutNowait(3);
        await Yield(2);
        q.PutNowait(4);
        q.Shutdown();
        await reader;
        Assert.Equal([1, 2, 3, 4], seen);
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadAllAsync_WaitingWhenShutDown_EndsWithoutAnItem(bool immediateAfterAPut) => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var seen = new List<int>();
        var reader = StartReader(q, seen);
        await Yield();
        Assert.Equal(1, q.GetterCount);
        if (immediateAfterAPut)
        {
            q.PutNowait(1);              // promised to the reader, then drained
            q.Shutdown(immediate: true);
        }
        else q.Shutdown();
        await reader;
        Assert.Empty(seen);
        Assert.Equal(0, q.GetterCount);
    });

    [Fact]
    public void ReadAllAsync_StartedAfterAPlainShutdown_YieldsTheItemsLeftThenEnds() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        q.PutNowait(2);
        q.Shutdown();
        var seen = new List<int>();
        await foreach (var item in q.ReadAllAsync()) seen.Add(item);
        Assert.Equal([1, 2], seen);
        Assert.True(q.IsEmpty);
    });

    [Fact]
    public void ReadAllAsync_ShutDownWhileAnotherGetterHeldTheItem_ReadsItWhenGivenBack() => AioTest.Run(async () =>
    {
        // The item must not be stranded: a consumer that stops at the end of the enumeration would leave it
        // unprocessed, and a join would never return.
        var q = new AsyncQueue<int>();
        var seen = new List<int>();
        var getter = Spawn(async () => await q.GetAsync());
        await Yield();
        var reader = Spawn(async () =>
        {
            await foreach (var item in q.ReadAllAsync())
            {
                seen.Add(item);
                q.TaskDone();
            }
        });
        await Yield();
        q.PutNowait(7);    // promised to the getter
        q.Shutdown();      // the reader waits for the promise
        getter.Cancel();   // the getter gives 7 back, to the reader
        await AssertCancelled(getter);
        await reader;
        Assert.Equal([7], seen);
        await q.JoinAsync();
    });

    [Theory]
    [MemberData(nameof(KindsAndPromisedGetterCancelled))]
    public void ReadAllAsync_ShutDownWithEveryItemLeftPromised_WaitsForThePromise(string kind, bool promisedGetterCancelled) => AioTest.Run(async () =>
    {
        var q = NewQueue(kind);
        var promised = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(7);    // promised to the getter
        q.Shutdown();
        await using var e = q.ReadAllAsync().GetAsyncEnumerator();
        var move = e.MoveNextAsync();
        Assert.False(move.IsCompleted); // the enumeration has not ended while the item may come back
        if (promisedGetterCancelled)
        {
            promised.Cancel();
            await AssertCancelled(promised);
            Assert.True(await move);
            Assert.Equal(7, e.Current);
            Assert.False(await e.MoveNextAsync());
        }
        else
        {
            Assert.Equal(7, await promised);
            Assert.False(await move);
        }
        Assert.Equal(0, q.GetterCount);
    });

    [Fact]
    public void ReadAllAsync_Cancelled_ItemStaysInTheQueue() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        using var cts = new CancellationTokenSource();
        var reader = Spawn(async () =>
        {
            await foreach (var item in q.ReadAllAsync(cts.Token)) Assert.Fail("no item expected");
        });
        await Yield();
        Assert.Equal(1, q.GetterCount);
        reader.Cancel();
        await AssertCancelled(reader);
        Assert.Equal(0, q.GetterCount);
        q.PutNowait(9);
        Assert.Equal(9, q.GetNowait());
    });

    [Fact]
    public void ReadAllAsync_TokenCancelled_Throws() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        using var cts = new CancellationTokenSource();
        var reader = Spawn(async () =>
        {
            await foreach (var item in q.ReadAllAsync().WithCancellation(cts.Token)) { }
        });
        await Yield();
        await Task.Run(cts.Cancel);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await reader);
        Assert.Equal(0, q.GetterCount);
    });

    // ---- misuse ----

    [Fact]
    public void PutNowait_FromAnotherThreadWithAWaitingGetter_ThrowsAndLosesNothing() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var getter = Spawn(async () => await q.GetAsync());
        await Yield();
        await Assert.ThrowsAsync<InvalidOperationException>(() => Task.Run(() => q.PutNowait(1)));
        Assert.Equal(0, q.Count);
        Assert.Equal(1, q.GetterCount);
        q.PutNowait(2);
        Assert.Equal(2, await getter);
    });

    [Theory]
    [InlineData("TaskDone")]
    [InlineData("Shutdown(immediate)")]
    public void CallFromAnotherThreadThatWouldEndAJoin_ThrowsAndChangesNothing(string call) => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(1);
        if (call == "TaskDone") q.GetNowait();
        Action act = call == "TaskDone" ? q.TaskDone : () => q.Shutdown(immediate: true);
        var join = Spawn(async () => await q.JoinAsync());
        await Yield();
        await Assert.ThrowsAsync<InvalidOperationException>(() => Task.Run(act));
        Assert.False(q.IsShutDown);      // the wrong-thread call changed nothing
        Assert.Equal(1, q.Unfinished);
        Assert.False(join.IsDone);
        act();                           // on the loop's thread
        await join;
    });

    [Fact]
    public void ToString_DescribesTheQueue() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>(3);
        q.PutNowait(1);
        Assert.Equal("<AsyncQueue maxsize=3 count=1 tasks=1>", q.ToString());
        q.GetNowait();
        var g = Spawn(async () => await q.GetAsync());
        await Yield();
        q.Shutdown();
        Assert.Equal("<AsyncQueue maxsize=3 count=0 tasks=1 shutdown>", q.ToString());
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await g);
    });
}
