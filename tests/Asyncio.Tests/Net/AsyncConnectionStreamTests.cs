using System.Net;
using System.Text;

namespace Asyncio.Tests.Net;

/// <summary>The System.IO.Stream view of a connection, on each reactor.</summary>
public abstract class AsyncConnectionStreamTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    static int PortOf(Server s) => ((IPEndPoint)s.Sockets[0].LocalEndPoint!).Port;

    static async Task Echo(AsyncStreamReader r, AsyncStreamWriter w)
    {
        var buf = new byte[4096];
        while (true)
        {
            int n = await r.ReadInto(buf);
            if (n == 0) break;
            w.Write(buf.AsSpan(0, n));
            await w.Drain();
        }
        w.Close();
    }

    /// <summary>One read of the view returns exactly <paramref name="expected"/>.</summary>
    static async Task ExpectRead(AsyncConnectionStream stream, string expected)
    {
        var buf = new byte[64];
        int n = await stream.ReadAsync(buf);
        Assert.Equal(expected, Encoding.ASCII.GetString(buf, 0, n));
    }

    /// <summary>A view of a connection to a server that writes "data" and closes once <see cref="Send"/> is set.</summary>
    sealed class DataWhenSent : IAsyncDisposable
    {
        public required Future Send { get; init; }
        public required Server Server { get; init; }
        public required AsyncConnectionStream Stream { get; init; }

        public static async Task<DataWhenSent> Open()
        {
            var send = Aio.GetRunningLoop().CreateFuture();
            var server = await Aio.StartServer(async (r, w) => { await send; w.Write("data"u8); await w.Drain(); w.Close(); }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            return new DataWhenSent { Send = send, Server = server, Stream = new AsyncConnectionStream(r, w) };
        }

        public async ValueTask DisposeAsync()
        {
            await Stream.DisposeAsync();
            await Server.DisposeAsync();
        }
    }

    [Fact]
    public void StreamReaderAndWriterOfSystemIO_OverView_RoundTrip()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(Echo, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await using var stream = new AsyncConnectionStream(r, w);
            Assert.True(stream.CanRead && stream.CanWrite);
            Assert.False(stream.CanSeek);
            var writer = new System.IO.StreamWriter(stream, leaveOpen: true) { AutoFlush = false };
            await writer.WriteLineAsync("line one");
            await writer.FlushAsync();
            var reader = new System.IO.StreamReader(stream, leaveOpen: true);
            Assert.Equal("line one", await reader.ReadLineAsync());
        });
    }

    [Fact]
    public void ReadAsync_EndOfStream_ReturnsZero()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(async (r, w) => { w.Write("bye"u8); w.Close(); await Task.CompletedTask; }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await using var stream = new AsyncConnectionStream(r, w);
            var ms = new MemoryStream();
            await stream.CopyToAsync(ms);
            Assert.Equal("bye", Encoding.ASCII.GetString(ms.ToArray()));
            Assert.Equal(0, await stream.ReadAsync(new byte[10]));
        });
    }

    [Fact]
    public void ReadAsync_TokenCancelled_ThrowsAndConsumesNothing()
    {
        Run(async () =>
        {
            await using var c = await DataWhenSent.Open();
            var (send, stream) = (c.Send, c.Stream);
            using var cts = new CancellationTokenSource();
            var pending = stream.ReadAsync(new byte[10], cts.Token).AsTask();
            await Aio.Sleep(0.01);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
            send.SetResult();
            await ExpectRead(stream, "data");
        });
    }

    [Fact]
    public void UsedFromAThreadPoolThread_CallsAreHandedToTheLoopAndDisposeClosesTheConnection()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(Echo, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var stream = new AsyncConnectionStream(r, w);
            // The code a .NET library runs: its continuations are on the thread pool, not on the loop.
            string? line = await Task.Run(async () =>
            {
                var writer = new System.IO.StreamWriter(stream, leaveOpen: true);
                await writer.WriteLineAsync("off the loop");
                await writer.FlushAsync();
                var reader = new System.IO.StreamReader(stream, leaveOpen: true);
                string? l = await reader.ReadLineAsync();
                stream.Dispose();
                return l;
            });
            Assert.Equal("off the loop", line);
            Assert.False(stream.CanRead);
            await w.WaitClosed();
            Assert.True(w.IsClosing);
        });
    }

    [Fact]
    public void DisposeAsync_FromAThreadPoolThread_ClosesTheConnectionAndWaitsForIt()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(Echo, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var stream = new AsyncConnectionStream(r, w);
            await Task.Run(async () => await stream.DisposeAsync());
            Assert.True(w.IsClosing);
            Assert.True(w.WaitClosed().IsCompleted);
        });
    }

    [Fact]
    public async Task DisposeAsync_FromAnotherThreadAndTheLoopClosesBeforeTakingTheClose_EndsQuietly()
    {
        // DisposeAsync sees the loop running and hands it the close, but the loop stops and closes before it
        // runs the close: the closed loop has dropped its connections, so DisposeAsync ends without an error
        // (the hand-over fails with InvalidOperationException, which it absorbs).
        var loop = new EventLoop(new LoopOptions { PortableReactor = Portable });
        var errors = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, ctx) => errors.Add(ctx));
        var (server, r, w) = loop.RunUntilComplete(async () =>
        {
            var s = await Aio.StartServer(Echo, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(s));
            return (s, r, w);
        });
        var sockets = server.Sockets.Append((System.Net.Sockets.Socket)w.GetExtraInfo("socket")!).ToList();
        try
        {
            var stream = new AsyncConnectionStream(r, w);
            using var handedOver = new ManualResetEventSlim();
            Task? disposal = null;
            loop.CallSoon(() =>
            {
                // The loop waits in this callback until the close is queued for it, then stops after this iteration.
                disposal = Task.Run(async () =>
                {
                    var pending = stream.DisposeAsync();
                    handedOver.Set();
                    await pending;
                });
                handedOver.Wait();
                loop.Stop();
            });
            loop.RunForever();
            Assert.False(disposal!.IsCompleted);
            loop.Close();
            await disposal.WaitAsync(TimeSpan.FromSeconds(NetTest.Bound));
            Assert.False(w.IsClosing); // the close never ran
            Assert.Empty(errors);
        }
        finally
        {
            loop.Close();
            foreach (var s in sockets) s.Dispose();
        }
    }

    [Fact]
    public void WriteAsync_TokenAlreadyCancelled_ReturnsACancelledTaskAndWritesNothing()
    {
        Run(async () =>
        {
            var got = Aio.GetRunningLoop().CreateFuture<string>();
            await using var server = await Aio.StartServer(async (r, w) => { got.SetResult(Encoding.ASCII.GetString(await r.Read())); w.Close(); }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await using var stream = new AsyncConnectionStream(r, w);
            var cancelled = new CancellationToken(canceled: true);
            var write = stream.WriteAsync("lost"u8.ToArray(), cancelled);
            Assert.True(write.IsCanceled);
            Assert.True(stream.FlushAsync(cancelled).IsCanceled);
            await stream.WriteAsync("kept"u8.ToArray());
            w.WriteEof();
            Assert.Equal("kept", await got);
        });
    }

    [Fact]
    public void ReadAsync_TokenAlreadyCancelled_ReturnsACancelledTaskAndConsumesNothing()
    {
        Run(async () =>
        {
            await using var c = await DataWhenSent.Open();
            var stream = c.Stream;
            c.Send.SetResult();
            await Aio.Sleep(0.05); // let the data arrive, so that a read would take it at once
            var read = stream.ReadAsync(new byte[10], new CancellationToken(canceled: true));
            Assert.True(read.IsCanceled);
            await ExpectRead(stream, "data");
        });
    }

    [Fact]
    public void ReadAsync_EmptyBuffer_WaitsForDataAndTakesNone()
    {
        Run(async () =>
        {
            await using var c = await DataWhenSent.Open();
            var (send, stream) = (c.Send, c.Stream);
            var waiting = stream.ReadAsync(Memory<byte>.Empty).AsTask();
            await Aio.Sleep(0.02);
            Assert.False(waiting.IsCompleted);
            send.SetResult();
            Assert.Equal(0, await waiting);
            await ExpectRead(stream, "data");
            Assert.Equal(0, await stream.ReadAsync(new byte[10])); // the end of the stream
            Assert.Equal(0, await stream.ReadAsync(Memory<byte>.Empty)); // at the end, at once
        });
    }

    [Fact]
    public void SyncReadAndSeek_Throw()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(Echo, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await using var stream = new AsyncConnectionStream(r, w);
            Assert.Throws<NotSupportedException>(() => stream.Read(new byte[1], 0, 1));
            Assert.Throws<NotSupportedException>(() => stream.Write(new byte[1], 0, 1));
            Assert.Throws<NotSupportedException>(() => stream.Seek(0, SeekOrigin.Begin));
            Assert.Throws<NotSupportedException>(() => stream.Length);
        });
    }
}

public sealed class EpollAsyncConnectionStreamTests : AsyncConnectionStreamTests
{
    protected override bool Portable => false;
}

public sealed class PortableAsyncConnectionStreamTests : AsyncConnectionStreamTests
{
    protected override bool Portable => true;
}
