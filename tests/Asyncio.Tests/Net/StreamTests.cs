using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Asyncio.Tests.Net;

/// <summary>Streams over real connections (asyncio's open_connection/start_server), faults included; on each reactor.</summary>
public abstract class StreamTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    static int PortOf(Server s) => ((IPEndPoint)s.Sockets[0].LocalEndPoint!).Port;
    static byte[] B(string s) => Encoding.ASCII.GetBytes(s);
    static string S(byte[] b) => Encoding.ASCII.GetString(b);

    static async Task EchoLines(AsyncStreamReader r, AsyncStreamWriter w)
    {
        try
        {
            await foreach (var line in r)
            {
                w.Write(line);
                await w.Drain();
            }
        }
        catch (SocketException) { } // a client that went away
        w.Close();
    }

    [Fact]
    public void OpenConnection_LineEchoServer_RoundTrips()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            w.WriteLines([B("one\n"), B("two\n")]);
            await w.Drain();
            Assert.Equal("one\n", S(await r.ReadLine()));
            Assert.Equal("two\n", S(await r.ReadLine()));
            Assert.Equal(server.Sockets[0].LocalEndPoint, w.GetExtraInfo("peername"));
            w.WriteEof();
            Assert.Empty(await r.ReadLine());
            Assert.True(r.AtEof);
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact]
    public void ReadInto_LargeBufferWaitingOnEmptyReader_SocketIsReadIntoItAndTheRestBufferedWhileMessagesFillIt()
    {
        // A ReadInto of 64 KiB waiting on an empty reader is filled by the socket receive itself. On Linux the
        // same receive (readv) buffers what does not fit, as long as receives fill the task's buffer: a small
        // message switches that off (the kernel then keeps the rest), a receive that fills the buffer on again.
        // Elsewhere the kernel always keeps the rest.
        const int size = 64 * 1024, big = 100 * 1024;
        int[] messages = [big, 10, big, big];
        int[] bufferedOnLinux = [big - size, 0, 0, big - size];
        Run(async () =>
        {
            var waiting = new AsyncQueue<int>();
            var received = new List<(int N, int BufferedAfter, byte[] Bytes)>();
            Socket? serverSide = null;
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                serverSide = (Socket)w.GetExtraInfo("socket")!;
                var buf = new byte[size];
                foreach (int length in messages)
                {
                    waiting.PutNowait(length);
                    int n = await r.ReadInto(buf);      // waits: the reader is empty when the data comes
                    int buffered = r.BufferedCount;
                    var rest = await r.ReadExactly(length - n);
                    received.Add((n, buffered, [.. buf[..n], .. rest]));
                }
                w.Close();
            }, "127.0.0.1", 0);
            // Windows and buffers large enough that every message leaves in one send (accepted sockets inherit
            // the listener's receive buffer, which sets the window they offer).
            server.Sockets[0].ReceiveBufferSize = 1 << 20;
            var (_, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            ((Socket)w.GetExtraInfo("socket")!).SendBufferSize = 1 << 20;
            var sent = new List<byte[]>();
            for (int i = 0; i < messages.Length; i++)
            {
                await waiting.GetAsync();                // the handler is suspended in ReadInto now
                var data = NetTest.Data(messages[i], seed: i + 1);
                sent.Add(data);
                w.Write(data);
                Assert.Equal(0, w.Transport.WriteBufferSize); // all of it went to the kernel
                // The loop thread blocks until the kernel has put all of it in the server's socket (on a loaded
                // machine loopback delivery can lag the send), so the handler's receive sees the whole message.
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while (serverSide!.Available < messages[i] && DateTime.UtcNow < deadline) Thread.Sleep(1);
                Assert.Equal(messages[i], serverSide.Available);
            }
            while (received.Count < messages.Length) await Aio.Sleep(0.01);
            for (int i = 0; i < messages.Length; i++)
            {
                Assert.Equal(Math.Min(messages[i], size), received[i].N);
                Assert.Equal(OperatingSystem.IsLinux() ? bufferedOnLinux[i] : 0, received[i].BufferedAfter);
                Assert.Equal(sent[i], received[i].Bytes);
            }
            w.Close();
        });
    }

    [Fact]
    public void StartServer_SeveralHostsStartServingFalse_ListensOnEachOnceStarted()
    {
        Run(async () =>
        {
            // asyncio's start_server forwards create_server's options: a sequence of hosts, start_serving.
            await using var server = await Aio.StartServer(EchoLines, ["127.0.0.1", "::1"], 0, startServing: false, reuseAddress: true);
            Assert.Equal(2, server.Sockets.Count);
            Assert.False(server.IsServing);
            await server.StartServing();
            Assert.True(server.IsServing);
            foreach (var sock in server.Sockets.ToArray())
            {
                var ep = (IPEndPoint)sock.LocalEndPoint!;
                var (r, w) = await Aio.OpenConnection(ep.Address.ToString(), ep.Port);
                w.Write(B($"hi {ep.AddressFamily}\n"));
                Assert.Equal($"hi {ep.AddressFamily}\n", S(await r.ReadLine()));
                w.Close();
                await w.WaitClosed();
            }
        });
    }

    [Fact]
    public void HalfClose_ClientWritesEof_ServerReadsToEndAndReplies()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                var all = await r.ReadToEnd();
                w.Write(B($"got {all.Length}"));
                await w.Drain();
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            Assert.True(w.CanWriteEof);
            w.Write(new byte[100_000]);
            w.WriteEof();
            Assert.Equal("got 100000", S(await r.ReadToEnd()));
            w.Close(); // end of stream keeps a stream transport half-open, as in asyncio
            await w.WaitClosed();
        });
    }

    [Fact]
    public void HalfClose_ServerWritesEof_ClientStillSends()
    {
        Run(async () =>
        {
            var received = Aio.GetRunningLoop().CreateFuture<string>();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                w.Write(B("banner"));
                w.WriteEof();
                received.SetResult(S(await r.ReadToEnd()));
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            Assert.Equal("banner", S(await r.ReadToEnd()));
            w.Write(B("after eof"));
            w.WriteEof();
            Assert.Equal("after eof", await received);
            w.Close();
        });
    }

    [Fact]
    public void ReadLine_OverLongLineFromPeer_RaisesAndLosesNothing()
    {
        Run(async () =>
        {
            var line = new byte[100_000];
            Array.Fill(line, (byte)'x');
            line[^1] = (byte)'\n';
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                w.Write(line);
                w.Write(B("short\n"));
                await w.Drain();
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server), limit: 64 * 1024);
            await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadLine());
            // Nothing was consumed: the whole line and the next are still there.
            Assert.Equal(line, await r.ReadExactly(line.Length));
            Assert.Equal("short\n", S(await r.ReadLine()));
            w.Close();
        });
    }

    [Fact]
    public void Drain_PeerNeverReads_WriterWaitsWithBoundedMemory()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var release = loop.CreateFuture();
            AsyncStreamReader? serverReader = null;
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                serverReader = r;
                await release; // never reads until released
                await r.ReadToEnd();
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var chunk = new byte[64 * 1024];
            long written = 0;
            var writer = loop.CreateTask(async () =>
            {
                for (int i = 0; i < 100_000; i++)
                {
                    w.Write(chunk);
                    written += chunk.Length;
                    await w.Drain();
                }
            });
            // Give the writer time to fill every buffer on the way, then check that it is stuck in Drain.
            long seen = -1;
            for (int i = 0; i < 100 && written != seen; i++) { seen = written; await Aio.Sleep(0.05); }
            Assert.False(writer.IsDone);
            Assert.Equal(seen, written);
            Assert.InRange(w.Transport.WriteBufferSize, 1, 64 * 1024 + chunk.Length);
            // The server's reader paused its transport at twice the limit: its buffer is bounded too.
            Assert.InRange(serverReader!.BufferedCount, 0, 2 * AsyncStreamReader.DefaultLimit + EventLoop.MaxReceiveSize);
            Assert.True(written < 64L * 1024 * 1024, $"{written} bytes written to a peer that does not read");
            writer.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await writer);
            // Cancelled inside Drain: the connection is still usable.
            Assert.False(w.IsClosing);
            release.SetResult();
            w.WriteEof();
            Assert.Empty(await r.Read());
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact]
    public void Drain_OneOfSeveralWaitersCancelled_OthersResumeAndConnectionStaysUsable()
    {
        // asyncio's test_multiple_drain (gh-74116): every task waiting in Drain is woken, not only the first;
        // and a drain cancelled while it waits changes nothing for the others or for the connection.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var go = loop.CreateFuture();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                await go;
                var all = await r.ReadToEnd();
                w.Write(B(all.Length.ToString()));
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var chunk = new byte[256 * 1024];
            long total = 0;
            var t = loop.CreateTask(async () =>
            {
                while (true) { w.Write(chunk); total += chunk.Length; await w.Drain(); }
            });
            long seen = -1;
            for (int i = 0; i < 100 && total != seen; i++) { seen = total; await Aio.Sleep(0.05); }
            t.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await t);
            w.Write(new byte[32 << 20]);     // far more than the sockets' buffers can grow to take meanwhile
            total += 32 << 20;
            int drained = 0;
            var others = Enumerable.Range(0, 10).Select(_ => loop.CreateTask(async () => { await w.Drain(); drained++; })).ToList();
            await Aio.Sleep(0.02);
            Assert.Equal(0, drained);        // still above the high-water mark: the peer does not read yet
            go.SetResult();
            foreach (var d in others) await d;
            Assert.Equal(10, drained);
            await w.Drain();
            w.WriteEof();
            Assert.Equal(total.ToString(), S(await r.ReadToEnd()));
        });
    }

    [Fact]
    public void Read_CancelledWhileBlocked_NextReadGetsEveryByte()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var send = loop.CreateFuture();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                w.Write(B("12345"));
                await send;
                w.Write(B("67890"));
                await w.Drain();
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var t = loop.CreateTask(async () => await r.ReadExactly(10));
            while (r.BufferedCount < 5) await Aio.Sleep(0.005);
            t.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await t);
            send.SetResult();
            Assert.Equal("1234567890", S(await r.ReadExactly(10)));
            w.Close();
        });
    }

    [Fact]
    public void PeerReset_DrainReadAndWaitClosed_RaiseTheConnectionError()
    {
        Run(async () =>
        {
            // asyncio's drain raises the connection error once the peer is gone; it must not return quietly.
            // The server's Drain is waiting (32 MiB buffered, far above what the socket buffers take, and the
            // client reads only 1000 bytes) when the client resets the connection. As StreamReaderProtocol's
            // connection_lost(exc), the reader and WaitClosed raise the same error.
            var loop = Aio.GetRunningLoop();
            var waiting = loop.CreateFuture();
            var drained = loop.CreateFuture<Exception?>();
            Exception? readError = null, closedError = null;
            var server = await Aio.StartServer(async (r, w) =>
            {
                w.Write(new byte[32 << 20]);
                waiting.SetResult();
                Exception? error = null;
                try { await w.Drain(); }
                catch (Exception e) { error = e; }
                try { await r.Read(); } catch (Exception e) { readError = e; }
                try { await w.WaitClosed(); } catch (Exception e) { closedError = e; }
                drained.SetResult(error);
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await r.ReadExactly(1000);
            await waiting;
            var sock = (Socket)w.GetExtraInfo("socket")!;
            sock.LingerState = new LingerOption(true, 0); // close sends RST
            w.Transport.Abort();
            var e = await drained;
            Assert.NotNull(e); // a Drain that returns quietly after the reset fails here
            var se = Assert.IsType<SocketException>(e);
            Assert.True(se.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted,
                $"got {se.SocketErrorCode}");
            Assert.Same(e, readError);
            Assert.Same(e, closedError);
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void ClientConnectedCallback_Throws_ReportedAndConnectionClosed()
    {
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            await using var server = await Aio.StartServer((r, w) => throw new FormatException("handler bug"), "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            Assert.Empty(await r.Read());
            w.Close();
        });
        var e = Assert.Single(errors);
        Assert.IsType<FormatException>(e.Exception);
        Assert.Contains("client_connected_cb", e.Message);
    }

    [Fact]
    public void ClientConnectedCallback_Cancelled_ConnectionClosedAndNothingReported()
    {
        // asyncio 3.12+: a handler task that ends cancelled closes its connection, and is not an error.
        Run(async () =>
        {
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                Aio.CurrentTask!.Cancel();
                await Aio.Sleep(NetTest.Bound);
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            Assert.Empty(await r.Read());
            w.Close();
        });
    }

    [Fact]
    public void Close_ThenWriteDrainAndRead_WriteThrowsDrainRaisesReaderEnds()
    {
        // asyncio's test_async_writer_api_exception_after_close: drain() on a closing writer yields so that
        // ConnectionLost can run, then raises (it must not return as if the data were on its way); and
        // test_eof_feed_when_closing_writer (bpo-35065): once closed, the reader is at the end of its stream.
        Run(async () =>
        {
            await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            Assert.False(w.IsClosing);
            w.Close();
            Assert.True(w.IsClosing);
            Assert.Throws<InvalidOperationException>(() => w.Write(B("x")));
            var e = await Assert.ThrowsAsync<SocketException>(async () => await w.Drain());
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
            await w.WaitClosed();
            Assert.True(r.AtEof);
            Assert.Empty(await r.Read());
        });
    }

    [Fact]
    public void WaitClosed_OneCallerCancelled_OtherAndLaterCallersStillWaitForTheClose()
    {
        // Cancellation loses nothing: a WaitClosed given up (a timeout around it, say) must not end the other
        // callers' waits, nor make later ones, DisposeAsync's included, fail with a cancellation of their own.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0);
            var (_, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var cancelled = loop.CreateTask(w.WaitClosed);
            var other = loop.CreateTask(w.WaitClosed);
            await Aio.Sleep(0.01);
            cancelled.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await cancelled);
            var later = loop.CreateTask(w.WaitClosed);
            await Aio.Sleep(0.01);
            Assert.False(other.IsDone || later.IsDone);
            w.Close();
            await other;
            await later;
            await w.DisposeAsync();
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void Server_CloseWithActiveStreamClients_WaitClosedAfterClientsEnd()
    {
        Run(async () =>
        {
            var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            w.Write(B("hi\n"));
            Assert.Equal("hi\n", S(await r.ReadLine()));
            server.Close();
            var closed = Aio.CreateTask(server.WaitClosed);
            await Aio.Sleep(0.02);
            Assert.False(closed.IsDone);
            w.Write(B("still\n"));
            Assert.Equal("still\n", S(await r.ReadLine()));
            server.CloseClients();
            Assert.Empty(await r.ReadLine());
            await closed;
        });
    }

    [Fact]
    public void OpenConnection_ClosedPort_ThrowsSocketException()
    {
        Run(async () =>
        {
            var e = await Assert.ThrowsAsync<SocketException>(() => Aio.OpenConnection("127.0.0.1", NetTest.ClosedPort()));
            Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        });
    }

    [Fact]
    public void StreamServer_ThousandConcurrentClients_AllServed()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0, backlog: 1024);
            int port = PortOf(server);
            var tasks = Enumerable.Range(0, 1000).Select(i => Aio.CreateTask(async () =>
            {
                var (r, w) = await Aio.OpenConnection("127.0.0.1", port);
                w.Write(B($"c{i}\n"));
                var line = S(await r.ReadLine());
                w.Close();
                await w.WaitClosed();
                return line == $"c{i}\n";
            })).ToList();
            foreach (var t in tasks) Assert.True(await t);
        });
    }

    [Fact]
    public void UnixStreams_EchoLine_RoundTrips()
    {
        Run(async () =>
        {
            var path = NetTest.UnixSocketPath();
            try
            {
                await using var server = await Aio.StartUnixServer(EchoLines, path);
                var (r, w) = await Aio.OpenUnixConnection(path);
                w.Write(B("unix\n"));
                Assert.Equal("unix\n", S(await r.ReadLine()));
                w.Close();
            }
            finally { File.Delete(path); }
        });
    }

    [Fact]
    public void Streams_OverSocketsOfTheCaller_ServeAndConnect()
    {
        // asyncio's start_server(sock=...) and open_connection(sock=...): the loop takes the sockets over.
        Run(async () =>
        {
            var listening = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            listening.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
            var ep = (System.Net.IPEndPoint)listening.LocalEndPoint!;
            await using var server = await Aio.StartServer(EchoLines, listening);
            Assert.True(server.IsServing);
            var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await client.ConnectAsync(ep);
            var (r, w) = await Aio.OpenConnection(client);
            w.Write(B("over a socket\n"));
            Assert.Equal("over a socket\n", S(await r.ReadLine()));
            w.Close();
            await w.WaitClosed();
            Assert.Throws<ObjectDisposedException>(() => client.Send(B("x")));   // the writer's close closed the socket it took
        });
    }

    [Fact]
    public void UnixStreams_ConnectToAMissingPathOrADeadSocket_SaysWhichAsDocumented()
    {
        if (!System.Net.Sockets.Socket.OSSupportsUnixDomainSockets) return;
        Run(async () =>
        {
            var path = NetTest.UnixSocketPath();
            var e = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() => Aio.OpenUnixConnection(path));
            Assert.Equal(System.Net.Sockets.SocketError.AddressNotAvailable, e.SocketErrorCode);   // Python's FileNotFoundError
            try
            {
                // A socket file nobody listens on (bound, never listening; .NET deletes the file when it disposes it).
                using var bound = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                bound.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
                e = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() => Aio.OpenUnixConnection(path));
                Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, e.SocketErrorCode);
            }
            finally { File.Delete(path); }
        });
    }
}

public sealed class EpollStreamTests : StreamTests
{
    protected override bool Portable => false;
}

public sealed class PortableStreamTests : StreamTests
{
    protected override bool Portable => true;
}
