using System.Net;
using System.Net.Sockets;

namespace Asyncio.Tests.Net;

/// <summary>
/// The contract every reactor keeps (readiness callbacks and the sock_* coroutines), run once per
/// reactor by the subclasses below.
/// </summary>
public abstract class ReactorConformanceTests
{
    /// <summary>Whether the subclass runs the portable reactor.</summary>
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    void RunWithUnixPath(Func<string, Task> body) => NetTest.RunWithUnixPath(Portable, body);

    [Fact]
    public void AddReader_DataArrives_CallbackRunsUntilRemoved()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var got = loop.CreateFuture<int>();
                var buf = new byte[16];
                loop.AddReader(b, () =>
                {
                    int n = b.Receive(buf);
                    if (!got.IsDone) got.SetResult(n);
                });
                a.Send("hello"u8);
                Assert.Equal(5, await got);
                Assert.True(loop.RemoveReader(b));
                Assert.False(loop.RemoveReader(b));
            }
        });
    }

    [Fact]
    public void AddReader_LoopNeverIdle_ReadinessStillDelivered()
    {
        // A task that yields forever keeps the ready queue from ever emptying; I/O must still be
        // checked (the loop polls while busy, every 64 callbacks once 50 us have passed).
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var got = loop.CreateFuture();
                loop.AddReader(b, () =>
                {
                    b.Receive(new byte[8]);
                    loop.RemoveReader(b);
                    got.SetResult();
                });
                var spinner = Aio.CreateTask(async () =>
                {
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    while (!got.IsDone && clock.Elapsed < TimeSpan.FromSeconds(20)) await Aio.Sleep(0);
                });
                await Aio.Sleep(0);
                a.Send("x"u8);
                await spinner;
                Assert.True(got.IsDone, "the reader never ran while the loop was busy");
            }
        });
    }

    [Fact]
    public void AddReader_Replaced_OnlyNewCallbackRuns()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                int first = 0;
                var second = loop.CreateFuture();
                loop.AddReader(b, () => first++);
                loop.AddReader(b, () => { b.Receive(new byte[8]); if (!second.IsDone) second.SetResult(); });
                a.Send("x"u8);
                await second;
                loop.RemoveReader(b);
                Assert.Equal(0, first);
            }
        });
    }

    [Fact]
    public void AddWriter_ConnectedSocket_CallbackRuns()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var ready = loop.CreateFuture();
                loop.AddWriter(a, () => { loop.RemoveWriter(a); ready.SetResult(); });
                await ready;
                Assert.False(loop.RemoveWriter(a));
            }
        });
    }

    [Fact]
    public void RemoveReader_BeforeQueuedCallbackRuns_CallbackDoesNotRun()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            var (c, d) = NetTest.SocketPair();
            using (a) using (b) using (c) using (d)
            {
                // Both become readable in the same poll; whichever runs first removes the other.
                int ran = 0;
                loop.AddReader(b, () => { ran++; loop.RemoveReader(b); loop.RemoveReader(d); });
                loop.AddReader(d, () => { ran++; loop.RemoveReader(b); loop.RemoveReader(d); });
                a.Send("1"u8);
                c.Send("2"u8);
                for (int i = 0; i < 50 && ran == 0; i++) await Aio.Sleep(0.01);
                await Aio.Sleep(0.05);
                Assert.Equal(1, ran);
            }
        });
    }

    [Fact]
    public void SockSendAllAndRecvInto_RoundTrip_DeliversEveryByte()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var data = NetTest.Data(3 << 20); // larger than the socket buffers: the sender must wait
                var send = loop.CreateTask(async () => { await loop.SockSendAll(a, data); a.Shutdown(SocketShutdown.Send); });
                var received = new MemoryStream();
                var buf = new byte[65536];
                while (true)
                {
                    int n = await loop.SockRecvInto(b, buf);
                    if (n == 0) break;
                    received.Write(buf, 0, n);
                }
                await send;
                Assert.Equal(data, received.ToArray());
            }
        });
    }

    [Fact]
    public void SockRecv_SizeZero_ReturnsEmptyAtOnceWithoutWaitingForData()
    {
        // asyncio's sock_recv(sock, 0) is recv(0): empty at once, nothing consumed (not .NET's zero-byte
        // receive, which waits until data is readable).
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var into = loop.SockRecvInto(b, Memory<byte>.Empty);
                Assert.True(into.IsCompleted);
                Assert.Equal(0, await into);
                var recv = loop.SockRecv(b, 0);
                Assert.True(recv.IsCompleted);
                Assert.Empty(await recv);
                await loop.SockSendAll(a, "kept"u8.ToArray());
                Assert.Equal("kept"u8.ToArray(), await loop.SockRecv(b, 100));
            }
        });
    }

    [Fact]
    public void SockRecv_PeerClosed_ReturnsEmpty()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (b)
            {
                await loop.SockSendAll(a, "bye"u8.ToArray());
                a.Dispose();
                Assert.Equal("bye"u8.ToArray(), await loop.SockRecv(b, 100));
                Assert.Empty(await loop.SockRecv(b, 100));
            }
        });
    }

    [Fact]
    public void SockRecv_TaskCancelledWhileWaiting_ConsumesNothing()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var t = loop.CreateTask(async () => { await loop.SockRecv(b, 100); });
                await Aio.Sleep(0.01);
                t.Cancel();
                await Assert.ThrowsAsync<CancelledError>(async () => await t);
                a.Send("kept"u8);
                Assert.Equal("kept"u8.ToArray(), await loop.SockRecv(b, 100));
            }
        });
    }

    [Fact]
    public void SockRecv_CancelledAroundTheMomentDataArrives_LosesNothing()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            var (c, d) = NetTest.SocketPair();
            using (a) using (b) using (c) using (d)
            {
                var t = loop.CreateTask(async () => await loop.SockRecv(b, 100));
                await Aio.Sleep(0.01);
                // b and d become readable together; d's reader cancels t. On epoll both are in one poll,
                // so t is woken and cancelled before it resumes; the portable reactor may report them
                // apart. Whatever the interleaving, the bytes end up in t's result or stay in the socket.
                loop.AddReader(d, () => { loop.RemoveReader(d); t.Cancel(); });
                a.Send("kept"u8);
                c.Send("go"u8);
                byte[] got;
                try { got = await t; }
                catch (CancelledError) { got = await loop.SockRecv(b, 100); }
                Assert.Equal("kept"u8.ToArray(), got);
            }
        });
    }

    [Fact]
    public void SockRecv_TwoWaitersSameSocket_SecondThrows()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var first = loop.CreateTask(async () => await loop.SockRecv(b, 10));
                await Aio.Sleep(0.01);
                await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SockRecv(b, 10));
                a.Send("z"u8);
                Assert.Equal("z"u8.ToArray(), await first);
            }
        });
    }

    [Fact]
    public void SockMethods_BlockingSocket_ThrowArgumentExceptionAndDoNothing()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                a.Blocking = true;
                a.ReceiveTimeout = 10_000;
                b.Send("kept"u8);
                await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockRecv(a, 10));
                await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockRecvInto(a, new byte[10]));
                await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockRecvFrom(a, 10));
                await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendAll(a, "x"u8.ToArray()));
                await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendTo(a, "x"u8.ToArray(), b.LocalEndPoint!));
                await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendfile(a, new MemoryStream([1, 2, 3])));
                var buf = new byte[10];
                Assert.Equal(4, a.Receive(buf)); // nothing was read by the refused calls
                Assert.Equal(0, b.Available);    // nor sent
            }
            using var listener = NetTest.Listener();
            listener.Blocking = true;
            await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockAccept(listener));
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockConnect(client, listener.LocalEndPoint!));
            Assert.False(client.Connected);
        });
    }

    [Fact]
    public void SockConnectAndSendAll_UnixPath_RoundTripsWithRecvAndRecvInto()
    {
        RunWithUnixPath(async path =>
        {
            var loop = Aio.GetRunningLoop();
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen();
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
            var accept = loop.CreateTask(async () => await loop.SockAccept(listener));
            await loop.SockConnect(client, new UnixDomainSocketEndPoint(path));
            var (server, _) = await accept;
            using (server)
            {
                await loop.SockSendAll(client, "hello unix"u8.ToArray());
                Assert.Equal("hello"u8.ToArray(), await loop.SockRecv(server, 5));
                var buf = new byte[16];
                int n = await loop.SockRecvInto(server, buf);
                Assert.Equal(" unix", System.Text.Encoding.ASCII.GetString(buf, 0, n));
                client.Shutdown(SocketShutdown.Send);
                Assert.Empty(await loop.SockRecv(server, 5));
            }
        });
    }

    [Fact]
    public void SockAcceptAndConnect_Loopback_Connects()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var listener = NetTest.Listener();
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var accept = loop.CreateTask(async () => await loop.SockAccept(listener));
            await loop.SockConnect(client, listener.LocalEndPoint!);
            var (server, remote) = await accept;
            using (server)
            {
                Assert.False(server.Blocking);
                Assert.Equal(client.LocalEndPoint, remote);
                await loop.SockSendAll(client, "hi"u8.ToArray());
                Assert.Equal("hi"u8.ToArray(), await loop.SockRecv(server, 10));
            }
        });
    }

    [Fact]
    public void SockConnect_ClosedPort_ThrowsConnectionRefused()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var e = await Assert.ThrowsAsync<SocketException>(async () =>
                await loop.SockConnect(client, new IPEndPoint(IPAddress.Loopback, NetTest.ClosedPort())));
            Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        });
    }

    [Fact]
    public void SockConnect_DnsEndPoint_ResolvesLocalhost()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var listener = NetTest.Listener();
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var accept = loop.CreateTask(async () => await loop.SockAccept(listener));
            await loop.SockConnect(client, new DnsEndPoint("localhost", ((IPEndPoint)listener.LocalEndPoint!).Port));
            (await accept).Socket.Dispose();
        });
    }

    [Fact]
    public void SockAccept_TaskCancelled_AcceptsNothing()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var listener = NetTest.Listener();
            var t = loop.CreateTask(async () => { await loop.SockAccept(listener); });
            await Aio.Sleep(0.01);
            t.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await t);
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var connect = loop.CreateTask(async () => await loop.SockConnect(client, listener.LocalEndPoint!));
            var (s, _) = await loop.SockAccept(listener);
            s.Dispose();
            await connect;
        });
    }

    /// <summary>A non-blocking UDP socket bound to 127.0.0.1 at a free port.</summary>
    static Socket BoundUdp()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    [Fact]
    public void SockSendToAndRecvFrom_Udp_DeliversDatagramAndSender()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var rx = BoundUdp();
            using var tx = BoundUdp();
            var recv = loop.CreateTask(async () => await loop.SockRecvFrom(rx, 100));
            await Aio.Sleep(0.01);
            Assert.Equal(3, await loop.SockSendTo(tx, "abc"u8.ToArray(), rx.LocalEndPoint!));
            var (data, from) = await recv;
            Assert.Equal("abc"u8.ToArray(), data);
            Assert.Equal(tx.LocalEndPoint, from);
        });
    }

    [Fact]
    public void SockRecvFrom_DatagramLargerThanSize_ReturnsItsPrefixAndDropsTheRest()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var rx = BoundUdp();
            using var tx = BoundUdp();
            await loop.SockSendTo(tx, "0123456789"u8.ToArray(), rx.LocalEndPoint!);
            await loop.SockSendTo(tx, "next"u8.ToArray(), rx.LocalEndPoint!);
            // As recvfrom(2) and asyncio's sock_recvfrom: a datagram is read whole, its excess discarded.
            var (data, from) = await loop.SockRecvFrom(rx, 4);
            Assert.Equal("0123"u8.ToArray(), data);
            Assert.Equal(tx.LocalEndPoint, from);
            Assert.Equal("next"u8.ToArray(), (await loop.SockRecvFrom(rx, 100)).Data);
        });
    }

    [Fact]
    public void SockRecvFrom_UnixDatagramFromUnboundSender_ReturnsAnUnnamedEndPoint()
    {
        RunWithUnixPath(async path =>
        {
            var loop = Aio.GetRunningLoop();
            using var rx = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            rx.Bind(new UnixDomainSocketEndPoint(path));
            using var tx = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            await loop.SockSendTo(tx, "hi"u8.ToArray(), new UnixDomainSocketEndPoint(path));
            var (data, from) = await loop.SockRecvFrom(rx, 10);
            Assert.Equal("hi"u8.ToArray(), data);
            Assert.IsType<UnixDomainSocketEndPoint>(from);
            Assert.Equal("", from.ToString());
        });
    }

    [Fact]
    public void GetAddrInfo_Literal_ReturnsItWithoutLookup()
    {
        Run(async () =>
        {
            var infos = await Aio.GetRunningLoop().GetAddrInfo("127.0.0.1", 80, type: SocketType.Stream);
            var info = Assert.Single(infos);
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, 80), info.EndPoint);
            Assert.Equal(ProtocolType.Tcp, info.Protocol);
        });
    }

    [Fact]
    public void GetAddrInfo_Localhost_ResolvesLoopbackForFamily()
    {
        Run(async () =>
        {
            var infos = await Aio.GetRunningLoop().GetAddrInfo("localhost", 8080, AddressFamily.InterNetwork);
            Assert.NotEmpty(infos);
            Assert.All(infos, i => Assert.True(IPAddress.IsLoopback(i.EndPoint.Address)));
            Assert.All(infos, i => Assert.Equal(8080, i.EndPoint.Port));
        });
    }

    [Fact]
    public void GetAddrInfo_UnknownHost_ThrowsSocketException()
    {
        Run(async () =>
        {
            await Assert.ThrowsAsync<SocketException>(async () => await Aio.GetRunningLoop().GetAddrInfo("no-such-host.invalid", 1));
        });
    }

    [Fact]
    public void GetNameInfo_NumericHost_ReturnsAddressAndPort()
    {
        Run(async () =>
        {
            var (host, service) = await Aio.GetRunningLoop().GetNameInfo(new IPEndPoint(IPAddress.Loopback, 443), numericHost: true);
            Assert.Equal("127.0.0.1", host);
            Assert.Equal("443", service);
        });
    }

    [Fact]
    public void AddReaderAndWriter_SameSocket_RemovingOneKeepsTheOther()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                int reads = 0, writes = 0;
                // A reader may be called with nothing to read (the portable reactor can report readiness twice
                // for one arrival, as select-based loops may): count the reads that took data.
                loop.AddReader(b, () => { if (b.Available > 0) { b.Receive(new byte[16]); reads++; } });
                loop.AddWriter(b, () => writes++);
                for (int i = 0; i < 1000 && writes == 0; i++) await Aio.Sleep(0.001);
                Assert.True(writes > 0);
                Assert.True(loop.RemoveWriter(b));
                int writesThen = writes;
                a.Send("x"u8);
                for (int i = 0; i < 1000 && reads == 0; i++) await Aio.Sleep(0.001);
                Assert.Equal(1, reads);
                Assert.Equal(writesThen, writes);
                Assert.False(loop.RemoveWriter(b));
                Assert.True(loop.RemoveReader(b));
            }
        });
    }

    [Fact]
    public void AddReaderAndSockRecv_SocketOfATransport_ThrowInvalidOperation()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port);
            var sock = (Socket)t.GetExtraInfo("socket")!;
            Assert.Throws<InvalidOperationException>(() => loop.AddReader(sock, () => { }));
            Assert.Throws<InvalidOperationException>(() => loop.AddWriter(sock, () => { }));
            Assert.Throws<InvalidOperationException>(() => loop.RemoveReader(sock));
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SockRecv(sock, 10));
            t.Write("still"u8);   // the transport goes on reading and writing
            await p.WaitForBytes(5);
            Assert.Equal("still", p.Text);
            t.Close();
            await p.Lost!;
        });
    }

    [Fact]
    public void AddReaderAndRemoveReader_WhileSockRecvWaits_LeaveTheWaitAlone()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var recv = loop.CreateTask(async () => await loop.SockRecv(b, 10));
                await Aio.Sleep(0.01);
                // Replacing or removing the wait's watch would leave SockRecv waiting forever.
                Assert.Throws<InvalidOperationException>(() => loop.AddReader(b, () => { }));
                Assert.False(loop.RemoveReader(b));
                a.Send("x"u8);
                Assert.Equal("x"u8.ToArray(), await recv);   // NetTest.Run bounds the wait
            }
        });
    }

    [Fact]
    public void SockRecv_OnASocketWithAReaderCallback_ThrowsNamingItAndTheCallbackGoesOn()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                int calls = 0;
                loop.AddReader(b, () => { calls++; b.Receive(new byte[16]); });
                var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SockRecv(b, 10));
                Assert.StartsWith("SockRecv:", e.Message);
                Assert.Contains("AddReader", e.Message);
                a.Send("x"u8);
                for (int i = 0; i < 200 && calls == 0; i++) await Aio.Sleep(0.01);
                Assert.Equal(1, calls);   // the reader callback was not replaced
                Assert.True(loop.RemoveReader(b));
            }
        });
    }

    [Fact]
    public void AddReader_FromAnotherThread_Throws()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                var e = await Task.Run(() => Record.Exception(() => loop.AddReader(b, () => { })));
                Assert.IsType<InvalidOperationException>(e);
            }
        });
    }

    [Fact]
    public void ManyRoundTrips_EveryReadinessChangeReachesTheReactorAtOnce()
    {
        Run(async () =>
        {
            // Two tasks ping-pong a byte over a socket pair, so that every receive waits for the reactor: each
            // round trip changes its interest and re-arms it several times. A wake-up of the reactor lost on the
            // way costs up to its poll interval (the portable poller's Select: one second) per change from then
            // on, far beyond the bound; kept, the 2,000 round trips take well under a second.
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                a.Blocking = false;
                b.Blocking = false;
                const int rounds = 2000;
                var echo = loop.CreateTask(async () =>
                {
                    var one = new byte[1];
                    for (int i = 0; i < rounds; i++)
                    {
                        Assert.Equal(1, await loop.SockRecvInto(b, one));
                        await loop.SockSendAll(b, one);
                    }
                });
                var buf = new byte[1];
                await Aio.Timeout(20, async () =>
                {
                    for (int i = 0; i < rounds; i++)
                    {
                        await loop.SockSendAll(a, new byte[] { (byte)i });
                        Assert.Equal(1, await loop.SockRecvInto(a, buf));
                        Assert.Equal((byte)i, buf[0]);
                    }
                    await echo;
                });
            }
        });
    }
}

/// <summary>The conformance suite on the epoll reactor (Linux).</summary>
public sealed class EpollReactorTests : ReactorConformanceTests
{
    protected override bool Portable => false;

    // Epoll only: raw file descriptors are an epoll feature (the portable reactor refuses them, tested below).
    [Fact]
    public void AddReader_RawDescriptor_CallbackRuns()
    {
        Assert.True(OperatingSystem.IsLinux());
        NetTest.Run(false, async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using (a) using (b)
            {
                int fd = (int)b.Handle;
                var got = loop.CreateFuture();
                loop.AddReader(fd, () => { b.Receive(new byte[8]); if (!got.IsDone) got.SetResult(); });
                a.Send("x"u8);
                await got;
                Assert.True(loop.RemoveReader(fd));
            }
        });
    }
}

/// <summary>The conformance suite on the portable reactor.</summary>
public sealed class PortableReactorTests : ReactorConformanceTests
{
    protected override bool Portable => true;

    [Fact]
    public void AddReader_RawDescriptor_ThrowsNotSupported()
    {
        NetTest.Run(true, async () =>
        {
            await Task.Yield();
            Assert.Throws<NotSupportedException>(() => Aio.GetRunningLoop().AddReader(0, () => { }));
        });
    }
}
