namespace Asyncio.Tests.Tasks;

/// <summary>asyncio's <c>wait()</c>: the three return conditions, the timeout, and what it never cancels.</summary>
public class WaitTests
{
    static double Now => Aio.GetRunningLoop().Time();

    static AioTask<int> SleepTask(double seconds, int value) =>
        Aio.CreateTask(async () => { await Aio.Sleep(seconds); return value; });

    static AioTask<int> FailingTask(double seconds) =>
        Aio.CreateTask<int>(async () => { await Aio.Sleep(seconds); throw new InvalidOperationException("boom"); });

    [Theory]
    [InlineData(0)]
    [InlineData(ChildSet.WatchEachLimit)] // past the limit: watched through one pump
    public void Wait_RunningCoroutinesOnRealTime_FirstCompletedThenTheRestFinishQuietly(int more)
    {
        // On the real clock a few .NET Tasks are watched one by one, many by one pump over Task.WhenEach.
        // Once wait() has its answer the watch is cut loose: later completions end it without reaching the
        // finished wait. (The pump hears of completions through the thread pool, so which tasks are done
        // when wait() returns depends on thread timing; only the first is sure to be.)
        static async Task<int> After(double seconds, int value) { await Aio.Sleep(seconds); return value; }
        IReadOnlySet<Task<int>>? done = null, pending = null;
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            Task<int>[] all = [After(0.001, 1), After(0.2, 2), After(0.3, 3), .. Enumerable.Range(4, more).Select(i => After(0.2, i))];
            (done, pending) = await Aio.Wait(all, returnWhen: ReturnWhen.FirstCompleted);
            Assert.Contains(all[0], done);
            Assert.Equal(all.Length, done.Count + pending.Count);
            int[] results = await Task.WhenAll(all);
            Assert.Equal(Enumerable.Range(1, all.Length), results);
            for (int i = 0; i < 3; i++) await Aio.Sleep(0.001);
        }, new LoopOptions());
        Assert.Empty(errors);
        Assert.Equal(3 + more, done!.Count + pending!.Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(ChildSet.WatchEachLimit)] // past the limit: watched through one pump
    public void Wait_RunningCoroutinesOnRealTime_AnsweredWaitIsNotKeptAliveByAChildThatNeverEnds(int more) => AioTest.RunReal(async () =>
    {
        // What watches the .NET Tasks (a continuation on each, or the pump) stays while one of them never
        // completes; what it holds must no longer lead to the wait (its future, its children, its results).
        var never = Enumerable.Range(0, 1 + more).Select(_ => new TaskCompletionSource<int>()).ToArray();
        var weak = await WaitAndForget(Task.FromResult(1), never.Select(s => s.Task));
        for (int i = 0; i < 3; i++) await Aio.Sleep(0.001);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(weak.IsAlive, "the answered wait is still reachable");
        GC.KeepAlive(never);
    });

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static async Task<WeakReference> WaitAndForget(Task<int> quick, IEnumerable<Task<int>> never)
    {
        var wait = Aio.Wait([quick, .. never], returnWhen: ReturnWhen.FirstCompleted);
        var (done, _) = await wait;
        Assert.Equal(1, Assert.Single(done).Result);
        return new WeakReference(wait);
    }

    [Fact]
    [Trait("asyncio", "test_tasks: test_wait_first_completed")]
    public void Wait_FirstCompleted_ReturnsWhenOneIsDone() => AioTest.Run(async () =>
    {
        var a = SleepTask(3, 1);
        var b = SleepTask(1, 2);
        var c = SleepTask(2, 3);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([a, b, c], returnWhen: ReturnWhen.FirstCompleted);
        Assert.Equal(1, Now - t0, 6);
        Assert.Equal([b], done);
        Assert.Equal(2, pending.Count);
        Assert.Contains(a, pending);
        Assert.Contains(c, pending);
        Assert.False(a.IsCancelled || c.IsCancelled);
        await Aio.Gather(a, c);
    });

    [Fact]
    [Trait("asyncio", "wait() sorts the awaitables when the waiting task resumes")]
    public void Wait_FirstCompletedAndTwoFinishTogether_BothAreDone() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var b = SleepTask(1, 2);
        var c = SleepTask(5, 3);
        var (done, pending) = await Aio.Wait([a, b, c], returnWhen: ReturnWhen.FirstCompleted);
        Assert.Equal(2, done.Count);
        Assert.Equal([c], pending);
        Assert.All(pending, t => Assert.False(t.IsDone));
        c.Cancel();
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_wait_first_exception")]
    public void Wait_FirstException_ReturnsOnTheFirstFailure() => AioTest.Run(async () =>
    {
        var slow = SleepTask(5, 1);
        var bad = FailingTask(1);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([slow, bad], returnWhen: ReturnWhen.FirstException);
        Assert.Equal(1, Now - t0, 6);
        Assert.Equal([bad], done);
        Assert.Equal([slow], pending);
        Assert.IsType<InvalidOperationException>(bad.GetException());
        Assert.Equal(1, await slow);
    });

    [Fact]
    [Trait("asyncio", "wait(FIRST_EXCEPTION): a cancelled future is not an exception")]
    public void Wait_FirstExceptionAndChildCancelled_KeepsWaiting() => AioTest.Run(async () =>
    {
        var cancelled = SleepTask(10, 1);
        var slow = SleepTask(3, 2);
        Aio.GetRunningLoop().CallLater(1, () => cancelled.Cancel());
        double t0 = Now;
        var (done, pending) = await Aio.Wait([cancelled, slow], returnWhen: ReturnWhen.FirstException);
        Assert.Equal(3, Now - t0, 6);
        Assert.Equal(2, done.Count);
        Assert.Empty(pending);
        Assert.True(cancelled.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_wait_first_exception_in_wait")]
    public void Wait_FirstExceptionWithoutFailures_WaitsForAll() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var b = SleepTask(2, 2);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([a, b], returnWhen: ReturnWhen.FirstException);
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal(2, done.Count);
        Assert.Empty(pending);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_wait")]
    public void Wait_AllCompleted_ReturnsWhenEveryOneIsDone() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var bad = FailingTask(2);
        var c = SleepTask(3, 3);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([a, bad, c]);
        Assert.Equal(3, Now - t0, 6);
        Assert.Equal(3, done.Count);
        Assert.Empty(pending);
        Assert.NotNull(bad.GetException()); // the failure is left in the task, not thrown by Wait
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_wait_with_timeout")]
    public void Wait_Timeout_ReturnsDoneAndPendingWithoutCancelling() => AioTest.Run(async () =>
    {
        var quick = SleepTask(1, 1);
        var slow = SleepTask(5, 2);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([quick, slow], timeout: 2);
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal([quick], done);
        Assert.Equal([slow], pending);
        Assert.False(slow.IsCancelled);
        Assert.Equal(2, await slow);
        Assert.Equal(5, Now - t0, 6);
    });

    [Fact]
    public void Wait_TimeSpanTimeout_BehavesAsSeconds() => AioTest.Run(async () =>
    {
        var slow = SleepTask(5, 2);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([slow], TimeSpan.FromSeconds(1.5));
        Assert.Equal(1.5, Now - t0, 6);
        Assert.Empty(done);
        Assert.Equal([slow], pending);
        slow.Cancel();
    });

    [Fact]
    public void Wait_RunningCoroutines_ReturnsTheSameTaskObjects() => AioTest.Run(async () =>
    {
        async Task Work(double s) => await Aio.Sleep(s);
        var first = Work(1);
        var second = Work(2);
        var (done, pending) = await Aio.Wait([first, second], returnWhen: ReturnWhen.FirstCompleted);
        Assert.Same(first, Assert.Single(done));
        Assert.Same(second, Assert.Single(pending));
        await second;
    });

    [Fact]
    public void Wait_AlreadyDone_ReturnsOnTheNextIteration() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.SetResult(1);
        var (done, pending) = await Aio.Wait([f]);
        Assert.Equal([f], done);
        Assert.Empty(pending);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_wait_duplicate_coroutines")]
    public void Wait_SameTaskTwice_ReturnsWhenAllAreDoneWithItOnce() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var b = SleepTask(2, 2);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([a, a, b]);
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal(2, done.Count);
        Assert.Contains(a, done);
        Assert.Contains(b, done);
        Assert.Empty(pending);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_wait_errors (empty set)")]
    public void Wait_NoAwaitables_Throws() => AioTest.Run(() =>
    {
        Assert.Throws<ArgumentException>(() => { Aio.Wait(Array.Empty<AioTask>()); });
        return Task.CompletedTask;
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_wait_errors (bad return_when)")]
    public void Wait_UnknownReturnWhen_Throws() => AioTest.Run(() =>
    {
        var t = SleepTask(1, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => { Aio.Wait([t], returnWhen: (ReturnWhen)42); });
        t.Cancel();
        return Task.CompletedTask;
    });

    [Fact]
    public void Wait_FutureOfAnotherLoop_Throws() => AioTest.Run(() =>
    {
        using var other = new EventLoop();
        Assert.Throws<ArgumentException>(() => { Aio.Wait([other.CreateFuture()]); });
        return Task.CompletedTask;
    });

    [Fact]
    [Trait("asyncio", "wait() never cancels the awaitables")]
    public void Wait_AwaitingTaskCancelled_ChildrenKeepRunning() => AioTest.Run(async () =>
    {
        var a = SleepTask(5, 1);
        var waiter = Aio.CreateTask(async () => { await Aio.Wait([a]); });
        await Aio.Sleep(1);
        waiter.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await waiter);
        Assert.False(a.IsDone);
        Assert.Equal(1, await a);
    });
}
