namespace Asyncio.Tests.Diagnostics;

/// <summary>asyncio 3.14's <c>capture_call_graph</c>/<c>format_call_graph</c>: what a task awaits, through which methods, and who awaits it.</summary>
public class CallGraphTests
{
    [Theory]
    [InlineData("<Fetch>d__3", "Fetch")]
    [InlineData("<<Run>g__Local|0_0>d", "Run.Local")]
    [InlineData("<<Run>b__0_0>d", "Run (lambda)")]
    [InlineData("<<<Main>$>g__Consumer|0_0>d", "Main.Consumer")]    // a local function of top-level statements
    [InlineData("<<<Main>$>b__0_1>d", "Main (lambda)")]
    public void FrameNames_AreReadFromTheCompilersStateMachineNames(string stateMachine, string method) =>
        Assert.Equal(method, CallGraphFrame.NameOf(stateMachine, owner: null));

    static async Coroutine<int> Inner(AsyncQueue<int> q) => await q.GetAsync();
    static async Coroutine<int> Outer(AsyncQueue<int> q) => await Inner(q) + 1;

    static async Coroutine<CallGraph?> CaptureHere() => await Capture();
    static async Coroutine<CallGraph?> Capture()
    {
        await Coroutine.CompletedCoroutine;   // an async method that has not suspended: both frames are on the thread's stack
        return Aio.CaptureCallGraph();
    }

    static async Task HoldLock(AsyncLock l)
    {
        using (await l.AcquireAsync()) { }
    }

    static string[] Names(IReadOnlyList<CallGraphFrame> frames) => frames.Select(f => f.Name).ToArray();

    [Fact]
    [Trait("asyncio", "test_graph: capture_call_graph outside a task returns None")]
    public void Capture_NoTaskRunning_ReturnsNull()
    {
        Assert.Null(Aio.CaptureCallGraph());   // no loop on this thread
        Assert.Equal("", Aio.FormatCallGraph());
        AioTest.Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var done = loop.CreateFuture<CallGraph?>();
            loop.CallSoon(() => done.SetResult(Aio.CaptureCallGraph()));   // a plain callback
            Assert.Null(await done);
        });
    }

    [Fact]
    public void Capture_CurrentTask_IsRunning_WithTheAsyncMethodsOnTheStack() => AioTest.Run(async () =>
    {
        var graph = await Aio.CreateTask(CaptureHere, "probe");
        Assert.NotNull(graph);
        Assert.Equal("probe", ((AioTask)graph!.Future).Name);
        Assert.Equal("running", graph.State);
        Assert.Equal([$"{nameof(CallGraphTests)}.{nameof(Capture)}", $"{nameof(CallGraphTests)}.{nameof(CaptureHere)}"], Names(graph.CallStack));
        Assert.Equal(typeof(CallGraphTests).GetMethod(nameof(Capture), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static), graph.CallStack[0].Method);
    });

    [Fact]
    public void Capture_CoroutineChain_NamesEachCallerAndTheAwaitedQueue() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var worker = Aio.CreateTask(() => Outer(q), "worker");
        await Aio.Sleep(1);
        var graph = Aio.CaptureCallGraph(worker)!;
        Assert.Equal("pending", graph.State);
        var wait = Assert.Single(graph.Awaits);
        Assert.Equal("AsyncQueue.GetAsync", wait.Operation);
        Assert.Same(q, wait.Target);
        Assert.Null(wait.Deadline);
        Assert.Equal([$"{nameof(CallGraphTests)}.{nameof(Inner)}", $"{nameof(CallGraphTests)}.{nameof(Outer)}"], Names(wait.CallStack));
        Assert.Same(wait.CallStack, graph.CallStack);   // the await that leads up to the task's body
        Assert.Empty(graph.AwaitedBy);
        q.PutNowait(1);
        Assert.Equal(2, await worker);
    });

    [Fact]
    public void Capture_Sleep_GivesItsDeadline_AndWhoAwaitsTheTask() => AioTest.Run(async () =>
    {
        var sleeper = Aio.CreateTask(async () => await Aio.Sleep(10), "sleeper");
        var waiter = Aio.CreateTask(async () => await sleeper, "waiter");
        await Aio.Sleep(2);
        var graph = Aio.CaptureCallGraph(sleeper)!;
        var sleep = Assert.Single(graph.Awaits);
        Assert.Equal("Sleep", sleep.Operation);
        Assert.Equal(10.0, sleep.Deadline!.Value, 6);
        var by = Assert.Single(graph.AwaitedBy);
        Assert.Same(waiter, by.Future);
        var awaitOfSleeper = Assert.Single(by.Awaits);
        Assert.Equal("await", awaitOfSleeper.Operation);
        Assert.Same(sleeper, awaitOfSleeper.Target);
        await waiter;
    });

    [Fact]
    public void Capture_AsyncTaskMethod_NamesTheLockButNoFrames() => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        var locker = Aio.CreateTask(() => HoldLock(l), "locker");
        await Aio.Sleep(1);
        var wait = Assert.Single(Aio.CaptureCallGraph(locker)!.Awaits);
        Assert.Equal("AsyncLock.AcquireAsync", wait.Operation);
        Assert.Same(l, wait.Target);
        Assert.Empty(wait.CallStack);   // an async Task method's callers are the runtime's to know
        l.Release();
        await locker;
    });

    [Fact]
    [Trait("asyncio", "test_graph: test_stack_tree (gather)")]
    public void Capture_GatheredTask_IsAwaitedByTheGather_WhichTheTaskAwaits() => AioTest.Run(async () =>
    {
        var child = Aio.CreateTask(async () => await Aio.Sleep(5), "child");
        var parent = Aio.CreateTask(async () => await Aio.Gather(child), "parent");
        await Aio.Sleep(1);
        var gather = Assert.Single(Aio.CaptureCallGraph(child)!.AwaitedBy);
        Assert.IsNotType<AioTask>(gather.Future);
        Assert.Empty(gather.Awaits);
        Assert.Same(parent, Assert.Single(gather.AwaitedBy).Future);
        await parent;
    });

    [Fact]
    [Trait("asyncio", "test_graph: test_stack_tree (TaskGroup)")]
    public void Capture_TaskGroupChild_IsAwaitedByTheTaskRunningTheGroup() => AioTest.Run(async () =>
    {
        AioTask? child = null;
        var parent = Aio.CreateTask(() => TaskGroup.Run(tg => { child = tg.CreateTask(async () => await Aio.Sleep(5), "child"); }), "parent");
        await Aio.Sleep(1);
        Assert.Same(parent, Assert.Single(Aio.CaptureCallGraph(child!)!.AwaitedBy).Future);
        Assert.Contains("await TaskGroup's children (pending)", Aio.FormatCallGraph(parent));
        await parent;
    });

    /// <summary>Starts task a, which awaits task b, which awaits a; returns once both wait.</summary>
    internal static async Task<(AioTask A, AioTask B)> StartCycle()
    {
        var bRef = Aio.GetRunningLoop().CreateFuture<AioTask>();
        var a = Aio.CreateTask(async () => await await bRef, "a");
        var b = Aio.CreateTask(async () => await a, "b");
        bRef.SetResult(b);
        await Aio.Sleep(1);
        return (a, b);
    }

    /// <summary>Ends the cycle of <see cref="StartCycle"/>: a is cancelled, and b with it.</summary>
    internal static async Task EndCycle(AioTask a, AioTask b)
    {
        a.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await b);
    }

    [Fact]
    public void Capture_TasksAwaitingEachOther_ShowsTheCycleOnce() => AioTest.Run(async () =>
    {
        var (a, b) = await StartCycle();
        var graph = Aio.CaptureCallGraph(a)!;
        var byB = Assert.Single(graph.AwaitedBy);
        Assert.Same(b, byB.Future);
        var byA = Assert.Single(byB.AwaitedBy);
        Assert.Same(a, byA.Future);
        Assert.Empty(byA.AwaitedBy);   // not followed round again
        await EndCycle(a, b);
    });

    [Fact]
    public void Format_DrawsTheTaskItsAwaitsAndItsAwaiters() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var worker = Aio.CreateTask(() => Outer(q), "worker");
        var waiter = Aio.CreateTask(async () => await worker, "waiter");
        await Aio.Sleep(1);
        var text = Aio.FormatCallGraph(worker);
        Assert.Equal(Aio.CaptureCallGraph(worker)!.ToString(), text);
        var lines = text.Split('\n');
        Assert.Equal($"* Task 'worker' (#{Id(worker)}) pending", lines[0]);
        Assert.Equal("+ Awaits:", lines[1]);
        Assert.StartsWith("|   AsyncQueue.GetAsync on <AsyncQueue", lines[2]);
        Assert.Equal($"|     in async {nameof(CallGraphTests)}.{nameof(Inner)}", lines[3]);
        Assert.Equal($"|     in async {nameof(CallGraphTests)}.{nameof(Outer)}", lines[4]);
        Assert.Equal("+ Awaited by:", lines[5]);
        Assert.Equal($"   * Task 'waiter' (#{Id(waiter)}) pending", lines[6]);
        Assert.Contains($"   |   await Task 'worker' (#{Id(worker)})", lines);
        var sw = new StringWriter();
        Aio.PrintCallGraph(worker, sw);
        Assert.Equal(text, sw.ToString());
        q.PutNowait(1);
        await waiter;
    });

    static int Id(AioTask t) => t.Id;

    [Fact]
    public void Capture_FutureOfAnotherLoop_Throws() => AioTest.Run(async () =>
    {
        using var other = new EventLoop();
        var f = other.CreateFuture();
        Assert.Throws<ArgumentException>(() => Aio.GetRunningLoop().CaptureCallGraph(f));
        await Task.CompletedTask;
    });

    [Fact]
    public void Capture_FromAnotherThread_Throws() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var task = Aio.CreateTask(async () => await Aio.Sleep(1));
        var error = await Task.Run(() => Record.Exception(() => loop.CaptureCallGraph(task)));
        Assert.IsType<InvalidOperationException>(error);
        await task;
    });
}
