namespace Asyncio.Tests.Loop;

/// <summary>Debug mode (asyncio's set_debug): slow callbacks are reported.</summary>
[Collection("Console")] // redirects Console.Error
public class DebugModeTests
{
    [Fact]
    public void SlowCallback_InDebugMode_IsReportedWithItsTask()
    {
        var reports = new List<string>();
        var saved = Console.Error;
        var sink = new StringWriter();
        Console.SetError(sink);
        try
        {
            Aio.Run(async () =>
            {
                var t = Aio.CreateTask(async () => { await Aio.Sleep(0); Thread.Sleep(60); }, "sluggish");
                await t;
            }, new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(20) });
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.Contains("sluggish", sink.ToString());
        Assert.Contains("took", sink.ToString());
    }

    [Fact]
    public void SlowCallback_DebugOff_NotReported()
    {
        var saved = Console.Error;
        var sink = new StringWriter();
        Console.SetError(sink);
        try
        {
            Aio.Run(async () => { await Aio.Sleep(0); Thread.Sleep(30); },
                new LoopOptions { SlowCallbackDuration = TimeSpan.FromMilliseconds(10) });
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.DoesNotContain("took", sink.ToString());
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
