using System.Net;
using System.Net.Sockets;

namespace Asyncio.Tests.Net;

/// <summary>asyncio's Server: serving, closing, waiting, clients, accept back-off; on each reactor.</summary>
public abstract class ServerTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    void RunWithUnixPath(Func<string, Task> body) => NetTest.RunWithUnixPath(Portable, body);

    static int PortOf(Server s) => ((IPEndPoint)s.Sockets[0].LocalEndPoint!).Port;

    [Fact]
    public void CreateServer_PortZero_ListensOnAssignedPortAndServes()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            Assert.True(server.IsServing);
            Assert.NotEqual(0, PortOf(server));
            Assert.Same(loop, server.GetLoop());
        });
    }

    [Fact]
    public void CreateServer_SeveralHosts_OneSocketEach()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), ["127.0.0.1", "::1"], 0);
            Assert.Equal(2, server.Sockets.Count);
            var port6 = ((IPEndPoint)server.Sockets.Single(s => s.AddressFamily == AddressFamily.InterNetworkV6).LocalEndPoint!).Port;
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "::1", port6);
            t.Write("v6"u8);
            await p.WaitForBytes(2);
            t.Close();
        });
    }

    [Fact]
    public void CreateServer_EmptyHost_ListensOnEveryInterface()
    {
        // asyncio: "If host is an empty string or None, all interfaces are assumed". Checked on the addresses
        // the server would bind, without binding them: the tests listen on loopback only.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var every = await loop.ListenEndpoints(null, 8888);
            Assert.NotEmpty(every);
            Assert.All(every, ep => Assert.True(ep.Address.Equals(IPAddress.Any) || ep.Address.Equals(IPAddress.IPv6Any), $"{ep}"));
            Assert.Equal(every, await loop.ListenEndpoints([""], 8888));
            Assert.Equal(every, await loop.ListenEndpoints(["", ""], 8888));
            var both = await loop.ListenEndpoints(["127.0.0.1", ""], 8888);
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, 8888), both[0]);
            Assert.Equal(every.Count + 1, both.Count);
        });
    }

    [Fact]
    public void CreateServer_PortInUse_ThrowsSocketException()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0, reuseAddress: false);
            var e = await Assert.ThrowsAsync<SocketException>(() => loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", PortOf(server), reuseAddress: false));
            Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
        });
    }

    [Fact]
    public void CreateServer_ReusePort_TwoServersShareThePort()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var a = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0, reusePort: true);
            await using var b = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", PortOf(a), reusePort: true);
            Assert.Equal(PortOf(a), PortOf(b));
        });
    }

    [Fact]
    public void StartServing_CreatedWithoutServing_StartsAccepting()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0, startServing: false);
            Assert.False(server.IsServing);
            await server.StartServing();
            Assert.True(server.IsServing);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.Write("a"u8);
            await p.WaitForBytes(1);
            t.Close();
        });
    }

    [Fact]
    public void Close_WithActiveClient_ClientStaysOpenAndWaitClosedWaitsForIt()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.Write("1"u8);
            await p.WaitForBytes(1);
            server.Close();
            Assert.False(server.IsServing);
            Assert.Empty(server.Sockets);
            var waitClosed = loop.CreateTask(server.WaitClosed);
            await Aio.Sleep(0.02);
            Assert.False(waitClosed.IsDone);
            t.Write("2"u8); // the accepted connection still echoes
            await p.WaitForBytes(2);
            t.Close();
            await waitClosed;
        });
    }

    [Fact]
    public void WaitClosed_NotClosedYetOrClientsActive_WaitsForBothThenReturnsAtOnce()
    {
        // asyncio 3.12+'s test_wait_closed_basic: an open server is waited for even without clients, a closed
        // one until its last connection ends; after that WaitClosed returns at once.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var beforeClients = loop.CreateTask(server.WaitClosed);
            await Aio.Sleep(0.01);
            Assert.False(beforeClients.IsDone);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.Write("1"u8);
            await p.WaitForBytes(1);
            server.Close();
            var afterClose = loop.CreateTask(server.WaitClosed);
            await Aio.Sleep(0.01);
            Assert.False(beforeClients.IsDone);
            Assert.False(afterClose.IsDone);
            t.Close();
            await beforeClients;
            await afterClose;
            Assert.True(server.WaitClosed().IsCompletedSuccessfully);
        });
    }

    [Fact]
    public void AbortClients_ClientNotReadingWhileItsCloseFlushes_EndsItAndWaitClosedReturns()
    {
        // asyncio's test_abort_clients: CloseClients waits for buffered data to be sent, which a client that
        // does not read never takes; AbortClients drops it.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? s = null;
            var server = await loop.CreateServer(() => s = new RecordingProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.PauseReading();
            await s!.Made!;
            var chunk = new byte[64 * 1024];
            for (int i = 0; i < 1000 && s.Transport!.WriteBufferSize == 0; i++) s.Transport.Write(chunk);
            Assert.NotEqual(0, s.Transport!.WriteBufferSize);
            s.Transport.Write(new byte[32 << 20]);   // far more than the sockets' buffers can grow to take meanwhile
            server.Close();
            server.CloseClients();
            var closed = loop.CreateTask(server.WaitClosed);
            await Aio.Sleep(0.02);
            Assert.False(closed.IsDone);     // the close is still flushing
            server.AbortClients();
            await closed;
            await s.Lost!;
            Assert.Null(s.LostWith);
            Assert.Equal(0, s.Transport.WriteBufferSize);
            t.Abort();
            await p.Lost!;
        });
    }

    [Fact]
    public void CloseClients_ActiveClients_ClosesThem()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (_, p1) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            var (_, p2) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            await Aio.Sleep(0.01);
            server.Close();
            server.CloseClients();
            await p1.Lost!;
            await p2.Lost!;
            await server.WaitClosed();
        });
    }

    [Fact]
    public void CloseClientsAbortClients_FromAnotherThread_ThrowNamingThreadsafeAlternative()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            foreach (var call in (Action[])[server.CloseClients, server.AbortClients])
            {
                var e = await Task.Run(() => Record.Exception(call));
                Assert.IsType<InvalidOperationException>(e);
                Assert.Contains("CallSoonThreadsafe", e.Message);
            }
            t.Write("echo"u8); // the client is still served
            await p.WaitForBytes(4);
            server.Close();
            server.CloseClients();
            await server.WaitClosed();
            await p.Lost!;
        });
    }

    [Fact]
    public void ServeForever_Cancelled_ClosesServerAndPropagates()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0, startServing: false);
            var serve = loop.CreateTask(server.ServeForever);
            await Aio.Sleep(0.01);
            Assert.True(server.IsServing);
            await Assert.ThrowsAsync<InvalidOperationException>(server.ServeForever);
            serve.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await serve);
            Assert.False(server.IsServing);
            await server.WaitClosed();
            await Assert.ThrowsAsync<InvalidOperationException>(server.ServeForever);
        });
    }

    [Fact]
    public void ServeForever_ServerClosedElsewhere_EndsCancelled()
    {
        // asyncio: close() cancels the future serve_forever() waits on, so serve_forever raises CancelledError.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0, startServing: false);
            var serve = loop.CreateTask(server.ServeForever);
            await Aio.Sleep(0.01);
            Assert.True(server.IsServing);
            server.Close();
            await Assert.ThrowsAsync<CancelledError>(async () => await serve);
            Assert.True(serve.IsCancelled);
            Assert.False(server.IsServing);
            Assert.Empty(server.Sockets);
            await server.WaitClosed();
        });
    }

    [Fact]
    public void DisposeAsync_AwaitUsing_ClosesServer()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            Server server;
            await using (server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0))
            {
                Assert.True(server.IsServing);
            }
            Assert.False(server.IsServing);
            await server.WaitClosed();
        });
    }

    [Fact]
    public void Close_ListeningPort_RefusesNewConnections()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            int port = PortOf(server);
            server.Close();
            await server.WaitClosed();
            var e = await Assert.ThrowsAsync<SocketException>(() => loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", port));
            Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        });
    }

    [Fact]
    public void Accept_ConnectionAbortedBeforeAccept_SkippedAndNextAcceptedInSameTurn()
    {
        // asyncio (gh-127529): an accept() that fails with ECONNABORTED discards that connection and the accept
        // loop goes on with the next one, instead of returning until the next readiness.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var accepted = loop.CreateFuture();
            await using var server = await loop.CreateServer(() => { accepted.SetResult(); return new EchoProtocol(); }, "127.0.0.1", 0, startServing: false);
            int calls = 0;
            bool sameTurn = false;
            bool? continuedInSameTurn = null;
            server.AcceptHook = listener =>
            {
                if (++calls == 1)
                {
                    // Cleared by the next iteration's callbacks: still set only if the loop went straight on.
                    sameTurn = true;
                    loop.CallSoon(() => sameTurn = false);
                    throw new SocketException((int)SocketError.ConnectionAborted);
                }
                continuedInSameTurn ??= sameTurn;
                return listener.Accept();
            };
            await server.StartServing();
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            client.Connect(server.Sockets[0].LocalEndPoint!);
            await accepted;
            Assert.True(continuedInSameTurn);
            server.Close();
            server.AbortClients();
        });
    }

    [Fact]
    public void Accept_OutOfDescriptors_BacksOffInsteadOfSpinning()
    {
        int attempts = 0;
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0, startServing: false);
            server.AcceptRetryDelay = 0.2;
            server.AcceptHook = _ => { attempts++; throw new SocketException((int)SocketError.TooManyOpenSockets); };
            await server.StartServing();
            // A pending connection keeps the listener readable: without the back-off every iteration would accept.
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            client.Connect(server.Sockets[0].LocalEndPoint!);
            await Aio.Sleep(0.5);
            Assert.InRange(attempts, 1, 4);
            server.AcceptHook = null;
            await Aio.Sleep(0.3); // the next retry accepts for real
            server.Close();
            server.AbortClients();
            await server.WaitClosed();
        });
        Assert.NotEmpty(errors);
        Assert.All(errors, e => Assert.Contains("out of system resource", e.Message));
        Assert.InRange(errors.Count, 1, 4);
    }

    [Fact]
    public void Server_ThousandConcurrentConnections_AllEcho()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0, backlog: 1024);
            int port = PortOf(server);
            var clients = new List<AioTask<bool>>();
            for (int i = 0; i < 1000; i++)
            {
                int k = i;
                clients.Add(loop.CreateTask(async () =>
                {
                    var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", port);
                    var msg = System.Text.Encoding.ASCII.GetBytes($"client {k}");
                    t.Write(msg);
                    await p.WaitForBytes(msg.Length);
                    t.Close();
                    await p.Lost!;
                    return p.Text == $"client {k}";
                }));
            }
            foreach (var c in clients) Assert.True(await c);
        });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ClientsClosedBeforeConnectionMadeRuns_ProtocolGetsMadeThenLostOnce(bool abort)
    {
        Run(() => ClosedBeforeConnectionMade(abort,
            factory => Aio.GetRunningLoop().CreateServer(factory, "127.0.0.1", 0),
            server => Aio.GetRunningLoop().CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server))));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UnixClientsClosedBeforeConnectionMadeRuns_ProtocolGetsMadeThenLostOnce(bool abort)
    {
        RunWithUnixPath(path => ClosedBeforeConnectionMade(abort,
            factory => Aio.GetRunningLoop().CreateUnixServer(factory, path),
            _ => Aio.GetRunningLoop().CreateUnixConnection(() => new RecordingProtocol(), path)));
    }

    /// <summary>
    /// asyncio queues connection_made when it makes the transport, so a close in the accepting iteration still
    /// comes after it: the protocol gets ConnectionMade, then ConnectionLost once (it used to get neither).
    /// </summary>
    static async Task ClosedBeforeConnectionMade(bool abort, Func<Func<BaseProtocol>, Task<Server>> listen,
        Func<Server, Task<(ITransport, RecordingProtocol)>> connect)
    {
        var loop = Aio.GetRunningLoop();
        var made = new List<RecordingProtocol>();
        Server? server = null;
        server = await listen(() =>
        {
            var p = new RecordingProtocol();
            made.Add(p);
            loop.CallSoon(abort ? server!.AbortClients : server!.CloseClients); // runs before the queued ConnectionMade
            return p;
        });
        var (_, client) = await connect(server);
        await client.Lost!;
        server.Close();
        await server.WaitClosed(); // the connection has ended: its ConnectionLost, if any, has run
        var s = Assert.Single(made);
        Assert.Equal(["made", "lost"], s.Events);
        Assert.Null(s.LostWith);
    }

    [Fact]
    public void ClientClosedInTheAcceptingIterationUnderShuffledSchedules_ProtocolGetsMadeThenLostOnce()
    {
        // Two connections wait in the accept queue; making the second's protocol closes the first's transport in
        // the iteration that accepted it, so its ConnectionMade and ConnectionLost are queued in one iteration,
        // which a schedule seed may run in either order: ConnectionMade must still come first.
        for (int seed = 0; seed < 16; seed++)
        {
            var made = new List<RecordingProtocol>();
            AioTest.Run(() => Aio.Timeout(NetTest.Bound, async () =>
            {
                var loop = Aio.GetRunningLoop();
                var listener = NetTest.Listener();
                using var c1 = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                using var c2 = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                c1.Connect(listener.LocalEndPoint!);
                c2.Connect(listener.LocalEndPoint!);
                Server? server = null;
                server = await loop.CreateServer(() =>
                {
                    var p = new RecordingProtocol();
                    made.Add(p);
                    if (made.Count == 2) server!.CloseClients();
                    return p;
                }, listener);
                while (made.Count < 2) await Aio.Sleep(0.001);
                server.Close();
                server.CloseClients();
                await server.WaitClosed();
            }), new LoopOptions { PortableReactor = Portable, ScheduleSeed = seed });
            Assert.All(made, p => Assert.Equal(["made", "lost"], p.Events));
        }
    }

    [Fact]
    public void UnixServer_ConnectionAndStaleSocketFile_Works()
    {
        RunWithUnixPath(async path =>
        {
            var loop = Aio.GetRunningLoop();
            var first = await loop.CreateUnixServer(() => new EchoProtocol(), path);
            first.Close();
            await first.WaitClosed();
            // The socket file is left behind and stale: the next server replaces it.
            await using var server = await loop.CreateUnixServer(() => new EchoProtocol(), path);
            var (t, p) = await loop.CreateUnixConnection(() => new RecordingProtocol(), path);
            t.Write("unix"u8);
            await p.WaitForBytes(4);
            Assert.Equal("unix", p.Text);
            t.Close();
        });
    }

    [Fact]
    public void CreateUnixServer_LiveServerAtPath_ThrowsAddressInUseAndTheFirstKeepsServing()
    {
        RunWithUnixPath(async path =>
        {
            var loop = Aio.GetRunningLoop();
            await using var first = await loop.CreateUnixServer(() => new EchoProtocol(), path);
            var e = await Assert.ThrowsAsync<SocketException>(() => loop.CreateUnixServer(() => new EchoProtocol(), path));
            Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
            var (t, p) = await loop.CreateUnixConnection(() => new RecordingProtocol(), path);
            t.Write("still"u8);
            await p.WaitForBytes(5);
            Assert.Equal("still", p.Text);
            t.Close();
            await p.Lost!;
        });
    }

    [Fact]
    public void CreateUnixServer_LiveServerAtPath_LiveServerSeesNoProbeConnection()
    {
        // Linux: /proc/net/unix shows the path bound, so the check for a stale file does not connect to the
        // live server (it used to, and the server accepted that short connection).
        if (!OperatingSystem.IsLinux()) return;
        RunWithUnixPath(async path =>
        {
            var loop = Aio.GetRunningLoop();
            var made = new List<RecordingProtocol>();
            await using var first = await loop.CreateUnixServer(() => { var s = new RecordingProtocol(); made.Add(s); return s; }, path);
            var e = await Assert.ThrowsAsync<SocketException>(() => loop.CreateUnixServer(() => new EchoProtocol(), path));
            Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
            var (t, p) = await loop.CreateUnixConnection(() => new RecordingProtocol(), path);
            t.Write("real"u8);
            // A probe connection would have been queued for accepting before this one.
            while (!made.Any(s => s.Text == "real")) await Aio.Sleep(0.001);
            t.Close();
            await p.Lost!;
            Assert.Single(made);
        });
    }

    [Fact]
    public void UnixFileProbe_ProcNetUnixTable_FindsBoundPathsOnly()
    {
        var table = System.Text.Encoding.UTF8.GetBytes(
            "Num       RefCount Protocol Flags    Type St Inode Path\n" +
            "0000000000000000: 00000002 00000000 00010000 0001 01 5369854 /tmp/live.sock\n" +
            "0000000000000000: 00000003 00000000 00000000 0001 03   660\n" +
            "0000000000000000: 00000002 00000000 00010000 0001 01    12 /tmp/with space é.sock\n" +
            "0000000000000000: 00000002 00000000 00010000 0001 01 5369855 @abstract\n");
        Assert.True(UnixFileProbe.IsListed(table, "/tmp/live.sock"));
        Assert.True(UnixFileProbe.IsListed(table, "/tmp/with space é.sock"));
        Assert.False(UnixFileProbe.IsListed(table, "/tmp/live"));
        Assert.False(UnixFileProbe.IsListed(table, "/tmp/other.sock"));
        Assert.False(UnixFileProbe.IsListed(table, "660"));
        Assert.False(UnixFileProbe.IsListed(table, "Path"));
        Assert.False(UnixFileProbe.IsListed(table, ""));
    }

    [Fact]
    public void CreateUnixServer_RegularFileAtPath_ThrowsAddressInUseAndKeepsTheFile()
    {
        RunWithUnixPath(async path =>
        {
            var loop = Aio.GetRunningLoop();
            File.WriteAllText(path, "not a socket");
            // Connecting to a file that is not a socket is refused, as it is for a stale socket file;
            // only the latter may be replaced (asyncio checks S_ISSOCK).
            var e = await Assert.ThrowsAsync<SocketException>(() => loop.CreateUnixServer(() => new EchoProtocol(), path));
            Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
            Assert.Equal("not a socket", File.ReadAllText(path));
        });
    }
}

public sealed class EpollServerTests : ServerTests
{
    protected override bool Portable => false;
}

public sealed class PortableServerTests : ServerTests
{
    protected override bool Portable => true;
}
