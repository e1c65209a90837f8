using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Audit;

/// <summary>
/// Audit probes of TLS, sendfile, connection attempts, the loop's sock_* methods, Unix sockets and the portable
/// reactor against asyncio 3.13 (CPython's sslproto.py, base_events.py, unix_events.py), or a documented difference
/// (docs/differences.md). Written as an audit (2026-12-04, session 19).
/// </summary>
public class Net2AuditTests
{
    static void Run(Func<Task> body) => NetTest.Run(false, body);
    static void RunPortable(Func<Task> body) => NetTest.Run(true, body);
    static byte[] B(string s) => Encoding.ASCII.GetBytes(s);
    static string S(byte[] b) => Encoding.ASCII.GetString(b);
    static int PortOf(Server s) => ((IPEndPoint)s.Sockets[0].LocalEndPoint!).Port;

    /// <summary>Polls (bounded: 10 s of real time) until <paramref name="cond"/> holds.</summary>
    static async Task Until(Func<bool> cond, double seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!cond() && DateTime.UtcNow < deadline) await Aio.Sleep(0.002);
        Assert.True(cond(), $"condition not reached within {seconds} s");
    }

    static async Task<Exception?> Catch(Func<Task> f)
    {
        try { await f(); return null; }
        catch (Exception e) { return e; }
    }

    static SslServerAuthenticationOptions ServerOptions() => new() { ServerCertificate = TlsTests.Certificate };

    static SslClientAuthenticationOptions Trusting(string? host = null) => new()
    {
        TargetHost = host,
        RemoteCertificateValidationCallback = (_, cert, _, errors) =>
            cert != null && cert.GetCertHashString() == TlsTests.Certificate.GetCertHashString()
            && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None,
    };

    /// <summary>A TLS server on 127.0.0.1 and a TLS client connected to it ("localhost"), both with recording protocols.</summary>
    static async Task<(Server Server, ITransport T, RecordingProtocol P, Func<RecordingProtocol> Peer)> TlsPair(
        Func<RecordingProtocol>? serverProtocol = null, Func<RecordingProtocol>? clientProtocol = null)
    {
        var loop = Aio.GetRunningLoop();
        RecordingProtocol? s = null;
        var server = await loop.CreateServer(() => s = (serverProtocol ?? (() => new RecordingProtocol()))(), ["127.0.0.1"], 0, ssl: ServerOptions());
        var (t, p) = await loop.CreateConnection(clientProtocol ?? (() => new RecordingProtocol()), "localhost", PortOf(server), ssl: Trusting());
        await Until(() => s?.Made is { IsDone: true });
        return (server, (ITransport)t, p, () => s!);
    }

    /// <summary>A plain server on 127.0.0.1 and a plain client, both with recording protocols.</summary>
    static async Task<(Server Server, ITransport T, RecordingProtocol P, Func<RecordingProtocol> Peer)> PlainPair()
    {
        var loop = Aio.GetRunningLoop();
        RecordingProtocol? s = null;
        var server = await loop.CreateServer(() => s = new RecordingProtocol(), "127.0.0.1", 0);
        var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
        await Until(() => s?.Made is { IsDone: true });
        return (server, t, p, () => s!);
    }

    static async Task Shut(Server server)
    {
        server.Close();
        server.AbortClients();
        await Aio.WaitFor(server.WaitClosed, 10);
    }

    /// <summary>A listener whose accept queue is full, so that a new connection to it stays pending (see ConnectAttemptsTests).</summary>
    static (Socket Listener, Socket Filler) FullListener()
    {
        var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        l.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        l.Listen(0);
        var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        filler.Connect(l.LocalEndPoint!);
        if (!l.Poll((int)(NetTest.Bound * 1_000_000), SelectMode.SelectRead)) throw new TimeoutException("the filler never reached the accept queue");
        return (l, filler);
    }

    // ================================================================== TLS

    [Fact, Trait("asyncio", "differs (docs/differences.md): sslproto._check_handshake_timeout fails create_connection with ConnectionAbortedError; here a TimeoutException with asyncio's message")]
    public void Tls_HandshakeTimeout_FailsWithTimeoutException() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var hold = loop.CreateFuture();
        var server = await Aio.StartServer(async (r, w) => { await hold; w.Close(); }, "127.0.0.1", 0);
        var e = await Catch(() => loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server),
            ssl: Trusting(), sslHandshakeTimeout: TimeSpan.FromMilliseconds(200)));
        hold.SetResult();
        await Shut(server);
        Assert.IsType<TimeoutException>(e);
        Assert.Contains("SSL handshake is taking longer than", e!.Message);
    });

    [Fact, Trait("asyncio", "sslproto: TLS transport write buffer limits default to FLOW_CONTROL_HIGH_WATER_SSL_WRITE: (low 128 KiB, high 512 KiB)")]
    public void Tls_DefaultWriteBufferLimits_AreSslDefaults() => Run(async () =>
    {
        var (server, t, p, _) = await TlsPair();
        var limits = t.GetWriteBufferLimits();
        t.Close();
        await p.Lost!;
        await Shut(server);
        Assert.Equal((128 * 1024, 512 * 1024), limits);
    });

    [Fact, Trait("asyncio", "sslproto.eof_received in WRAPPED: a TCP EOF without close_notify -> _do_shutdown -> app eof_received(), then connection_lost(None)")]
    public void Tls_PeerShutsTcpWithoutCloseNotify_EofReceivedThenLostNull() => Run(async () =>
    {
        var (server, t, p, peer) = await TlsPair();
        peer().Transport!.Write(B("hello"));
        await p.WaitForBytes(5);
        ((Socket)peer().Transport!.GetExtraInfo("socket")!).Shutdown(SocketShutdown.Send); // FIN, no close_notify
        await Aio.WaitFor(p.Lost!, 10);
        await Shut(server);
        Assert.Equal(["made", "data", "eof", "lost"], p.Events);
        Assert.Null(p.LostWith);
        Assert.Equal("hello", p.Text);
    });

    [Fact, Trait("asyncio", "sslproto._call_eof_received: on close_notify eof_received() is called; returning True has no effect (warning), the connection closes; connection_lost(None)")]
    public void Tls_PeerSendsCloseNotify_EofKeepOpenIgnored_LostNull() => Run(async () =>
    {
        var (server, t, p, peer) = await TlsPair(() => new RecordingProtocol { KeepOpenOnEof = true });
        t.Write(B("bye"));
        t.Close();
        await Aio.WaitFor(peer().Lost!, 10);
        await Aio.WaitFor(p.Lost!, 10);
        await Shut(server);
        Assert.Equal(["made", "data", "eof", "lost"], peer().Events);
        Assert.Null(peer().LostWith);
        Assert.Equal("bye", peer().Text);
        Assert.Null(p.LostWith);
    });

    [Fact, Trait("asyncio", "sslproto._on_handshake_complete sets extra 'compression' = sslobj.compression() (None): get_extra_info('compression', default) returns None, not the default")]
    public void Tls_CompressionExtraInfo_PresentAndNull() => Run(async () =>
    {
        var (server, t, p, peer) = await TlsPair();
        var compression = t.GetExtraInfo("compression", "default");
        var serverCompression = peer().Transport!.GetExtraInfo("compression", "default");
        t.Close();
        await p.Lost!;
        await Shut(server);
        Assert.Null(compression);
        Assert.Null(serverCompression);
    });

    [Fact, Trait("asyncio", "server side TLS transport: peercert None without a client certificate; ssl_object, cipher set; sslcontext is the server's context; peername/sockname from the socket")]
    public void Tls_ServerSideExtraInfo() => Run(async () =>
    {
        var opts = ServerOptions();
        var loop = Aio.GetRunningLoop();
        RecordingProtocol? s = null;
        var server = await loop.CreateServer(() => s = new RecordingProtocol(), ["127.0.0.1"], 0, ssl: opts);
        var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), ssl: Trusting());
        await Until(() => s?.Made is { IsDone: true });
        var st = s!.Transport!;
        Assert.Null(st.GetExtraInfo("peercert", "default"));
        var ssl = Assert.IsType<SslStream>(st.GetExtraInfo("ssl_object"));
        Assert.True(ssl.IsAuthenticated);
        Assert.True(ssl.IsServer);
        Assert.IsType<TlsCipherSuite>(st.GetExtraInfo("cipher"));
        Assert.Same(opts, st.GetExtraInfo("sslcontext"));
        Assert.Equal(t.GetExtraInfo("sockname"), st.GetExtraInfo("peername"));
        Assert.Equal(t.GetExtraInfo("peername"), st.GetExtraInfo("sockname"));
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    [Fact, Trait("asyncio", "TLS StreamWriter: can_write_eof() False; write_eof() raises NotImplementedError and changes nothing (the stream still works)")]
    public void Tls_StreamWriteEof_NotSupportedAndStreamStillWorks() => Run(async () =>
    {
        await using var server = await Aio.StartServer(async (r, w) =>
        {
            var line = await r.ReadLine();
            w.Write(line);
            await w.Drain();
            w.Close();
        }, "127.0.0.1", 0, ssl: ServerOptions());
        var (r, w) = await Aio.OpenConnection("localhost", PortOf(server), ssl: Trusting());
        Assert.False(w.CanWriteEof);
        Assert.ThrowsAny<NotSupportedException>(w.WriteEof);
        Assert.False(w.IsClosing);
        w.Write(B("still\n"));
        await w.Drain();
        Assert.Equal("still\n", S(await r.ReadLine()));
        w.Close();
        await w.WaitClosed();
    });

    [Fact, Trait("asyncio", "create_connection(sock=..., ssl=...) without server_hostname: ValueError('You must set server_hostname when using ssl without a host'), before any handshake")]
    public void Tls_CreateConnectionOnSocketWithoutHostName_ThrowsArgumentException() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var server = await loop.CreateServer(() => new EchoProtocol(), ["127.0.0.1"], 0, ssl: ServerOptions());
        var sock = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        sock.Connect(new IPEndPoint(IPAddress.Loopback, PortOf(server)));
        sock.Blocking = false;
        // Trusts the certificate whatever the name; no TargetHost and no host to take it from.
        var opts = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true };
        var e = await Catch(() => loop.CreateConnection(() => new RecordingProtocol(), sock, ssl: opts));
        if (e == null) sock.Dispose();
        await Shut(server);
        sock.Dispose();
        Assert.IsAssignableFrom<ArgumentException>(e);
    });

    [Fact, Trait("asyncio", "SSLProtocol: ssl_handshake_timeout <= 0 raises ValueError, before anything is connected")]
    public void Tls_HandshakeTimeoutZero_RefusedBeforeConnecting() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        bool accepted = false;
        var server = await Aio.StartServer((r, w) => { accepted = true; w.Close(); return Task.CompletedTask; }, "127.0.0.1", 0);
        var connecting = loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server),
            ssl: Trusting(), sslHandshakeTimeout: TimeSpan.Zero);
        Assert.True(connecting.IsFaulted);   // refused in the call itself: no socket was connected
        Assert.IsAssignableFrom<ArgumentException>(await Catch(() => connecting));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Aio.StartServer((r, w) => Task.CompletedTask, "127.0.0.1", 0,
            ssl: ServerOptions(), sslShutdownTimeout: TimeSpan.FromSeconds(-1)));
        await Shut(server);
        Assert.False(accepted);
    });

    [Fact, Trait("asyncio", "start_tls whose handshake fails (certificate): the original protocol, already connected, gets connection_lost(exc) (SSLProtocol.connection_lost with app state CON_MADE)")]
    public void Tls_StartTlsHandshakeFails_OriginalProtocolGetsConnectionLost() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        await using var server = await Aio.StartServer(async (r, w) =>
        {
            await r.ReadLine();
            w.Write(B("GO\n"));
            try { await w.StartTls(server: ServerOptions()); } catch (Exception) { }
            w.Close();
        }, "127.0.0.1", 0);
        var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
        t.Write(B("STARTTLS\n"));
        await p.WaitForBytes(3);
        var e = await Catch(() => loop.StartTls(t, p, new SslClientAuthenticationOptions { TargetHost = "localhost" }, null));
        Assert.IsAssignableFrom<AuthenticationException>(e);
        var lost = await Catch(() => Aio.WaitFor(p.Lost!, 5));
        Assert.Null(lost);
        Assert.Equal(["made", "data", "lost"], p.Events);
        Assert.NotNull(p.LostWith);
    });

    [Fact, Trait("asyncio", "start_tls with ssl_handshake_timeout <= 0: ValueError from SSLProtocol() before the transport is touched (no pause_reading/set_protocol): the plain transport and its protocol go on")]
    public void Tls_StartTlsZeroHandshakeTimeout_RejectedTransportUntouched() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (server, t, p, peer) = await PlainPair();
        var e = await Catch(() => loop.StartTls(t, p, Trusting("localhost"), null, handshakeTimeout: TimeSpan.Zero));
        Assert.IsAssignableFrom<ArgumentException>(e);
        Assert.Same(p, t.Protocol);
        Assert.True(t.IsReading);
        peer().Transport!.Write(B("plain"));
        var got = await Catch(() => Aio.Timeout(5, () => p.WaitForBytes(5)));
        await Shut(server);
        Assert.Null(got);
        Assert.Equal("plain", p.Text);
    });

    sealed class ThrowOnData : RecordingProtocol
    {
        protected override void OnData() => throw new InvalidOperationException("boom");
    }

    [Fact, Trait("asyncio", "sslproto._do_read: data_received raising -> _fatal_error: reported (not an OSError) and connection_lost(exc)")]
    public void Tls_DataReceivedThrows_ReportedAndLostWithIt()
    {
        var errors = NetTest.RunCollectingErrors(false, async () =>
        {
            var (server, t, p, peer) = await TlsPair(clientProtocol: () => new ThrowOnData());
            peer().Transport!.Write(B("x"));
            await Aio.WaitFor(p.Lost!, 10);
            Assert.Equal("boom", Assert.IsType<InvalidOperationException>(p.LostWith).Message);
            await Shut(server);
        });
        Assert.Contains(errors, c => c.Exception is InvalidOperationException { Message: "boom" });
    }

    [Fact, Trait("asyncio", "loop.sendfile over a TLS transport (_SSLProtocolTransport._sendfile_compatible = FALLBACK): the range arrives, the count is returned, the file position follows")]
    public void Tls_Sendfile_RangeArrives() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (server, t, p, peer) = await TlsPair();
        var content = NetTest.Data(700_000, seed: 11);
        using var file = new MemoryStream(content);
        Assert.Equal(600_000, await loop.Sendfile(t, file, offset: 50_000, count: 600_000));
        Assert.Equal(650_000, file.Position);
        Assert.Same(p, t.Protocol);
        await peer().WaitForBytes(600_000);
        Assert.Equal(content.AsSpan(50_000, 600_000).ToArray(), peer().Received.ToArray());
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    [Fact, Trait("asyncio", "TLS write flow control: pause_writing once above the high mark while the peer does not read, resume_writing once drained; all data arrives")]
    public void Tls_WriteFlowControl_PauseThenResume() => Run(async () =>
    {
        var (server, t, p, peer) = await TlsPair();
        peer().Transport!.PauseReading();
        t.SetWriteBufferLimits(high: 64 * 1024);
        var data = NetTest.Data(8 << 20, seed: 2);
        t.Write(data);
        Assert.Equal(1, p.Pauses);
        await Aio.Sleep(0.1);
        Assert.Equal(0, p.Resumes);
        peer().Transport!.ResumeReading();
        await Until(() => p.Resumes == 1 && peer().Received.Length == data.Length, 20);
        Assert.Equal(data, peer().Received.ToArray());
        Assert.Equal(1, p.Pauses);
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    sealed class SizeAtLost : RecordingProtocol
    {
        public int SizeInConnectionLost = -1;
        public override void ConnectionLost(Exception? exception)
        {
            SizeInConnectionLost = Transport!.WriteBufferSize;
            base.ConnectionLost(exception);
        }
    }

    [Fact, Trait("asyncio", "TLS abort() with buffered data: buffer dropped (SSLProtocol.connection_lost clears the backlog and the outgoing BIO before the app's connection_lost), is_closing, connection_lost(None) once")]
    public void Tls_AbortWithBufferedData_LostNullOnceBufferEmpty() => Run(async () =>
    {
        var (server, t, p0, peer) = await TlsPair(clientProtocol: () => new SizeAtLost());
        var p = (SizeAtLost)p0;
        peer().Transport!.PauseReading();
        t.Write(new byte[16 << 20]);
        await Aio.Sleep(0.05);    // the write pump now waits in SslStream.WriteAsync for the raw socket's buffer
        t.Abort();
        Assert.True(t.IsClosing);
        t.Abort();
        await Aio.WaitFor(p.Lost!, 10);
        await Aio.Sleep(0.05);
        await Shut(server);
        Assert.Equal(["made", "lost"], p.Events);
        Assert.Null(p.LostWith);
        Assert.Equal(0, p.SizeInConnectionLost);
    });

    [Fact, Trait("asyncio", "TLS transport pause_reading/resume_reading: is_reading follows; data held while paused arrives after resume")]
    public void Tls_PauseResumeReading_IsReadingFollows() => Run(async () =>
    {
        var (server, t, p, peer) = await TlsPair();
        Assert.True(t.IsReading);
        t.PauseReading();
        Assert.False(t.IsReading);
        t.PauseReading();
        peer().Transport!.Write(B("held"));
        await Aio.Sleep(0.1);
        Assert.Equal(0, p.Received.Length);
        t.ResumeReading();
        Assert.True(t.IsReading);
        await Until(() => p.Received.Length == 4);
        Assert.Equal("held", p.Text);
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    [Fact, Trait("asyncio", "TLS server: connection_made gets a transport whose extra info (ssl_object authenticated, peername) is already set, and writes there reach the client")]
    public void Tls_ServerConnectionMade_ExtraInfoReadyAndWriteWorks() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        bool? authenticated = null;
        object? peer = null;
        var server = await loop.CreateServer(() => new CallbackProtocol(tr =>
        {
            authenticated = (tr.GetExtraInfo("ssl_object") as SslStream)?.IsAuthenticated;
            peer = tr.GetExtraInfo("peername");
            ((ITransport)tr).Write(B("welcome"));
        }), ["127.0.0.1"], 0, ssl: ServerOptions());
        var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), ssl: Trusting());
        await p.WaitForBytes(7);
        Assert.Equal("welcome", p.Text);
        Assert.True(authenticated);
        Assert.Equal(t.GetExtraInfo("sockname"), peer);
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    sealed class CallbackProtocol(Action<IBaseTransport> made) : Protocol
    {
        public override void ConnectionMade(IBaseTransport transport) => made(transport);
        public override void DataReceived(ReadOnlySpan<byte> data) { }
    }

    [Fact, Trait("asyncio", "start_tls over a Unix stream connection (selector transports are _start_tls_compatible), portable reactor")]
    public void Tls_StartTlsOverUnixStream_Portable()
    {
        NetTest.RunWithUnixPath(true, async path =>
        {
            await using var server = await Aio.StartUnixServer(async (r, w) =>
            {
                await r.ReadLine();
                w.Write(B("GO\n"));
                await w.StartTls(server: ServerOptions());
                var line = await r.ReadLine();
                w.Write(B("tls:" + S(line)));
                await w.Drain();
                w.Close();
            }, path);
            var (r, w) = await Aio.OpenUnixConnection(path);
            w.Write(B("STARTTLS\n"));
            Assert.Equal("GO\n", S(await r.ReadLine()));
            await w.StartTls(client: Trusting("localhost"));
            Assert.IsType<SslStream>(w.GetExtraInfo("ssl_object"));
            w.Write(B("x\n"));
            Assert.Equal("tls:x\n", S(await r.ReadToEnd()));
            w.Close();
        });
    }

    // ================================================================== sendfile

    [Fact, Trait("asyncio", "loop.sendfile: count past the end of the file sends to EOF and returns what was sent; file position offset+sent")]
    public void Sendfile_CountPastEof_SendsToEof() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (server, t, p, peer) = await PlainPair();
        var content = NetTest.Data(100_000, seed: 4);
        using var file = new MemoryStream(content);
        Assert.Equal(90_000, await loop.Sendfile(t, file, offset: 10_000, count: 5_000_000));
        Assert.Equal(100_000, file.Position);
        await peer().WaitForBytes(90_000);
        Assert.Equal(content.AsSpan(10_000).ToArray(), peer().Received.ToArray());
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    [Fact, Trait("asyncio", "loop.sendfile with offset at EOF: returns 0, nothing sent, file at offset")]
    public void Sendfile_OffsetAtEof_ReturnsZero() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (server, t, p, peer) = await PlainPair();
        using var file = new MemoryStream(new byte[1000]);
        Assert.Equal(0, await loop.Sendfile(t, file, offset: 1000));
        Assert.Equal(1000, file.Position);
        t.Write(B("end"));
        await peer().WaitForBytes(3);
        Assert.Equal("end", peer().Text);
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    [Fact, Trait("asyncio", "differs (docs/differences.md): loop.sendfile pauses reading while it runs; here the transport is still reading while the send runs and after it")]
    public void Sendfile_WhileRunning_TransportKeepsReading() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (server, t, p, peer) = await PlainPair();
        peer().Transport!.PauseReading();
        using var file = new MemoryStream(new byte[32 << 20]);
        var send = Aio.CreateTask(() => loop.Sendfile(t, file));
        await Aio.Sleep(0.2);
        Assert.False(send.IsDone);
        bool readingDuring = t.IsReading;
        peer().Transport!.ResumeReading();
        await send;
        Assert.True(t.IsReading);
        Assert.True(readingDuring);
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    [Fact, Trait("asyncio", "loop.sendfile cancelled part-way: file position = offset + bytes handed to the transport (all of which reach the peer), the protocol is given back, the transport stays usable")]
    public void Sendfile_Cancelled_PositionTellsWhatWasSent() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (server, t, p, peer) = await PlainPair();
        peer().Transport!.PauseReading();
        var content = NetTest.Data(32 << 20, seed: 9);
        using var file = new MemoryStream(content);
        var send = Aio.CreateTask(() => loop.Sendfile(t, file, offset: 100));
        await Aio.Sleep(0.2);
        Assert.False(send.IsDone);
        send.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await send);
        Assert.Same(p, t.Protocol);
        long sent = file.Position - 100;
        Assert.InRange(sent, 1, content.Length - 101);
        t.Write(B("TAIL"));
        peer().Transport!.ResumeReading();
        t.Close();
        await Aio.WaitFor(peer().Lost!, 20);
        var got = peer().Received.ToArray();
        Assert.Equal(sent + 4, got.Length);
        Assert.Equal(content.AsSpan(100, (int)sent).ToArray(), got.AsSpan(0, (int)sent).ToArray());
        Assert.Equal("TAIL", S(got[^4..]));
        await Shut(server);
    });

    sealed class NonSeekable(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    [Fact, Trait("asyncio", "loop.sendfile: a file that is not a regular (seekable) file is refused; nothing sent, the transport and its protocol untouched")]
    public void Sendfile_NonSeekableFile_RefusedNothingChanged() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (server, t, p, peer) = await PlainPair();
        using var file = new NonSeekable(new byte[100]);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => loop.Sendfile(t, file));
        Assert.Same(p, t.Protocol);
        Assert.False(t.IsClosing);
        t.Write(B("ok"));
        await peer().WaitForBytes(2);
        Assert.Equal("ok", peer().Text);
        t.Close();
        await p.Lost!;
        await Shut(server);
    });

    [Fact, Trait("asyncio", "documented difference probe: sock_sendfile(count=0) raises ValueError in asyncio; here it sends nothing and returns 0")]
    public void Documented_SockSendfileCountZero_SendsNothing() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (a, b) = NetTest.SocketPair();
        using var _a = a;
        using var _b = b;
        using var file = new MemoryStream(new byte[100]);
        Assert.Equal(0, await loop.SockSendfile(a, file, offset: 5, count: 0));
        Assert.Equal(5, file.Position);
    });

    [Fact, Trait("asyncio", "loop.sock_sendfile on a Unix stream socket pair: the range arrives; position follows")]
    public void SockSendfile_UnixStream_RangeArrives() => Run(async () =>
    {
        if (!Socket.OSSupportsUnixDomainSockets) return;
        var loop = Aio.GetRunningLoop();
        var path = NetTest.UnixSocketPath();
        try
        {
            using var l = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            l.Bind(new UnixDomainSocketEndPoint(path));
            l.Listen(1);
            l.Blocking = false;
            using var c = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
            var accept = Aio.CreateTask(async () => (await loop.SockAccept(l)).Socket);
            await loop.SockConnect(c, new UnixDomainSocketEndPoint(path));
            using var s = await accept;
            var content = NetTest.Data(300_000, seed: 6);
            using var file = new MemoryStream(content);
            var recv = Aio.CreateTask(async () =>
            {
                var all = new MemoryStream();
                var buf = new byte[65536];
                while (all.Length < 200_000)
                {
                    int n = await loop.SockRecvInto(s, buf);
                    if (n == 0) break;
                    all.Write(buf, 0, n);
                }
                return all.ToArray();
            });
            Assert.Equal(200_000, await loop.SockSendfile(c, file, offset: 7, count: 200_000));
            Assert.Equal(200_007, file.Position);
            Assert.Equal(content.AsSpan(7, 200_000).ToArray(), await recv);
        }
        finally { File.Delete(path); }
    });

    // ================================================================== connection attempts

    [Fact, Trait("asyncio", "create_connection cancelled while connecting (one at a time): the attempt's socket is closed (its local_addr port is free again)")]
    public void Connect_CancelledSequential_SocketClosed()
    {
        var (full, filler) = FullListener();
        using var _1 = full;
        using var _2 = filler;
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            int localPort = NetTest.ClosedPort();
            var connect = Aio.CreateTask(() => loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1",
                ((IPEndPoint)full.LocalEndPoint!).Port, localEndPoint: new IPEndPoint(IPAddress.Loopback, localPort)));
            await Aio.Sleep(0.2);
            Assert.False(connect.IsDone);
            connect.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await connect);
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, localPort)); // throws AddressAlreadyInUse if the attempt's socket leaked
        });
    }

    [Fact, Trait("asyncio", "create_connection with happy_eyeballs_delay cancelled while connecting: every socket it opened is closed (local_addr port free)")]
    public void Connect_CancelledHappyEyeballs_SocketClosed()
    {
        var (full, filler) = FullListener();
        using var _1 = full;
        using var _2 = filler;
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            int localPort = NetTest.ClosedPort();
            var connect = Aio.CreateTask(() => loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1",
                ((IPEndPoint)full.LocalEndPoint!).Port, localEndPoint: new IPEndPoint(IPAddress.Loopback, localPort),
                happyEyeballsDelay: TimeSpan.FromMilliseconds(50)));
            await Aio.Sleep(0.2);
            Assert.False(connect.IsDone);
            connect.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await connect);
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, localPort));
        });
    }

    [Fact, Trait("asyncio", "create_connection one at a time: the first address refuses, the next accepts -> connected to it; the first error recorded")]
    public void Connect_FirstRefusesSecondAccepts_Sequential() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        using var good = NetTest.Listener();
        var errors = new Exception?[2];
        var sock = await ConnectAttempts.Connect(loop,
            [new IPEndPoint(IPAddress.Loopback, NetTest.ClosedPort()), (IPEndPoint)good.LocalEndPoint!], null, null, errors);
        using var _ = sock;
        Assert.NotNull(sock);
        Assert.Equal(good.LocalEndPoint, sock!.RemoteEndPoint);
        Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(errors[0]).SocketErrorCode);
        Assert.Null(errors[1]);
    });

    [Fact, Trait("asyncio", "create_connection('localhost') to a server on 127.0.0.1 only: a refused ::1 attempt is followed by 127.0.0.1, with and without happy eyeballs")]
    public void Connect_LocalhostServerOnIpv4Only_Connects() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
        foreach (var delay in new TimeSpan?[] { null, TimeSpan.FromMilliseconds(250) })
        {
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "localhost", PortOf(server), happyEyeballsDelay: delay);
            Assert.Equal(IPAddress.Loopback, ((IPEndPoint)t.GetExtraInfo("peername")!).Address);
            t.Write(B("hi"));
            await p.WaitForBytes(2);
            t.Close();
            await p.Lost!;
        }
    });

    [Fact, Trait("asyncio", "create_connection all_errors=True with several addresses all refusing: ExceptionGroup of every attempt's OSError, in address order")]
    public void Connect_AllErrorsLocalhostBothFamilies_GroupOfAll() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var infos = await loop.GetAddrInfo("localhost", 1, type: SocketType.Stream);
        int port = NetTest.ClosedPort();
        var e = await Catch(() => loop.CreateConnection(() => new RecordingProtocol(), "localhost", port, allErrors: true));
        var g = Assert.IsType<ExceptionGroup>(e);
        Assert.Equal(infos.Count, g.Exceptions.Count);
        Assert.All(g.Exceptions, x => Assert.IsType<SocketException>(x));
    });

    [Fact, Trait("asyncio", "create_connection with local_addr: the connection's sockname is local_addr, with happy eyeballs too")]
    public void Connect_LocalAddrWithHappyEyeballs_Bound() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
        int localPort = NetTest.ClosedPort();
        var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server),
            localEndPoint: new IPEndPoint(IPAddress.Loopback, localPort), happyEyeballsDelay: TimeSpan.FromMilliseconds(100));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, localPort), t.GetExtraInfo("sockname"));
        t.Close();
        await p.Lost!;
    });

    // ================================================================== sock_*

    [Fact, Trait("asyncio", "sock_sendall cancelled part-way: what was sent is a prefix; the socket stays usable for the next sock_sendall")]
    public void SockSendAll_CancelledMidway_PrefixThenNextSendIntact() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (a, b) = NetTest.SocketPair();
        using var _a = a;
        using var _b = b;
        var data = NetTest.Data(32 << 20, seed: 12);
        var send = Aio.CreateTask(async () => await loop.SockSendAll(a, data));
        await Aio.Sleep(0.2);
        Assert.False(send.IsDone);
        send.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await send);
        var recv = Aio.CreateTask(async () =>
        {
            var all = new MemoryStream();
            var buf = new byte[1 << 16];
            while (true)
            {
                int n = await loop.SockRecvInto(b, buf);
                if (n == 0) break;
                all.Write(buf, 0, n);
            }
            return all.ToArray();
        });
        await loop.SockSendAll(a, B("TAIL"));
        a.Shutdown(SocketShutdown.Send);
        var got = await recv;
        Assert.True(got.Length >= 4 && got.Length - 4 < data.Length);
        int prefix = got.Length - 4;
        Assert.Equal(data.AsSpan(0, prefix).ToArray(), got.AsSpan(0, prefix).ToArray());
        Assert.Equal("TAIL", S(got[^4..]));
    });

    [Fact, Trait("asyncio", "sock_recvfrom cancelled while waiting consumes nothing: the next sock_recvfrom gets the datagram")]
    public void SockRecvFrom_Cancelled_DatagramNotLost() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        using var rx = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        rx.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var tx = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        tx.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var wait = Aio.CreateTask(async () => await loop.SockRecvFrom(rx, 100));
        await Aio.Sleep(0.01);
        wait.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await wait);
        await loop.SockSendTo(tx, B("dgram"), rx.LocalEndPoint!);
        var (data, from) = await Aio.WaitFor(Aio.CreateTask(async () => await loop.SockRecvFrom(rx, 100)), 10);
        Assert.Equal("dgram", S(data));
        Assert.Equal(tx.LocalEndPoint, from);
    });

    [Fact, Trait("asyncio", "sock_recv on a connection the peer reset raises ConnectionResetError")]
    public void SockRecv_PeerReset_ConnectionReset() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (a, b) = NetTest.SocketPair();
        using var _a = a;
        b.LingerState = new LingerOption(true, 0);
        b.Close();
        var e = await Catch(async () => await loop.SockRecv(a, 10));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(e).SocketErrorCode);
    });

    [Fact, Trait("asyncio", "sock_sendall of nothing returns at once; sock_recv_into then gets the next real data")]
    public void SockSendAll_Empty_ReturnsAtOnce() => Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (a, b) = NetTest.SocketPair();
        using var _a = a;
        using var _b = b;
        await loop.SockSendAll(a, ReadOnlyMemory<byte>.Empty);
        await loop.SockSendAll(a, B("x"));
        var buf = new byte[10];
        Assert.Equal(1, await loop.SockRecvInto(b, buf));
        Assert.Equal((byte)'x', buf[0]);
    });

    [Fact, Trait("asyncio", "sock_connect cancelled while pending: CancelledError, the socket is no longer watched (a new sock_connect/ add_writer may use it), nothing reported")]
    public void SockConnect_Cancelled_SocketReleasedFromTheLoop()
    {
        var (full, filler) = FullListener();
        using var _1 = full;
        using var _2 = filler;
        var errors = NetTest.RunCollectingErrors(false, async () =>
        {
            var loop = Aio.GetRunningLoop();
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var connect = Aio.CreateTask(async () => await loop.SockConnect(s, full.LocalEndPoint!));
            await Aio.Sleep(0.1);
            Assert.False(connect.IsDone);
            connect.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await connect);
            var fired = loop.CreateFuture();
            loop.AddWriter(s, () => { if (!fired.IsDone) fired.SetResult(); });
            Assert.True(loop.RemoveWriter(s));
        });
        Assert.Empty(errors);
    }

    [Fact, Trait("asyncio", "sock_accept returns a non-blocking socket and the peer's address; sock_recv/sock_sendall work on it (IPv6 loopback)")]
    public void SockAccept_Ipv6_RoundTrip() => Run(async () =>
    {
        if (!Socket.OSSupportsIPv6) return;
        var loop = Aio.GetRunningLoop();
        using var l = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        l.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        l.Listen(1);
        l.Blocking = false;
        using var c = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        var accept = Aio.CreateTask(async () => await loop.SockAccept(l));
        await loop.SockConnect(c, l.LocalEndPoint!);
        var (s, addr) = await accept;
        using var _ = s;
        Assert.False(s.Blocking);
        Assert.Equal(c.LocalEndPoint, addr);
        await loop.SockSendAll(s, B("v6"));
        Assert.Equal("v6", S(await loop.SockRecv(c, 10)));
    });

    // ================================================================== Unix sockets and the portable reactor

    [Fact, Trait("asyncio", "create_unix_server (3.13, cleanup_socket=True) removes its socket file on close; a new server can then bind the path")]
    public void Unix_ServerClose_SocketFileRemovedNextServerBinds()
    {
        NetTest.RunWithUnixPath(false, async path =>
        {
            var loop = Aio.GetRunningLoop();
            var s1 = await loop.CreateUnixServer(() => new EchoProtocol(), path);
            Assert.True(File.Exists(path));
            s1.Close();
            await s1.WaitClosed();
            Assert.False(File.Exists(path));
            await using var s2 = await loop.CreateUnixServer(() => new EchoProtocol(), path);
            var (t, p) = await loop.CreateUnixConnection(() => new RecordingProtocol(), path);
            t.Write(B("ok"));
            await p.WaitForBytes(2);
            t.Close();
            await p.Lost!;
        });
    }

    [Fact, Trait("asyncio", "Unix stream half-close: write_eof on the client, the server reads EOF and still replies; the client gets the reply then EOF")]
    public void Unix_HalfClose_ServerRepliesAfterEof()
    {
        NetTest.RunWithUnixPath(false, async path =>
        {
            await using var server = await Aio.StartUnixServer(async (r, w) =>
            {
                var all = await r.ReadToEnd();
                w.Write(B("got:" + S(all)));
                await w.Drain();
                w.Close();
            }, path);
            var (r, w) = await Aio.OpenUnixConnection(path);
            Assert.True(w.CanWriteEof);
            w.Write(B("abc"));
            w.WriteEof();
            Assert.Equal("got:abc", S(await r.ReadToEnd()));
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact, Trait("asyncio", "create_unix_server/connection on a Linux abstract name (leading NUL): round trip, no file created")]
    public void Unix_AbstractName_RoundTrip() => Run(async () =>
    {
        if (!OperatingSystem.IsLinux()) return;
        var name = "\0aio-audit-" + Guid.NewGuid().ToString("N");
        await using var server = await Aio.StartUnixServer(async (r, w) =>
        {
            w.Write(await r.ReadLine());
            await w.Drain();
            w.Close();
        }, name);
        var (r, w) = await Aio.OpenUnixConnection(name);
        w.Write(B("abs\n"));
        Assert.Equal("abs\n", S(await r.ReadLine()));
        w.Close();
        await w.WaitClosed();
    });

    [Fact, Trait("asyncio", "Unix transports' extra info: the server's sockname and the client's peername are the path; 'socket' present")]
    public void Unix_ExtraInfo_PathOnBothSides()
    {
        NetTest.RunWithUnixPath(false, async path =>
        {
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? s = null;
            await using var server = await loop.CreateUnixServer(() => s = new RecordingProtocol(), path);
            var (t, p) = await loop.CreateUnixConnection(() => new RecordingProtocol(), path);
            await Until(() => s?.Made is { IsDone: true });
            Assert.Equal(path, t.GetExtraInfo("peername")?.ToString());
            Assert.Equal(path, s!.Transport!.GetExtraInfo("sockname")?.ToString());
            Assert.IsType<Socket>(t.GetExtraInfo("socket"));
            t.Close();
            await p.Lost!;
            await s.Lost!;
        });
    }

    [Fact, Trait("asyncio", "create_unix_connection to a path nobody listens on fails with an OSError (ConnectionRefused / FileNotFound), no transport")]
    public void Unix_ConnectNoListener_Fails()
    {
        NetTest.RunWithUnixPath(false, async path =>
        {
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? p = null;
            var e = await Catch(() => loop.CreateUnixConnection(() => p = new RecordingProtocol(), path));
            Assert.IsType<SocketException>(e);
            Assert.Null(p);
        });
    }

    static async Task EchoLines(AsyncStreamReader r, AsyncStreamWriter w)
    {
        await foreach (var line in r) { w.Write(line); await w.Drain(); }
        w.Close();
    }

    [Fact, Trait("asyncio", "portable reactor: the stream echo (start_server/open_connection) of many lines and a large payload, as on the default reactor")]
    public void Portable_TcpStreamEcho_LinesAndLargePayload() => RunPortable(async () =>
    {
        await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0);
        var (r, w) = await Aio.OpenConnection("127.0.0.1", PortOf(server));
        var big = new string('q', 60_000) + "\n";
        for (int i = 0; i < 200; i++) w.Write(B($"line {i}\n"));
        for (int i = 0; i < 20; i++) w.Write(B(big));
        await w.Drain();
        for (int i = 0; i < 200; i++) Assert.Equal($"line {i}\n", S(await r.ReadLine()));
        for (int i = 0; i < 20; i++) Assert.Equal(big.Length, (await r.ReadLine()).Length);
        w.WriteEof();
        Assert.Empty(await r.ReadToEnd());
        w.Close();
        await w.WaitClosed();
    });

    [Fact, Trait("asyncio", "portable reactor: Unix stream echo and half-close as on the default reactor")]
    public void Portable_UnixStreamEcho()
    {
        NetTest.RunWithUnixPath(true, async path =>
        {
            await using var server = await Aio.StartUnixServer(async (r, w) =>
            {
                w.Write(await r.ReadToEnd());
                await w.Drain();
                w.Close();
            }, path);
            var (r, w) = await Aio.OpenUnixConnection(path);
            var payload = NetTest.Data(500_000, seed: 3).Select(x => (byte)('a' + x % 26)).ToArray();
            w.Write(payload);
            w.Write(B("\n"));
            w.WriteEof();
            var back = await r.ReadToEnd();
            Assert.Equal(payload.Length + 1, back.Length);
            Assert.Equal(payload, back[..^1]);
            w.Close();
            await w.WaitClosed();
        });
    }

    [Fact, Trait("asyncio", "portable reactor: TLS echo with close_notify, as on the default reactor")]
    public void Portable_TlsEcho() => RunPortable(async () =>
    {
        await using var server = await Aio.StartServer(EchoLines, "127.0.0.1", 0, ssl: ServerOptions());
        var (r, w) = await Aio.OpenConnection("localhost", PortOf(server), ssl: Trusting());
        for (int i = 0; i < 50; i++) w.Write(B($"tls {i}\n"));
        await w.Drain();
        for (int i = 0; i < 50; i++) Assert.Equal($"tls {i}\n", S(await r.ReadLine()));
        w.Close();
        await w.WaitClosed();
    });

    [Fact, Trait("asyncio", "portable reactor: sock_recv cancelled while waiting consumes nothing; the next sock_recv gets the data")]
    public void Portable_SockRecvCancelled_NothingLost() => RunPortable(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var (a, b) = NetTest.SocketPair();
        using var _a = a;
        using var _b = b;
        var wait = Aio.CreateTask(async () => await loop.SockRecv(b, 100));
        await Aio.Sleep(0.01);
        wait.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await wait);
        await loop.SockSendAll(a, B("kept"));
        Assert.Equal("kept", S(await loop.SockRecv(b, 100)));
    });
}
