using System.Runtime.InteropServices;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Diagnostics;

/// <summary>
/// <see cref="EventLoop.DumpTasksOnSignal(PosixSignal, TextWriter?)"/>: a task dump asked for from outside the process.
/// Only SIGURG and SIGWINCH are sent to this process (their default action is to be ignored); the class shares
/// <see cref="Processes.SignalHandlerTests"/>' collection, so that neither sees the other's signals.
/// </summary>
[Collection("Signals")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DumpTasksOnSignalTests
{
    const int SIGURG = 23;

    [Fact]
    public void Signal_WritesTheTaskDump_OnTheLoopThread()
    {
        NetTest.Run(portable: false, async () =>
        {
            var loop = Aio.GetRunningLoop();
            var sleeper = Aio.CreateTask(async () => await Aio.Sleep(30), "sleeper");
            var writer = new StringWriter();
            loop.DumpTasksOnSignal(SIGURG, writer);
            SpawnNative.Kill(Environment.ProcessId, SIGURG);
            while (writer.ToString().Length == 0) await Aio.Sleep(0.005);
            var text = writer.ToString();
            Assert.Contains("2 tasks pending on the event loop", text);
            Assert.Contains("* Task 'main' (#1) pending", text);   // the dump runs in a callback, not in main
            Assert.Contains("* Task 'sleeper' (#2) pending\n    Sleep until ", text);
            Assert.True(loop.RemoveSignalHandler(SIGURG));
            sleeper.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await sleeper);
        });
    }

    [Fact]
    public void Default_IsSigquit() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        loop.DumpTasksOnSignal();
        Assert.True(loop.RemoveSignalHandler(PosixSignal.SIGQUIT));
        await Task.CompletedTask;
    });

    [Fact]
    public void NotASignal_Throws() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        Assert.Throws<ArgumentOutOfRangeException>(() => loop.DumpTasksOnSignal(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => loop.DumpTasksOnSignal((PosixSignal)12345));
        await Task.CompletedTask;
    });
}
