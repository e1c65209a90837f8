using static Asyncio.Tests.Sync.SyncAllocationTests;

namespace Asyncio.Tests.Queues;

/// <summary>
/// Allocation budgets of the queues: bytes allocated on the loop thread around 10,000 operations, on the
/// fast paths (put into a non-full queue, get from a non-empty one) and contended in steady state. Loops
/// are inline for the reason given on <see cref="Sync.SyncAllocationTests"/>.
/// </summary>
public class QueueAllocationTests
{
    [Fact]
    public void Queue_PutAndGetOnANonEmptyQueue_AllocatesNothing() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        q.PutNowait(-1); // never empty
        for (int i = 0; i < Warmup; i++) { await q.PutAsync(i); await q.GetAsync(); }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Ops; i++) { await q.PutAsync(i); await q.GetAsync(); }
        AssertNothingPerOperation(GC.GetAllocatedBytesForCurrentThread() - before);
    });

    [Fact]
    public void PriorityAndLifoQueues_PutAndGet_AllocateNothing() => AioTest.Run(async () =>
    {
        var p = new AsyncPriorityQueue<int>();
        var l = new AsyncLifoQueue<int>();
        p.PutNowait(0);
        l.PutNowait(0);
        for (int i = 0; i < Warmup; i++) { await p.PutAsync(i); await p.GetAsync(); await l.PutAsync(i); await l.GetAsync(); }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Ops; i++) { await p.PutAsync(i); await p.GetAsync(); await l.PutAsync(i); await l.GetAsync(); }
        AssertNothingPerOperation(GC.GetAllocatedBytesForCurrentThread() - before);
    });

    [Fact]
    public void Queue_PingPongThroughTwoQueues_AllocatesNothing() => AioTest.Run(async () =>
    {
        // W3's pattern: every get waits, every put wakes the other task.
        var q1 = new AsyncQueue<int>();
        var q2 = new AsyncQueue<int>();
        long before = 0, after = 0;
        var ping = Aio.CreateTask(async () =>
        {
            for (int i = 0; i < Warmup + Ops; i++)
            {
                if (i == Warmup) before = GC.GetAllocatedBytesForCurrentThread();
                await q1.PutAsync(i);
                await q2.GetAsync();
            }
            after = GC.GetAllocatedBytesForCurrentThread();
        });
        var pong = Aio.CreateTask(async () =>
        {
            for (int i = 0; i < Warmup + Ops; i++) await q2.PutAsync(await q1.GetAsync());
        });
        await ping;
        await pong;
        AssertNothingPerOperation(after - before);
    });

    [Fact]
    public void Queue_BoundedProducerWaitsForConsumer_AllocatesNothing() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<string>(1);
        long before = 0, after = 0;
        var producer = Aio.CreateTask(async () =>
        {
            for (int i = 0; i < Warmup + Ops; i++)
            {
                if (i == Warmup) before = GC.GetAllocatedBytesForCurrentThread();
                await q.PutAsync("item");
            }
            after = GC.GetAllocatedBytesForCurrentThread();
        });
        var consumer = Aio.CreateTask(async () =>
        {
            for (int i = 0; i < Warmup + Ops; i++)
            {
                await q.GetAsync();
                q.TaskDone();
            }
        });
        await producer;
        await consumer;
        AssertNothingPerOperation(after - before);
    });

    [Fact]
    public void Queue_ReadAllAsync_AllocatesNothingPerItem() => AioTest.Run(async () =>
    {
        var q = new AsyncQueue<int>();
        long before = 0, after = 0;
        int count = 0;
        var reader = Aio.CreateTask(async () =>
        {
            await foreach (var item in q.ReadAllAsync())
            {
                if (++count == Warmup) before = GC.GetAllocatedBytesForCurrentThread();
                else if (count == Warmup + Ops) after = GC.GetAllocatedBytesForCurrentThread();
            }
        });
        for (int i = 0; i < Warmup + Ops; i++)
        {
            await q.PutAsync(i);
            await Aio.Sleep(0);
        }
        q.Shutdown();
        await reader;
        Assert.Equal(Warmup + Ops, count);
        AssertNothingPerOperation(after - before);
    });
}
