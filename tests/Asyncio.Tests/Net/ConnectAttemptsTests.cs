using System.Net;
using System.Net.Sockets;

namespace Asyncio.Tests.Net;

/// <summary>
/// CreateConnection to several addresses: one at a time, Happy Eyeballs (asyncio's happy_eyeballs_delay),
/// interleave and all_errors, on each reactor.
/// </summary>
public abstract class ConnectAttemptsTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    static IPEndPoint V4(int port) => new(IPAddress.Loopback, port);

    /// <summary>
    /// A listener whose accept queue is full, so that a new connection attempt to it stays pending (the kernel
    /// drops its SYN). Returns the listener and the connection that fills the queue; dispose both.
    /// </summary>
    static (Socket Listener, Socket Filler) FullListener()
    {
        var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        l.Bind(V4(0));
        l.Listen(0);
        var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        filler.Connect(l.LocalEndPoint!);
        // The client's connect returns at the SYN-ACK; wait until the listener has the filler in its accept
        // queue (readable), or a connect made right after could still be answered (seen under load).
        if (!l.Poll((int)(NetTest.Bound * 1_000_000), SelectMode.SelectRead)) throw new TimeoutException("the filler never reached the accept queue");
        return (l, filler);
    }

    static void AssertOnlyCurrentTask() =>
        Assert.Equal(new[] { Aio.CurrentTask! }, Aio.AllTasks());

    [Fact]
    public void Interleave_FirstFamilyCountOne_AlternatesFamiliesInTheirOwnOrder()
    {
        (string Name, AddressFamily Family)[] addrs =
        [
            ("6a", AddressFamily.InterNetworkV6), ("6b", AddressFamily.InterNetworkV6), ("6c", AddressFamily.InterNetworkV6),
            ("4a", AddressFamily.InterNetwork), ("4b", AddressFamily.InterNetwork),
        ];
        Assert.Equal(["6a", "4a", "6b", "4b", "6c"], ConnectAttempts.Interleave(addrs, a => a.Family, 1).Select(a => a.Name));
        Assert.Equal(["6a", "6b", "4a", "6c", "4b"], ConnectAttempts.Interleave(addrs, a => a.Family, 2).Select(a => a.Name));
        Assert.Equal(["6a", "6b", "6c", "4a", "4b"], ConnectAttempts.Interleave(addrs, a => a.Family, 9).Select(a => a.Name));
    }

    [Fact]
    public void HappyEyeballs_FirstAddressHangs_NextStartsAfterTheDelayAndWins()
    {
        var (full, filler) = FullListener();
        using var _ = full;
        using var __ = filler;
        using var good = NetTest.Listener();
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var errors = new Exception?[2];
            double start = loop.Time();
            using var sock = await ConnectAttempts.Connect(loop, [(IPEndPoint)full.LocalEndPoint!, (IPEndPoint)good.LocalEndPoint!],
                null, TimeSpan.FromSeconds(0.2), errors);
            Assert.NotNull(sock);
            Assert.Equal(good.LocalEndPoint, sock.RemoteEndPoint);
            Assert.True(loop.Time() - start >= 0.2, "the second attempt started before the delay");
            Assert.Equal([null, null], errors);  // the hanging attempt was cancelled, not failed
            AssertOnlyCurrentTask();              // no attempt outlives the race
        });
    }

    [Fact]
    public void HappyEyeballs_FirstAddressRefuses_NextStartsAtOnce()
    {
        using var good = NetTest.Listener();
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var errors = new Exception?[2];
            double start = loop.Time();
            using var sock = await ConnectAttempts.Connect(loop, [V4(NetTest.ClosedPort()), (IPEndPoint)good.LocalEndPoint!],
                null, TimeSpan.FromSeconds(20), errors);
            Assert.Equal(good.LocalEndPoint, sock!.RemoteEndPoint);
            Assert.True(loop.Time() - start < 20, "waited for the delay although the first attempt had failed");
            Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(errors[0]).SocketErrorCode);
            Assert.Null(errors[1]);
        });
    }

    [Fact]
    public void HappyEyeballs_TwoConnect_OneWinsAndTheOtherSocketIsClosed()
    {
        using var a = NetTest.Listener();
        using var b = NetTest.Listener();
        a.Blocking = b.Blocking = true;
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var sock = await ConnectAttempts.Connect(loop, [(IPEndPoint)a.LocalEndPoint!, (IPEndPoint)b.LocalEndPoint!],
                null, TimeSpan.Zero, new Exception?[2]);
            AssertOnlyCurrentTask();
            var (winnerSide, loserSide) = sock!.RemoteEndPoint!.Equals(a.LocalEndPoint) ? (a, b) : (b, a);
            Assert.Equal(winnerSide.LocalEndPoint, sock.RemoteEndPoint);
            // The other attempt either never completed its handshake or was closed: whatever reached its
            // listener reads end of stream.
            if (loserSide.Poll(0, SelectMode.SelectRead))
            {
                using var accepted = loserSide.Accept();
                accepted.ReceiveTimeout = (int)(NetTest.Bound * 1000);
                Assert.Equal(0, accepted.Receive(new byte[1]));
            }
        });
    }

    [Fact]
    public void HappyEyeballs_CallerCancelled_EveryAttemptEnds()
    {
        var (full1, filler1) = FullListener();
        var (full2, filler2) = FullListener();
        using var _1 = full1; using var _2 = filler1; using var _3 = full2; using var _4 = filler2;
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var connect = Aio.CreateTask(() => ConnectAttempts.Connect(loop, [(IPEndPoint)full1.LocalEndPoint!, (IPEndPoint)full2.LocalEndPoint!],
                null, TimeSpan.FromMilliseconds(10), new Exception?[2]));
            await Aio.Sleep(0.1);   // both attempts pending
            // This one, the connect and its two attempts; on a loaded machine the kernel may settle the first
            // attempt on its own first (its successor then starts), which leaves one attempt to cancel.
            Assert.InRange(Aio.AllTasks().Count, 3, 4);
            connect.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await connect);
            AssertOnlyCurrentTask();
        });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryAttemptFails_ErrorsRecordedInAddressOrder(bool happyEyeballs)
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var errors = new Exception?[2];
            var sock = await ConnectAttempts.Connect(loop, [V4(NetTest.ClosedPort()), new IPEndPoint(IPAddress.IPv6Loopback, NetTest.ClosedPort())],
                null, happyEyeballs ? TimeSpan.FromSeconds(20) : null, errors);
            Assert.Null(sock);
            Assert.All(errors, e => Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(e).SocketErrorCode));
            var group = Assert.Throws<ExceptionGroup>(() => ConnectAttempts.ThrowFailure(errors, allErrors: true, "h", 1));
            Assert.Equal(errors, group.Exceptions);
            Assert.Same(errors[0], Assert.Throws<SocketException>(() => ConnectAttempts.ThrowFailure(errors, allErrors: false, "h", 1)));
        });
    }

    [Fact]
    public void CreateConnection_AllErrors_ThrowsAGroupEvenOfOne()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var group = await Assert.ThrowsAsync<ExceptionGroup>(() =>
                loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", NetTest.ClosedPort(), allErrors: true));
            Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(Assert.Single(group.Exceptions)).SocketErrorCode);
        });
    }

    [Fact]
    public void OpenConnection_HappyEyeballs_Connects()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                w.Write(await r.ReadExactly(2));
                await w.Drain();
                w.Close();
            }, "127.0.0.1", 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            var (reader, writer) = await Aio.OpenConnection("127.0.0.1", port, happyEyeballsDelay: TimeSpan.FromMilliseconds(250), interleave: 2);
            writer.Write("hi"u8);
            Assert.Equal("hi"u8.ToArray(), await reader.ReadToEnd());
            writer.Close();
        });
    }

    [Fact]
    public void CreateConnection_NegativeDelayOrInterleave_Throws()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
                loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", 1, happyEyeballsDelay: TimeSpan.FromSeconds(-1)));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
                loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", 1, interleave: -1));
        });
    }

    [Fact]
    public void OpenConnection_LocalEndPoint_ServerSeesThatPort()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var peer = loop.CreateFuture<object?>();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                peer.SetResult(w.GetExtraInfo("peername"));
                w.Close();
                await w.WaitClosed();
            }, "127.0.0.1", 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            var local = V4(NetTest.ClosedPort());
            var (_, writer) = await Aio.OpenConnection("127.0.0.1", port, localEndPoint: local);
            Assert.Equal(local, await peer);
            Assert.Equal(local, writer.GetExtraInfo("sockname"));
            writer.Close();
        });
    }

    [Fact]
    public void CreateConnection_LocalEndPointDnsName_ResolvedAndBound()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port, localPort = NetTest.ClosedPort();
            var (t, _) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", port,
                localEndPoint: new DnsEndPoint("localhost", localPort));
            Assert.Equal(V4(localPort), t.GetExtraInfo("sockname"));
            t.Close();
        });
    }

    [Fact]
    public void CreateConnection_LocalEndPointNotAnIPOrDnsEndPoint_ThrowsArgumentExceptionBeforeTheLookup()
    {
        Run(async () =>
        {
            // A host name (not a literal address) makes the lookup asynchronous: a check after it would leave
            // the call pending here.
            var call = Aio.GetRunningLoop().CreateConnection(() => new RecordingProtocol(),
                "localhost", 1, localEndPoint: new UnixDomainSocketEndPoint("/tmp/nowhere.sock"));
            Assert.True(call.IsFaulted, "refused before the host lookup, not after it");
            var e = await Assert.ThrowsAsync<ArgumentException>(() => call);
            Assert.Equal("localEndPoint", e.ParamName);
        });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LocalAddresses_OtherFamilyListedFirst_EachAttemptBindsItsOwnFamily(bool happyEyeballs)
    {
        using var good = NetTest.Listener();
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var errors = new Exception?[2];
            // Distinct ports: a socket bound to the port it connects to would connect to itself.
            var ports = NetTest.ClosedPorts(2);
            int localPort = ports[0];
            // The first attempt is refused, the second connects: both bind the IPv4 local address, not the IPv6 one.
            using var sock = await ConnectAttempts.Connect(loop, [V4(ports[1]), (IPEndPoint)good.LocalEndPoint!],
                [new IPEndPoint(IPAddress.IPv6Loopback, 0), V4(localPort)], happyEyeballs ? TimeSpan.FromSeconds(20) : null, errors);
            Assert.NotNull(sock);
            Assert.Equal(V4(localPort), sock.LocalEndPoint);
            Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(errors[0]).SocketErrorCode);
        });
    }

    [Fact]
    public void LocalAddresses_NoneOfTheAttemptsFamily_AttemptFails()
    {
        using var good = NetTest.Listener();
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var errors = new Exception?[1];
            var sock = await ConnectAttempts.Connect(loop, [(IPEndPoint)good.LocalEndPoint!], [new IPEndPoint(IPAddress.IPv6Loopback, 0)], null, errors);
            Assert.Null(sock);
            Assert.Contains("no matching local address with family=InterNetwork found", Assert.IsType<SocketException>(errors[0]).Message);
        });
    }

    [Fact]
    public void LocalAddresses_FirstInUse_NextBoundElseTheBindErrorNamesTheAddress()
    {
        using var good = NetTest.Listener();
        using var busy = NetTest.Listener();
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var inUse = (IPEndPoint)busy.LocalEndPoint!;
            var errors = new Exception?[1];
            Assert.Null(await ConnectAttempts.Connect(loop, [(IPEndPoint)good.LocalEndPoint!], [inUse], null, errors));
            var e = Assert.IsType<SocketException>(errors[0]);
            Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
            Assert.Contains($"error while attempting to bind on address {inUse}", e.Message);
            var free = V4(NetTest.ClosedPort());
            using var sock = await ConnectAttempts.Connect(loop, [(IPEndPoint)good.LocalEndPoint!], [inUse, free], null, new Exception?[1]);
            Assert.Equal(free, sock!.LocalEndPoint);
        });
    }
}

public sealed class EpollConnectAttemptsTests : ConnectAttemptsTests
{
    protected override bool Portable => false;
}

public sealed class PortableConnectAttemptsTests : ConnectAttemptsTests
{
    protected override bool Portable => true;
}
