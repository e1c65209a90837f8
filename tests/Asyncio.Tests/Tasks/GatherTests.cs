namespace Asyncio.Tests.Tasks;

using static Asyncio.Tests.Coroutines;

/// <summary>asyncio's <c>gather()</c>: results in order, failures and cancellation in both directions.</summary>
public class GatherTests
{
    static double Now => Aio.GetRunningLoop().Time();

    static async Task<T> After<T>(double seconds, T value)
    {
        await Aio.Sleep(seconds);
        return value;
    }

    [Fact]
    [Trait("asyncio", "test_tasks: gather results are in argument order")]
    public void Gather_AioTasks_ReturnsResultsInArgumentOrder() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => After(3, "a"));
        var b = Aio.CreateTask(() => After(1, "b"));
        var c = Aio.CreateTask(() => After(2, "c"));
        double t0 = Now;
        string[] results = await Aio.Gather(a, b, c);
        Assert.Equal(["a", "b", "c"], results);
        Assert.Equal(3, Now - t0, 6);
    });

    [Fact]
    public void Gather_Futures_ReturnsResultsInArgumentOrder() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var f1 = loop.CreateFuture<int>();
        var f2 = loop.CreateFuture<int>();
        loop.CallLater(2, () => f1.SetResult(1));
        loop.CallLater(1, () => f2.SetResult(2));
        int[] results = await Aio.Gather(f1, f2);
        Assert.Equal([1, 2], results);
    });

    [Fact]
    public void Gather_RunningCoroutines_ReturnsResultsInArgumentOrder() => AioTest.Run(async () =>
    {
        double t0 = Now;
        int[] results = await Aio.Gather(After(2, 10), After(1, 20), After(3, 30));
        Assert.Equal([10, 20, 30], results);
        Assert.Equal(3, Now - t0, 6);
    });

    [Fact]
    public void Gather_RunningCoroutinesOnRealTime_ReturnsResultsInArgumentOrder() => AioTest.RunReal(async () =>
    {
        int[] results = await Aio.Gather(After(0.002, 10), After(0.001, 20), After(0.003, 30));
        Assert.Equal([10, 20, 30], results);
    });

    [Theory]
    [InlineData(0)]
    [InlineData(ChildSet.WatchEachLimit)] // past the limit: watched through one pump
    public void Gather_RunningCoroutinesOnRealTime_FirstFailureEndsItAndTheRestFinishQuietly(int more)
    {
        // The gather ends with the first failure; what watches the other .NET Tasks (a continuation each, or
        // one pump) is cut loose and ends at their completion without reaching the finished gather.
        static async Task<int> Fail(double seconds) { await Aio.Sleep(seconds); throw new InvalidTimeZoneException("first"); }
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            var slow = After(0.2, 2);
            var slower = After(0.3, 3);
            var rest = Enumerable.Range(0, more).Select(i => After(0.2, i)).ToArray();
            var g = Aio.Gather([Fail(0.001), slow, slower, .. rest]);
            await Assert.ThrowsAsync<InvalidTimeZoneException>(async () => await g);
            Assert.Equal(2, await slow);
            Assert.Equal(3, await slower);
            await Task.WhenAll(rest);
            for (int i = 0; i < 3; i++) await Aio.Sleep(0.001);
        }, new LoopOptions());
        Assert.Empty(errors);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // a list, not an array: copied, and watched like a mixed list of children
    public void Gather_FewRunningCoroutinesOnRealTime_LearnsOfTheirEndOnTheLoopAtOnce(bool asList) => AioTest.RunReal(async () =>
    {
        // A gather of a few coroutines is told of each one's end by the loop itself, in the step that ends
        // it: the gathering task resumes on the very next iteration, whatever the machine's load, and no
        // other thread takes part. A ticker task counts the iterations meanwhile (it is always ready, so the
        // loop never waits).
        static async Task<int> Child(int v)
        {
            for (int i = 0; i < 3; i++) await Aio.Sleep(0);
            return v;
        }
        int ticks = 0;
        bool stop = false;
        var ticker = Aio.CreateTask(async () =>
        {
            while (!stop)
            {
                ticks++;
                await Aio.Sleep(0);
            }
        });
        await Aio.Sleep(0); // the ticker has started
        for (int round = 0; round < 3; round++)
        {
            int start = ticks;
            Task<int>[] children = [Child(1), Child(2), Child(3)];
            int[] results = asList ? await Aio.Gather(children.ToList()) : await Aio.Gather(children);
            Assert.Equal([1, 2, 3], results);
            // Iterations 1-3: the children pass their three Sleep(0)s, and in the third they end and the gather
            // is done; 4: this task resumes.
            Assert.Equal(4, ticks - start);
        }
        stop = true;
        await ticker;
    });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Gather_CompletedTasks_ReturnsTheirResults(bool virtualTime) => AioTest.Run(async () =>
    {
        var g = Aio.Gather(Task.FromResult(1), Task.FromResult(2));
        int[] results = await Aio.WaitFor(g, 5);
        Assert.Equal([1, 2], results);
    }, new LoopOptions { VirtualTime = virtualTime });

    [Fact]
    public void Gather_UntypedMixedChildren_CompletesWhenAllAreDone() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => Aio.Sleep(2).AsTask());
        var b = Aio.CreateTask(() => After(1, 5));
        double t0 = Now;
        await Aio.Gather(a, b);
        Assert.True(a.IsDone && b.IsDone);
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_duplicate_coroutines")]
    public void Gather_SameChildTwice_ItsResultAppearsTwice() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => After(1, "x"));
        Assert.Equal(["x", "x"], await Aio.Gather(t, t));
        var hot = After(1, "y");
        Assert.Equal(["y", "y"], await Aio.Gather(hot, hot));
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_constructor_empty_sequence")]
    public void Gather_NoChildren_IsDoneWithEmptyResult() => AioTest.Run(async () =>
    {
        var g = Aio.Gather(Array.Empty<AioTask<int>>());
        Assert.True(g.IsDone);
        Assert.Empty(await g);
        var untyped = Aio.Gather(Array.Empty<Task>());
        Assert.True(untyped.IsDone);
        await untyped;
    });

    [Fact]
    [Trait("asyncio", "gather(return_exceptions=True)")]
    public void GatherOutcomes_MixedEndings_ReportsEachInOrder() => AioTest.Run(async () =>
    {
        var ok = Aio.CreateTask(() => After(1, 7));
        var bad = Aio.CreateTask(() => FailAfter(2, "boom"));
        var cancelled = Aio.CreateTask(() => After(10, 9));
        Aio.GetRunningLoop().CallLater(3, () => cancelled.Cancel("stop"));
        var outcomes = await Aio.GatherOutcomes([ok, bad, cancelled]);
        Assert.Equal(3, outcomes.Length);
        Assert.True(outcomes[0].IsSuccess);
        Assert.Equal(7, outcomes[0].Value);
        Assert.IsType<InvalidOperationException>(outcomes[1].Exception);
        Assert.Equal("boom", outcomes[1].Exception!.Message);
        Assert.True(outcomes[2].IsCancelled);
        Assert.Equal("stop", ((CancelledError)outcomes[2].Exception!).CancelMessage);
        Assert.Throws<InvalidOperationException>(() => outcomes[1].GetValueOrThrow());
        // The params form, as Gather's.
        var again = await Aio.GatherOutcomes(ok, bad, cancelled);
        Assert.Equal([true, false, false], again.Select(o => o.IsSuccess));
        Assert.True(again[2].IsCancelled);
        var running = await Aio.GatherOutcomes(After(1, 2), FailAfter(1, "late"));
        Assert.Equal(2, running[0].Value);
        Assert.Equal("late", running[1].Exception!.Message);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_one_exception")]
    public void Gather_ChildFails_FailsAtOnceWhileOthersKeepRunning() => AioTest.Run(async () =>
    {
        var slow = Aio.CreateTask(() => After(10, 1));
        var bad = Aio.CreateTask(() => FailAfter(1, "boom"));
        double t0 = Now;
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Aio.Gather(slow, bad));
        Assert.Equal("boom", e.Message);
        Assert.Equal(1, Now - t0, 6);
        Assert.False(slow.IsDone);
        Assert.Equal(1, await slow);
        Assert.False(slow.IsCancelled);
    });

    [Fact]
    public void Gather_RunningCoroutineFails_FailsWithItsException() => AioTest.Run(async () =>
    {
        var slow = After(5, 1);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Aio.Gather(slow, FailAfter(1, "hot")));
        Assert.Equal("hot", e.Message);
        Assert.False(slow.IsCompleted);
        Assert.Equal(1, await slow);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_one_cancellation")]
    public void Gather_ChildCancelled_FailsWithCancelledErrorButIsNotCancelled() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => After(10, 1));
        var b = Aio.CreateTask(() => After(10, 2));
        var g = Aio.Gather(a, b);
        await Aio.Sleep(1);
        b.Cancel("bye");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await g);
        Assert.Equal("bye", e.CancelMessage);
        Assert.True(g.IsDone);
        Assert.False(g.IsCancelled);
        Assert.False(a.IsDone);
        Assert.Equal(1, await a);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_cancel_gather_2")]
    public void Cancel_PendingChildren_CancelsThemAndEndsWithCancelledError() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => After(10, 1));
        var b = Aio.CreateTask(() => After(10, 2));
        var g = Aio.Gather(a, b);
        await Aio.Sleep(1);
        Assert.True(g.Cancel("stop"));
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await g);
        Assert.Equal("stop", e.CancelMessage);
        Assert.True(a.IsCancelled);
        Assert.True(b.IsCancelled);
    });

    [Fact]
    public void Cancel_ChildSwallowsTheCancellation_GatherStillEndsWithTheGathersMessage() => AioTest.Run(async () =>
    {
        // asyncio ends it with the last child's CancelledError, message-less when that child swallowed the
        // cancellation; here the error carries the gather's own message (docs/differences.md).
        var stubborn = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { }
            return 7;
        });
        var g = Aio.Gather(stubborn);
        await Aio.Sleep(1);
        Assert.True(g.Cancel("stop"));
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await g);
        Assert.Equal("stop", e.CancelMessage);
        Assert.Equal(7, await stubborn);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_cancel_gather_1")]
    public void Cancel_ChildrenAllDone_ReturnsFalse() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var f = loop.CreateFuture<int>();
        var g = Aio.Gather(f);
        f.SetResult(3);
        // The gather learns of the result synchronously or on the next iteration; either way it refuses.
        await Aio.Sleep(0);
        Assert.False(g.Cancel());
        Assert.Equal(new[] { 3 }, await g);
    });

    [Fact]
    [Trait("asyncio", "bpo-32684: a cancelled gather propagates cancellation even with return_exceptions")]
    public void GatherOutcomes_CancelledWhileChildrenCleanUp_EndsWithCancelledErrorAfterAllAreDone() => AioTest.Run(async () =>
    {
        bool cleanedUp = false;
        var quick = Aio.CreateTask(() => After(10, 1));
        var slowToStop = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError)
            {
                await Aio.Sleep(2);
                cleanedUp = true;
                throw;
            }
            return 2;
        });
        var g = Aio.GatherOutcomes([quick, slowToStop]);
        await Aio.Sleep(1);
        double t0 = Now;
        Assert.True(g.Cancel());
        await Assert.ThrowsAsync<CancelledError>(async () => await g);
        Assert.True(cleanedUp);
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "bpo-32684")]
    public void Cancel_ChildSwallowsCancellation_StillEndsWithCancelledError() => AioTest.Run(async () =>
    {
        var stubborn = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { }
            return 5;
        });
        var g = Aio.Gather(stubborn);
        await Aio.Sleep(1);
        Assert.True(g.Cancel());
        await Assert.ThrowsAsync<CancelledError>(async () => await g);
        Assert.Equal(5, await stubborn);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_cancel_blocking_wait_for / cancelling the awaiting task cancels gathered children")]
    public void Gather_AwaitingTaskCancelled_CancelsChildren() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => After(10, 1));
        var b = Aio.CreateTask(() => After(10, 2));
        var waiter = Aio.CreateTask(async () => await Aio.Gather(a, b));
        await Aio.Sleep(1);
        waiter.Cancel("outer");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await waiter);
        Assert.Equal("outer", e.CancelMessage);
        Assert.True(waiter.IsCancelled);
        Assert.True(a.IsCancelled);
        Assert.True(b.IsCancelled);
    });

    [Fact]
    public void Gather_AwaitingTaskCancelled_CancelsRunningCoroutinesOfItsScope() => AioTest.Run(async () =>
    {
        int cancelled = 0;
        async Task<int> Child(double delay)
        {
            try { await Aio.Sleep(delay); }
            catch (CancelledError) { cancelled++; throw; }
            return 1;
        }
        var waiter = Aio.CreateTask(async () => await Aio.Gather(Child(5), Child(10)));
        await Aio.Sleep(1);
        double t0 = Now;
        waiter.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await waiter);
        Assert.True(waiter.IsCancelled);
        Assert.Equal(2, cancelled);
        Assert.Equal(0, Now - t0, 6);
    });

    [Fact]
    [Trait("asyncio", "bpo-32684")]
    public void Gather_AwaitingTaskCancelledAndCoroutinesSwallowIt_TaskStillGetsCancelledError() => AioTest.Run(async () =>
    {
        async Task<int> Stubborn()
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { }
            return 1;
        }
        bool continued = false;
        var waiter = Aio.CreateTask(async () =>
        {
            await Aio.Gather(Stubborn(), Stubborn());
            continued = true;
        });
        await Aio.Sleep(1);
        waiter.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await waiter);
        Assert.False(continued);
        Assert.True(waiter.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_cancel_awaited_task (bpo-34872): a pending cancellation cancels what the task awaits next")]
    public void Gather_AwaitedWhileTheTasksCancellationIsPending_CancelsTheChildren() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => After(10, 1));
        var b = Aio.CreateTask(() => After(10, 2));
        var waiter = Aio.CreateTask(async () =>
        {
            Aio.CurrentTask!.Cancel("self");   // nothing pending: kept for the next await
            await Aio.Gather(a, b);
        });
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await waiter);
        Assert.Equal("self", e.CancelMessage);
        Assert.True(waiter.IsCancelled);
        Assert.True(a.IsCancelled);
        Assert.True(b.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_one_cancellation (a running coroutine ends cancelled)")]
    public void Gather_RunningCoroutineEndsCancelled_FailsWithItsCancelledErrorAndTheOthersRunOn() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var f = loop.CreateFuture<int>();
        async Task<int> AwaitIt() => await f;
        var slow = After(5, 2);
        var g = Aio.Gather(AwaitIt(), slow);
        loop.CallLater(1, () => f.Cancel("bye"));
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await g);
        Assert.Equal("bye", e.CancelMessage);
        Assert.False(g.IsCancelled);
        Assert.Equal(0, Aio.CurrentTask!.Cancelling());
        Assert.False(slow.IsCompleted);
        Assert.Equal(2, await slow);   // the awaiting task is not cancelled: it goes on
    });

    [Fact]
    public void Gather_FutureOfAnotherLoop_Throws() => AioTest.Run(() =>
    {
        using var other = new EventLoop();
        var foreign = other.CreateFuture<int>();
        var mine = Aio.GetRunningLoop().CreateFuture<int>();
        Assert.Throws<ArgumentException>(() => { Aio.Gather(mine, foreign); });
        Assert.Throws<ArgumentException>(() => { Aio.Gather((Future)foreign); });
        Assert.Throws<ArgumentException>(() => { Aio.GatherOutcomes([foreign]); });
        return Task.CompletedTask;
    });

    [Fact]
    public void Gather_ArrayOfTasksChangedAfterTheCall_GathersWhatItWasGiven() => AioTest.Run(async () =>
    {
        // The gather copies an array of futures or tasks: the caller may reuse it.
        var loop = Aio.GetRunningLoop();
        var a = loop.CreateFuture<int>();
        var b = loop.CreateFuture<int>();
        var other = loop.CreateFuture<int>();
        var children = new[] { a, b };
        var g = Aio.Gather(children);
        children[0] = other;
        a.SetResult(1);
        b.SetResult(2);
        int[] results = await g;
        Assert.Equal([1, 2], results);
        Assert.False(other.IsDone);
    });

    [Fact]
    public void Gather_NullChild_Throws() => AioTest.Run(() =>
    {
        Assert.Equal("tasks", Assert.Throws<ArgumentException>(() => { Aio.Gather(new Task<int>[] { null! }); }).ParamName);
        var done = Aio.GetRunningLoop().CreateFuture<int>();
        Assert.Equal("tasks", Assert.Throws<ArgumentException>(() => { Aio.Gather(new AioTask<int>[] { null! }); }).ParamName);
        Assert.Equal("futures", Assert.Throws<ArgumentException>(() => { Aio.Gather(new Future<int>[] { done, null! }); }).ParamName);
        Assert.Null(done.Observer);   // a rejected gather watches nothing
        // The error names the caller's parameter.
        Assert.Equal("tasks", Assert.Throws<ArgumentNullException>(() => { Aio.Gather((IEnumerable<AioTask<int>>)null!); }).ParamName);
        Assert.Equal("tasks", Assert.Throws<ArgumentNullException>(() => { Aio.Gather((Task[])null!); }).ParamName);
        Assert.Equal("futures", Assert.Throws<ArgumentNullException>(() => { Aio.Gather((IEnumerable<Future>)null!); }).ParamName);
        Assert.Equal("coroutines", Assert.Throws<ArgumentNullException>(() => { Aio.GatherOutcomes((IEnumerable<Coroutine>)null!); }).ParamName);
        Assert.Equal("future", Assert.Throws<ArgumentNullException>(() => { Aio.Shield((Future)null!); }).ParamName);
        Assert.Equal("task", Assert.Throws<ArgumentNullException>(() => { Aio.Shield((AioTask<int>)null!); }).ParamName);
        return Task.CompletedTask;
    });
}
