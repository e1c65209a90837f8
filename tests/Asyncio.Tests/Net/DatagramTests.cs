using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Asyncio.Tests.Net;

/// <summary>Datagram endpoints (asyncio's create_datagram_endpoint), on each reactor.</summary>
public abstract class DatagramTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    void RunWithUnixPath(Func<string, Task> body) => NetTest.RunWithUnixPath(Portable, body);

    sealed class Recorder : DatagramProtocol
    {
        public IDatagramTransport? Transport;
        public readonly List<(string Text, EndPoint From)> Got = new();
        public readonly List<Exception> Errors = new();
        public bool Echo;
        public Future Lost = Aio.GetRunningLoop().CreateFuture();
        public override void ConnectionMade(IBaseTransport transport) => Transport = (IDatagramTransport)transport;
        public override void DatagramReceived(ReadOnlySpan<byte> data, EndPoint remote)
        {
            Got.Add((Encoding.ASCII.GetString(data), remote));
            if (Echo) Transport!.SendTo(data, remote);
        }
        public override void ErrorReceived(Exception exception) => Errors.Add(exception);
        public override void ConnectionLost(Exception? exception) => Lost.SetResult();

        /// <summary>Waits (boundedly) until <paramref name="count"/> datagrams have arrived.</summary>
        public async Task WaitForDatagrams(int count)
        {
            for (int i = 0; i < 5000 && Got.Count < count; i++) await Aio.Sleep(0.001);
        }
    }

    [Fact]
    public void CreateDatagramEndpoint_EchoServerAndConnectedClient_ExchangeDatagrams()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder { Echo = true }, localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var serverEp = (IPEndPoint)st.GetExtraInfo("sockname")!;
            var (ct, client) = await loop.CreateDatagramEndpoint(() => new Recorder(), remoteEndPoint: serverEp);
            Assert.Equal(serverEp, ct.GetExtraInfo("peername"));
            ct.SendTo("ping"u8);
            ct.SendTo("pong"u8);
            while (client.Got.Count < 2) await Aio.Sleep(0.001);
            Assert.Equal(["ping", "pong"], client.Got.Select(g => g.Text));
            Assert.Equal(ct.GetExtraInfo("sockname"), server.Got[0].From);
            Assert.Throws<ArgumentException>(() => ct.SendTo("x"u8, new IPEndPoint(IPAddress.Loopback, 1)));
            ct.Close();
            st.Close();
            await client.Lost;
            await server.Lost;
            Assert.Throws<InvalidOperationException>(() => ct.SendTo("late"u8));
        });
    }

    [Fact]
    public void SendToCloseAbort_FromAnotherThread_ThrowNamingThreadsafeAlternative()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var serverEp = (IPEndPoint)st.GetExtraInfo("sockname")!;
            var (ct, client) = await loop.CreateDatagramEndpoint(() => new Recorder(), remoteEndPoint: serverEp);
            foreach (var call in (Action[])[() => ct.SendTo("x"u8), ct.Close, ct.Abort])
            {
                var e = await Task.Run(() => Record.Exception(call));
                Assert.IsType<InvalidOperationException>(e);
                Assert.Contains("CallSoonThreadsafe", e.Message);
            }
            Assert.False(ct.IsClosing);
            ct.SendTo("ok"u8);
            while (server.Got.Count < 1) await Aio.Sleep(0.001);
            Assert.Equal(["ok"], server.Got.Select(g => g.Text)); // the refused SendTo sent nothing
            ct.Close();
            st.Close();
            await client.Lost;
            await server.Lost;
        });
    }

    [Fact]
    public void ConnectedEndpoint_PeerPortClosed_ErrorReceivedAndStaysOpen()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (ct, client) = await loop.CreateDatagramEndpoint(() => new Recorder(), remoteEndPoint: new IPEndPoint(IPAddress.Loopback, NetTest.ClosedPort()));
            // Linux rate-limits ICMP port-unreachable replies (about one a second once a small burst is
            // spent, shared by every test running at once): keep sending for up to 5 s.
            for (int i = 0; i < 1000 && client.Errors.Count == 0; i++)
            {
                ct.SendTo("anyone?"u8);
                await Aio.Sleep(0.005);
            }
            var e = Assert.IsType<SocketException>(client.Errors[0]);
            Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
            Assert.False(ct.IsClosing);
            ct.Abort();
            await client.Lost;
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_CancelledBeforeConnectionMade_CancelsQuietly()
    {
        // asyncio completes the endpoint's waiter only if it was not cancelled (_set_result_unless_cancelled).
        AioTask<(IDatagramTransport, Recorder)>? creating = null;
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            creating = loop.CreateTask(() => loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0)));
            await Aio.Sleep(0); // the endpoint is made; its ConnectionMade is queued for the next iteration
            creating.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await creating);
            for (int i = 0; i < 3; i++) await Aio.Sleep(0);
        });
        Assert.True(creating!.IsCancelled);
        Assert.Empty(errors);
    }

    /// <summary>Records the write buffer's size at each pause and resume.</summary>
    sealed class FlowRecorder : DatagramProtocol
    {
        public IDatagramTransport? Transport;
        public readonly List<(bool Paused, int Size)> Calls = new();
        public override void ConnectionMade(IBaseTransport transport) => Transport = (IDatagramTransport)transport;
        public override void PauseWriting() => Calls.Add((true, Transport!.WriteBufferSize));
        public override void ResumeWriting() => Calls.Add((false, Transport!.WriteBufferSize));
    }

    /// <summary>A Unix domain datagram socket bound to a fresh abstract name (nothing on disk).</summary>
    static (Socket Socket, UnixDomainSocketEndPoint Name) UnixDatagramReceiver()
    {
        var name = new UnixDomainSocketEndPoint("\0asyncio-test-" + Guid.NewGuid().ToString("N"));
        var sock = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        sock.Bind(name);
        return (sock, name);
    }

    [Fact]
    public void QueuedDatagrams_CountTheirHeader_PauseAndResumeAtTheWaterMarks_NothingLost()
    {
        // A Unix datagram socket whose peer does not read refuses sends once the peer's queue is full (UDP on
        // loopback never does), so the transport queues: asyncio counts 8 bytes of header per queued datagram.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (receiver, name) = UnixDatagramReceiver();
            using var _ = receiver;
            var sender = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            sender.Connect(name);
            var (t, p) = await loop.CreateDatagramEndpoint(() => new FlowRecorder(), sender);
            Assert.Equal(name, t.GetExtraInfo("peername"));

            var payload = new byte[100];
            int sent = 0;
            void Send() { BitConverter.TryWriteBytes(payload, sent++); t.SendTo(payload); }
            while (t.WriteBufferSize == 0 && sent < 100_000) Send();
            Assert.Equal(100 + 8, t.WriteBufferSize);           // without the header: 100
            for (int i = 0; i < 9; i++) Send();
            Assert.Equal(10 * (100 + 8), t.WriteBufferSize);
            while (p.Calls.Count == 0 && sent < 200_000) Send();
            var (paused, atPause) = Assert.Single(p.Calls);
            Assert.True(paused);
            Assert.InRange(atPause, 64 * 1024 + 1, 64 * 1024 + 108); // paused by the datagram that crossed 64 KiB

            // The peer reads everything: the queue drains, writing resumes below 16 KiB, every datagram arrives in order.
            receiver.Blocking = false;
            var got = new byte[200];
            int received = 0;
            for (int spins = 0; received < sent && spins < 10_000; spins++)
            {
                while (receiver.Available > 0)
                {
                    int n = receiver.Receive(got);
                    Assert.Equal(100, n);
                    Assert.Equal(received++, BitConverter.ToInt32(got));
                }
                await Aio.Sleep(0.001);
            }
            Assert.Equal(sent, received);
            Assert.Equal(0, t.WriteBufferSize);
            Assert.Equal(2, p.Calls.Count);
            Assert.False(p.Calls[1].Paused);
            Assert.InRange(p.Calls[1].Size, 0, 16 * 1024);
            t.Close();
        });
    }

    [Fact]
    public void CloseAndAbort_DatagramsQueued_CloseSendsThemFirstAbortDropsThem()
    {
        if (!Socket.OSSupportsUnixDomainSockets) return;
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            foreach (bool abort in new[] { false, true })
            {
                var (receiver, name) = UnixDatagramReceiver();
                using var _ = receiver;
                var sender = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                sender.Connect(name);
                var (t, p) = await loop.CreateDatagramEndpoint(() => new Recorder(), sender);
                int sent = 0;
                while (t.WriteBufferSize == 0 && sent < 100_000) { t.SendTo(BitConverter.GetBytes(sent)); sent++; }
                for (int i = 0; i < 10; i++) { t.SendTo(BitConverter.GetBytes(sent)); sent++; }
                if (abort) t.Abort(); else t.Close();
                Assert.True(t.IsClosing);
                Assert.Throws<InvalidOperationException>(() => t.SendTo("late"u8));
                receiver.Blocking = false;
                var got = new byte[16];
                int received = 0;
                for (int spins = 0; !p.Lost.IsDone && spins < 10_000; spins++)
                {
                    while (receiver.Available > 0) { receiver.Receive(got); received++; }
                    await Aio.Sleep(0.001);
                }
                await p.Lost;
                while (receiver.Available > 0) { receiver.Receive(got); received++; }
                if (abort) Assert.True(received < sent, $"abort sent all {sent} datagrams");
                else Assert.Equal(sent, received);  // ConnectionLost only once the queue is empty
            }
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_GivenUnconnectedSocket_ReceivesAndSendsToAddresses()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var sock = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            sock.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder { Echo = true }, sock);
            Assert.Null(st.GetExtraInfo("peername"));
            Assert.Null(st.GetExtraInfo("peername", "default"));   // asyncio: the key is there, None, whatever the default
            Assert.Same(sock, st.GetExtraInfo("socket"));
            Assert.False(sock.Blocking);
            var (ct, client) = await loop.CreateDatagramEndpoint(() => new Recorder(), remoteEndPoint: (IPEndPoint)sock.LocalEndPoint!);
            ct.SendTo("hello"u8);
            for (int i = 0; i < 5000 && client.Got.Count == 0; i++) await Aio.Sleep(0.001);
            Assert.Equal("hello", Assert.Single(client.Got).Text);
            Assert.Throws<ArgumentNullException>(() => st.SendTo("no address"u8));
            ct.Close();
            st.Close();
            await server.Lost;
            await client.Lost;
        });
    }

    [Fact]
    public void SendTo_EmptyDatagram_PeerReceivesAnEmptyDatagram()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var (ct, _) = await loop.CreateDatagramEndpoint(() => new Recorder(), remoteEndPoint: (IPEndPoint)st.GetExtraInfo("sockname")!);
            ct.SendTo(ReadOnlySpan<byte>.Empty);
            ct.SendTo("after"u8);
            await server.WaitForDatagrams(2);
            Assert.Equal(["", "after"], server.Got.Select(g => g.Text));
            ct.Close();
            st.Close();
            await server.Lost;
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_LocalAndRemote_BoundThereAndConnectedThere()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var serverEp = (IPEndPoint)st.GetExtraInfo("sockname")!;
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var local = (IPEndPoint)probe.LocalEndPoint!;
            probe.Close();
            var (ct, _) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: local, remoteEndPoint: serverEp);
            Assert.Equal(local, ct.GetExtraInfo("sockname"));
            Assert.Equal(serverEp, ct.GetExtraInfo("peername"));
            ct.SendTo("x"u8);
            await server.WaitForDatagrams(1);
            Assert.Equal(local, Assert.Single(server.Got).From);
            ct.Close();
            st.Close();
            await server.Lost;
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_ReusePort_SecondEndpointBindsTheSamePort()
    {
        if (OperatingSystem.IsWindows()) return;
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (first, _) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0), reusePort: true);
            var ep = (IPEndPoint)first.GetExtraInfo("sockname")!;
            var (second, _) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: ep, reusePort: true);
            Assert.Equal(ep, second.GetExtraInfo("sockname"));
            var e = await Assert.ThrowsAsync<SocketException>(() => loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: ep));
            Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
            first.Close();
            second.Close();
        });
    }

    [Fact]
    public void SendTo_SendFails_ErrorReceivedAndEndpointStaysOpen()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var (ut, sender) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            // Broadcast without SO_BROADCAST is refused by the send itself (EACCES, or no route from loopback).
            ut.SendTo("everyone"u8, new IPEndPoint(IPAddress.Broadcast, 9));
            Assert.IsType<SocketException>(Assert.Single(sender.Errors));
            Assert.False(ut.IsClosing);
            Assert.Equal(0, ut.WriteBufferSize);
            ut.SendTo("still here"u8, (IPEndPoint)st.GetExtraInfo("sockname")!);
            await server.WaitForDatagrams(1);
            Assert.Equal("still here", Assert.Single(server.Got).Text);
            ut.Close();
            st.Close();
            await sender.Lost;
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_AllowBroadcast_EnablesBroadcastOnlyWhenAsked()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (plain, _) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var (broadcast, _) = await loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0), allowBroadcast: true);
            Assert.False(((Socket)plain.GetExtraInfo("socket")!).EnableBroadcast);
            Assert.True(((Socket)broadcast.GetExtraInfo("socket")!).EnableBroadcast);
            plain.Close();
            broadcast.Close();
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_UnixDatagramSockets_ExchangeDatagramsWithTheirPaths()
    {
        if (!Socket.OSSupportsUnixDomainSockets) return;
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            string serverPath = NetTest.UnixSocketPath(), clientPath = NetTest.UnixSocketPath();
            try
            {
                var ss = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                ss.Bind(new UnixDomainSocketEndPoint(serverPath));
                var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder { Echo = true }, ss);
                var cs = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                cs.Bind(new UnixDomainSocketEndPoint(clientPath));
                cs.Connect(new UnixDomainSocketEndPoint(serverPath));
                var (ct, client) = await loop.CreateDatagramEndpoint(() => new Recorder(), cs);
                ct.SendTo("unix"u8);
                await client.WaitForDatagrams(1);
                Assert.Equal("unix", Assert.Single(client.Got).Text);
                Assert.Equal(clientPath, Assert.Single(server.Got).From.ToString());
                ct.Close();
                st.Close();
                await client.Lost;
                await server.Lost;
            }
            finally
            {
                File.Delete(serverPath);
                File.Delete(clientPath);
            }
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_UnixDatagramFromUnboundSender_ReceivedWithAnUnnamedAddress()
    {
        RunWithUnixPath(async path =>
        {
            var loop = Aio.GetRunningLoop();
            var ss = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            ss.Bind(new UnixDomainSocketEndPoint(path));
            var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder(), ss);
            using var sender = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            sender.SendTo("anonymous"u8, new UnixDomainSocketEndPoint(path));
            await server.WaitForDatagrams(1);
            var (text, from) = Assert.Single(server.Got);
            Assert.Equal("anonymous", text);
            // No sender address (asyncio: None): an unnamed end point, not the abstract name "\0" ("@").
            Assert.IsType<UnixDomainSocketEndPoint>(from);
            Assert.Equal("", from.ToString());
            Assert.Empty(server.Errors);
            st.Close();
            await server.Lost;
        });
    }

    /// <summary>A protocol whose DatagramReceived (after calling <paramref name="onDatagram"/>) and ErrorReceived throw.</summary>
    sealed class ThrowingReceiver(Action onDatagram) : DatagramProtocol
    {
        public Exception? LostWith;
        public int ErrorsSeen;
        public readonly Future Lost = Aio.GetRunningLoop().CreateFuture();
        public override void DatagramReceived(ReadOnlySpan<byte> data, EndPoint remote)
        {
            onDatagram();
            throw new InvalidTimeZoneException("bad datagram");
        }
        public override void ErrorReceived(Exception exception)
        {
            ErrorsSeen++;
            throw new InvalidTimeZoneException("bad error handler");
        }
        public override void ConnectionLost(Exception? exception)
        {
            LostWith = exception;
            Lost.SetResult();
        }
    }

    [Fact]
    [Trait("asyncio", "_SelectorDatagramTransport._read_ready: an exception from datagram_received goes to the loop's handler; the endpoint stays open")]
    public void DatagramReceived_Throws_ReportedAndEndpointStaysOpen()
    {
        int received = 0;
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, p) = await loop.CreateDatagramEndpoint(() => new ThrowingReceiver(() => received++), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            using var tx = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            var to = (EndPoint)st.GetExtraInfo("sockname")!;
            tx.SendTo("one"u8, to);
            for (int i = 0; i < 5000 && received < 1; i++) await Aio.Sleep(0.001);
            Assert.False(st.IsClosing);
            tx.SendTo("two"u8, to);
            for (int i = 0; i < 5000 && received < 2; i++) await Aio.Sleep(0.001);
            Assert.Equal(2, received);
            Assert.False(p.Lost.IsDone);
            st.Close();
            await p.Lost;
            Assert.Null(p.LostWith);
        });
        Assert.Equal(2, errors.Count);
        Assert.All(errors, e => Assert.IsType<InvalidTimeZoneException>(e.Exception));
    }

    [Fact]
    [Trait("asyncio", "_SelectorDatagramTransport: an exception from error_received leaves sendto() for its caller, or _read_ready for the loop's handler; the endpoint stays open")]
    public void ErrorReceived_Throws_ReachesTheCallerOrTheHandlerAndEndpointStaysOpen()
    {
        int thrownToTheCaller = 0, errorsSeen = 0;
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (ct, p) = await loop.CreateDatagramEndpoint(() => new ThrowingReceiver(() => { }), remoteEndPoint: new IPEndPoint(IPAddress.Loopback, NetTest.ClosedPort()));
            // As above: ICMP replies are rate-limited, so keep sending for up to 5 s. The refusal is met by a
            // send (then SendTo throws what ErrorReceived threw) or by the reader's callback (then the handler has it).
            for (int i = 0; i < 1000 && p.ErrorsSeen == 0; i++)
            {
                try { ct.SendTo("anyone?"u8); }
                catch (InvalidTimeZoneException) { thrownToTheCaller++; }
                await Aio.Sleep(0.005);
            }
            Assert.True(p.ErrorsSeen > 0);
            Assert.False(ct.IsClosing);
            Assert.False(p.Lost.IsDone);
            errorsSeen = p.ErrorsSeen;
            ct.Abort();
            await p.Lost;
            Assert.Null(p.LostWith);
        });
        Assert.All(errors, e => Assert.IsType<InvalidTimeZoneException>(e.Exception));
        Assert.Equal(errorsSeen, thrownToTheCaller + errors.Count);   // each went to the caller of SendTo or to the handler
    }

    [Fact]
    public void CreateDatagramEndpoint_StreamSocket_ThrowsArgumentExceptionAndLeavesItOpen()
    {
        Run(async () =>
        {
            using var sock = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var e = await Assert.ThrowsAsync<ArgumentException>(() => Aio.GetRunningLoop().CreateDatagramEndpoint(() => new Recorder(), sock));
            Assert.Equal("socket", e.ParamName);
            sock.Bind(new IPEndPoint(IPAddress.Loopback, 0)); // still usable: not taken over, not closed
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_ProtocolFactoryThrows_ClosesTheSocket()
    {
        Run(async () =>
        {
            var sock = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            await Assert.ThrowsAsync<InvalidTimeZoneException>(() =>
                Aio.GetRunningLoop().CreateDatagramEndpoint<Recorder>(() => throw new InvalidTimeZoneException(), sock));
            Assert.Throws<ObjectDisposedException>(() => sock.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_NoEndPoints_ThrowsArgumentException()
    {
        Run(async () =>
        {
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.GetRunningLoop().CreateDatagramEndpoint(() => new Recorder()));
        });
    }
}

public sealed class EpollDatagramTests : DatagramTests
{
    protected override bool Portable => false;
}

public sealed class PortableDatagramTests : DatagramTests
{
    protected override bool Portable => true;
}
