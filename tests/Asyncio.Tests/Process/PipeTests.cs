using System.IO.Pipes;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Asyncio.Tests.Processes;

/// <summary>asyncio's loop.connect_read_pipe / connect_write_pipe, and their stream forms Aio.OpenPipeReader / OpenPipeWriter.</summary>
public class PipeTests
{
    /// <summary>A protocol that records what a read pipe delivers.</summary>
    sealed class Recorder : Protocol
    {
        public readonly List<string> Events = [];
        public readonly MemoryStream Data = new();
        public readonly Future<Exception?> Lost;
        public Recorder(EventLoop loop) => Lost = loop.CreateFuture<Exception?>();
        public override void ConnectionMade(IBaseTransport transport) => Events.Add("made");
        public override void DataReceived(ReadOnlySpan<byte> data) => Data.Write(data);
        public override bool EofReceived() { Events.Add("eof"); return false; }
        public override void ConnectionLost(Exception? exception) { Events.Add("lost"); Lost.SetResult(exception); }
    }

    /// <summary>The server streams of the pipes made: kept reachable, as a collected PipeStream's finalizer would dispose of its handle.</summary>
    static readonly System.Collections.Concurrent.ConcurrentBag<PipeStream> s_keep = [];

    /// <summary>An anonymous pipe: the loop gets one end, a .NET stream on another thread the other.</summary>
    static (SafePipeHandle LoopEnd, PipeStream OtherEnd) AnonymousPipe(bool loopReads)
    {
        var server = new AnonymousPipeServerStream(loopReads ? PipeDirection.In : PipeDirection.Out);
        s_keep.Add(server);
        var client = new AnonymousPipeClientStream(loopReads ? PipeDirection.Out : PipeDirection.In, server.ClientSafePipeHandle);
        return (server.SafePipeHandle, client);
    }

    [Fact]
    public void ConnectReadPipe_DeliversEveryByte_ThenTheEnd_AndDisposesTheHandle() => AioTest.RunReal(async () =>
    {
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        var loop = Aio.GetRunningLoop();
        var (transport, protocol) = await loop.ConnectReadPipe(() => new Recorder(loop), pipe);
        Assert.Equal(["made"], protocol.Events);   // ConnectionMade has returned
        var payload = Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray();
        var writing = Task.Run(() => { writer.Write(payload); writer.Dispose(); });
        Assert.Null(await protocol.Lost);
        await writing;
        Assert.Equal(payload, protocol.Data.ToArray());
        Assert.Equal(["made", "eof", "lost"], protocol.Events);
        Assert.True(transport.IsClosing);
        Assert.True(pipe.IsClosed);
    });

    [Fact]
    public void OpenPipeReader_ReadsLinesUntilTheWriterCloses() => AioTest.RunReal(async () =>
    {
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        var reader = await Aio.OpenPipeReader(pipe);
        var writing = Task.Run(() => { writer.Write("one\ntwo\n"u8); writer.Dispose(); });
        Assert.Equal("one\n", Encoding.ASCII.GetString(await reader.ReadLine()));
        Assert.Equal("two\n", Encoding.ASCII.GetString(await reader.ReadLine()));
        Assert.Empty(await reader.ReadLine());
        Assert.True(reader.AtEof);
        await writing;
    });

    [Fact]
    public void OpenPipeWriter_WritesMoreThanThePipeHolds_DrainsAndCloses_AndTheReaderSeesItAllThenTheEnd() => AioTest.RunReal(async () =>
    {
        var (pipe, otherEnd) = AnonymousPipe(loopReads: false);
        var received = Task.Run(() =>
        {
            var all = new MemoryStream();
            otherEnd.CopyTo(all);   // until the end of the data
            otherEnd.Dispose();
            return all.ToArray();
        });
        var writer = await Aio.OpenPipeWriter(pipe);
        var chunk = Enumerable.Range(0, 64 * 1024).Select(i => (byte)(i * 7)).ToArray();
        for (int i = 0; i < 16; i++)
        {
            writer.Write(chunk);
            await writer.Drain();   // a pipe holds 64 KiB: this waits for the reader
        }
        writer.Close();
        await writer.WaitClosed();
        var data = await received;
        Assert.Equal(16 * chunk.Length, data.Length);
        Assert.Equal(chunk, data.AsSpan(15 * chunk.Length).ToArray());
        Assert.True(pipe.IsClosed);
    });

    [Fact]
    public void ConnectWritePipe_TheReaderGone_EndsTheTransportWithABrokenPipe() => AioTest.RunReal(async () =>
    {
        var (pipe, otherEnd) = AnonymousPipe(loopReads: false);
        otherEnd.Dispose();
        var loop = Aio.GetRunningLoop();
        var lost = loop.CreateFuture<Exception?>();
        var (transport, _) = await loop.ConnectWritePipe(() => new LostProtocol(lost), pipe);
        transport.Write(new byte[1000]);
        var error = await lost;
        Assert.IsType<IOException>(error);
        Assert.Contains("Broken pipe", error!.Message);
    });

    sealed class LostProtocol(Future<Exception?> lost) : BaseProtocol
    {
        public override void ConnectionLost(Exception? exception) => lost.SetResult(exception);
    }

    [Fact]
    public void ARegularFile_IsRefused_AndItsHandleIsLeftAsItWas() => AioTest.RunReal(async () =>
    {
        string path = Path.GetTempFileName();
        try
        {
            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            var e = await Assert.ThrowsAsync<ArgumentException>(() => Aio.OpenPipeReader(file));
            Assert.Contains("regular file", e.Message);
            Assert.False(file.IsClosed);
            RandomAccess.Write(file, "still usable"u8, 0);
            Assert.Equal("still usable", File.ReadAllText(path));
        }
        finally { File.Delete(path); }
    });

    [Fact]
    public void AClosedHandle_IsRefused() => AioTest.RunReal(async () =>
    {
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        pipe.Dispose();
        writer.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Aio.OpenPipeReader(pipe));
    });

    [Fact]
    public void OnThePortableReactor_PipesAreRefused_AndTheHandleIsLeftOpen()
    {
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        using var _ = writer;
        AioTest.Run(async () =>
        {
            var e = await Assert.ThrowsAsync<NotSupportedException>(() => Aio.OpenPipeReader(pipe));
            Assert.Contains("epoll", e.Message);
        }, new LoopOptions { PortableReactor = true });
        Assert.False(pipe.IsClosed);
        pipe.Dispose();
    }

    [Fact]
    public void AHandleThatDoesNotOwnItsDescriptor_LeavesItOpen_WithItsBlockingModeBack() => AioTest.RunReal(async () =>
    {
        // As for the standard input (new SafeFileHandle(0, ownsHandle: false)): the transport makes the open file
        // non-blocking while it reads, and puts the flag back when it closes; the descriptor stays open.
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        int fd = (int)pipe.DangerousGetHandle();
        Assert.Equal(0, SpawnNative.StatusFlags(fd) & SpawnNative.O_NONBLOCK);
        var borrowed = new SafeFileHandle(fd, ownsHandle: false);
        var loop = Aio.GetRunningLoop();
        var (transport, protocol) = await loop.ConnectReadPipe(() => new Recorder(loop), borrowed);
        Assert.NotEqual(0, SpawnNative.StatusFlags(fd) & SpawnNative.O_NONBLOCK);
        transport.Close();
        await protocol.Lost;
        Assert.True(borrowed.IsClosed);
        Assert.Equal(0, SpawnNative.StatusFlags(fd) & SpawnNative.O_NONBLOCK);
        // Still open: the pipe carries data to its owner's stream.
        writer.Write("x"u8);
        writer.Flush();
        var reading = new AnonymousPipeClientStream(PipeDirection.In, pipe);
        Assert.Equal('x', reading.ReadByte());
        writer.Dispose();
        reading.Dispose();
    });

    [Fact]
    public void ConnectionMadeThrowing_FailsTheCall_AndDisposesTheHandle()
    {
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        using var _ = writer;
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
                Aio.GetRunningLoop().ConnectReadPipe(() => new ThrowsOnMade(), pipe));
            Assert.Equal("refused", e.Message);
            await Aio.Sleep(0);
            await Aio.Sleep(0);
        }, new LoopOptions());
        Assert.Contains(errors, c => c.Message.Contains("ConnectionMade"));
        Assert.True(pipe.IsClosed);
    }

    sealed class ThrowsOnMade : Protocol
    {
        public override void ConnectionMade(IBaseTransport transport) => throw new InvalidOperationException("refused");
    }

    [Fact]
    public void ALoopClosedWithAPipeOpen_DisposesItsHandle()
    {
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        using var _ = writer;
        var loop = new EventLoop();
        loop.RunUntilComplete(async () => await loop.ConnectReadPipe(() => new Recorder(loop), pipe));
        Assert.False(pipe.IsClosed);
        loop.Close();
        Assert.True(pipe.IsClosed);
    }

    [Fact]
    public void AbortAfterTheEnd_LeavesAnotherPipeAlone() => AioTest.RunReal(async () =>
    {
        // The ended transport's watch object went back to the loop and serves the next pipe: a late Abort must not touch it.
        var loop = Aio.GetRunningLoop();
        var (pipeA, writerA) = AnonymousPipe(loopReads: true);
        var (a, protocolA) = await loop.ConnectReadPipe(() => new Recorder(loop), pipeA);
        writerA.Dispose();
        await protocolA.Lost;
        var (pipeB, writerB) = AnonymousPipe(loopReads: true);
        var (_, protocolB) = await loop.ConnectReadPipe(() => new Recorder(loop), pipeB);
        a.Abort();
        var writing = Task.Run(() => { writerB.Write("hello"u8); writerB.Dispose(); });
        Assert.Null(await protocolB.Lost);
        await writing;
        Assert.Equal("hello", Encoding.ASCII.GetString(protocolB.Data.ToArray()));
    });

    [Fact]
    public void DevNull_IsRefused_BothWays_AndItsHandleIsLeftOpen() => AioTest.RunReal(async () =>
    {
        // A character device epoll cannot watch: refused before anything about the handle changes.
        using var read = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Read);
        using var write = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Aio.OpenPipeReader(read));
        Assert.Contains("/dev/null", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => Aio.OpenPipeWriter(write));
        Assert.False(read.IsClosed);
        Assert.False(write.IsClosed);
    });

    [Fact]
    public void AWritePipeOnATerminal_StaysOpenWhenSomeoneTypes() => AioTest.RunReal(async () =>
    {
        // A terminal is open for reading and writing, and readable when someone types; that says nothing about its
        // output. The transport watches the read end of pipes and sockets only (a terminal's output closed on input).
        using var master = File.OpenHandle("/dev/ptmx", FileMode.Open, FileAccess.ReadWrite);
        Assert.Equal(0, unlockpt((int)master.DangerousGetHandle()));
        string slavePath = Marshal.PtrToStringUTF8(ptsname((int)master.DangerousGetHandle()))!;
        var terminal = File.OpenHandle(slavePath, FileMode.Open, FileAccess.ReadWrite);
        var writer = await Aio.OpenPipeWriter(terminal);
        writer.Write("output\n"u8.ToArray());
        await writer.Drain();
        using var keyboard = new FileStream(master, FileAccess.ReadWrite, bufferSize: 0);
        keyboard.Write("typed\n"u8);   // the user types: the terminal becomes readable
        for (int i = 0; i < 5; i++) await Aio.Sleep(0.002);
        Assert.False(writer.IsClosing);
        writer.Write("more\n"u8.ToArray());
        writer.Close();
        await writer.WaitClosed();
        Assert.True(terminal.IsClosed);
    });

    [DllImport("libc", SetLastError = true)]
    static extern int unlockpt(int fd);

    [DllImport("libc")]
    static extern IntPtr ptsname(int fd);

    [Fact]
    public void ACallCancelledWhileWaiting_ClosesThePipe_AndTheLoopReportsNothing() => AioTest.RunReal(async () =>
    {
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        using var _ = writer;
        var loop = Aio.GetRunningLoop();
        var connecting = Aio.CreateTask(() => loop.ConnectReadPipe(() => new Recorder(loop), pipe));
        await Aio.Sleep(0);
        connecting.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await connecting);
        for (int i = 0; i < 3; i++) await Aio.Sleep(0);
        Assert.True(pipe.IsClosed);
    });   // AioTest fails the test if the loop's exception handler was called

    [Fact]
    public void AFailureBeforeTheTransportExists_LeavesTheHandleToTheProgram() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (pipe, writer) = AnonymousPipe(loopReads: true);
        await Assert.ThrowsAsync<InvalidOperationException>(() => loop.ConnectReadPipe<Recorder>(() => throw new InvalidOperationException("factory"), pipe));
        Assert.False(pipe.IsClosed);
        // The same descriptor twice: the second call is refused, and the first transport goes on.
        var (_, first) = await loop.ConnectReadPipe(() => new Recorder(loop), pipe);
        var borrowed = new SafeFileHandle(pipe.DangerousGetHandle(), ownsHandle: false);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => loop.ConnectReadPipe(() => new Recorder(loop), borrowed));
        Assert.False(borrowed.IsClosed);
        var writing = Task.Run(() => { writer.Write("ok"u8); writer.Dispose(); });
        await first.Lost;
        await writing;
        Assert.Equal("ok", Encoding.ASCII.GetString(first.Data.ToArray()));
    });
}
