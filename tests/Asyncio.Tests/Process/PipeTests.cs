using System.IO.Pipes;
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

    /// <summary>An anonymous pipe: the loop gets one end, a .NET stream on another thread the other.</summary>
    static (SafePipeHandle LoopEnd, PipeStream OtherEnd) AnonymousPipe(bool loopReads)
    {
        var server = new AnonymousPipeServerStream(loopReads ? PipeDirection.In : PipeDirection.Out);
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
        Assert.Equal(0, PipeHandle.StatusFlags(fd) & PipeHandle.O_NONBLOCK);
        var borrowed = new SafeFileHandle(fd, ownsHandle: false);
        var loop = Aio.GetRunningLoop();
        var (transport, protocol) = await loop.ConnectReadPipe(() => new Recorder(loop), borrowed);
        Assert.NotEqual(0, PipeHandle.StatusFlags(fd) & PipeHandle.O_NONBLOCK);
        transport.Close();
        await protocol.Lost;
        Assert.True(borrowed.IsClosed);
        Assert.Equal(0, PipeHandle.StatusFlags(fd) & PipeHandle.O_NONBLOCK);
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
}
