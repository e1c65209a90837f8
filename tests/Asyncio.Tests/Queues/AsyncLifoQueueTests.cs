using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Queues;

/// <summary>asyncio's LifoQueue behaviours (CPython test_queues.LifoQueueTests), on <see cref="AsyncLifoQueue{T}"/>.</summary>
public class AsyncLifoQueueTests
{
    [Fact]
    [Trait("asyncio", "test_order")]
    public void Get_ReturnsTheNewestItemFirst() => AioTest.Run(async () =>
    {
        var q = new AsyncLifoQueue<int>();
        foreach (var i in new[] { 1, 3, 2 }) q.PutNowait(i);
        var items = new List<int>();
        for (int i = 0; i < 3; i++) items.Add(await q.GetAsync());
        Assert.Equal([2, 3, 1], items);
    });

    [Fact]
    public void Get_GrowsPastItsInitialCapacity_KeepsOrder()
    {
        var q = new AsyncLifoQueue<int>();
        for (int i = 0; i < 100; i++) q.PutNowait(i);
        for (int i = 99; i >= 0; i--) Assert.Equal(i, q.GetNowait());
        Assert.True(q.IsEmpty);
    }

    [Fact]
    public void Get_CancelledAfterAnItemWasPromisedToIt_ItemStaysOnTheStack() => AioTest.Run(async () =>
    {
        var q = new AsyncLifoQueue<int>();
        var t = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(1);
        q.PutNowait(2);
        t.Cancel();
        await AssertCancelled(t);
        Assert.Equal(2, q.GetNowait());
        Assert.Equal(1, q.GetNowait());
    });

    [Fact]
    public void Put_Bounded_WaitsAndShutdownWorks() => AioTest.Run(async () =>
    {
        var q = new AsyncLifoQueue<int>(1);
        q.PutNowait(1);
        Assert.True(q.IsFull);
        var putter = Spawn(async () => { await q.PutAsync(2); });
        await Yield();
        Assert.Equal(1, q.GetNowait());
        await putter;
        Assert.Equal(2, q.GetNowait());
        q.Shutdown();
        await Assert.ThrowsAsync<QueueShutDownError>(async () => await q.GetAsync());
        Assert.Equal("<AsyncLifoQueue maxsize=1 count=0 tasks=2 shutdown>", q.ToString());
    });
}
