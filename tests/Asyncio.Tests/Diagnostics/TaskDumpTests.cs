namespace Asyncio.Tests.Diagnostics;

/// <summary><see cref="EventLoop.FormatTasks"/>: every live task with its state and awaits, nested under the task that awaits it (asyncio's <c>python -m asyncio pstree</c>).</summary>
public class TaskDumpTests
{
    static async Coroutine Consume(AsyncQueue<int> q) => await q.GetAsync();

    [Fact]
    public void FormatTasks_NestsAwaitedTasksUnderTheirAwaiter_WithStatesAndAwaits() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var q = new AsyncQueue<int>();
        var worker = Aio.CreateTask(() => Consume(q), "worker");
        var sleeper = Aio.CreateTask(async () => await Aio.Sleep(10), "sleeper");
        var boss = Aio.CreateTask(async () => await Aio.Gather(worker, sleeper), "boss");
        await Aio.Sleep(2);
        var late = Aio.CreateTask(async () => await Aio.Sleep(1), "late");   // created, not started
        var lines = loop.FormatTasks().Split('\n');
        Assert.Equal("5 tasks pending on the event loop at loop time 2.000", lines[0]);
        Assert.Equal([
            "* Task 'main' (#1) running",
            "* Task 'boss' (#4) pending",
            "    await Gather (pending)",
            $"      in async {nameof(TaskDumpTests)}.{nameof(FormatTasks_NestsAwaitedTasksUnderTheirAwaiter_WithStatesAndAwaits)} (lambda)",
            "    * Task 'worker' (#2) pending",
            $"        AsyncQueue.GetAsync on {q}",
            $"          in async {nameof(TaskDumpTests)}.{nameof(Consume)}",
            "    * Task 'sleeper' (#3) pending",
            "        Sleep until 10.000",
            $"          in async {nameof(TaskDumpTests)}.{nameof(FormatTasks_NestsAwaitedTasksUnderTheirAwaiter_WithStatesAndAwaits)} (lambda)",
            "* Task 'late' (#5) not started",
            "",
        ], lines[1..]);
        q.PutNowait(1);
        await boss;
        await late;
    });

    [Fact]
    public void FormatTasks_TaskAwaitedByTwo_IsDrawnOnceThenReferred() => AioTest.Run(async () =>
    {
        var shared = Aio.CreateTask(async () => await Aio.Sleep(5), "shared");
        var a = Aio.CreateTask(async () => await shared, "a");
        var b = Aio.CreateTask(async () => await shared, "b");
        await Aio.Sleep(1);
        var text = Aio.GetRunningLoop().FormatTasks();
        Assert.Contains("* Task 'b' (#4) pending\n    await Task 'shared' (#2)\n", text);
        Assert.Contains("    * Task 'shared' (#2): see above\n", text);
        Assert.Single(text.Split('\n'), l => l.Contains("Sleep until 5.000"));
        await Aio.Gather(a, b);
    });

    [Fact]
    public void FormatTasks_Cycle_IsStillWritten() => AioTest.Run(async () =>
    {
        var (a, b) = await CallGraphTests.StartCycle();
        var text = Aio.GetRunningLoop().FormatTasks();
        Assert.Contains("(in a cycle of awaits)\n* Task 'a' (#2) pending\n", text);
        Assert.Contains("    * Task 'b' (#3) pending\n", text);
        await CallGraphTests.EndCycle(a, b);
    });

    [Fact]
    public void FormatTasks_TaskAwaitingADotNetTask_SaysTheLoopHoldsNoAwaitOfIt() => AioTest.RunReal(async () =>
    {
        var tcs = new TaskCompletionSource();
        var t = Aio.CreateTask(async () => await tcs.Task, "foreign");
        await Aio.Sleep(0.01);
        Assert.Contains("* Task 'foreign' (#2) pending\n    (no await of the loop's pending: ready to resume, or awaiting a .NET Task)\n", Aio.GetRunningLoop().FormatTasks());
        tcs.SetResult();
        await t;
    });

    [Fact]
    public void PrintTasks_WritesTheDumpToTheWriter() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var sw = new StringWriter();
        loop.PrintTasks(sw);
        Assert.Equal(loop.FormatTasks(), sw.ToString());
        await Task.CompletedTask;
    });

    [Fact]
    public void FormatTasks_FromAnotherThread_Throws() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        Assert.IsType<InvalidOperationException>(await Task.Run(() => Record.Exception(() => loop.FormatTasks())));
    });
}
