namespace Asyncio.Tests.Tasks;

/// <summary>asyncio's <c>as_completed()</c>: completion order, timeout, and the async-iterator form.</summary>
public class AsCompletedTests
{
    static double Now => Aio.GetRunningLoop().Time();

    static AioTask<string> SleepTask(double seconds, string value) =>
        Aio.CreateTask(async () => { await Aio.Sleep(seconds); return value; });

    [Fact]
    [Trait("asyncio", "test_tasks: test_as_completed")]
    public void AsCompleted_Tasks_YieldsResultsInCompletionOrder() => AioTest.Run(async () =>
    {
        var tasks = new[] { SleepTask(3, "a"), SleepTask(1, "b"), SleepTask(2, "c") };
        var results = new List<(string, double)>();
        double t0 = Now;
        foreach (var next in Aio.AsCompleted(tasks))
            results.Add((await next, Now - t0));
        Assert.Equal([("b", 1.0), ("c", 2.0), ("a", 3.0)], results);
    });

    [Fact]
    public void AsCompleted_RunningCoroutines_YieldsResultsInCompletionOrder() => AioTest.Run(async () =>
    {
        async Task<int> After(double s, int v) { await Aio.Sleep(s); return v; }
        var order = new List<int>();
        foreach (var next in Aio.AsCompleted([After(2, 2), After(1, 1), After(3, 3)]))
            order.Add(await next);
        Assert.Equal([1, 2, 3], order);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_as_completed_duplicate_coroutines (the awaitables are a set)")]
    public void AsCompleted_SameTaskTwice_YieldsItOnce() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, "a");
        var b = SleepTask(2, "b");
        var results = new List<string>();
        foreach (var next in Aio.AsCompleted([a, a, b]))
            results.Add(await next);
        Assert.Equal(["a", "b"], results);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_as_completed_duplicate_coroutines (the awaitables are a set)")]
    public void AsCompletedAsync_SameTaskTwice_YieldsItOnce() => AioTest.Run(async () =>
    {
        async Task<int> After(double s, int v) { await Aio.Sleep(s); return v; }
        var c = After(1, 1);
        var d = After(2, 2);
        var yielded = new List<Task<int>>();
        await foreach (var t in Aio.AsCompletedAsync(new[] { c, c, d }))
            yielded.Add(t);
        Assert.Equal([c, d], yielded);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_as_completed_resume_iterator")]
    public void AsCompleted_EnumeratedAgainAfterABreak_GoesOnWithTheRest() => AioTest.Run(async () =>
    {
        // Bounded waits: an awaitable handed out beyond the children would otherwise wait for ever.
        var completions = Aio.AsCompleted([SleepTask(1, "a"), SleepTask(2, "b"), SleepTask(3, "c"), SleepTask(4, "d")]);
        var results = new List<string>();
        foreach (var next in completions)
        {
            results.Add(await Aio.WaitFor(next, 20));
            if (results.Count == 2) break;
        }
        foreach (var next in completions) results.Add(await Aio.WaitFor(next, 20));
        Assert.Equal(["a", "b", "c", "d"], results);

        using var cts = new CancellationTokenSource();
        Aio.GetRunningLoop().CallLater(20, cts.Cancel);
        var ordered = Aio.AsCompletedAsync([SleepTask(1, "e"), SleepTask(2, "f"), SleepTask(3, "g")], cancellationToken: cts.Token);
        var seen = new List<string>();
        await foreach (var t in ordered)
        {
            seen.Add(t.Result);
            break;
        }
        await foreach (var t in ordered) seen.Add(t.Result);
        Assert.Equal(["e", "f", "g"], seen);
    });

    [Fact]
    public void AsCompletedAsync_TokenCancelledAfterTheLoopClosed_CancelDoesNotThrow()
    {
        // An enumeration suspended when its loop stops keeps its token registration; a Cancel on another thread after
        // the loop closed used to get the registration's post refused, and the refusal thrown out of Cancel.
        var loop = new EventLoop();
        var cts = new CancellationTokenSource();
        var never = loop.CreateFuture<string>();
        bool waiting = false;
        var task = loop.CreateTask(async () =>
        {
            await using var it = Aio.AsCompletedAsync([never], cancellationToken: cts.Token).GetAsyncEnumerator();
            waiting = true;
            await it.MoveNextAsync();
        });
        loop.CallSoon(() => loop.CallSoon(loop.Stop));
        loop.RunForever();
        Assert.True(waiting);
        Assert.False(task.IsDone);
        loop.Close();
        var error = Record.Exception(() => Task.Run(cts.Cancel).GetAwaiter().GetResult());
        Assert.Null(error);
    }

    [Fact]
    public void AsCompleted_FailedChild_ItsAwaitableThrows() => AioTest.Run(async () =>
    {
        var ok = SleepTask(2, "ok");
        var bad = Aio.CreateTask<string>(async () => { await Aio.Sleep(1); throw new InvalidOperationException("boom"); });
        var it = Aio.AsCompleted([ok, bad]).GetEnumerator();
        Assert.True(it.MoveNext());
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await it.Current);
        Assert.True(it.MoveNext());
        Assert.Equal("ok", await it.Current);
        Assert.False(it.MoveNext());
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_as_completed_with_timeout")]
    public void AsCompleted_Timeout_RemainingAwaitablesThrowTimeoutException() => AioTest.Run(async () =>
    {
        var quick = SleepTask(1, "quick");
        var slow = SleepTask(10, "slow");
        double t0 = Now;
        var awaitables = Aio.AsCompleted([quick, slow], timeout: 2).ToList();
        Assert.Equal("quick", await awaitables[0]);
        await Assert.ThrowsAsync<TimeoutException>(async () => await awaitables[1]);
        Assert.Equal(2, Now - t0, 6);
        Assert.False(slow.IsCancelled); // as_completed cancels nothing
        Assert.Equal("slow", await slow);
    });

    [Fact]
    [Trait("asyncio", "as_completed: the timeout counts from the call")]
    public void AsCompleted_EnumeratedLate_TimeoutCountsFromTheCall() => AioTest.Run(async () =>
    {
        var quick = SleepTask(1, "quick");
        var slow = SleepTask(10, "slow");
        double t0 = Now;
        var awaitables = Aio.AsCompleted([quick, slow], timeout: 2);
        await Aio.Sleep(3);
        var list = awaitables.ToList();
        Assert.Equal("quick", await list[0]);
        await Assert.ThrowsAsync<TimeoutException>(async () => await list[1]);
        Assert.Equal(3, Now - t0, 6);
        slow.Cancel();
    });

    [Fact]
    [Trait("asyncio", "test_as_completed: async for yields the original tasks (3.13)")]
    public void AsCompletedAsync_YieldsTheOriginalAwaitablesInCompletionOrder() => AioTest.Run(async () =>
    {
        var a = SleepTask(3, "a");
        var b = SleepTask(1, "b");
        var c = SleepTask(2, "c");
        var order = new List<AioTask<string>>();
        await foreach (var t in Aio.AsCompletedAsync([a, b, c]))
        {
            Assert.True(t.IsDone);
            order.Add(t);
        }
        Assert.Equal([b, c, a], order);
    });

    [Fact]
    public void AsCompletedAsync_RunningCoroutines_YieldsTheSameTasks() => AioTest.Run(async () =>
    {
        var first = Aio.Sleep(2).AsTask();
        var second = Aio.Sleep(1).AsTask();
        var order = new List<Task>();
        await foreach (var t in Aio.AsCompletedAsync([first, second])) order.Add(t);
        Assert.Same(second, order[0]);
        Assert.Same(first, order[1]);
    });

    [Fact]
    public void AsCompletedAsync_Timeout_YieldsTheDoneOnesThenThrows() => AioTest.Run(async () =>
    {
        var quick = SleepTask(1, "q");
        var slow = SleepTask(10, "s");
        var seen = new List<AioTask<string>>();
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(async () =>
        {
            await foreach (var t in Aio.AsCompletedAsync([quick, slow], timeout: 2)) seen.Add(t);
        });
        Assert.Equal([quick], seen);
        Assert.Equal(2, Now - t0, 6);
        slow.Cancel();
    });

    [Fact]
    public void AsCompleted_NoAwaitables_YieldsNothing() => AioTest.Run(async () =>
    {
        Assert.Empty(Aio.AsCompleted(Array.Empty<AioTask<int>>()));
        await foreach (var _ in Aio.AsCompletedAsync(Array.Empty<Task>())) Assert.Fail("nothing expected");
    });

    [Fact]
    public void AsCompleted_FutureOfAnotherLoop_ThrowsAtTheCall() => AioTest.Run(() =>
    {
        using var other = new EventLoop();
        var foreign = other.CreateFuture<int>();
        Assert.Throws<ArgumentException>(() => { Aio.AsCompleted([foreign]); });
        Assert.Throws<ArgumentException>(() => { Aio.AsCompletedAsync([foreign]); });
        return Task.CompletedTask;
    });

    [Fact]
    public void AsCompleted_AwaiterCancelled_NextAwaiterStillGetsTheNextChild() => AioTest.Run(async () =>
    {
        var a = SleepTask(2, "a");
        var b = SleepTask(3, "b");
        var awaitables = Aio.AsCompleted([a, b]).ToList();
        var impatient = Aio.CreateTask(async () => await awaitables[0]);
        await Aio.Sleep(1);
        impatient.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await impatient);
        // The cancelled await abandoned its slot; the remaining awaitable still resolves.
        Assert.Equal("a", await awaitables[1]);
    });

    [Fact]
    public void AsCompletedAsync_TokenCancelledWhileWaiting_ThrowsCancelledError() => AioTest.Run(async () =>
    {
        var slow = SleepTask(10, "s");
        using var cts = new CancellationTokenSource();
        Aio.GetRunningLoop().CallLater(1, cts.Cancel);
        double t0 = Now;
        await Assert.ThrowsAsync<CancelledError>(async () =>
        {
            await foreach (var _ in Aio.AsCompletedAsync([slow], cancellationToken: cts.Token)) { }
        });
        Assert.Equal(1, Now - t0, 6);
        Assert.False(slow.IsCancelled);
        slow.Cancel();
    });
}
