using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Asyncio.Tests.Tasks;

/// <summary>Aio.RunOnCores (beyond asyncio): one event loop per core, each on its own thread, as one group.</summary>
public class RunOnCoresTests
{
    [Fact]
    public void EachIndex_RunsOnALoopAndAThreadOfItsOwn_AndTheResultsComeBackByIndex()
    {
        var seen = new ConcurrentBag<(int Index, int Thread, EventLoop Loop)>();
        int[] results = Aio.RunOnCores(async i =>
        {
            await Aio.Sleep(0.01);
            seen.Add((i, Environment.CurrentManagedThreadId, Aio.GetRunningLoop()));
            return i * 10;
        }, loops: 3);
        Assert.Equal([0, 10, 20], results);
        Assert.Equal([0, 1, 2], seen.Select(s => s.Index).Order());
        Assert.Equal(3, seen.Select(s => s.Thread).Distinct().Count());
        Assert.Equal(3, seen.Select(s => s.Loop).Distinct().Count());
        Assert.DoesNotContain(seen, s => s.Thread == Environment.CurrentManagedThreadId);
    }

    [Fact]
    public void Loops_Zero_MeansOnePerProcessor()
    {
        int[] results = Aio.RunOnCores(i => Task.FromResult(i));
        Assert.Equal(Environment.ProcessorCount, results.Length);
    }

    [Fact]
    public void AFailure_CancelsTheOtherMains_AndEveryFailureComesBackInAGroup()
    {
        var cancelled = new ConcurrentBag<int>();
        var e = Assert.Throws<ExceptionGroup>(() => Aio.RunOnCores(async i =>
        {
            if (i == 0)
            {
                await Aio.Sleep(0.05);
                throw new InvalidOperationException("loop 0 broke");
            }
            try { await Aio.Sleep(3600); }
            catch (CancelledError) { cancelled.Add(i); throw; }
        }, loops: 3));
        var failure = Assert.Single(e.InnerExceptions);
        Assert.Equal("loop 0 broke", failure.Message);
        Assert.Equal([1, 2], cancelled.Order());
    }

    [Fact]
    public void AMainThatIsSlowToStart_IsCancelledToo()
    {
        // Loop 1 yields before it sleeps, so loop 0 may fail before or after loop 1 registered its main: either way it is cancelled.
        var failed = new ManualResetEventSlim();
        bool reachedTheSleep = false;
        Assert.Throws<ExceptionGroup>(() => Aio.RunOnCores(async i =>
        {
            if (i == 0)
            {
                try { throw new InvalidOperationException("early"); }
                finally { failed.Set(); }
            }
            await Task.Yield();
            await Aio.Sleep(3600);
            reachedTheSleep = true;
        }, loops: 2, options: null));
        Assert.True(failed.IsSet);
        Assert.False(reachedTheSleep);
    }

    [Fact]
    public void AMainWhoseLoopBeginsAfterTheGroupFailed_IsNeverCalled()
    {
        // The ordering AMainThatIsSlowToStart may or may not produce, forced: the group's loops run one after the other.
        var group = new Aio.CoreGroup(2);
        var failure = Assert.Throws<InvalidOperationException>(() =>
            Aio.Run(() => group.Run<int>(0, _ => throw new InvalidOperationException("loop 0 broke"))));
        Assert.Equal("loop 0 broke", failure.Message);
        bool called = false;
        var cancelled = Assert.Throws<CancelledError>(() => Aio.Run(() => group.Run(1, _ =>
        {
            called = true;
            return Task.FromResult(1);
        })));
        Assert.False(called);
        Assert.Equal("another loop's main failed", cancelled.CancelMessage);
    }

    [Fact]
    public void BadArguments_AndACallFromInsideALoop_Throw()
    {
        Assert.Throws<ArgumentNullException>(() => Aio.RunOnCores((Func<int, Task>)null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => Aio.RunOnCores(_ => Task.CompletedTask, loops: -1));
        Aio.Run(async () =>
        {
            await Aio.Sleep(0);
            var e = Assert.Throws<InvalidOperationException>(() => Aio.RunOnCores(_ => Task.CompletedTask, loops: 1));
            Assert.Contains("cannot be called while an event loop is running", e.Message);
        });
    }

    [Fact]
    public async Task ServersOnEveryLoop_ShareOnePortWithReusePort_AndTheKernelSpreadsTheConnections()
    {
        const int Loops = 2, Connections = 64;
        var port = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var bound = new CountdownEvent(Loops);
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var group = Task.Run(() => Aio.RunOnCores(async i =>
        {
            int p = i == 0 ? 0 : await port.Task;
            await using var server = await Aio.StartServer(async (reader, writer) =>
            {
                writer.Write(Encoding.ASCII.GetBytes($"{i}\n"));
                await writer.Drain();
                writer.Close();
                await writer.WaitClosed();
            }, "127.0.0.1", p, reusePort: true);
            if (i == 0) port.SetResult(((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port);
            bound.Signal();
            await stop.Task;
        }, loops: Loops));
        try
        {
            int p = await port.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(bound.Wait(TimeSpan.FromSeconds(30)));
            var answeredBy = new HashSet<string>();
            for (int c = 0; c < Connections; c++)
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, p);
                using var reader = new StreamReader(client.GetStream());
                answeredBy.Add(await reader.ReadLineAsync() ?? "");
            }
            // Each connection's 4-tuple is hashed to one of the listeners: with 64 connections, all on one loop
            // would be a chance of 1 in 2^63.
            Assert.Equal(["0", "1"], answeredBy.Order());
        }
        finally
        {
            stop.TrySetResult();
            await group.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }
}
