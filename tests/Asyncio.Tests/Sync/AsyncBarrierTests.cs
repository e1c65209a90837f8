using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Sync;

/// <summary>asyncio's Barrier behaviours (CPython test_locks.BarrierTests), on <see cref="AsyncBarrier"/>.</summary>
public class AsyncBarrierTests
{
    const int N = 5;

    static async Task<int[]> GatherTasks(int n, Func<Task<int>> coro)
    {
        var tasks = Enumerable.Range(0, n).Select(_ => Aio.CreateTask(coro)).ToArray();
        return await Aio.Gather(tasks);
    }

    static async Task GatherTasks(int n, Func<Task> coro)
    {
        var tasks = Enumerable.Range(0, n).Select(_ => Aio.CreateTask(coro)).ToArray();
        await Aio.Gather(tasks);
    }

    [Fact]
    [Trait("asyncio", "test_barrier_parties")]
    public void New_PartiesBelowOne_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncBarrier(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncBarrier(-4));
        Assert.Equal(N, new AsyncBarrier(N).Parties);
    }

    [Fact]
    [Trait("asyncio", "test_repr")]
    public void ToString_FollowsTheStates() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        Assert.Equal("<AsyncBarrier [filling, waiters:0/5]>", barrier.ToString());
        var waiters = new List<AioTask>();
        for (int i = 0; i < 2; i++) waiters.Add(Spawn(async () => { await barrier.WaitAsync(); }));
        await Yield();
        Assert.Equal("<AsyncBarrier [filling, waiters:2/5]>", barrier.ToString());
        for (int i = 0; i < barrier.Parties - barrier.WaitingCount; i++) waiters.Add(Spawn(async () => { await barrier.WaitAsync(); }));
        await Yield();
        Assert.Equal("<AsyncBarrier [draining, waiters:0/5]>", barrier.ToString());   // asyncio: the count unless broken
        for (int i = 0; i < 2; i++) waiters.Add(Spawn(async () => { await barrier.WaitAsync(); }));
        await Yield();
        barrier.Reset();
        Assert.Contains("resetting", barrier.ToString());
        for (int i = 0; i < 2; i++) waiters.Add(Spawn(async () => { await barrier.WaitAsync(); }));
        await Yield();
        barrier.Abort();
        Assert.Equal("<AsyncBarrier [broken]>", barrier.ToString());
        Assert.True(barrier.IsBroken);
        await Aio.GatherOutcomes(waiters.Select(t => t.AsTask()));
    });

    [Fact]
    [Trait("asyncio", "test_context_manager")]
    public void Wait_AllParties_GetEachArrivalIndexOnce() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(3);
        var results = await GatherTasks(3, async () => await barrier.WaitAsync());
        Assert.Equal([0, 1, 2], results.Order());
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "test_filling_one_task")]
    public void Wait_OneParty_PassesAtOnce() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(1);
        var vt = barrier.WaitAsync();
        Assert.True(vt.IsCompletedSuccessfully);
        Assert.Equal(0, await vt);
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "test_filling_one_task_twice")]
    public void Wait_OnePartyTwice_BothPassWithIndexZero() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(1);
        var t1 = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal(0, barrier.WaitingCount);
        var t2 = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal(await t1, await t2);
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "test_filling_task_by_task")]
    public void Wait_TaskByTask_CountsWaitersUntilFull() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(3);
        var t1 = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal(1, barrier.WaitingCount);
        var t2 = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal(2, barrier.WaitingCount);
        Assert.Contains("filling", barrier.ToString());
        var t3 = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal([0, 1, 2], new[] { await t1, await t2, await t3 }.Order());
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "test_filling_tasks_wait_twice")]
    public void Wait_TwiceInARow_BothRoundsPass() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        var results = new List<bool>();
        await GatherTasks(N, async () =>
        {
            await barrier.WaitAsync();
            results.Add(true);
            await barrier.WaitAsync();
            results.Add(false);
        });
        Assert.Equal(N, results.Count(r => r));
        Assert.Equal(N, results.Count(r => !r));
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "test_filling_tasks_check_return_value")]
    public void Wait_TwiceInARow_SecondRoundGivesEachArrivalIndexOnce() => AioTest.Run(async () =>
    {
        // Most of the second round arrives while the first drains, and is let in afterwards.
        var barrier = new AsyncBarrier(N);
        var results = await GatherTasks(N, async () =>
        {
            await barrier.WaitAsync();
            return await barrier.WaitAsync();
        });
        Assert.Equal(Enumerable.Range(0, N), results.Order());
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "test_draining_state")]
    public void Wait_WhileDraining_StateIsDrainingUntilTheLastLeaves() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        var results = new List<bool>();
        await GatherTasks(N, async () =>
        {
            await barrier.WaitAsync();
            results.Add(barrier.ToString().Contains("draining"));
        });
        Assert.Equal(N, results.Count);
        Assert.False(results[^1]);
        Assert.All(results.Take(N - 1), Assert.True);
    });

    [Fact]
    [Trait("asyncio", "test_blocking_tasks_while_draining")]
    public void Wait_ArrivingWhileDraining_WaitsForTheNextRound() => AioTest.Run(async () =>
    {
        const int rewait = 2;
        var barrier = new AsyncBarrier(N);
        var barrierNoWaiting = new AsyncBarrier(N - rewait);
        int rewaitN = rewait;
        await GatherTasks(N, async () =>
        {
            await barrier.WaitAsync();
            if (rewaitN > 0)
            {
                rewaitN--;
                await barrier.WaitAsync();   // arrives while the first round drains
            }
            else
            {
                await barrierNoWaiting.WaitAsync();
                await barrier.WaitAsync();
            }
        });
        Assert.False(barrier.IsBroken);
        Assert.Equal(0, barrier.WaitingCount);
    });

    [Fact]
    [Trait("asyncio", "test_filling_tasks_cancel_one")]
    public void Wait_OneWaiterCancelled_LeavesWithoutBreakingTheBarrier() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(3);
        var results = new List<bool>();
        async Task Coro() { await barrier.WaitAsync(); results.Add(true); }
        var t1 = Spawn(Coro);
        await Yield();
        Assert.Equal(1, barrier.WaitingCount);
        var t2 = Spawn(Coro);
        await Yield();
        Assert.Equal(2, barrier.WaitingCount);
        t1.Cancel();
        Assert.Equal(1, barrier.WaitingCount); // at once
        await AssertCancelled(t1);
        var t3 = Spawn(Coro);
        await Yield();
        Assert.Equal(2, barrier.WaitingCount);
        var t4 = Spawn(Coro);
        await t2;
        await t3;
        await t4;
        Assert.Equal(3, results.Count);
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    public void Wait_CancelledAfterTheBarrierOpened_OthersPassAndTheBarrierRefills() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(2);
        var t1 = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        var t2 = Spawn(async () => await barrier.WaitAsync());
        await Yield();  // t2 opened the barrier; t1 is woken but has not resumed
        Assert.Contains("draining", barrier.ToString());
        t1.Cancel();
        await AssertCancelled(t1);
        Assert.Equal(1, await t2);
        Assert.Contains("filling", barrier.ToString());
        Assert.Equal(0, barrier.WaitingCount);
    });

    // b releases the first round and waits again, c arrives: both wait while the round drains. When a has
    // left, b and c are let in, c last; asyncio's blocked tasks arrive only when they resume, so c,
    // cancelled in between, never arrived: the barrier must not open for b alone.
    [Fact]
    public void Wait_LastPartyLetInAfterDrainingCancelledBeforeItResumes_OthersKeepWaiting() => AioTest.Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        var barrier = new AsyncBarrier(2);
        AioTask<int>? c = null;
        var a = Spawn(async () =>
        {
            int i = await barrier.WaitAsync();
            loop.CallSoon(() => c!.Cancel()); // runs after b and c are let in, before c resumes
            return i;
        });
        await Yield();
        var b = Spawn(async () => { await barrier.WaitAsync(); return await barrier.WaitAsync(); });
        c = Spawn(async () => await barrier.WaitAsync());
        await Yield(5);
        await AssertCancelled(c);
        Assert.False(b.IsDone);
        Assert.Equal(1, barrier.WaitingCount);
        Assert.Contains("filling, waiters:1/2", barrier.ToString());
        Assert.Equal(1, await barrier.WaitAsync());
        Assert.Equal(0, await b);
        Assert.Equal(0, await a);
    });

    // b and c wait and the main task opens the first round; d, e and f arrive while it drains. When c, the
    // last out, has left, they are let in, f last. d is cancelled before f arrives: the barrier is no longer
    // full, so f must not open it for e and itself (asyncio's f arrives when it resumes, as the second
    // party). Regression: f opened the barrier with two of its three parties.
    [Fact]
    public void Wait_PartyLeavesBeforeTheLastPartyLetInAfterDrainingArrives_BarrierStaysClosed() => AioTest.Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        var barrier = new AsyncBarrier(3);
        AioTask<int>? d = null;
        var b = Spawn(async () => await barrier.WaitAsync());
        var c = Spawn(async () =>
        {
            int i = await barrier.WaitAsync();
            loop.CallSoon(() => d!.Cancel()); // runs after d, e and f are let in, before f arrives
            return i;
        });
        await Yield();
        d = Spawn(async () => await barrier.WaitAsync());
        var e = Spawn(async () => await barrier.WaitAsync());
        var f = Spawn(async () => await barrier.WaitAsync());
        Assert.Equal(2, await barrier.WaitAsync()); // opens the first round; d, e and f start while it drains
        await AssertCancelled(d);
        await Yield(5);
        Assert.False(e.IsDone);
        Assert.False(f.IsDone);
        Assert.Equal(2, barrier.WaitingCount);
        Assert.Contains("filling, waiters:2/3", barrier.ToString());
        Assert.Equal(2, await barrier.WaitAsync()); // the third party opens the second round
        // f arrived after d had left, when one task (e) was in the barrier.
        Assert.Equal(1, await e);
        Assert.Equal(1, await f);
        Assert.Equal(0, await b);
        Assert.Equal(1, await c);
    });

    [Fact]
    public void Wait_CancelledBeforeItIsLetInAfterDraining_NeverArrives() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(2);
        var first = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        var late = Spawn(async () => await barrier.WaitAsync()); // starts while the round below drains
        Assert.Equal(1, await barrier.WaitAsync());
        await Yield();   // first has left; late, blocked until now, would be let in on the next iteration
        Assert.Equal(0, await first);
        late.Cancel();
        await AssertCancelled(late);
        await Yield(2);
        Assert.Equal("<AsyncBarrier [filling, waiters:0/2]>", barrier.ToString()); // late was not let in
        var next = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal(1, await barrier.WaitAsync());
        Assert.Equal(0, await next);
    });

    // The same, aborted instead: asyncio's blocked task that has not resumed yet gets BrokenBarrierError,
    // as does every other task waiting in the barrier.
    [Fact]
    public void Abort_LastPartyLetInAfterDrainingHasNotResumed_ItThrowsBrokenBarrierToo() => AioTest.Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        var barrier = new AsyncBarrier(2);
        var a = Spawn(async () =>
        {
            int i = await barrier.WaitAsync();
            loop.CallSoon(barrier.Abort); // runs after b and c are let in, before they resume
            return i;
        });
        await Yield();
        var b = Spawn(async () => { await barrier.WaitAsync(); return await barrier.WaitAsync(); });
        var c = Spawn(async () => await barrier.WaitAsync());
        await Assert.ThrowsAsync<BrokenBarrierError>(async () => await b);
        await Assert.ThrowsAsync<BrokenBarrierError>(async () => await c);
        Assert.True(barrier.IsBroken);
        Assert.Equal(0, await a);
    });

    [Fact]
    [Trait("asyncio", "test_reset_barrier")]
    public void Reset_Empty_StaysFilling()
    {
        var barrier = new AsyncBarrier(1);
        barrier.Reset();
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
    }

    [Fact]
    [Trait("asyncio", "test_reset_barrier_while_tasks_waiting")]
    public void Reset_WhileTasksWait_TheyThrowBrokenBarrier() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        int broken = 0;
        var tasks = Enumerable.Range(0, N - 1).Select(_ => Spawn(async () =>
        {
            try { await barrier.WaitAsync(); }
            catch (BrokenBarrierError) { broken++; }
        })).ToList();
        await Yield();
        barrier.Reset();
        foreach (var t in tasks) await t;
        Assert.Equal(N - 1, broken);
        Assert.Equal(0, barrier.WaitingCount);
        Assert.DoesNotContain("resetting", barrier.ToString());
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    public void Reset_WaiterCancelledBeforeItResumes_EndsCancelledAndTheBarrierRefills() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(3);
        var a = Spawn(async () => await barrier.WaitAsync());
        var b = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        barrier.Reset(); // wakes a and b, to throw BrokenBarrierError
        a.Cancel();      // before it resumes: it ends cancelled instead, and still leaves the barrier
        Assert.Contains("resetting", barrier.ToString());
        await AssertCancelled(a);
        await Assert.ThrowsAsync<BrokenBarrierError>(async () => await b);
        Assert.Equal("<AsyncBarrier [filling, waiters:0/3]>", barrier.ToString());
        var c = Spawn(async () => await barrier.WaitAsync());
        var d = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal(2, await barrier.WaitAsync());
        Assert.Equal(0, await c);
        Assert.Equal(1, await d);
    });

    [Fact]
    [Trait("asyncio", "test_reset_barrier_when_tasks_half_draining")]
    public void Reset_WhileHalfTheTasksHaveDrained_TheRestThrow() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        int restOfTasks = N / 2;
        int drained = 0;
        var results1 = new List<bool>();
        await GatherTasks(N, async () =>
        {
            try { await barrier.WaitAsync(); }
            catch (BrokenBarrierError) { results1.Add(true); return; }
            drained++;
            if (N - drained == restOfTasks) barrier.Reset();   // tasks still inside the barrier
        });
        Assert.Equal(Enumerable.Repeat(true, restOfTasks), results1);
        Assert.Equal(0, barrier.WaitingCount);
        Assert.DoesNotContain("resetting", barrier.ToString());
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "test_reset_barrier_when_tasks_half_draining_half_blocking")]
    public void Reset_WhileSomeDrainAndSomeBlock_BlockedTasksPassTheNextRound() => AioTest.Run(async () =>
    {
        // N / 2 tasks are still draining when the barrier is reset; the others wait again before that.
        var stillDraining = new List<bool>();
        var blockedBroken = new List<bool>();
        var barrier = new AsyncBarrier(N);
        int passed = 0;
        await GatherTasks(N, async () =>
        {
            try { await barrier.WaitAsync(); }
            catch (BrokenBarrierError)
            {
                stillDraining.Add(true);
                await barrier.WaitAsync(); // makes up the next round
                return;
            }
            if (++passed > N / 2)
            {
                barrier.Reset();
                await barrier.WaitAsync();
            }
            else
            {
                try { await barrier.WaitAsync(); } // blocked by the draining, not in the barrier: not broken
                catch (BrokenBarrierError) { blockedBroken.Add(true); }
            }
        });
        Assert.Equal(Enumerable.Repeat(true, N / 2), stillDraining);
        Assert.Empty(blockedBroken);
        Assert.Equal(0, barrier.WaitingCount);
        Assert.DoesNotContain("resetting", barrier.ToString());
        Assert.False(barrier.IsBroken);
    });

    [Fact]
    [Trait("asyncio", "test_reset_barrier_while_tasks_waiting_and_waiting_again")]
    public void Reset_WhileWaiting_TasksCanWaitAgainAndPass() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        var results1 = new List<bool>();
        var results2 = new List<bool>();
        async Task Coro1()
        {
            try { await barrier.WaitAsync(); }
            catch (BrokenBarrierError) { results1.Add(true); }
            finally
            {
                await barrier.WaitAsync();
                results2.Add(true);
            }
        }
        var tasks = Enumerable.Range(0, N - 1).Select(_ => Spawn(Coro1)).ToList();
        await Yield();
        barrier.Reset();
        await Yield();
        var last = Spawn(async () => { await barrier.WaitAsync(); results2.Add(true); });
        foreach (var t in tasks) await t;
        await last;
        Assert.False(barrier.IsBroken);
        Assert.Equal(N - 1, results1.Count);
        Assert.Equal(N, results2.Count);
        Assert.Equal(0, barrier.WaitingCount);
    });

    [Fact]
    [Trait("asyncio", "test_reset_barrier_while_tasks_draining")]
    public void Reset_ByTheLastTaskOut_NextRoundsStillPass() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        int count = 0;
        var results1 = new List<bool>();
        var results2 = new List<bool>();
        var results3 = new List<bool>();
        await GatherTasks(N, async () =>
        {
            await barrier.WaitAsync();
            count++;
            if (count == N)
            {
                barrier.Reset();
                await barrier.WaitAsync();
            }
            else
            {
                try
                {
                    await barrier.WaitAsync();
                    results1.Add(true);
                }
                catch (Exception) { results2.Add(true); }
            }
            await barrier.WaitAsync();
            results3.Add(true);
        });
        Assert.False(barrier.IsBroken);
        Assert.Equal(N - 1, results1.Count);
        Assert.Empty(results2);
        Assert.Equal(N, results3.Count);
        Assert.Equal(0, barrier.WaitingCount);
    });

    [Fact]
    [Trait("asyncio", "test_abort_barrier")]
    public void Abort_Empty_Breaks()
    {
        var barrier = new AsyncBarrier(1);
        barrier.Abort();
        Assert.Equal(0, barrier.WaitingCount);
        Assert.True(barrier.IsBroken);
    }

    [Fact]
    public void Wait_Broken_ThrowsAtOnce() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(2);
        barrier.Abort();
        await Assert.ThrowsAsync<BrokenBarrierError>(async () => await barrier.WaitAsync());
        barrier.Reset();
        Assert.False(barrier.IsBroken);
        var t = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal(1, await barrier.WaitAsync());
        Assert.Equal(0, await t);
    });

    [Fact]
    [Trait("asyncio", "test_abort_barrier_when_tasks_half_draining_half_blocking")]
    public void Abort_WhileSomeDrainAndSomeBlock_AllLaterWaitsThrow() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        var results1 = new List<bool>();
        var results2 = new List<bool>();
        int blockingTasks = N / 2;
        int count = 0;
        await GatherTasks(N, async () =>
        {
            try { await barrier.WaitAsync(); }
            catch (BrokenBarrierError) { results1.Add(true); return; }
            count++;
            if (count > blockingTasks) barrier.Abort();
            else
            {
                try { await barrier.WaitAsync(); }
                catch (BrokenBarrierError) { results2.Add(true); }
            }
        });
        Assert.True(barrier.IsBroken);
        Assert.Equal(Enumerable.Repeat(true, blockingTasks), results1);
        Assert.Equal(Enumerable.Repeat(true, N - blockingTasks - 1), results2);
        Assert.Equal(0, barrier.WaitingCount);
        Assert.DoesNotContain("resetting", barrier.ToString());
    });

    [Fact]
    [Trait("asyncio", "Barrier._block re-checks the state when it resumes: after abort() then reset(), a blocked task arrives in the new round")]
    public void Abort_ThenResetBeforeABlockedTaskResumes_ItJoinsTheNextRound() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(2);
        var a = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        var o = Spawn(async () => await barrier.WaitAsync());   // opens the barrier (a woken, not resumed)
        var c = Spawn(async () => await barrier.WaitAsync());   // blocked: the barrier drains
        await Yield();
        Assert.Equal(1, o.Result);
        barrier.Abort();
        barrier.Reset();   // a is still in the barrier: resetting
        await Yield(3);
        Assert.IsType<BrokenBarrierError>(a.GetException());
        Assert.False(c.IsDone);   // it arrived in the new round and waits there
        Assert.Equal(1, barrier.WaitingCount);
        Assert.Equal(1, await barrier.WaitAsync());
        Assert.Equal(0, await c);
    });

    [Fact]
    [Trait("asyncio", "test_abort_barrier_when_exception")]
    public void Abort_AfterAnError_EveryoneElseGetsBrokenBarrier() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(N);
        var results1 = new List<bool>();
        var results2 = new List<bool>();
        await GatherTasks(N, async () =>
        {
            try
            {
                int i = await barrier.WaitAsync();
                if (i == N / 2) throw new InvalidOperationException("boom");
                await barrier.WaitAsync();
                results1.Add(true);
            }
            catch (BrokenBarrierError) { results2.Add(true); }
            catch (InvalidOperationException) { barrier.Abort(); }
        });
        Assert.True(barrier.IsBroken);
        Assert.Empty(results1);
        Assert.Equal(N - 1, results2.Count);
        Assert.Equal(0, barrier.WaitingCount);
    });

    [Fact]
    [Trait("asyncio", "test_abort_barrier_when_exception_then_resetting")]
    public void Abort_ThenResetBetweenSynchronisedRounds_BarrierWorksAgain() => AioTest.Run(async () =>
    {
        var barrier1 = new AsyncBarrier(N);
        var barrier2 = new AsyncBarrier(N);
        var results1 = new List<bool>();
        var results2 = new List<bool>();
        var results3 = new List<bool>();
        await GatherTasks(N, async () =>
        {
            try
            {
                int i = await barrier1.WaitAsync();
                if (i == N / 2) throw new InvalidOperationException("boom");
                await barrier1.WaitAsync();
                results1.Add(true);
            }
            catch (BrokenBarrierError) { results2.Add(true); }
            catch (InvalidOperationException) { barrier1.Abort(); }
            int j = await barrier2.WaitAsync();
            if (j == N / 2) barrier1.Reset();
            await barrier2.WaitAsync();
            await barrier1.WaitAsync();
            results3.Add(true);
        });
        Assert.False(barrier1.IsBroken);
        Assert.Empty(results1);
        Assert.Equal(N - 1, results2.Count);
        Assert.Equal(N, results3.Count);
        Assert.Equal(0, barrier1.WaitingCount);
    });

    [Fact]
    public void Wait_TokenCancelled_LeavesTheBarrier() => AioTest.Run(async () =>
    {
        var barrier = new AsyncBarrier(3);
        using var cts = new CancellationTokenSource();
        var t1 = Spawn(async () =>
        {
            var e = await Assert.ThrowsAsync<CancelledError>(async () => await barrier.WaitAsync(cts.Token));
            Assert.Equal(cts.Token, e.CancellationToken);
        });
        var t2 = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        Assert.Equal(2, barrier.WaitingCount);
        await Task.Run(cts.Cancel);
        await t1;
        Assert.Equal(1, barrier.WaitingCount);
        var t3 = Spawn(async () => await barrier.WaitAsync());
        await Yield();
        var last = await barrier.WaitAsync();
        Assert.Equal(2, last);
        // As in asyncio, the index is how many tasks were in the barrier on arrival: the cancelled
        // task's leaving makes the next arrival reuse index 1.
        Assert.Equal(1, await t2);
        Assert.Equal(1, await t3);
    });
}
