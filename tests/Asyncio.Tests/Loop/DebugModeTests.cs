namespace Asyncio.Tests.Loop;

/// <summary>Debug mode (asyncio's set_debug): slow callbacks are reported.</summary>
[Collection("Console")] // redirects Console.Error
public class DebugModeTests
{
    /// <summary>Runs <paramref name="run"/> with the standard error captured, and returns what it wrote there.</summary>
    internal static string StandardErrorOf(Action run)
    {
        var saved = Console.Error;
        var sink = new StringWriter();
        Console.SetError(sink);
        try { run(); }
        finally { Console.SetError(saved); }
        return sink.ToString();
    }

    [Fact]
    public void SlowCallback_InDebugMode_IsReportedWithItsTask()
    {
        var reports = new List<string>();
        string output = StandardErrorOf(() =>
        {
            Aio.Run(async () =>
            {
                var t = Aio.CreateTask(async () => { await Aio.Sleep(0); Thread.Sleep(60); }, "sluggish");
                await t;
            }, new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(20) });
        });
        Assert.Contains("sluggish", output);
        Assert.Contains("took", output);
    }

    [Fact]
    public void SlowCallback_ASleepResumedInsideALongBatch_IsReportedWithItsTask()
    {
        // The sleep ends while a batch of 200 callbacks runs and resumes after the 64th (RunOnce, step 5):
        // that resumption is timed like any callback.
        string output = StandardErrorOf(() =>
        {
            using var loop = new EventLoop(new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(20) });
            LoopBatch.Queue(loop, new List<string>(), 200, () =>
            {
                loop.EagerTasks = true;   // the task's first step, and its sleep, begin here
                loop.CreateTask(async () => { await Aio.Sleep(0.001); Thread.Sleep(60); }, "sluggish-sleeper");
                loop.EagerTasks = false;
                LoopBatch.SpinPast(loop, loop.Time() + 0.001);
            });
            loop.RunForever();
        });
        Assert.Contains("sluggish-sleeper", output);
        Assert.Contains("took", output);
    }

    [Fact]
    public void SlowCallback_DebugOff_NotReported()
    {
        string output = StandardErrorOf(() =>
        {
            Aio.Run(async () => { await Aio.Sleep(0); Thread.Sleep(30); },
                new LoopOptions { SlowCallbackDuration = TimeSpan.FromMilliseconds(10) });
        });
        Assert.DoesNotContain("took", output);
    }

    [Fact]
    public void Debug_CanBeToggledOnARunningLoop()
    {
        using var loop = new EventLoop();
        Assert.False(loop.Debug);
        loop.Debug = true;
        Assert.True(loop.Debug);
        loop.SlowCallbackDuration = TimeSpan.FromSeconds(1);
        Assert.Equal(TimeSpan.FromSeconds(1), loop.SlowCallbackDuration);
    }
}
