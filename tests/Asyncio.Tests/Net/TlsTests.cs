using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Asyncio.Tests.Net;

/// <summary>TLS through SslStream: connections, validation by default, start_tls, time limits; on each reactor.</summary>
public abstract class TlsTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    /// <summary>
    /// Runs on virtual time, where I/O has a second of real time to happen before the clock jumps to the next
    /// timer (generous: a loaded machine's thread pool can be slow to report a completion); bounded by 600 s
    /// of virtual time. A test whose only timer is the one it measures reads that timer's delay off the clock,
    /// whatever the machine's load.
    /// </summary>
    void RunVirtual(Func<Task> body) => AioTest.Run(() => Aio.Timeout(600, body),
        new LoopOptions { VirtualTime = true, AutojumpThreshold = TimeSpan.FromSeconds(1), PortableReactor = Portable });

    static int PortOf(Server s) => ((IPEndPoint)s.Sockets[0].LocalEndPoint!).Port;
    static byte[] B(string s) => Encoding.ASCII.GetBytes(s);
    static string S(byte[] b) => Encoding.ASCII.GetString(b);

    static readonly Lazy<X509Certificate2> s_cert = new(() =>
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        req.CertificateExtensions.Add(san.Build());
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    });

    /// <summary>A self-signed certificate for "localhost", made once (the audit's TLS probes use it too).</summary>
    internal static X509Certificate2 Certificate => s_cert.Value;

    static SslServerAuthenticationOptions ServerOptions() => new() { ServerCertificate = s_cert.Value };

    /// <summary>Client options that trust exactly the test certificate (and still check the host name).</summary>
    static SslClientAuthenticationOptions TrustingClient() => new()
    {
        RemoteCertificateValidationCallback = (_, cert, _, errors) =>
            cert != null && cert.GetCertHashString() == s_cert.Value.GetCertHashString()
            && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None,
    };

    static async Task EchoLines(AsyncStreamReader r, AsyncStreamWriter w)
    {
        try
        {
            await foreach (var line in r) { w.Write(line); await w.Drain(); }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or AuthenticationException) { }
        w.Close();
    }

    [Fact]
    public void OpenConnection_TlsEchoServer_RoundTripsEncrypted()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0, ssl: ServerOptions());
            var (r, w) = await Aio.OpenConnection("localhost", PortOf(server), ssl: TrustingClient());
            var big = new string('z', 60_000) + "\n"; // under the 64 KiB line limit
            w.Write(B("hello tls\n"));
            w.Write(B(big));
            await w.Drain();
            Assert.Equal("hello tls\n", S(await r.ReadLine()));
            Assert.Equal(big.Length, (await r.ReadExactly(big.Length)).Length);
            var ssl = Assert.IsType<SslStream>(w.GetExtraInfo("ssl_object"));
            Assert.True(ssl.IsAuthenticated);
            Assert.NotNull(w.GetExtraInfo("peercert"));
            Assert.NotNull(w.GetExtraInfo("socket"));
            Assert.False(w.CanWriteEof);
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact]
    public void OpenConnection_UntrustedCertificateDefaultOptions_FailsValidation()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0, ssl: ServerOptions());
            await Assert.ThrowsAsync<AuthenticationException>(() =>
                Aio.OpenConnection("localhost", PortOf(server), ssl: new SslClientAuthenticationOptions()));
        });
    }

    [Fact]
    public void OpenConnection_WrongHostName_FailsValidation()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0, ssl: ServerOptions());
            // Trusts the certificate but it names "localhost", not "127.0.0.1": host-name validation fails.
            await Assert.ThrowsAsync<AuthenticationException>(() =>
                Aio.OpenConnection("127.0.0.1", PortOf(server), ssl: TrustingClient()));
        });
    }

    [Fact]
    public void OpenConnection_ServerNeverAnswersHandshake_TimesOut()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var hold = loop.CreateFuture();
            await using var server = await Aio.StartServer(async (r, w) => { await hold; w.Close(); }, "127.0.0.1", 0);
            var e = await Assert.ThrowsAsync<TimeoutException>(() =>
                Aio.OpenConnection("localhost", PortOf(server), ssl: TrustingClient(), sslHandshakeTimeout: TimeSpan.FromMilliseconds(200)));
            Assert.Contains("handshake", e.Message);
            hold.SetResult();
        });
    }

    [Fact]
    public void StartTls_PlainConnectionUpgraded_BothSidesTalkTls()
    {
        Run(async () =>
        {
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                Assert.Equal("STARTTLS\n", S(await r.ReadLine()));
                w.Write(B("GO\n"));
                await w.StartTls(server: ServerOptions());
                Assert.NotNull(w.GetExtraInfo("ssl_object"));
                var line = await r.ReadLine();
                w.Write(B("secret:" + S(line)));
                await w.Drain();
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            Assert.Null(w.GetExtraInfo("ssl_object"));
            w.Write(B("STARTTLS\n"));
            Assert.Equal("GO\n", S(await r.ReadLine()));
            var options = TrustingClient();
            options.TargetHost = "localhost";
            await w.StartTls(client: options);
            Assert.IsType<SslStream>(w.GetExtraInfo("ssl_object"));
            w.Write(B("hi\n"));
            Assert.Equal("secret:hi\n", S(await r.ReadToEnd()));
            w.Close();
        });
    }

    [Fact]
    public void CreateConnection_TlsProtocol_CallbacksInOrder()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), ["127.0.0.1"], 0, ssl: ServerOptions());
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), ssl: TrustingClient());
            Assert.Throws<NotSupportedException>(t.WriteEof);
            t.Write(B("abc"));
            await p.WaitForBytes(3);
            t.Close();
            Assert.Throws<InvalidOperationException>(() => t.Write(B("x")));
            await p.Lost!;
            Assert.Equal(["made", "data", "lost"], p.Events);
            Assert.Null(p.LostWith);
        });
    }

    [Fact]
    public void CloseClients_PeerNeverReads_ShutdownTimeoutAbortsWithTimeoutError()
    {
        Run(async () =>
        {
            // asyncio (sslproto _start_shutdown/_check_shutdown_timeout): the shutdown timer starts when the
            // close begins, flushing included; on expiry the connection is aborted and connection_lost gets a
            // TimeoutError. Here the flush can never end: the client stops reading, so its socket's buffers
            // fill and the server's TLS writes wait forever.
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? sp = null;
            var server = await loop.CreateServer(() => sp = new RecordingProtocol(), ["127.0.0.1"], 0,
                ssl: ServerOptions(), sslShutdownTimeout: TimeSpan.FromMilliseconds(300));
            var (ct, cp) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), ssl: TrustingClient());
            ct.PauseReading();
            while (sp?.Made is not { IsDone: true }) await Aio.Sleep(0.001);
            sp.Transport!.Write(new byte[32 << 20]);
            await Aio.Sleep(0.05);
            server.Close();
            server.CloseClients();
            Assert.True(sp.Transport.IsClosing);
            // Bounded, so that a close that never ends fails the test instead of hanging it.
            await Aio.WaitFor(server.WaitClosed, TimeSpan.FromSeconds(10));
            Assert.True(sp.Lost!.IsDone);
            Assert.IsType<TimeoutException>(sp.LostWith);
            ct.Abort();
            await cp.Lost!;
        });
    }

    [Fact]
    public void PauseReading_ReadAlreadyPending_DataHeldUntilResumeThenInOrder()
    {
        Run(async () =>
        {
            // asyncio: no data_received while reading is paused. The read pump is already waiting in a read
            // when the pause comes; what that read returns is held and delivered on resume, before newer data.
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), ["127.0.0.1"], 0, ssl: ServerOptions());
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), ssl: TrustingClient());
            await Aio.Sleep(0.02); // the read pump now waits in SslStream.ReadAsync
            t.PauseReading();
            Assert.False(t.IsReading);
            t.Write(B("ping"));
            await Aio.Sleep(0.2); // the echo arrives and completes the pending read
            Assert.Equal(0, p.Received.Length);
            t.Write(B("pong"));
            await Aio.Sleep(0.05);
            Assert.Equal(0, p.Received.Length);
            t.ResumeReading();
            Assert.True(t.IsReading);
            await p.WaitForBytes(8);
            Assert.Equal("pingpong", p.Text);
            t.Close();
            await p.Lost!;
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void OpenConnection_NoHandshakeTimeoutGiven_TimesOutAfter60Seconds()
    {
        RunVirtual(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var hold = loop.CreateFuture();
            var server = await Aio.StartServer(async (r, w) => { await hold; w.Close(); }, "127.0.0.1", 0);
            double start = loop.Time();
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.OpenConnection("localhost", PortOf(server), ssl: TrustingClient()));
            double took = loop.Time() - start;
            Assert.InRange(took, 60, 61); // asyncio's ssl_handshake_timeout default (constants.SSL_HANDSHAKE_TIMEOUT)
            hold.SetResult();
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void Close_NoShutdownTimeoutGiven_PeerNeverReads_AbortedAfter30Seconds()
    {
        RunVirtual(async () =>
        {
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? sp = null;
            var server = await loop.CreateServer(() => sp = new RecordingProtocol(), ["127.0.0.1"], 0, ssl: ServerOptions());
            var (ct, cp) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), ssl: TrustingClient());
            ct.PauseReading();
            while (sp?.Made is not { IsDone: true }) await Aio.Sleep(0);
            sp.Transport!.Write(new byte[32 << 20]);
            double start = loop.Time();
            sp.Transport.Close();
            await sp.Lost!;
            double took = loop.Time() - start;
            Assert.IsType<TimeoutException>(sp.LostWith);
            Assert.InRange(took, 30, 31); // asyncio's ssl_shutdown_timeout default (constants.SSL_SHUTDOWN_TIMEOUT)
            ct.Abort();
            await cp.Lost!;
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void WriteCloseAbort_FromAnotherThread_ThrowNamingThreadsafeAlternative()
    {
        Run(async () =>
        {
            // DESIGN: loop APIs called from another thread throw InvalidOperationException naming the bridges.
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), ["127.0.0.1"], 0, ssl: ServerOptions());
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), ssl: TrustingClient());
            foreach (var call in (Action[])[() => t.Write(B("x")), t.Close, t.Abort])
            {
                var e = await Task.Run(() => Record.Exception(call));
                Assert.IsType<InvalidOperationException>(e);
                Assert.Contains("CallSoonThreadsafe", e.Message);
            }
            Assert.False(t.IsClosing); // the refused calls changed nothing
            t.Write(B("still open"));
            await p.WaitForBytes(10);
            Assert.Equal("still open", p.Text);
            t.Close();
            await p.Lost!;
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void ReadPump_ConnectionAfterConnection_ReadBufferRentedFromPoolNotAllocated()
    {
        Run(async () =>
        {
            // Each connection has two read pumps here (client and server side). Allocating their 64 KiB
            // buffers would cost 128 KiB a connection on the loop thread; rented and returned on close they
            // cost nothing once the pool holds them, and the rest of a connection is about 30 KiB.
            var loop = Aio.GetRunningLoop();
            var server = await loop.CreateServer(() => new EchoProtocol(), ["127.0.0.1"], 0, ssl: ServerOptions());
            async Task OneConnection()
            {
                var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), ssl: TrustingClient());
                t.Write(B("x"));
                await p.WaitForBytes(1);
                t.Close();
                await p.Lost!;
                await Aio.Sleep(0.01); // the server side ends too
            }
            for (int i = 0; i < 5; i++) await OneConnection();
            long before = GC.GetAllocatedBytesForCurrentThread();
            const int n = 20;
            for (int i = 0; i < n; i++) await OneConnection();
            long perConnection = (GC.GetAllocatedBytesForCurrentThread() - before) / n;
            Assert.True(perConnection < 64 * 1024, $"{perConnection} bytes allocated a connection on the loop thread");
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void SslStreamOverStreamView_ClientSide_Works()
    {
        Run(async () =>
        {
            // The Stream view lets .NET's own SslStream run over a plain loop connection.
            await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0, ssl: ServerOptions());
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            await using var view = new AsyncConnectionStream(r, w);
            await using var ssl = new SslStream(view);
            var options = TrustingClient();
            options.TargetHost = "localhost";
            await ssl.AuthenticateAsClientAsync(options);
            await ssl.WriteAsync(B("via view\n"));
            var buf = new byte[64];
            int n = 0;
            while (n < 9) n += await ssl.ReadAsync(buf.AsMemory(n));
            Assert.Equal("via view\n", S(buf[..n]));
        });
    }

    /// <summary>Reads to the end of stream; an aborted peer's reset counts as the end.</summary>
    static async Task<byte[]> ReadToEndOrReset(AsyncStreamReader r)
    {
        try { return await r.ReadToEnd(); }
        catch (System.Net.Sockets.SocketException) { return []; }
    }

    /// <summary>A plain server that reads each connection to its end, then completes <paramref name="peerSawEnd"/>.</summary>
    static Task<Server> PlainServerSignallingEnd(Future peerSawEnd) => Aio.StartServer(async (r, w) =>
    {
        await ReadToEndOrReset(r);
        peerSawEnd.SetResult();
        w.Close();
    }, "127.0.0.1", 0);

    /// <summary>A TLS server on 127.0.0.1 whose protocols are recorded in <paramref name="made"/> as the connections are accepted.</summary>
    static Task<Server> RecordingTlsServer(List<RecordingProtocol> made, TimeSpan? handshakeTimeout = null) =>
        Aio.GetRunningLoop().CreateServer(() => { var p = new RecordingProtocol(); made.Add(p); return p; }, ["127.0.0.1"], 0,
            ssl: ServerOptions(), sslHandshakeTimeout: handshakeTimeout);

    /// <summary>
    /// A TLS server on 127.0.0.1 whose connections get <paramref name="serverProtocol"/>, and a connection to it
    /// as "localhost" (the test certificate trusted, unless <paramref name="options"/> say otherwise) with
    /// <paramref name="client"/> (by default a new <see cref="RecordingProtocol"/>).
    /// </summary>
    static async Task<(Server Server, ITransport Client, RecordingProtocol ClientProtocol)> TlsServerAndClient(
        Func<BaseProtocol> serverProtocol, RecordingProtocol? client = null, SslClientAuthenticationOptions? options = null)
    {
        var loop = Aio.GetRunningLoop();
        var server = await loop.CreateServer(serverProtocol, ["127.0.0.1"], 0, ssl: ServerOptions());
        var (t, p) = await loop.CreateConnection(() => client ?? new RecordingProtocol(), "localhost", PortOf(server), ssl: options ?? TrustingClient());
        return (server, t, p);
    }

    /// <summary>Writes <paramref name="greeting"/> and closes, all inside ConnectionMade.</summary>
    sealed class GreetAndCloseProtocol(byte[] greeting) : Protocol
    {
        public override void ConnectionMade(IBaseTransport transport)
        {
            var t = (ITransport)transport;
            t.Write(greeting);
            t.Close();
        }
    }

    [Fact]
    public void Close_InConnectionMadeAfterWrite_DataSentThenPeerGetsEofAndLost()
    {
        Run(async () =>
        {
            // asyncio (sslproto._on_handshake_complete): the transport is wrapped before connection_made runs,
            // so a write there is sent and a close there is the ordinary flush-then-shutdown close. The peer
            // reads the data, then the end of stream (eof_received, whose "keep open" a TLS transport
            // cannot honour), then connection_lost without error.
            var (server, _, p) = await TlsServerAndClient(() => new GreetAndCloseProtocol(B("bye")), new RecordingProtocol { KeepOpenOnEof = true });
            await p.Lost!;
            Assert.Equal("bye", p.Text);
            Assert.Equal(["made", "data", "eof", "lost"], p.Events);
            Assert.Null(p.LostWith);
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void Close_WhileMegabytesBuffered_FlushesAllBeforeCloseNotify()
    {
        Run(async () =>
        {
            // asyncio test_flush_before_shutdown: close() sends what is buffered first, then close_notify; the
            // peer reads every byte, then the end of stream.
            var payload = new byte[4 << 20];
            Random.Shared.NextBytes(payload);
            var (server, _, p) = await TlsServerAndClient(() => new GreetAndCloseProtocol(payload));
            await p.Lost!;
            Assert.Equal(payload, p.Received.ToArray());
            Assert.Equal(["made", "data", "eof", "lost"], p.Events);
            Assert.Null(p.LostWith);
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void ConnectAcceptedSocketAndCreateConnectionOnSocket_Tls_HandshakeAndEcho()
    {
        Run(async () =>
        {
            // asyncio test_ssl_connect_accepted_socket: TLS over sockets the caller connected, server side
            // through connect_accepted_socket, client side through create_connection(sock=...), whose host
            // name comes from the options.
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            var options = TrustingClient();
            options.TargetHost = "localhost";
            var serverSide = loop.CreateTask(() => loop.ConnectAcceptedSocket(() => new EchoProtocol(), b, ssl: ServerOptions()));
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), a, ssl: options);
            var (st, _) = await serverSide;
            Assert.IsType<SslStream>(st.GetExtraInfo("ssl_object"));
            t.Write(B("accepted"));
            await p.WaitForBytes(8);
            Assert.Equal("accepted", p.Text);
            t.Close();
            await p.Lost!;
            Assert.Null(p.LostWith);
        });
    }

    [Fact]
    public void CreateConnection_CancelledDuringHandshake_SocketClosedAndNothingReported()
    {
        RunVirtual(async () =>
        {
            // asyncio test_handshake_timeout (bpo-29970, bpo-23197): a connection whose creation is cancelled
            // in the handshake is closed, and the cancelled handshake logs nothing.
            var loop = Aio.GetRunningLoop();
            var peerSawEnd = loop.CreateFuture();
            var server = await PlainServerSignallingEnd(peerSawEnd);
            double start = loop.Time();
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => loop.CreateConnection(() => new RecordingProtocol(),
                "localhost", PortOf(server), ssl: TrustingClient(), sslHandshakeTimeout: TimeSpan.FromSeconds(100)), 5));
            await peerSawEnd;
            Assert.InRange(loop.Time() - start, 5, 6); // closed by the cancellation, not by the 100 s handshake limit
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void CreateConnection_PeerClosesDuringHandshake_FailsWithoutWaitingForTimeout()
    {
        RunVirtual(async () =>
        {
            // asyncio test_eof_received_waiter: the end of stream in the handshake fails the waiter at once
            // (ConnectionResetError there; SslStream's IOException or AuthenticationException here).
            var loop = Aio.GetRunningLoop();
            var server = await Aio.StartServer(async (r, w) => { await r.Read(1); w.Close(); }, "127.0.0.1", 0);
            double start = loop.Time();
            RecordingProtocol? p = null;
            var e = await Record.ExceptionAsync(() => loop.CreateConnection(() => p = new RecordingProtocol(), "localhost", PortOf(server), ssl: TrustingClient()));
            Assert.True(e is IOException or AuthenticationException, $"{e}");
            Assert.True(loop.Time() - start < 10, $"failed after {loop.Time() - start} s");
            Assert.Empty(p!.Events); // a failed handshake calls neither ConnectionMade nor ConnectionLost
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void Server_ClientSendsNonTlsBytes_ProtocolNeverCalledAndNothingReported()
    {
        Run(async () =>
        {
            // asyncio: a failed server-side handshake never reaches the protocol (no connection_made, so no
            // connection_lost), the connection is closed, and TLS errors are not reported to the exception handler.
            var made = new List<RecordingProtocol>();
            var server = await RecordingTlsServer(made);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            w.Write(B("GET / HTTP/1.0\r\n\r\n"));
            await ReadToEndOrReset(r);
            w.Close();
            server.Close();
            await server.WaitClosed(); // waits for the failed connection to be let go
            var p = Assert.Single(made);
            Assert.Empty(p.Events);
        });
    }

    [Fact]
    public void Server_PlainClientNeverHandshakes_ClosedAfterHandshakeTimeout()
    {
        RunVirtual(async () =>
        {
            // asyncio: ssl_handshake_timeout bounds the server side too; the connection is aborted, the
            // protocol never hears of it, nothing is reported.
            var loop = Aio.GetRunningLoop();
            var made = new List<RecordingProtocol>();
            var server = await RecordingTlsServer(made, TimeSpan.FromSeconds(5));
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            double start = loop.Time();
            Assert.Empty(await ReadToEndOrReset(r));
            Assert.InRange(loop.Time() - start, 5, 6);
            w.Close();
            server.Close();
            await server.WaitClosed();
            Assert.Empty(Assert.Single(made).Events);
        });
    }

    [Fact]
    public void StartTls_CancelledDuringHandshake_SocketClosedAndNothingReported()
    {
        RunVirtual(async () =>
        {
            // asyncio test_start_tls_slow_client_cancel: start_tls under wait_for, the peer never answers the
            // handshake; the wait times out and the connection is closed.
            var loop = Aio.GetRunningLoop();
            var peerSawEnd = loop.CreateFuture();
            var server = await PlainServerSignallingEnd(peerSawEnd);
            var (plain, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            var options = TrustingClient();
            options.TargetHost = "localhost";
            double start = loop.Time();
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => loop.StartTls(plain, p, options, null), 5));
            await peerSawEnd;
            Assert.InRange(loop.Time() - start, 5, 6);
            Assert.Equal(["made"], p.Events); // start_tls calls no connection_made, and its abort no connection_lost
            server.Close();
            await server.WaitClosed();
        });
    }

    [Fact]
    public void CloseClients_ConnectionInHandshake_ClosedAtOnceProtocolNeverCalled()
    {
        RunVirtual(async () =>
        {
            // asyncio test_close_during_handshake (bpo-29743): closing a transport whose handshake is not done
            // aborts its socket at once instead of leaking it until the handshake timeout.
            var loop = Aio.GetRunningLoop();
            var made = new List<RecordingProtocol>();
            var server = await RecordingTlsServer(made);
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            while (made.Count == 0) await Aio.Sleep(0.1); // accepted, waiting for the ClientHello
            double start = loop.Time();
            server.Close();
            server.CloseClients();
            await server.WaitClosed();
            Assert.Empty(await ReadToEndOrReset(r));
            Assert.True(loop.Time() - start < 1, $"closed after {loop.Time() - start} s");
            Assert.Empty(Assert.Single(made).Events);
            w.Close();
        });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CloseClients_InTheAcceptingIteration_HandshakeEndsAtOnceProtocolNeverCalled(bool abort)
    {
        RunVirtual(async () =>
        {
            // Closed before the plain transport under TLS had run its ConnectionMade: that transport still owes
            // the stream under SslStream its ConnectionMade and ConnectionLost, which ends the handshake's read
            // (it used to get neither, and the handshake waited for its 60 s time limit).
            var loop = Aio.GetRunningLoop();
            var made = new List<RecordingProtocol>();
            Server? server = null;
            server = await loop.CreateServer(() =>
            {
                var p = new RecordingProtocol();
                made.Add(p);
                loop.CallSoon(abort ? server!.AbortClients : server!.CloseClients); // runs before the queued ConnectionMade
                return p;
            }, ["127.0.0.1"], 0, ssl: ServerOptions());
            var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            double start = loop.Time();
            Assert.Empty(await ReadToEndOrReset(r));
            server.Close();
            await server.WaitClosed();
            foreach (var handshake in Aio.AllTasks().Where(t => t.Name == "TLS handshake").ToList()) await handshake;
            Assert.True(loop.Time() - start < 1, $"the handshake ended after {loop.Time() - start} s");
            Assert.Empty(Assert.Single(made).Events); // asyncio: no callback for a connection that never completed its handshake
            w.Close();
        });
    }

    [Fact]
    public void Runner_EndsWhileServerHandshakePending_CancelledHandshakeReportsNothing()
    {
        Run(async () =>
        {
            // asyncio (bpo-23197): a cancelled handshake logs nothing. The main task ends while the server's
            // handshake still waits for the ClientHello; the runner cancels what is left, that handshake included,
            // and the loop must report nothing (Run fails on any reported error).
            var made = new List<RecordingProtocol>();
            var server = await RecordingTlsServer(made);
            var (_, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
            while (made.Count == 0) await Aio.Sleep(0.001); // accepted, its handshake waiting for the ClientHello
            await Aio.Sleep(0.01);
            w.Close();
            server.Close();
        });
    }

    [Fact]
    public void Abort_DuringShutdown_ConnectionLostOnceWithoutErrorAndTimerCancelled()
    {
        RunVirtual(async () =>
        {
            // asyncio: abort() while the close is flushing ends the connection at once, connection_lost(None)
            // once; the shutdown timer is cancelled, so no "SSL shutdown timed out" comes later.
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? sp = null;
            var (server, ct, cp) = await TlsServerAndClient(() => sp = new RecordingProtocol());
            ct.PauseReading();
            while (sp?.Made is not { IsDone: true }) await Aio.Sleep(0);
            sp.Transport!.Write(new byte[32 << 20]);
            sp.Transport.Close();
            await Aio.Sleep(1);
            Assert.False(sp.Lost!.IsDone); // still flushing to a peer that does not read
            double start = loop.Time();
            sp.Transport.Abort();
            await sp.Lost;
            Assert.True(loop.Time() - start < 1);
            Assert.Null(sp.LostWith);
            await Aio.Sleep(60); // past the 30 s shutdown timeout
            Assert.Equal(["made", "lost"], sp.Events);
            ct.Abort();
            await cp.Lost!;
            server.Close();
            await server.WaitClosed();
        });
    }

    /// <summary>A buffered protocol that lends a one-byte buffer and counts ConnectionMade.</summary>
    sealed class OneByteBufferProtocol : BufferedProtocol
    {
        readonly byte[] _buf = new byte[1];
        public readonly MemoryStream Received = new();
        public int Made;
        public override void ConnectionMade(IBaseTransport transport) => Made++;
        public override Memory<byte> GetBuffer(int sizeHint) => _buf;
        public override void BufferUpdated(int count) => Received.Write(_buf, 0, count);
    }

    [Fact]
    public void StartTls_BufferedProtocolThenSetProtocol_EachReceivesItsDataConnectionMadeOnce()
    {
        Run(async () =>
        {
            // asyncio test_start_tls_client_buf_proto_1: a buffered protocol over start_tls gets the data
            // through its (one-byte) buffer; set_protocol switches delivery to a new protocol; start_tls and
            // set_protocol call no connection_made.
            var loop = Aio.GetRunningLoop();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                await w.StartTls(server: ServerOptions());
                w.Write(B("OK"));
                Assert.Equal("hello", S(await r.ReadExactly(5)));
                w.Write(B("second"));
                Assert.Equal("world", S(await r.ReadExactly(5)));
                w.Close();
            }, "127.0.0.1", 0);
            var first = new OneByteBufferProtocol();
            var (plain, _) = await loop.CreateConnection(() => first, "127.0.0.1", PortOf(server));
            var options = TrustingClient();
            options.TargetHost = "localhost";
            var tls = await loop.StartTls(plain, first, options, null);
            while (first.Received.Length < 2) await Aio.Sleep(0.001);
            Assert.Equal("OK", S(first.Received.ToArray()));
            tls.Write(B("hello"));
            var second = new RecordingProtocol();
            tls.Protocol = second;
            Assert.Same(second, tls.Protocol);
            await second.WaitForBytes(6);
            tls.Write(B("world"));
            await second.Lost!;
            Assert.Equal("second", second.Text);
            Assert.Equal(["data", "eof", "lost"], second.Events);
            Assert.Equal(1, first.Made);
            Assert.Equal("OK", S(first.Received.ToArray()));
        });
    }

    [Fact]
    public void ReadLine_PeerCorruptsTlsStream_RaisesAndNothingReported()
    {
        Run(async () =>
        {
            // asyncio test_start_tls_client_corrupted_ssl: plain bytes injected into the TLS stream fail the
            // pending read with the TLS error.
            var loop = Aio.GetRunningLoop();
            var done = loop.CreateFuture();
            await using var server = await Aio.StartServer(async (r, w) =>
            {
                var view = new AsyncConnectionStream(r, w, ownsConnection: false);
                var ssl = new SslStream(view, leaveInnerStreamOpen: true);
                await ssl.AuthenticateAsServerAsync(ServerOptions());
                await ssl.WriteAsync(B("A\n"));
                Assert.Equal(1, await ssl.ReadAsync(new byte[1]));
                w.Write(B("please corrupt the SSL connection"));
                await w.Drain();
                await done;
                w.Close();
            }, "127.0.0.1", 0);
            var (r, w) = await Aio.OpenConnection("localhost", PortOf(server), ssl: TrustingClient());
            Assert.Equal("A\n", S(await r.ReadLine()));
            w.Write(B("B"));
            var e = await Record.ExceptionAsync(async () => await r.ReadLine());
            Assert.True(e is IOException or AuthenticationException, $"{e}");
            w.Close();
            done.SetResult();
        });
    }

    /// <summary>
    /// A plain server that speaks TLS by hand (SslStream over the connection), sends <paramref name="data"/> and
    /// then ends the TCP connection without close_notify: a FIN, or with <paramref name="reset"/> an RST, once
    /// <paramref name="end"/> is done.
    /// </summary>
    static Task<Server> TlsPeerDroppingTcp(byte[] data, Future end, bool reset) => Aio.StartServer(async (r, w) =>
    {
        var ssl = new SslStream(new AsyncConnectionStream(r, w, ownsConnection: false), leaveInnerStreamOpen: true);
        await ssl.AuthenticateAsServerAsync(ServerOptions());
        await ssl.WriteAsync(data);
        await end;
        if (reset) ((System.Net.Sockets.Socket)w.GetExtraInfo("socket")!).LingerState = new System.Net.Sockets.LingerOption(true, 0);
        w.Transport.Abort(); // no ShutdownAsync: no close_notify
    }, "127.0.0.1", 0);

    [Fact]
    public void ReadExactly_TlsPeerClosesTcpWithoutCloseNotify_IncompleteReadErrorWithWhatArrived()
    {
        Run(async () =>
        {
            // asyncio's SSLProtocol takes a TCP end of stream without close_notify as the end of the TLS stream:
            // the reader gets what arrived, then the end (IncompleteReadError from readexactly), no error.
            var end = Aio.GetRunningLoop().CreateFuture();
            end.SetResult();
            await using var server = await TlsPeerDroppingTcp(B("partial"), end, reset: false);
            var (r, w) = await Aio.OpenConnection("localhost", PortOf(server), ssl: TrustingClient());
            var e = await Assert.ThrowsAsync<IncompleteReadError>(async () => await r.ReadExactly(100));
            Assert.Equal("partial", S(e.Partial));
            Assert.True(r.AtEof);
            Assert.Empty(await r.Read());
            await w.WaitClosed();
        });
    }

    [Fact]
    public void Read_TlsPeerResetsTcp_ConnectionResetError()
    {
        Run(async () =>
        {
            // asyncio: a reset reaches the reader as ConnectionResetError (here a SocketException, as on plain
            // connections), and WaitClosed raises it too.
            var end = Aio.GetRunningLoop().CreateFuture();
            await using var server = await TlsPeerDroppingTcp(B("partial"), end, reset: true);
            var (r, w) = await Aio.OpenConnection("localhost", PortOf(server), ssl: TrustingClient());
            Assert.Equal("partial", S(await r.ReadExactly(7)));
            end.SetResult();
            var e = await Record.ExceptionAsync(async () => await r.Read());
            var se = Assert.IsType<System.Net.Sockets.SocketException>(e);
            Assert.Equal(System.Net.Sockets.SocketError.ConnectionReset, se.SocketErrorCode);
            Assert.Same(e, await Record.ExceptionAsync(w.WaitClosed));
        });
    }

    [Fact]
    public void GetExtraInfo_TlsConnection_PeercertCipherAndSslcontext()
    {
        Run(async () =>
        {
            // asyncio: get_extra_info('peercert'), ('cipher'), ('sslcontext') on a TLS transport.
            var options = TrustingClient();
            var (server, t, p) = await TlsServerAndClient(() => new EchoProtocol(), options: options);
            var cert = Assert.IsAssignableFrom<X509Certificate>(t.GetExtraInfo("peercert"));
            Assert.Equal(s_cert.Value.GetCertHashString(), cert.GetCertHashString());
            var ssl = Assert.IsType<SslStream>(t.GetExtraInfo("ssl_object"));
            Assert.Equal(ssl.NegotiatedCipherSuite, Assert.IsType<TlsCipherSuite>(t.GetExtraInfo("cipher")));
            Assert.Same(options, t.GetExtraInfo("sslcontext"));
            t.Close();
            await p.Lost!;
            server.Close();
            await server.WaitClosed();
        });
    }

    /// <summary>Runs <paramref name="body"/> with the path of a TLS line-echo server on a Unix socket.</summary>
    void RunWithUnixTlsServer(Func<string, Task> body)
    {
        Run(async () =>
        {
            var path = NetTest.UnixSocketPath();
            try
            {
                await using var server = await Aio.StartUnixServer(EchoLines, path, ssl: ServerOptions());
                await body(path);
            }
            finally { File.Delete(path); }
        });
    }

    [Fact]
    public void UnixStreams_TlsEcho_RoundTripsWithServerHostnameOrTargetHost()
    {
        RunWithUnixTlsServer(async path =>
        {
            var (r, w) = await Aio.OpenUnixConnection(path, ssl: TrustingClient(), serverHostname: "localhost");
            w.Write(B("over unix tls\n"));
            Assert.Equal("over unix tls\n", S(await r.ReadLine()));
            Assert.True(Assert.IsType<SslStream>(w.GetExtraInfo("ssl_object")).IsAuthenticated);
            w.Close();
            await w.WaitClosed();
            // The options' TargetHost is an explicit host name too.
            var options = TrustingClient();
            options.TargetHost = "localhost";
            (r, w) = await Aio.OpenUnixConnection(path, ssl: options);
            w.Write(B("again\n"));
            Assert.Equal("again\n", S(await r.ReadLine()));
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact]
    public void OpenUnixConnection_ServerHostnameNotInCertificate_FailsValidation()
    {
        RunWithUnixTlsServer(async path =>
        {
            await Assert.ThrowsAsync<AuthenticationException>(() =>
                Aio.OpenUnixConnection(path, ssl: TrustingClient(), serverHostname: "not-localhost.example"));
        });
    }

    [Fact]
    public void OpenUnixConnection_SslWithoutServerHostname_ThrowsArgumentException()
    {
        RunWithUnixTlsServer(async path =>
        {
            var e = await Assert.ThrowsAsync<ArgumentException>(() => Aio.OpenUnixConnection(path, ssl: TrustingClient()));
            Assert.Contains("you have to pass server_hostname when using ssl", e.Message);
            Assert.Equal("serverHostname", e.ParamName);
        });
    }

    [Fact]
    public void UnixConnectionAndServer_TlsArgumentWithoutSsl_ThrowArgumentException()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var path = NetTest.UnixSocketPath();
            var one = TimeSpan.FromSeconds(1);
            Assert.Contains("server_hostname is only meaningful with ssl", (await Assert.ThrowsAsync<ArgumentException>(() =>
                Aio.OpenUnixConnection(path, serverHostname: "localhost"))).Message);
            Assert.Contains("ssl_handshake_timeout is only meaningful with ssl", (await Assert.ThrowsAsync<ArgumentException>(() =>
                loop.CreateUnixConnection(() => new RecordingProtocol(), path, sslHandshakeTimeout: one))).Message);
            Assert.Contains("ssl_shutdown_timeout is only meaningful with ssl", (await Assert.ThrowsAsync<ArgumentException>(() =>
                Aio.StartUnixServer(EchoLines, path, sslShutdownTimeout: one))).Message);
            Assert.False(File.Exists(path));   // refused before anything was bound
        });
    }

    [Fact]
    public void TcpConnectionsAndServers_TlsTimeLimitWithoutSsl_ThrowArgumentException()
    {
        Run(async () =>
        {
            // asyncio: ValueError "ssl_handshake_timeout is only meaningful with ssl" (and the shutdown
            // timeout's), from create_connection, create_server and connect_accepted_socket alike.
            var loop = Aio.GetRunningLoop();
            var one = TimeSpan.FromSeconds(1);
            await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0);
            int port = PortOf(server);
            async Task Refused(string what, Func<Task> call) =>
                Assert.Contains(what + " is only meaningful with ssl", (await Assert.ThrowsAsync<ArgumentException>(call)).Message);

            await Refused("ssl_handshake_timeout", () => loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", port, sslHandshakeTimeout: one));
            await Refused("ssl_shutdown_timeout", () => Aio.OpenConnection("127.0.0.1", port, sslShutdownTimeout: one));
            await Refused("ssl_handshake_timeout", () => loop.CreateServer(() => new EchoProtocol(), ["127.0.0.1"], 0, sslHandshakeTimeout: one));
            await Refused("ssl_shutdown_timeout", () => Aio.StartServer(EchoLines, "127.0.0.1", 0, sslShutdownTimeout: one));
            using var sock = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await Refused("ssl_handshake_timeout", () => loop.CreateConnection(() => new RecordingProtocol(), sock, sslHandshakeTimeout: one));
            await Refused("ssl_shutdown_timeout", () => loop.ConnectAcceptedSocket(() => new EchoProtocol(), sock, sslShutdownTimeout: one));
            await Refused("ssl_handshake_timeout", () => loop.CreateServer(() => new EchoProtocol(), sock, sslHandshakeTimeout: one));
            Assert.False(sock.IsBound); // refused before the socket was touched
        });
    }
}

public sealed class EpollTlsTests : TlsTests
{
    protected override bool Portable => false;
}

public sealed class PortableTlsTests : TlsTests
{
    protected override bool Portable => true;
}
