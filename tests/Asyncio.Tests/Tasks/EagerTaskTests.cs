namespace Asyncio.Tests.Tasks;

/// <summary>
/// Eager tasks (<see cref="LoopOptions.EagerTasks"/>, asyncio's <c>eager_task_factory</c>): the first step runs
/// inside <c>CreateTask</c>, as the new task, and everything after it as for any task.
/// </summary>
public class EagerTaskTests
{
    static LoopOptions Eager => new() { VirtualTime = true, EagerTasks = true };

    [Fact]
    [Trait("asyncio", "test_eager_task_factory: the current task during the eager step")]
    public void CurrentTask_InTheEagerStep_IsTheNewTask_AndTheCreatorAgainAfterIt() => AioTest.Run(async () =>
    {
        var creator = Aio.CurrentTask;
        AioTask? inside = null;
        string? nameInside = null;
        var t = Aio.CreateTask(async () =>
        {
            inside = Aio.CurrentTask;
            nameInside = inside?.Name;
            await Aio.Sleep(1);
            Assert.Same(inside, Aio.CurrentTask);
        }, name: "eager one");
        Assert.Same(t, inside);
        Assert.Equal("eager one", nameInside);
        Assert.Same(creator, Aio.CurrentTask);
        await t;
    }, Eager);

    [Fact]
    public void CreateTask_FromAPlainCallback_EagerStepRunsAsTheNewTask_AndTheCallbackHasNoTask() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        AioTask? created = null, inside = null, afterwards = null;
        bool afterwardsRead = false;
        loop.CallSoon(() =>
        {
            created = loop.CreateTask(async () => { inside = Aio.CurrentTask; await Aio.Sleep(1); });
            afterwards = Aio.CurrentTask;
            afterwardsRead = true;
        });
        await Aio.Sleep(0);
        Assert.True(afterwardsRead);
        Assert.NotNull(created);
        Assert.Same(created, inside);
        Assert.Null(afterwards);
        await created!;
    }, Eager);

    [Fact]
    public void FirstStepThrows_TaskEndsFailedAndCreateTaskReturns() => AioTest.Run(async () =>
    {
        bool fail = true;
        var t = Aio.CreateTask(async () =>
        {
            if (fail) throw new ArgumentException("at once");
            await Aio.Sleep(1);
        });
        Assert.True(t.IsDone);
        Assert.IsType<ArgumentException>(t.GetException());
        var e = await Assert.ThrowsAsync<ArgumentException>(async () => await t);
        Assert.Equal("at once", e.Message);
    }, Eager);

    [Fact]
    [Trait("asyncio", "awaiting a done future does not suspend, so an eager task that only awaits done futures finishes in CreateTask")]
    public void FirstStepAwaitsADoneFuture_TaskIsDoneWithItsResultAtOnce() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.SetResult(5);
        var t = Aio.CreateTask(async () => await f + 1);
        Assert.True(t.IsDone);
        Assert.Equal(6, t.Result);
        Assert.DoesNotContain(t, Aio.AllTasks());
        Assert.Equal(6, await t);
    }, Eager);

    [Fact]
    public void CancellationToken_InTheEagerStep_IsTheNewTasks_NotTheCreators() => AioTest.Run(async () =>
    {
        CancellationToken inside = default;
        var t = Aio.CreateTask(async () =>
        {
            inside = Aio.CancellationToken;
            await Aio.Sleep(10);
        });
        Assert.Equal(t.CancellationToken, inside);
        Assert.NotEqual(Aio.CurrentTask!.CancellationToken, inside);
        t.Cancel();
        Assert.True(inside.IsCancellationRequested);
        Assert.False(Aio.CancellationToken.IsCancellationRequested);
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
    }, Eager);

    [Fact]
    public void Cancel_RightAfterAnEagerStepSuspended_CancelsAtThatAwait() => AioTest.Run(async () =>
    {
        bool reachedTheEnd = false;
        string? message = null;
        double start = Aio.GetRunningLoop().Time();
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); reachedTheEnd = true; }
            catch (CancelledError e) { message = e.CancelMessage; throw; }
        });
        Assert.False(t.IsDone);
        Assert.True(t.Cancel("stop"));
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.False(reachedTheEnd);
        Assert.Equal("stop", message);
        Assert.Equal(start, Aio.GetRunningLoop().Time(), 6); // cancelled, not slept
    }, Eager);

    [Fact]
    public void EagerTasksCreatedInARow_EachRunsItsStepBeforeTheNextIsCreated() => AioTest.Run(async () =>
    {
        var order = new List<string>();
        async Task Child(string name)
        {
            order.Add(name + " starts");
            await Aio.Sleep(0);
            order.Add(name + " resumes");
        }
        var a = Aio.CreateTask(() => Child("a"));
        order.Add("a created");
        var b = Aio.CreateTask(() => Child("b"));
        order.Add("b created");
        await Aio.Gather(a, b);
        Assert.Equal(["a starts", "a created", "b starts", "b created", "a resumes", "b resumes"], order);
    }, Eager);
}
