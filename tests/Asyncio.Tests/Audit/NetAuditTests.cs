using System.Net;
using System.Net.Sockets;
using System.Text;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Audit;

/// <summary>
/// Audit probes of streams, servers, transports and datagram endpoints against asyncio 3.13 (on the default
/// reactor), or a documented difference (docs/differences.md). Written as an audit (2026-12-04, session 19).
/// </summary>
public class NetAuditTests
{
    static void Run(Func<Task> body) => NetTest.Run(false, body);
    static byte[] B(string s) => Encoding.ASCII.GetBytes(s);
    static string S(byte[] b) => Encoding.ASCII.GetString(b);
    static int PortOf(Server s) => ((IPEndPoint)s.Sockets[0].LocalEndPoint!).Port;

    /// <summary>Polls (bounded: 10 s of real time) until <paramref name="cond"/> holds.</summary>
    static async Task Until(Func<bool> cond)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!cond() && DateTime.UtcNow < deadline) await Aio.Sleep(0.002);
        Assert.True(cond(), "condition not reached within 10 s");
    }

    static async Task<Exception?> Catch(Func<Task> f)
    {
        try { await f(); return null; }
        catch (Exception e) { return e; }
    }

    // ------------------------------------------------------------------ StreamReader (fed by hand)

    [Fact, Trait("asyncio", "StreamReader.read(0) returns b'' at once, even with nothing buffered")]
    public void Reader_ReadZero_ReturnsEmptyAtOnce() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = r.Read(0);
        Assert.True(t.IsCompleted);
        Assert.Empty(await t);
        r.FeedData(B("abc"));
        Assert.Empty(await r.Read(0));
        Assert.Equal(3, r.BufferedCount);
    });

    [Fact, Trait("asyncio", "StreamReader.read(n<0) reads until EOF (any negative n)")]
    public void Reader_ReadNegative_ReadsToEof() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.GetRunningLoop().CreateTask(async () => await r.Read(-7));
        r.FeedData(B("ab"));
        await Aio.Sleep(0);
        r.FeedData(B("cd"));
        await Aio.Sleep(0);
        Assert.False(t.IsDone);
        r.FeedEof();
        Assert.Equal("abcd", S(await t));
    });

    [Fact, Trait("asyncio", "StreamReader.read/readexactly/readuntil check the stored exception before n==0 / buffered data")]
    public void Reader_ExceptionSet_ReadZeroAndReadExactlyZeroRaise() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("data\n"));
        var boom = new InvalidDataException("boom");
        r.SetException(boom);
        Assert.Same(boom, await Catch(async () => await r.Read(0)));
        Assert.Same(boom, await Catch(async () => await r.ReadExactly(0)));
        Assert.Same(boom, await Catch(async () => await r.Read(2)));
        Assert.Same(boom, await Catch(async () => await r.ReadLine()));
        Assert.Same(boom, r.Exception);
    });

    [Fact, Trait("asyncio", "read after EOF: read() b'', readline() b'', readexactly raises IncompleteReadError(b'', n), readuntil IncompleteReadError(b'', None)")]
    public void Reader_AfterEof_EveryReadEndsAsAsyncio() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedEof();
        Assert.True(r.AtEof);
        Assert.Empty(await r.Read());
        Assert.Empty(await r.Read(5));
        Assert.Empty(await r.ReadLine());
        var e1 = await Assert.ThrowsAsync<IncompleteReadError>(async () => await r.ReadExactly(3));
        Assert.Empty(e1.Partial);
        Assert.Equal(3, e1.Expected);
        var e2 = await Assert.ThrowsAsync<IncompleteReadError>(async () => await r.ReadUntil(B("--")));
        Assert.Empty(e2.Partial);
        Assert.Null(e2.Expected);
        Assert.Empty(await r.ReadExactly(0));
        Assert.True(r.AtEof);
    });

    [Fact, Trait("asyncio", "at_eof() is eof and not buffer")]
    public void Reader_AtEof_OnlyOnceBufferDrained() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        Assert.False(r.AtEof);
        r.FeedData(B("xy"));
        r.FeedEof();
        Assert.False(r.AtEof);
        Assert.Equal("x", S(await r.Read(1)));
        Assert.False(r.AtEof);
        Assert.Equal("y", S(await r.Read(1)));
        Assert.True(r.AtEof);
    });

    [Fact, Trait("asyncio", "readuntil: LimitOverrunError.consumed = buflen+1-seplen when no separator and over the limit")]
    public void Reader_ReadUntilNoSeparatorOverLimit_ConsumedAsAsyncio() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader(limit: 4);
        r.FeedData(B("abcdefg"));
        var e = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadUntil(B("\n")));
        Assert.Equal(7, e.Consumed);
        var e2 = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadUntil(B("XYZ")));
        Assert.Equal(5, e2.Consumed);
        Assert.Equal(7, r.BufferedCount);
    });

    [Fact, Trait("asyncio", "readuntil: separator found beyond limit -> LimitOverrunError(consumed=match start), buffer kept")]
    public void Reader_ReadUntilSeparatorBeyondLimit_ConsumedIsItsStart() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader(limit: 4);
        r.FeedData(B("abcdef\nrest"));
        var e = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadUntil(B("\n")));
        Assert.Equal(6, e.Consumed);
        Assert.Equal(11, r.BufferedCount);
        Assert.Equal("abcdef\n", S(await r.ReadExactly(7)));
    });

    [Fact, Trait("asyncio", "readuntil keeps the (multi-byte) separator in the returned chunk and consumes it")]
    public void Reader_ReadUntilMultiByteSeparator_KeptAndConsumed() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.GetRunningLoop().CreateTask(async () => await r.ReadUntil(B("\r\n")));
        r.FeedData(B("a\r"));
        await Aio.Sleep(0);
        Assert.False(t.IsDone);
        r.FeedData(B("\nb\r\n"));
        Assert.Equal("a\r\n", S(await t));
        Assert.Equal("b\r\n", S(await r.ReadUntil(B("\r\n"))));
        Assert.Equal(0, r.BufferedCount);
    });

    [Fact, Trait("asyncio", "readuntil on EOF: IncompleteReadError.partial may hold a partial separator; buffer cleared")]
    public void Reader_ReadUntilEofWithPartialSeparator_PartialCarried() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("abc\r"));
        r.FeedEof();
        var e = await Assert.ThrowsAsync<IncompleteReadError>(async () => await r.ReadUntil(B("\r\n")));
        Assert.Equal("abc\r", S(e.Partial));
        Assert.True(r.AtEof);
    });

    [Fact, Trait("asyncio", "set_exception wakes a waiting readuntil with the exception")]
    public void Reader_SetExceptionWhileReadUntilWaits_Raises() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.GetRunningLoop().CreateTask(async () => await r.ReadUntil(B(";")));
        await Aio.Sleep(0);
        r.FeedData(B("partial"));
        await Aio.Sleep(0);
        var boom = new IOException("x");
        r.SetException(boom);
        Assert.Same(boom, await Catch(async () => await t));
    });

    [Fact, Trait("asyncio", "readuntil cancelled while waiting consumes nothing (next readuntil gets the whole chunk)")]
    public void Reader_ReadUntilCancelled_NothingLost() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var loop = Aio.GetRunningLoop();
        var t = loop.CreateTask(async () => await r.ReadUntil(B(";")));
        r.FeedData(B("hello"));
        await Aio.Sleep(0);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        r.FeedData(B(" world;"));
        Assert.Equal("hello world;", S(await r.ReadUntil(B(";"))));
    });

    [Fact, Trait("asyncio", "async for line in reader: stops at b'' and yields a final partial line")]
    public void Reader_AsyncForeach_YieldsPartialLastLine() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("a\nb\nc"));
        r.FeedEof();
        var lines = new List<string>();
        await foreach (var l in r) lines.Add(S(l));
        Assert.Equal(["a\n", "b\n", "c"], lines);
    });

    // ------------------------------------------------------------------ streams over loopback

    [Fact, Trait("asyncio", "StreamWriter.get_extra_info('peername'/'sockname'/'socket') on both sides; default for unknown names")]
    public void Streams_ExtraInfo_BothSidesAgree()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var serverSide = loop.CreateFuture<(object?, object?, object?)>();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                serverSide.SetResult((w.GetExtraInfo("peername"), w.GetExtraInfo("sockname"), w.GetExtraInfo("socket")));
                await r.Read();
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var (speer, sname, ssock) = await serverSide;
            Assert.Equal(w.GetExtraInfo("sockname"), speer);
            Assert.Equal(w.GetExtraInfo("peername"), sname);
            Assert.Equal(server.Sockets[0].LocalEndPoint, sname);
            Assert.IsAssignableFrom<Socket>(ssock);
            Assert.IsAssignableFrom<Socket>(w.GetExtraInfo("socket"));
            Assert.Equal("dflt", w.GetExtraInfo("no-such-key", "dflt"));
            Assert.Null(w.GetExtraInfo("no-such-key"));
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact, Trait("asyncio", "open_connection/start_server on ::1")]
    public void Streams_Ipv6Loopback_RoundTrip()
    {
        if (!Socket.OSSupportsIPv6) return;
        Run(async () =>
        {
            Server server;
            try { server = await Aio.StartServer(async (r, w) => { w.Write(await r.ReadLine()); await w.Drain(); w.Close(); }, "::1", 0); }
            catch (SocketException) { return; } // no ::1 here
            await using var _ = server;
            var (r, w) = await Aio.OpenConnection("::1", PortOf(server));
            w.Write(B("six\n"));
            Assert.Equal("six\n", S(await r.ReadLine()));
            Assert.Equal(AddressFamily.InterNetworkV6, ((IPEndPoint)w.GetExtraInfo("peername")!).AddressFamily);
            Assert.Empty(await r.Read());
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact, Trait("asyncio", "StreamWriter.is_closing false until close(); wait_closed returns after connection_lost(None)")]
    public void Streams_IsClosingAndWaitClosed()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(async (r, w) => { await r.Read(); w.Close(); }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            Assert.False(w.IsClosing);
            w.Close();
            Assert.True(w.IsClosing);
            await w.WaitClosed();
            await w.WaitClosed(); // again: at once
            Assert.True(r.AtEof);
            Assert.Null(r.Exception);
        });
    }

    [Fact, Trait("asyncio", "peer closing: the reader gets EOF, the half-closed writer stays usable (eof_received returns True)")]
    public void Streams_PeerCloses_ReaderEofWriterNotClosing()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var got = loop.CreateFuture<string>();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                w.Write(B("bye"));
                w.WriteEof();
                got.SetResult(S(await r.Read()));
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            Assert.Equal("bye", S(await r.Read()));
            Assert.True(r.AtEof);
            Assert.Empty(await r.Read(10));
            Assert.Empty(await r.ReadLine());
            Assert.False(w.IsClosing);
            w.Write(B("still"));
            await w.Drain();
            w.WriteEof();
            w.WriteEof(); // second call: no-op
            Assert.Equal("still", await got);
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact, Trait("asyncio", "write_eof with buffered data: all buffered data is sent before the FIN")]
    public void Streams_WriteEofWithLargeBuffer_PeerGetsAllThenEof()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var got = loop.CreateFuture<byte[]>();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                got.SetResult(await r.Read());
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var data = NetTest.Data(8 << 20);
            w.Write(data);
            Assert.True(w.Transport.WriteBufferSize > 0);
            w.WriteEof();
            var received = await got;
            Assert.Equal(data.Length, received.Length);
            Assert.Equal(data, received);
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact, Trait("asyncio", "writelines writes the buffers in order")]
    public void Streams_WriteLines_OrderPreserved()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var got = loop.CreateFuture<byte[]>();
            await using var server = await Aio.StartServer(async (r, w) => { got.SetResult(await r.Read()); w.Close(); }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var big = NetTest.Data(3 << 20);
            w.WriteLines([B("head|"), big, B("|tail")]);
            w.WriteLines([]);
            await w.Drain();
            w.WriteEof();
            var received = await got;
            Assert.Equal([.. B("head|"), .. big, .. B("|tail")], received);
            w.Close();
        });
    }

    [Fact, Trait("asyncio", "drain waiting while paused; transport.abort() -> connection_lost(None) wakes drain with no error; next drain raises ConnectionResetError")]
    public void Streams_DrainWaitingThenAbort_ReturnsThenNextDrainRaises()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var release = loop.CreateFuture();
            await using var server = await Aio.StartServer(async (r, w) => { await release; w.Close(); }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            w.Transport.SetWriteBufferLimits(high: 1024);
            w.Write(new byte[32 << 20]);
            var drain = loop.CreateTask(async () => await w.Drain());
            await Aio.Sleep(0.01);
            Assert.False(drain.IsDone);
            w.Transport.Abort();
            await drain; // asyncio: FlowControlMixin.connection_lost(None) sets the waiters' result
            var e = await Catch(async () => await w.Drain());
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(e).SocketErrorCode);
            release.SetResult();
        });
    }

    [Fact, Trait("asyncio", "a cancelled drain loses no data: the buffer still goes out")]
    public void Streams_DrainCancelled_DataStillDelivered()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var go = loop.CreateFuture();
            var got = loop.CreateFuture<byte[]>();
            await using var server = await Aio.StartServer(async (r, w) => { await go; got.SetResult(await r.Read()); w.Close(); }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var data = NetTest.Data(16 << 20, seed: 3);
            w.Write(data);
            var drain = loop.CreateTask(async () => await w.Drain());
            await Aio.Sleep(0.01);
            Assert.False(drain.IsDone);
            drain.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await drain);
            go.SetResult();
            await w.Drain();
            w.WriteEof();
            Assert.Equal(data, await got);
            w.Close();
        });
    }

    [Fact, Trait("asyncio", "StreamReader flow control: pause_reading above 2*limit, resume once read down to limit")]
    public void Streams_ReaderLimit_PausesTransportAndResumesWhenRead()
    {
        Run(async () =>
        {
            var data = NetTest.Data(200_000, seed: 5);
            await using var server = await Aio.StartServer(async (r, w) => { w.Write(data); await w.Drain(); await r.Read(); w.Close(); }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server), limit: 1024);
            await Until(() => r.BufferedCount > 2048);
            Assert.False(w.Transport.IsReading);
            var all = await r.ReadExactly(data.Length);
            Assert.Equal(data, all);
            Assert.True(w.Transport.IsReading);
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact, Trait("asyncio", "peer reset while a read waits: the read raises ConnectionResetError, is_closing, wait_closed raises it")]
    public void Streams_PeerResetWhileReadWaits_ReadRaisesReset()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var listener = NetTest.Listener();
            var (r, w) = await Aio.OpenConnection("127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port);
            listener.Blocking = true;
            using var peer = listener.Accept();
            var read = loop.CreateTask(async () => await r.Read(100));
            await Aio.Sleep(0.01);
            peer.LingerState = new LingerOption(true, 0);
            peer.Close(); // RST
            var e = await Catch(async () => await read);
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(e).SocketErrorCode);
            Assert.True(w.IsClosing);
            Assert.Same(e, r.Exception);
            Assert.Same(e, await Catch(() => w.WaitClosed()));
            Assert.Same(e, await Catch(async () => await w.Drain()));
        });
    }

    [Fact, Trait("asyncio", "after set_exception, read raises even though data is buffered (read checks _exception first)")]
    public void Streams_PeerResetAfterDataBuffered_ReadRaises()
    {
        Run(async () =>
        {
            using var listener = NetTest.Listener();
            var (r, w) = await Aio.OpenConnection("127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port);
            listener.Blocking = true;
            using var peer = listener.Accept();
            peer.Send(B("buffered"));
            await Until(() => r.BufferedCount == 8);
            peer.LingerState = new LingerOption(true, 0);
            peer.Close();
            await Until(() => r.Exception != null);
            Assert.IsType<SocketException>(await Catch(async () => await r.Read(3)));
            Assert.IsType<SocketException>(await Catch(async () => await r.ReadExactly(8)));
        });
    }

    [Fact, Trait("asyncio", "client_connected_cb returning normally does not close the connection")]
    public void Streams_HandlerReturns_ConnectionStaysOpen()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var handlerDone = loop.CreateFuture<AsyncStreamWriter>();
            await using var server = await Aio.StartServer((r, w) => { handlerDone.SetResult(w); return Task.CompletedTask; }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var sw = await handlerDone;
            await Aio.Sleep(0.02);
            Assert.False(sw.IsClosing);
            sw.Write(B("late"));
            Assert.Equal("late", S(await r.ReadExactly(4)));
            server.CloseClients();
            Assert.Empty(await r.Read());
            w.Close();
        });
    }

    // ------------------------------------------------------------------ Server

    [Fact, Trait("asyncio", "Server.is_serving/sockets/start_serving/close lifecycle; close idempotent; sockets () after close")]
    public void Server_Lifecycle_StartServingFalseThenStartThenClose()
    {
        Run(async () =>
        {
            var server = await Aio.StartServer(async (r, w) => { await r.Read(); w.Close(); }, "127.0.0.1", 0, startServing: false);
            Assert.False(server.IsServing);
            Assert.Single(server.Sockets);
            int port = PortOf(server);
            // Not listening yet: a connection is refused (asyncio calls listen() only in _start_serving).
            await Assert.ThrowsAsync<SocketException>(() => Aio.OpenConnection("127.0.0.1", port));
            await server.StartServing();
            await server.StartServing(); // idempotent
            Assert.True(server.IsServing);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", port);
            w.Close();
            await w.WaitClosed();
            server.Close();
            server.Close();
            Assert.False(server.IsServing);
            Assert.Empty(server.Sockets);
            await server.WaitClosed();
            Assert.Same(Aio.GetRunningLoop(), server.GetLoop());
        });
    }

    [Fact, Trait("asyncio", "serve_forever on a closed server raises RuntimeError; a second concurrent serve_forever raises")]
    public void Server_ServeForever_ClosedOrTwice_Throws()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await Aio.StartServer(async (r, w) => { await r.Read(); w.Close(); }, "127.0.0.1", 0);
            var sf = loop.CreateTask(() => server.ServeForever());
            await Aio.Sleep(0);
            await Assert.ThrowsAsync<InvalidOperationException>(() => server.ServeForever());
            Assert.False(sf.IsDone);
            sf.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await sf);
            Assert.False(server.IsServing);
            await Assert.ThrowsAsync<InvalidOperationException>(() => server.ServeForever());
        });
    }

    [Fact, Trait("asyncio", "Server.close_clients (3.13): handlers' readers get EOF (connection_lost(None)); wait_closed then returns")]
    public void Server_CloseClients_HandlersSeeEof()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var results = new List<string>();
            var bothWaiting = 0;
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                bothWaiting++;
                var data = await r.Read();
                results.Add(data.Length == 0 && r.AtEof ? "eof" : "data");
            }, "127.0.0.1", 0);
            var (r1, w1) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            var (r2, w2) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await Until(() => bothWaiting == 2);
            server.Close();
            server.CloseClients();
            await server.WaitClosed();
            await Until(() => results.Count == 2);
            Assert.Equal(["eof", "eof"], results);
            Assert.Empty(await r1.Read());
            Assert.Empty(await r2.Read());
            w1.Close(); w2.Close();
        });
    }

    [Fact, Trait("asyncio", "Server.abort_clients (3.13): buffered data dropped, connection_lost(None), wait_closed returns")]
    public void Server_AbortClients_HandlersSeeEofWaitClosedReturns()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var readOutcome = loop.CreateFuture<string>();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                w.Write(new byte[32 << 20]); // the client never reads: most of it stays buffered
                try { var d = await r.Read(); readOutcome.SetResult(d.Length == 0 ? "eof" : "data"); }
                catch (Exception e) { readOutcome.SetResult(e.GetType().Name); }
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await Until(() => r.BufferedCount > 0);
            server.Close();
            server.AbortClients();
            await server.WaitClosed();
            Assert.Equal("eof", await readOutcome);
            w.Transport.Abort();
        });
    }

    [Fact, Trait("asyncio", "Server.wait_closed after close with an active client waits for the client; serve_forever cancelled waits too")]
    public void Server_WaitClosed_WaitsForActiveClientThenReturns()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await Aio.StartServer(async (r, w) => { await r.Read(); w.Close(); }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await Aio.Sleep(0.01);
            server.Close();
            var wc = loop.CreateTask(() => server.WaitClosed());
            await Aio.Sleep(0.02);
            Assert.False(wc.IsDone);
            w.Close();
            await wc;
            await server.WaitClosed();
        });
    }

    [Fact, Trait("asyncio", "create_server with a host list dedups equal addresses")]
    public void Server_DuplicateHosts_OneSocket()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(async (r, w) => { await r.Read(); w.Close(); }, ["127.0.0.1", "127.0.0.1"], 0);
            Assert.Single(server.Sockets);
        });
    }

    // ------------------------------------------------------------------ transports and protocols

    sealed class Peers
    {
        public ITransport ClientT = null!;
        public RecordingProtocol Client = null!;
        public RecordingProtocol ServerP = null!;
        public Server Server = null!;
    }

    static async Task<Peers> Open(bool keepOpenOnEof = false, Action<RecordingProtocol>? onServer = null)
    {
        var loop = Aio.GetRunningLoop();
        var made = loop.CreateFuture<RecordingProtocol>();
        var server = await loop.CreateServer(() =>
        {
            var p = new RecordingProtocol { KeepOpenOnEof = keepOpenOnEof };
            onServer?.Invoke(p);
            if (!made.IsDone) made.SetResult(p);
            return p;
        }, "127.0.0.1", 0);
        var (t, c) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
        var sp = await made;
        await sp.Made!;
        return new Peers { ClientT = t, Client = c, ServerP = sp, Server = server };
    }

    [Fact, Trait("asyncio", "protocol order: connection_made, data_received, eof_received, connection_lost(None) (eof_received false closes)")]
    public void Protocol_PeerWritesThenEof_OrderAndNullLoss()
    {
        Run(async () =>
        {
            var p = await Open();
            Assert.Equal(["made"], p.Client.Events);
            p.ClientT.Write(B("hello"));
            p.ClientT.WriteEof();
            await p.ServerP.Lost!;
            Assert.Equal(["made", "data", "eof", "lost"], p.ServerP.Events);
            Assert.Null(p.ServerP.LostWith);
            Assert.Equal("hello", p.ServerP.Text);
            await p.Client.Lost!; // the server closed in answer to EOF
            Assert.Equal(["made", "eof", "lost"], p.Client.Events);
            Assert.Null(p.Client.LostWith);
            p.Server.Close();
        });
    }

    [Fact, Trait("asyncio", "get/set_write_buffer_limits: defaults (16K, 64K), high only -> low=high//4, low only -> high=4*low")]
    public void Transport_WriteBufferLimits_DefaultsAndDerivation()
    {
        Run(async () =>
        {
            var p = await Open();
            var t = p.ClientT;
            Assert.Equal((16 * 1024, 64 * 1024), t.GetWriteBufferLimits());
            t.SetWriteBufferLimits(high: 100);
            Assert.Equal((25, 100), t.GetWriteBufferLimits());
            t.SetWriteBufferLimits(low: 100);
            Assert.Equal((100, 400), t.GetWriteBufferLimits());
            t.SetWriteBufferLimits(high: 0);
            Assert.Equal((0, 0), t.GetWriteBufferLimits());
            t.SetWriteBufferLimits();
            Assert.Equal((16 * 1024, 64 * 1024), t.GetWriteBufferLimits());
            Assert.Throws<ArgumentException>(() => t.SetWriteBufferLimits(high: 10, low: 11));
            Assert.Throws<ArgumentException>(() => t.SetWriteBufferLimits(high: -1));
            t.Close();
            await p.Client.Lost!;
            p.Server.Close();
        });
    }

    [Fact, Trait("asyncio", "high=0: any buffered byte pauses once; resume_writing once the buffer is empty (<= low=0)")]
    public void Transport_HighWaterZero_PauseOnceResumeAtEmpty()
    {
        Run(async () =>
        {
            var p = await Open(onServer: sp => { });
            var t = p.ClientT;
            p.ServerP.Transport!.PauseReading();
            t.SetWriteBufferLimits(high: 0);
            int i = 0;
            while (t.WriteBufferSize == 0 && i++ < 10_000) t.Write(new byte[64 * 1024]);
            Assert.True(t.WriteBufferSize > 0);
            Assert.Equal(1, p.Client.Pauses);
            t.Write(new byte[10]);
            Assert.Equal(1, p.Client.Pauses);
            p.ServerP.Transport!.ResumeReading();
            await Until(() => p.Client.Resumes == 1);
            Assert.Equal(0, p.Client.BufferAtResume);
            Assert.Equal(1, p.Client.Pauses);
            t.Close();
            await p.Client.Lost!;
            p.Server.Close();
            p.ServerP.Transport!.Abort();
        });
    }

    [Fact, Trait("asyncio", "abort(): buffer dropped (size 0), is_closing, connection_lost(None) once on the next iteration")]
    public void Transport_Abort_LostNullOnceBufferZero()
    {
        Run(async () =>
        {
            var p = await Open();
            var t = p.ClientT;
            p.ServerP.Transport!.PauseReading();
            for (int i = 0; i < 10_000 && t.WriteBufferSize == 0; i++) t.Write(new byte[64 * 1024]);
            Assert.True(t.WriteBufferSize > 0);
            t.Abort();
            Assert.True(t.IsClosing);
            Assert.Equal(0, t.WriteBufferSize);
            Assert.DoesNotContain("lost", p.Client.Events); // not synchronously
            t.Abort();
            t.Close();
            await p.Client.Lost!;
            await Aio.Sleep(0.01);
            Assert.Single(p.Client.Events, "lost");
            Assert.Null(p.Client.LostWith);
            p.ServerP.Transport!.Abort();
            p.Server.Close();
        });
    }

    [Fact, Trait("asyncio", "close() twice: connection_lost once; is_reading false after close; pause/resume_reading after close are no-ops")]
    public void Transport_CloseTwice_LostOnce_ReadingFlags()
    {
        Run(async () =>
        {
            var p = await Open();
            var t = p.ClientT;
            Assert.True(t.IsReading);
            t.PauseReading();
            Assert.False(t.IsReading);
            t.PauseReading();
            t.ResumeReading();
            Assert.True(t.IsReading);
            t.ResumeReading();
            Assert.True(t.IsReading);
            t.Close();
            t.Close();
            Assert.False(t.IsReading);
            t.ResumeReading();
            t.PauseReading();
            Assert.False(t.IsReading);
            await p.Client.Lost!;
            await Aio.Sleep(0.01);
            Assert.Single(p.Client.Events, "lost");
            p.Server.Close();
        });
    }

    sealed class ClosingInMade : RecordingProtocol
    {
        public override void ConnectionMade(IBaseTransport transport)
        {
            base.ConnectionMade(transport);
            transport.Close();
        }
    }

    [Fact, Trait("asyncio", "close() inside connection_made: create_connection still returns; connection_lost(None) follows")]
    public void Transport_CloseInConnectionMade_LostNullAfter()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await Aio.StartServer(async (r, w) => { await r.Read(); w.Close(); }, "127.0.0.1", 0);
            var (t, c) = await loop.CreateConnection(() => new ClosingInMade(), "127.0.0.1", PortOf(server));
            Assert.True(t.IsClosing);
            await c.Lost!;
            Assert.Equal(["made", "lost"], c.Events);
            Assert.Null(c.LostWith);
        });
    }

    [Fact, Trait("asyncio", "peer RST: connection_lost(ConnectionResetError) on the protocol; write afterwards is the library's documented exception")]
    public void Transport_PeerReset_LostWithResetError()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var listener = NetTest.Listener();
            var (t, c) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port);
            listener.Blocking = true;
            using var peer = listener.Accept();
            peer.LingerState = new LingerOption(true, 0);
            peer.Close();
            await c.Lost!;
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(c.LostWith).SocketErrorCode);
            Assert.Equal(["made", "lost"], c.Events);
            Assert.True(t.IsClosing);
        });
    }

    [Fact, Trait("asyncio", "write_eof on a closing transport is a no-op; can_write_eof True")]
    public void Transport_WriteEofAfterClose_NoOp()
    {
        Run(async () =>
        {
            var p = await Open();
            Assert.True(p.ClientT.CanWriteEof);
            p.ClientT.Close();
            p.ClientT.WriteEof();
            await p.Client.Lost!;
            p.ClientT.WriteEof();
            p.Server.Close();
        });
    }

    [Fact, Trait("asyncio", "close() with buffered data: data flushed, then connection_lost(None); the peer gets every byte")]
    public void Transport_CloseWithBuffer_PeerGetsAll()
    {
        Run(async () =>
        {
            var p = await Open();
            var data = NetTest.Data(6 << 20, seed: 9);
            p.ClientT.Write(data);
            p.ClientT.Close();
            await p.Client.Lost!;
            Assert.Null(p.Client.LostWith);
            await p.ServerP.Lost!;
            Assert.Equal(data, p.ServerP.Received.ToArray());
            p.Server.Close();
        });
    }

    // ------------------------------------------------------------------ datagram endpoints

    sealed class Dgram : DatagramProtocol
    {
        public readonly List<string> Events = new();
        public readonly List<(string, EndPoint)> Got = new();
        public Exception? LostWith;
        public IDatagramTransport? T;
        public readonly Future Lost = Aio.GetRunningLoop().CreateFuture();
        public override void ConnectionMade(IBaseTransport transport) { Events.Add("made"); T = (IDatagramTransport)transport; }
        public override void DatagramReceived(ReadOnlySpan<byte> data, EndPoint remote)
        {
            Events.Add("dgram");
            Got.Add((Encoding.ASCII.GetString(data), remote));
        }
        public override void ErrorReceived(Exception exception) => Events.Add("error");
        public override void ConnectionLost(Exception? exception) { Events.Add("lost"); LostWith = exception; Lost.SetResult(); }
    }

    [Fact, Trait("asyncio", "datagram callbacks: connection_made, datagram_received(data, addr), connection_lost(None) on close; sendto to the connected address itself is allowed")]
    public void Datagram_OrderAndConnectedSendToOwnPeer()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, sp) = await loop.CreateDatagramEndpoint(() => new Dgram(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var sEp = (IPEndPoint)st.GetExtraInfo("sockname")!;
            var (ct, cp) = await loop.CreateDatagramEndpoint(() => new Dgram(), remoteEndPoint: sEp);
            Assert.Equal(["made"], cp.Events);
            ct.SendTo("a"u8, sEp);
            ct.SendTo("b"u8);
            await Until(() => sp.Got.Count == 2);
            Assert.Equal(["a", "b"], sp.Got.Select(g => g.Item1));
            Assert.Equal(ct.GetExtraInfo("sockname"), sp.Got[0].Item2);
            st.SendTo("back"u8, sp.Got[0].Item2);
            await Until(() => cp.Got.Count == 1);
            Assert.Equal(0, ct.WriteBufferSize);
            ct.Close();
            Assert.True(ct.IsClosing);
            await cp.Lost;
            Assert.Equal(["made", "dgram", "lost"], cp.Events);
            Assert.Null(cp.LostWith);
            st.Abort();
            await sp.Lost;
            Assert.Null(sp.LostWith);
        });
    }
    [Fact, Trait("asyncio", "readuntil(()) with no separators raises ValueError before anything is read")]
    public void Reader_ReadUntilNoSeparators_Throws() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("x;"));
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await r.ReadUntil(Array.Empty<ReadOnlyMemory<byte>>()));
        Assert.Equal(2, r.BufferedCount);
    });

    [Fact, Trait("asyncio", "documented difference probe: write() on a closing transport whose buffer is still flushing (asyncio appends and sends it)")]
    public void Documented_WriteWhileClosingWithBuffer_Throws()
    {
        Run(async () =>
        {
            var p = await Open();
            p.ServerP.Transport!.PauseReading();
            for (int i = 0; i < 10_000 && p.ClientT.WriteBufferSize == 0; i++) p.ClientT.Write(new byte[64 * 1024]);
            p.ClientT.Close();
            Assert.Throws<InvalidOperationException>(() => p.ClientT.Write(B("more")));
            p.ClientT.Abort();
            await p.Client.Lost!;
            p.ServerP.Transport!.Abort();
            p.Server.Close();
        });
    }

    [Fact, Trait("asyncio", "documented-difference probe: sendto() on a closed connected datagram endpoint (asyncio drops it silently)")]
    public void Documented_DatagramSendToAfterClose_Throws()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, sp) = await loop.CreateDatagramEndpoint(() => new Dgram(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var (ct, cp) = await loop.CreateDatagramEndpoint(() => new Dgram(), remoteEndPoint: (IPEndPoint)st.GetExtraInfo("sockname")!);
            ct.Close();
            await cp.Lost;
            Assert.Throws<InvalidOperationException>(() => ct.SendTo("late"u8));
            st.Close();
            await sp.Lost;
        });
    }
}
