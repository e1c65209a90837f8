using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Sync;

/// <summary>
/// Once a primitive has been waited on, every call that changes it from a thread other than its running loop's
/// throws and changes nothing, whether or not a task waits at that moment: a wrong-thread call fails every time,
/// not only when its timing meets a waiter. (asyncio checks nothing; its debug mode checks only call_soon.)
/// </summary>
public class WrongThreadTests
{
    /// <summary>Runs <paramref name="call"/> on a thread-pool thread and asserts the error names the member.</summary>
    static async Task AssertRefused(Action call, string member)
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Task.Run(call));
        Assert.Contains(member, e.Message);
    }

    [Theory]
    [InlineData("Set")]
    [InlineData("Clear")]
    public void AsyncEvent_BoundAndNobodyWaiting_CallFromAnotherThreadThrowsAndChangesNothing(string call) => AioTest.Run(async () =>
    {
        var ev = new AsyncEvent();
        var waiter = Spawn(async () => await ev.WaitAsync());   // binds the event to this loop
        await Yield();
        ev.Set();
        await waiter;
        if (call == "Set") ev.Clear();
        bool before = ev.IsSet;
        await AssertRefused(call == "Set" ? ev.Set : ev.Clear, $"AsyncEvent.{call}");
        Assert.Equal(before, ev.IsSet);
        Assert.Equal(0, ev.WaiterCount);
    });

    [Theory]
    [InlineData("AcquireAsync")]
    [InlineData("TryAcquire")]
    [InlineData("Release")]
    public void AsyncLock_BoundAndNobodyWaiting_CallFromAnotherThreadThrowsAndChangesNothing(string call) => AioTest.Run(async () =>
    {
        var l = new AsyncLock();
        await l.AcquireAsync();
        var waiter = Spawn(async () => { using (await l.AcquireAsync()) { } });   // binds the lock
        await Yield();
        l.Release();
        await waiter;
        if (call == "Release") await l.AcquireAsync();
        bool before = l.IsLocked;
        Action act = call switch
        {
            "AcquireAsync" => () => l.AcquireAsync(),
            "TryAcquire" => () => l.TryAcquire(),
            _ => l.Release,
        };
        await AssertRefused(act, $"AsyncLock.{call}");
        Assert.Equal(before, l.IsLocked);
        if (call == "Release") l.Release();   // on the loop's thread it still works
    });

    [Theory]
    [InlineData("AcquireAsync")]
    [InlineData("TryAcquire")]
    [InlineData("Release")]
    public void AsyncSemaphore_BoundAndNobodyWaiting_CallFromAnotherThreadThrowsAndChangesNothing(string call) => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(1);
        await s.AcquireAsync();
        var waiter = Spawn(async () => { using (await s.AcquireAsync()) { } });   // binds the semaphore
        await Yield();
        s.Release();
        await waiter;
        Assert.Equal(1, s.Value);
        Action act = call switch
        {
            "AcquireAsync" => () => s.AcquireAsync(),
            "TryAcquire" => () => s.TryAcquire(),
            _ => s.Release,
        };
        await AssertRefused(act, $"AsyncSemaphore.{call}");
        Assert.Equal(1, s.Value);
    });

    [Fact]
    public void AsyncCondition_BoundAndNobodyWaiting_NotifyFromAnotherThreadThrows() => AioTest.Run(async () =>
    {
        var c = new AsyncCondition();
        var waiter = Spawn(async () => { using (await c.AcquireAsync()) await c.WaitAsync(); });   // binds the condition
        await Yield();
        using (await c.AcquireAsync()) c.Notify();
        await waiter;
        using (await c.AcquireAsync())
        {
            await AssertRefused(() => c.Notify(), "AsyncCondition.Notify");
            await AssertRefused(c.NotifyAll, "AsyncCondition.Notify");
        }
    });

    [Theory]
    [InlineData("PutAsync")]
    [InlineData("TryPut")]
    [InlineData("PutNowait")]
    [InlineData("GetAsync")]
    [InlineData("TryGet")]
    [InlineData("GetNowait")]
    [InlineData("TaskDone")]
    [InlineData("Shutdown")]
    public void AsyncQueue_BoundAndNobodyWaiting_CallFromAnotherThreadThrowsAndChangesNothing(string call) => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        var getter = Spawn(async () => await q.GetAsync());   // binds the queue
        await Yield();
        q.PutNowait(1);
        Assert.Equal(1, await getter);
        q.PutNowait(2);                                        // an item to get, and one unfinished to report done
        Action act = call switch
        {
            "PutAsync" => () => q.PutAsync(3),
            "TryPut" => () => q.TryPut(3),
            "PutNowait" => () => q.PutNowait(3),
            "GetAsync" => () => q.GetAsync(),
            "TryGet" => () => q.TryGet(out _),
            "GetNowait" => () => q.GetNowait(),
            "TaskDone" => q.TaskDone,
            _ => () => q.Shutdown(),
        };
        await AssertRefused(act, $"AsyncQueue.{call}");
        Assert.Equal(1, q.Count);
        Assert.Equal(2, q.Unfinished);
        Assert.False(q.IsShutDown);
        Assert.Equal(2, q.GetNowait());
    });

    [Fact]
    public void AsyncQueue_NeverWaitedOn_MayBeFilledFromAnotherThread() => AioTest.Run(async () =>
    {
        // Bound to no loop, the queue has no thread to check against (asyncio binds a queue on its first wait too).
        var q = new AsyncQueue<int>();
        await Task.Run(() => q.PutNowait(1));
        Assert.Equal(1, await q.GetAsync());
    });
}
