namespace Asyncio.Tests.Sync;

/// <summary>Small helpers shared by the Sync and Queues tests.</summary>
internal static class SyncTestHelpers
{
    /// <summary>Yields to the loop for one iteration (asyncio's <c>await asyncio.sleep(0)</c>).</summary>
    public static SleepAwaitable Yield() => Aio.Sleep(0);

    /// <summary>Yields <paramref name="n"/> iterations.</summary>
    public static async Task Yield(int n)
    {
        for (int i = 0; i < n; i++) await Aio.Sleep(0);
    }

    /// <summary>Starts a coroutine as a task (asyncio's <c>create_task</c>).</summary>
    public static AioTask Spawn(Func<Task> coroutine) => Aio.CreateTask(coroutine);

    /// <summary>Starts a coroutine with a result as a task.</summary>
    public static AioTask<T> Spawn<T>(Func<Task<T>> coroutine) => Aio.CreateTask(coroutine);

    /// <summary>Awaits <paramref name="task"/> and asserts that it ended cancelled.</summary>
    public static async Task AssertCancelled(AioTask task)
    {
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await task);
        Assert.True(task.IsCancelled);
    }
}
