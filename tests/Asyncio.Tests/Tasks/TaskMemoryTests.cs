namespace Asyncio.Tests.Tasks;

/// <summary>
/// What a task costs in memory. A million tasks is a benchmark (W2) and a fan-out a user may write, and
/// on some machines fresh memory costs more than the code that fills it (docs/design/performance.md), so
/// the per-task bytes are a budget that a test holds.
/// </summary>
public class TaskMemoryTests
{
    static readonly Func<Task> s_trivial = () => Task.CompletedTask;

    /// <summary>Creates and runs 10,000 tasks twice; the second round must cost under <paramref name="budget"/> bytes per task.</summary>
    static async Task AssertCreatedAndRunTaskCost(Func<int, AioTask> create, int budget)
    {
        const int N = 10_000;
        var tasks = new AioTask[N];
        for (int round = 0; round < 2; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < N; i++) tasks[i] = create(i);
            await Aio.Sleep(0);
            await Aio.Sleep(0);
            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.All(tasks, t => Assert.True(t.IsDone && !t.IsCancelled && !t.IsFaulted));
            if (round == 0) continue; // the warm-up fills the ready queue's chunk pool
            Assert.True(bytes < (long)N * budget + 4096,
                $"{bytes / (double)N:F1} bytes per created-and-run task; the budget is {budget}");
        }
    }

    // Tasks made in a row wait to start in one ready item (EventLoop.Tasks.cs, "runs"): a burst of a million costs
    // no queue slot each. In debug mode each start is an item of its own, for the slow-callback reports.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CreateTask_ARowOfTasks_WaitsInOneReadyItem(bool debug) => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var tasks = new List<AioTask>();
        int before = loop.ReadyCount;
        for (int i = 0; i < 1000; i++) tasks.Add(Aio.CreateTask(s_trivial));
        Assert.Equal(debug ? 1000 : 1, loop.ReadyCount - before);
        loop.CallSoon(() => { });
        for (int i = 0; i < 1000; i++) tasks.Add(Aio.CreateTask(s_trivial));
        Assert.Equal(debug ? 2001 : 3, loop.ReadyCount - before);
        await Aio.Wait(tasks);
        Assert.All(tasks, t => Assert.True(t.IsDone && !t.IsCancelled && !t.IsFaulted));
    }, new LoopOptions { VirtualTime = true, Debug = debug });

    [Fact]
    public void CreateTask_DebugModeTurnedOnWhileARowIsQueued_LaterStartsGetItemsOfTheirOwn() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var tasks = new List<AioTask>();
        int before = loop.ReadyCount;
        for (int i = 0; i < 10; i++) tasks.Add(Aio.CreateTask(s_trivial));
        loop.Debug = true;
        for (int i = 0; i < 10; i++) tasks.Add(Aio.CreateTask(s_trivial));
        Assert.Equal(11, loop.ReadyCount - before);
        await Aio.Wait(tasks);
        loop.Debug = false;
        Assert.All(tasks, t => Assert.True(t.IsDone && !t.IsCancelled && !t.IsFaulted));
    });

    // A task is 88 bytes (the future's fields plus the task's) and its cancel scope, which its first step
    // runs in, 64 bytes; the ready queue's chunks are reused after the warm-up.
    [Fact]
    public void CreateTask_TrivialCoroutine_CostsTheTaskAndItsScopeOnly() => AioTest.Run(() =>
        AssertCreatedAndRunTaskCost(_ => Aio.CreateTask(s_trivial), 88 + 64));

    static readonly Func<int, Task> s_trivialOf = static _ => Task.CompletedTask;

    // The argument waits in the task (8 bytes more): no closure and no delegate, which cost the closure
    // form CreateTask(() => F(i)) 88 bytes per task.
    [Fact]
    public void CreateTask_WithAnArgument_CostsTheTaskItsArgumentAndItsScopeOnly() => AioTest.Run(() =>
        AssertCreatedAndRunTaskCost(i => Aio.CreateTask(s_trivialOf, i), 96 + 64));

    [Fact]
    public void Gather_OfPendingTasks_CostsOneSlotPerChild() => AioTest.Run(async () =>
    {
        // Gather copies its children (asyncio does too: the caller may reuse its list) and watches each
        // pending future through its one observer slot: no node, no list of its own.
        const int N = 10_000;
        var tasks = new AioTask[N];
        for (int i = 0; i < N; i++) tasks[i] = Aio.CreateTask(s_trivial);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var gather = Aio.Gather(tasks);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        await gather;
        Assert.All(tasks, t => Assert.True(t.IsDone));
        Assert.True(bytes < (long)N * 8 + 1024, $"{bytes / (double)N:F1} bytes per child to start a gather; the budget is one slot (8)");
    });

    [Fact]
    public void Gather_OfManyCompletedTasksOnRealTime_TakesNoNodePerChild() => AioTest.RunReal(async () =>
    {
        // Past ChildSet.WatchEachLimit Tasks a gather on the real clock watches them through one pump, done or
        // not: a million completed Tasks must not cost a node and a queued callback each (32 bytes and more).
        // The best of three rounds: the first gather of a process can meet one-time costs (a type's first use), which
        // one full-suite run on a loaded machine saw once.
        const int N = 10_000;
        var tasks = new Task[N];
        for (int i = 0; i < N; i++) tasks[i] = Task.CompletedTask;
        long bytes = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            var gather = Aio.Gather(tasks);
            bytes = Math.Min(bytes, GC.GetAllocatedBytesForCurrentThread() - before);
            await gather;
        }
        Assert.True(bytes < 4096, $"{bytes} bytes to start a gather of {N} completed Tasks");
    });

    [Fact]
    public void Gather_OfRunningCoroutines_WaitsForEachCompletionWithoutAllocatingOnTheLoop() => AioTest.RunReal(async () =>
    {
        // On the real clock the .NET Tasks a gather watches are pumped through Task.WhenEach. Each wait of
        // the pump for the next completion used to take a cancellation token, which wraps the wait in
        // a cancellable Task (about 200 bytes on the loop's thread, per wait); completions a few milliseconds
        // apart are one wait each. How far the pump (on the thread pool) lags behind the completions depends
        // on the machine's load, and a lag grows WhenEach's queue of completions (a larger segment, allocated by
        // the completing thread: the loop's), so the test takes the best of a few rounds: the token's wrapper
        // is paid in every round alike (94-114 bytes per completion), a lag only in some.
        const int N = 100, Rounds = 4;
        static async Task Finish(int i) => await Aio.Sleep(i * 0.003);
        long best = long.MaxValue;
        for (int round = 0; round <= Rounds; round++)
        {
            var tasks = new Task[N];
            for (int i = 0; i < N; i++) tasks[i] = Finish(i);
            long before = GC.GetAllocatedBytesForCurrentThread();
            await Aio.Gather(tasks);
            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            if (round > 0) best = Math.Min(best, bytes); // round 0 is the warm-up
        }
        Assert.True(best < N * 50, $"{best / (double)N:F1} bytes on the loop's thread per completion");
    });

    // ---- a burst of starts: scopes made ahead on another thread (ScopeSupply.cs) ----

    /// <summary>
    /// Creates <see cref="ScopeSupply.BurstAbove"/> + <paramref name="extra"/> tasks at once. The first to start
    /// asks for scopes made ahead and, to make the test independent of the thread pool's speed, waits (up to 30 s)
    /// until a block of them is ready; every other task runs <paramref name="body"/> with its index.
    /// </summary>
    static async Task<AioTask[]> StartBurst(int extra, Func<int, Task> body)
    {
        var loop = Aio.GetRunningLoop();
        int n = ScopeSupply.BurstAbove + extra;
        var tasks = new AioTask[n];
        tasks[0] = Aio.CreateTask(() =>
        {
            Assert.True(SpinWait.SpinUntil(() => loop.ScopeSupplyIfAny is { HasReady: true }, TimeSpan.FromSeconds(30)),
                "no scopes were made ahead within 30 s");
            return Task.CompletedTask;
        });
        for (int i = 1; i < n; i++) tasks[i] = Aio.CreateTask(body, i);
        await Aio.Sleep(0);
        return tasks;
    }

    [Fact]
    public void CreateTask_ABurstBeingQueued_HasScopesMadeAheadBeforeItsFirstStart_DroppedOnceTheLoopWaits() => AioTest.Run(async () =>
    {
        // The supply starts while the burst is queued (ScopeSupply.cs): the helper works while tasks are created.
        var loop = Aio.GetRunningLoop();
        var tasks = new AioTask[ScopeSupply.BurstAbove + 2048];
        for (int i = 0; i < tasks.Length; i++) tasks[i] = Aio.CreateTask(s_trivial);
        Assert.True(SpinWait.SpinUntil(() => loop.ScopeSupplyIfAny is { HasReady: true }, TimeSpan.FromSeconds(30)),
            "no scopes were made ahead while the burst was queued");
        Assert.All(tasks, t => Assert.False(t.IsDone));
        await Aio.Gather(tasks);
        var supply = loop.ScopeSupplyIfAny!;
        Assert.True(supply.Taken > 0, "no task of the burst took a scope made ahead");
        Assert.True(SpinWait.SpinUntil(() => !supply.IsMaking, TimeSpan.FromSeconds(30)), "the helper did not finish within 30 s");
        await Aio.Sleep(0.01);   // the loop waits: what was made and not taken is dropped
        Assert.False(supply.HasReady);
    });

    [Fact]
    public void CreateTask_InABurst_EachStartRunsInAScopeOfItsOwnBoundToItsTask() => AioTest.Run(async () =>
    {
        // Scopes made ahead are never shared or reused: each is the synchronisation context of exactly one
        // task's first step, and its owner is that task.
        var loop = Aio.GetRunningLoop();
        var contexts = new HashSet<SynchronizationContext>(ReferenceEqualityComparer.Instance);
        int mismatched = 0;
        var tasks = await StartBurst(10_000, _ =>
        {
            var context = SynchronizationContext.Current!;
            if (context is not CancelScope scope || !ReferenceEquals(scope.Task, Aio.CurrentTask)) mismatched++;
            contexts.Add(context);
            return Task.CompletedTask;
        });
        await Aio.Gather(tasks);
        Assert.Equal(0, mismatched);
        Assert.Equal(tasks.Length - 1, contexts.Count);
        Assert.True(loop.ScopeSupplyIfAny!.Taken > 0, "no task of the burst took a scope made ahead");
    });

    [Fact]
    public void CreateTask_InABurst_TasksThatWaitInScopesMadeAheadAreCancelled() => AioTest.Run(async () =>
    {
        // A scope made ahead registers the task's waits like one made in the step: a foreign await comes back
        // to the loop in that task, and cancelling the task reaches its pending sleep. Tasks 1 to 1,024 start
        // while the first block of scopes made ahead is handed out (StartBurst waits for it), so these four take
        // scopes made ahead.
        var loop = Aio.GetRunningLoop();
        int atSleep = 0, resumedElsewhere = 0;
        var tasks = await StartBurst(10_000, async i =>
        {
            if (i is not (1 or 500 or 1000 or 1024)) return;
            var self = Aio.CurrentTask;
            await Task.Yield();
            if (!ReferenceEquals(Aio.CurrentTask, self) || !loop.IsLoopThread) resumedElsewhere++;
            atSleep++;
            await Aio.Sleep(3600);
        });
        Assert.True(loop.ScopeSupplyIfAny!.Taken >= 1024, "the first block of scopes made ahead was not handed out");
        for (int iteration = 0; atSleep < 4 && iteration < 1000; iteration++) await Aio.Sleep(0);
        var waiting = tasks.Where(t => !t.IsDone).ToArray();
        Assert.Equal(4, waiting.Length);
        foreach (var t in waiting) Assert.True(t.Cancel("burst"));
        await Aio.GatherOutcomes(waiting);
        Assert.All(waiting, t => Assert.Equal("burst", Assert.Throws<CancelledError>(t.GetResult).CancelMessage));
        Assert.Equal(0, resumedElsewhere);
    });
}
