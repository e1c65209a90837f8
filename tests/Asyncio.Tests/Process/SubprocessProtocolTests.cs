using System.Text;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Processes;

/// <summary>asyncio's loop.subprocess_exec/subprocess_shell with a SubprocessProtocol, on each reactor.</summary>
public abstract class SubprocessProtocolTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    /// <summary>Records every callback in order, with the data of each pipe, and completes <see cref="Lost"/> at the end.</summary>
    sealed class Recorder : SubprocessProtocol
    {
        public readonly List<string> Events = new();
        public readonly StringBuilder[] Data = [new(), new(), new()];
        public readonly Future Lost = Aio.GetRunningLoop().CreateFuture();
        public ISubprocessTransport? Transport;
        public bool Paused;
        public Exception? ThrowOnMade;

        public override void ConnectionMade(IBaseTransport transport)
        {
            Transport = (ISubprocessTransport)transport;
            Events.Add("made");
            if (ThrowOnMade != null) throw ThrowOnMade;
        }

        public override void PipeDataReceived(int fd, ReadOnlySpan<byte> data)
        {
            if (Events[^1] != $"data {fd}") Events.Add($"data {fd}");
            Data[fd].Append(Encoding.UTF8.GetString(data));
        }

        public override void PipeConnectionLost(int fd, Exception? exception) => Events.Add($"pipe lost {fd}{(exception != null ? " " + exception.GetType().Name : "")}");
        public override void ProcessExited() => Events.Add($"exited {Transport!.ReturnCode}");
        public override void PauseWriting() => Paused = true;

        public override void ConnectionLost(Exception? exception)
        {
            Events.Add("lost");
            Lost.SetResult();
        }
    }

    [Fact]
    public void SubprocessExec_CallbacksInAsyncioOrder_DataByPipe()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (t, p) = await loop.SubprocessExec(() => new Recorder(), "sh", ["-c", "echo out; echo err >&2; exit 5"]);
            Assert.Equal("made", p.Events[0]);
            Assert.Same(t, p.Transport);
            Assert.IsAssignableFrom<IWriteTransport>(t.GetPipeTransport(0));   // every stream is a pipe by default
            Assert.IsAssignableFrom<IReadTransport>(t.GetPipeTransport(1));
            Assert.IsAssignableFrom<IReadTransport>(t.GetPipeTransport(2));
            Assert.Null(t.GetPipeTransport(3));
            await p.Lost;
            Assert.Equal("out\n", p.Data[1].ToString());
            Assert.Equal("err\n", p.Data[2].ToString());
            Assert.Equal("lost", p.Events[^1]);
            Assert.Contains("exited 5", p.Events);
            Assert.Contains("pipe lost 0", p.Events);
            Assert.Contains("pipe lost 1", p.Events);
            Assert.Contains("pipe lost 2", p.Events);
            Assert.Equal(5, t.ReturnCode);
        });
    }

    [Fact]
    public void StdinPipeTransport_WriteAndWriteEof_ReachTheChild()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (t, p) = await loop.SubprocessExec(() => new Recorder(), "cat", stderr: Stdio.DevNull);
            Assert.Null(t.GetPipeTransport(2));
            var stdin = (IWriteTransport)t.GetPipeTransport(0)!;
            stdin.Write("through cat\n"u8);
            stdin.WriteEof();
            await p.Lost;
            Assert.Equal("through cat\n", p.Data[1].ToString());
            Assert.Equal(0, t.ReturnCode);
        });
    }

    [Fact]
    public void StdinBufferAboveHighWater_PausesTheProtocol()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            // The child never reads: what the socket does not take stays in the transport's buffer.
            var (t, p) = await loop.SubprocessExec(() => new Recorder(), "sleep", ["30"], stdout: Stdio.DevNull, stderr: Stdio.DevNull);
            ((IWriteTransport)t.GetPipeTransport(0)!).Write(new byte[8 * 1024 * 1024]);
            Assert.True(p.Paused);
            t.Close();
            await p.Lost;
        });
    }

    [Fact]
    public void Close_KillsARunningChild_AndEndsWithConnectionLost()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (t, p) = await loop.SubprocessExec(() => new Recorder(), "sleep", ["30"]);
            t.Close();
            Assert.True(t.IsClosing);
            await p.Lost;
            Assert.Equal(-9, t.ReturnCode);
            Assert.Contains("exited -9", p.Events);
        });
    }

    [Fact]
    public void ConnectionMadeThrows_SubprocessExecThrows_AndTheChildIsKilled()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            Recorder? made = null;
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
                loop.SubprocessExec(() => made = new Recorder { ThrowOnMade = new InvalidOperationException("no") }, "sleep", ["30"]));
            Assert.Equal("no", e.Message);
            while (made!.Transport!.ReturnCode == null) await Aio.Sleep(0.01);
            Assert.Equal(-9, made.Transport.ReturnCode);
            while (loop.Subprocesses.Count > 0) await Aio.Sleep(0.01);   // killed, reaped and forgotten
            Assert.Equal(["made"], made.Events);   // the caller never got this protocol: no further callback
        });
    }

    [Fact]
    public void CancelledWhileConnecting_ChildIsKilled_AndForgotten()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            Recorder? made = null;
            var start = Aio.CreateTask(() => loop.SubprocessExec(() => made = new Recorder(), "sleep", ["30"]));
            await Aio.Sleep(0);   // the task has spawned the child and waits for ConnectionMade
            Assert.NotNull(made);
            start.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await start);
            Assert.True(made!.Events.Count == 0, string.Join(",", made.Events));   // ConnectionMade never ran
            while (loop.Subprocesses.Count > 0) await Aio.Sleep(0.01);   // killed, reaped and forgotten
        });
    }

    [Fact]
    public void SubprocessShell_RunsWithSh()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (t, p) = await loop.SubprocessShell(() => new Recorder(), "echo $((6 * 7))", stderr: Stdio.Stdout);
            await p.Lost;
            Assert.Equal("42\n", p.Data[1].ToString());
            Assert.Null(t.GetPipeTransport(2));
        });
    }

    [Fact]
    public void PipeDataReceivedThrows_ReportedToTheLoop_ThatPipeCloses()
    {
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (t, p) = await loop.SubprocessExec(() => new Throwing(), "echo", ["x"]);
            await p.Lost.Task;
        });
        Assert.Contains(errors, e => e.Exception?.Message == "bad data");
    }

    sealed class Throwing : SubprocessProtocol
    {
        public readonly TaskCompletionSource Lost = new();
        public override void PipeDataReceived(int fd, ReadOnlySpan<byte> data) => throw new InvalidOperationException("bad data");
        public override void ConnectionLost(Exception? exception) => Lost.SetResult();
    }
}

public sealed class EpollSubprocessProtocolTests : SubprocessProtocolTests
{
    protected override bool Portable => false;
}

public sealed class PortableSubprocessProtocolTests : SubprocessProtocolTests
{
    protected override bool Portable => true;
}
