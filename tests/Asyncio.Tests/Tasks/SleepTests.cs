namespace Asyncio.Tests.Tasks;

/// <summary>asyncio.sleep: yielding, delays, results, bad input.</summary>
public class SleepTests
{
    [Fact]
    public void Sleep_Zero_YieldsExactlyOneIteration() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var order = new List<string>();
        loop.CallSoon(() =>
        {
            order.Add("scheduled before");
            loop.CallSoon(() => order.Add("scheduled in the next iteration"));
        });
        await Aio.Sleep(0);
        order.Add("resumed");
        await Aio.Sleep(0);
        Assert.Equal(["scheduled before", "resumed", "scheduled in the next iteration"], order);
    });

    [Fact]
    public void Sleep_Negative_BehavesAsZero() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        await Aio.Sleep(-3);
        Assert.Equal(0.0, loop.Time());
    });

    [Fact]
    public void Sleep_Delay_AdvancesTheClockByExactlyTheDelay() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        await Aio.Sleep(1.5);
        Assert.Equal(1.5, loop.Time(), 9);
        await Aio.Sleep(TimeSpan.FromMilliseconds(250));
        Assert.Equal(1.75, loop.Time(), 9);
    });

    [Fact]
    public void Sleep_WithResult_ReturnsTheResult() => AioTest.Run(async () =>
    {
        Assert.Equal("done", await Aio.Sleep(2, "done"));
        Assert.Equal(2.0, Aio.GetRunningLoop().Time(), 9);
    });

    [Fact]
    public void Sleep_NaN_ThrowsArgumentException() => AioTest.Run(() =>
    {
        Assert.Throws<ArgumentException>(() => Aio.Sleep(double.NaN));
        return Task.CompletedTask;
    });

    [Fact]
    public void Sleep_Infinite_CanBeCancelled() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => Aio.Sleep(double.PositiveInfinity).AsTask());
        await Aio.Sleep(5);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(5.0, Aio.GetRunningLoop().Time(), 9);
    });

    [Fact]
    public void Sleep_ManyConcurrentInOneTask_AllCancelledWithTheTask() => AioTest.Run(async () =>
    {
        int cancelled = 0;
        async Task One(double d)
        {
            try { await Aio.Sleep(d); } catch (CancelledError) { cancelled++; throw; }
        }
        var t = Aio.CreateTask(() => Task.WhenAll(Enumerable.Range(1, 1000).Select(i => One(i))));
        await Aio.Sleep(0.5);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(1000, cancelled);
        Assert.Equal(0, Aio.GetRunningLoop().TimerSlotsHeld > 1000 ? -1 : 0);
    });

    [Fact]
    public void Sleep_AwaitedFromAnotherThread_Throws() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var e = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => Aio.Sleep(1)));
        Assert.Contains("No event loop is running", e.Message);
    });

    [Fact]
    public void Sleep_ZeroAllocationPerSleepZero() => AioTest.Run(async () =>
    {
        for (int i = 0; i < 1000; i++) await Aio.Sleep(0); // warm up pools and JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++) await Aio.Sleep(0);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Sync.SyncAllocationTests.AssertNothingPerOperation(after - before);
    });

    [Fact]
    public void Sleep_ZeroAllocationPerTimedSleep_InSteadyState() => AioTest.Run(async () =>
    {
        for (int i = 0; i < 5000; i++) await Aio.Sleep(0.001);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++) await Aio.Sleep(0.001);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Sync.SyncAllocationTests.AssertNothingPerOperation(after - before);
    });
}
