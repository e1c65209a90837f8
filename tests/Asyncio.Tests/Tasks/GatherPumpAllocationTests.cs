namespace Asyncio.Tests.Tasks;

/// <summary>Runs alone: its tests measure what the whole process allocates.</summary>
[CollectionDefinition(nameof(ProcessAllocation), DisableParallelization = true)]
public sealed class ProcessAllocation;

[Collection(nameof(ProcessAllocation))]
public sealed class GatherPumpAllocationTests
{
    [Fact]
    public void Gather_OfManyRunningCoroutines_AllocatesNothingPerCompletionOnAnyThread() => AioTest.RunReal(async () =>
    {
        // Past ChildSet.WatchEachLimit running coroutines a gather on the real clock learns of their completions
        // through one Task.WhenEach pump, whose waits end on the thread pool. Each wait used to come back to the
        // loop through its synchronisation context (a SendOrPostCallback and a posted item, about 100 bytes a
        // wait, several waits a millisecond while W4's sleeps end), partly off the loop's thread. Measured over
        // the whole process, best of a few rounds (a lag of the pump grows WhenEach's own queue).
        const int N = 2000, Rounds = 4;
        static async Task Finish(int i) => await Aio.Sleep(i % 50 * 0.001);
        long best = long.MaxValue;
        for (int round = 0; round <= Rounds; round++)
        {
            var tasks = new Task[N];
            for (int i = 0; i < N; i++) tasks[i] = Finish(i);
            var gather = Aio.Gather(tasks);
            long before = GC.GetTotalAllocatedBytes(precise: true);
            await gather;
            long bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
            if (round > 0) best = Math.Min(best, bytes); // round 0 is the warm-up
        }
        Assert.True(best < N * 8, $"{best / (double)N:F1} bytes per completion while the gather waits");
    });
}
