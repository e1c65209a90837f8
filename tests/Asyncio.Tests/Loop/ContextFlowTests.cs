namespace Asyncio.Tests.Loop;

/// <summary>
/// How <see cref="AsyncLocal{T}"/> values flow through the loop, as contextvars do through asyncio: a task runs in
/// the context it was created in, a callback in the one it was scheduled in, and nothing a callback sets leaks
/// into the next.
/// </summary>
public class ContextFlowTests
{
    static readonly AsyncLocal<string?> s_local = new();

    static EventLoop Loop => Aio.GetRunningLoop();

    [Fact]
    public void LoopThread_ContextsReadThroughItsThreadObject_MatchTheRuntimesOwn() => AioTest.Run(async () =>
    {
        // The loop reads and writes its thread's contexts through the Thread object (ThreadContexts.cs); on this
        // runtime the fields are there, and every read agrees with the public API.
        Assert.True(ThreadContexts.Direct);
        var loop = Loop;
        Assert.Same(ExecutionContext.Capture(), loop.CaptureExecutionContext());
        s_local.Value = "set";
        Assert.Same(ExecutionContext.Capture(), loop.CaptureExecutionContext());
        Assert.NotSame(ContextFlow.Default, loop.CaptureExecutionContext());
        using (ExecutionContext.SuppressFlow()) Assert.Null(loop.CaptureExecutionContext());
        Assert.Same(SynchronizationContext.Current, loop.CurrentSyncContext());
        var other = new SynchronizationContext();
        var scope = SynchronizationContext.Current;
        loop.SetSyncContext(other);
        Assert.Same(other, SynchronizationContext.Current);
        loop.SetSyncContext(scope);
        Assert.Same(scope, loop.CurrentSyncContext());
        await Aio.Sleep(0);
        Assert.Equal("set", s_local.Value);
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    [Trait("asyncio", "create_task copies the current context: the task sees a variable set before create_task, in its first step and after")]
    public void CreateTask_AsyncLocalSetBefore_IsSeenByTheTask(bool eager) => AioTest.Run(async () =>
    {
        s_local.Value = "creator";
        string? first = "unset";
        var t = Aio.CreateTask(async () => { first = s_local.Value; await Aio.Sleep(0); return s_local.Value; });
        Assert.Equal("creator", await t);
        Assert.Equal("creator", first);
    }, new LoopOptions { VirtualTime = true, EagerTasks = eager });

    [Fact]
    [Trait("asyncio", "create_task copies the context at creation: a change the creator makes afterwards is not seen by the task, nor the task's by the creator")]
    public void CreateTask_ValuesChangedAfterCreation_StayOnTheirSide() => AioTest.Run(async () =>
    {
        s_local.Value = "before";
        var t = Aio.CreateTask(async () =>
        {
            string? seen = s_local.Value;
            s_local.Value = "task";
            await Aio.Sleep(0);
            return seen;
        });
        s_local.Value = "after";
        Assert.Equal("before", await t);
        Assert.Equal("after", s_local.Value);
    });

    [Fact]
    [Trait("asyncio", "call_soon runs the callback in a copy of the context: a value one callback sets does not reach a later callback or task")]
    public void CallSoon_ValueSetInACallback_DoesNotLeak() => AioTest.Run(async () =>
    {
        string? seenLater = "unset";
        Loop.CallSoon(() => s_local.Value = "leaked");
        await Aio.Sleep(0);
        Loop.CallSoon(() => seenLater = s_local.Value);
        await Aio.Sleep(0);
        string? inTask = await Aio.CreateTask(async () => { await Aio.Sleep(0); return s_local.Value; });
        Assert.Null(seenLater);
        Assert.Null(inTask);
        Assert.Null(s_local.Value);
    });

    [Fact]
    [Trait("asyncio", "call_soon, call_later and add_done_callback run the callback in the context current when it was scheduled")]
    public void Callbacks_RunInTheContextTheyWereScheduledIn() => AioTest.Run(async () =>
    {
        var seen = new List<string?>();
        var f = Loop.CreateFuture();
        await Aio.CreateTask(async () =>
        {
            s_local.Value = "scheduler";
            Loop.CallSoon(() => seen.Add("soon:" + s_local.Value));
            Loop.CallLater(1, () => seen.Add("later:" + s_local.Value));
            f.AddDoneCallback(_ => seen.Add("done:" + s_local.Value));
            await Aio.Sleep(0);
        });
        Loop.CallSoon(() => seen.Add("plain:" + s_local.Value));
        f.SetResult();
        await Aio.Sleep(2);
        Assert.Equal(["soon:scheduler", "plain:", "done:scheduler", "later:scheduler"], seen);
    });

    [Fact]
    [Trait("asyncio", "call_soon_threadsafe runs the callback in the calling thread's context")]
    public void CallSoonThreadsafe_RunsInTheCallingThreadsContext() => AioTest.RunReal(async () =>
    {
        var loop = Loop;
        var seen = loop.CreateFuture<string?>();
        await Aio.ToThread(() =>
        {
            s_local.Value = "other thread";
            loop.CallSoonThreadsafe(() => seen.SetResult(s_local.Value));
        });
        Assert.Equal("other thread", await seen);
        Assert.Null(s_local.Value);
    });

    [Fact]
    public void RunForever_CallerValues_ReachCallbacksAndTasks()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        s_local.Value = "caller";
        try
        {
            string? inCallback = null, inTask = null;
            loop.CallSoon(() =>
            {
                inCallback = s_local.Value;
                loop.CreateTask(async () => { await Aio.Sleep(0); inTask = s_local.Value; loop.Stop(); });
            });
            loop.RunForever();
            Assert.Equal("caller", inCallback);
            Assert.Equal("caller", inTask);
        }
        finally { s_local.Value = null; }
    }
}
