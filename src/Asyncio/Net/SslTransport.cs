using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;

namespace Asyncio;

// TLS as a transport over a plain transport, with .NET's SslStream doing the protocol work (asyncio's
// sslproto.SSLProtocol/_SSLProtocolTransport, which drives ssl.SSLObject over memory BIOs).
//
// Layers, bottom up: the plain SocketTransport, whose protocol is a StreamProtocol feeding an
// AsyncStreamReader; an AsyncConnectionStream over that reader and its writer (the "raw" stream, whose
// writes drain, so the socket's back-pressure reaches SslStream); the SslStream; and this transport,
// which the application's protocol sees. Two tasks on the loop move data: the read pump awaits
// SslStream.ReadAsync and calls DataReceived; the write pump, started by Write when it is idle, hands the
// write buffer to SslStream.WriteAsync. Every await inside SslStream therefore resolves through loop
// primitives on the loop thread (if SslStream itself continues on the thread pool, the raw stream hands
// its calls back to the loop).
//
// Handshake: AuthenticateAs{Client,Server}Async inside Aio.Timeout (60 s by default, asyncio's
// ssl_handshake_timeout); ConnectionMade runs after it succeeds; a failure fails CreateConnection (the
// client's waiter) or, on a server, closes the connection without troubling the exception handler (TLS and
// socket errors are OSError-like in asyncio's terms). Close flushes the buffer, sends close_notify
// (ShutdownAsync) and closes the socket. The shutdown timeout (30 s by default) bounds that whole close, from
// the moment Close is called, flushing included (asyncio's _start_shutdown arms the timer before _do_flush):
// a peer that stops reading would otherwise hold the write pump (and the raw socket's close) forever. On
// expiry the raw transport is aborted and the protocol's ConnectionLost gets a TimeoutException (asyncio's
// _check_shutdown_timeout: "SSL shutdown timed out").
//
// Differences from asyncio: WriteEof is not supported (as in asyncio, CanWriteEof is false); Write after
// Close throws, as for plain transports.

/// <summary>A TLS stream transport over a plain one; see the file's opening comment.</summary>
internal sealed class SslTransport : TransportBase
{
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan DefaultShutdownTimeout = TimeSpan.FromSeconds(30);

    readonly ITransport _raw;
    readonly StreamProtocol _rawProtocol;
    readonly AsyncConnectionStream _rawStream;
    readonly SslStream _ssl;
    readonly SslClientAuthenticationOptions? _client;
    readonly SslServerAuthenticationOptions? _server;
    readonly TimeSpan _handshakeTimeout, _shutdownTimeout;
    Future? _waiter;
    WriteBuffer _buffer;
    int _inFlight;
    bool _writing;
    bool _paused;
    Future? _resume;
    bool _connLost;
    bool _protocolConnected;
    bool _shutdownStarted;
    /// <summary>The shutdown timeout's timer, armed by <see cref="Close"/>; cancelled once the connection is lost.</summary>
    TimerHandle? _shutdownTimer;
    AioTask? _readPump;
    readonly bool _callConnectionMade;

    SslTransport(EventLoop loop, ITransport raw, StreamProtocol rawProtocol, AsyncStreamReader rawReader, BaseProtocol protocol,
        Future? waiter, Server? server, SslClientAuthenticationOptions? client, string? serverHostname, SslServerAuthenticationOptions? serverOptions,
        TimeSpan? handshakeTimeout, TimeSpan? shutdownTimeout, bool callConnectionMade = true) : base(loop, protocol, server)
    {
        _callConnectionMade = callConnectionMade;
        _raw = raw;
        _rawProtocol = rawProtocol;
        _rawStream = new AsyncConnectionStream(rawReader, new AsyncStreamWriter(raw, rawProtocol, rawReader, loop), ownsConnection: false);
        _ssl = new SslStream(_rawStream, leaveInnerStreamOpen: true);
        _client = client == null ? null : WithHost(client, serverHostname);
        _server = serverOptions;
        Debug.Assert(!(handshakeTimeout <= TimeSpan.Zero) && !(shutdownTimeout <= TimeSpan.Zero), "callers check the timeouts (CheckTimeouts) before anything is connected");
        _handshakeTimeout = handshakeTimeout ?? DefaultHandshakeTimeout;
        _shutdownTimeout = shutdownTimeout ?? DefaultShutdownTimeout;
        _waiter = waiter;
        foreach (var key in (string[])["socket", "sockname", "peername"]) Extra[key] = raw.GetExtraInfo(key);
        Extra["sslcontext"] = (object?)client ?? serverOptions; // the caller's options, not WithHost's copy
        Extra["ssl_object"] = _ssl;
        loop.CreateTask(Handshake, "TLS handshake");
    }

    /// <summary>Throws unless the timeouts are positive (or <see langword="null"/>: the defaults); asyncio's <c>ValueError</c>.</summary>
    public static void CheckTimeouts(TimeSpan? handshakeTimeout, TimeSpan? shutdownTimeout)
    {
        if (handshakeTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(handshakeTimeout), "The handshake timeout must be positive.");
        if (shutdownTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(shutdownTimeout), "The shutdown timeout must be positive.");
    }

    protected override int DefaultHighWater => WaterMarks.DefaultHighTls;

    /// <summary>A TLS transport over a new plain transport of <paramref name="sock"/>.</summary>
    public static ITransport Create(EventLoop loop, Socket sock, BaseProtocol protocol, Future? waiter, Server? server,
        SslClientAuthenticationOptions? clientSsl, SslServerAuthenticationOptions? serverSsl, string? serverHostname,
        TimeSpan? handshakeTimeout, TimeSpan? shutdownTimeout)
    {
        var rawReader = new AsyncStreamReader();
        var rawProtocol = new StreamProtocol(rawReader);
        var raw = new SocketTransport(loop, sock, rawProtocol, null, null);
        return new SslTransport(loop, raw, rawProtocol, rawReader, protocol, waiter, server,
            clientSsl, serverHostname, serverSsl, handshakeTimeout, shutdownTimeout);
    }

    /// <summary>A TLS transport over an existing plain transport (start_tls).</summary>
    public static SslTransport Wrap(EventLoop loop, ITransport raw, BaseProtocol protocol, Future waiter,
        SslClientAuthenticationOptions? clientSsl, SslServerAuthenticationOptions? serverSsl, TimeSpan? handshakeTimeout, TimeSpan? shutdownTimeout)
    {
        var rawReader = new AsyncStreamReader();
        var rawProtocol = new StreamProtocol(rawReader);
        raw.Protocol = rawProtocol;
        rawProtocol.ConnectionMade(raw);
        raw.ResumeReading();
        return new SslTransport(loop, raw, rawProtocol, rawReader, protocol, waiter, null,
            clientSsl, null, serverSsl, handshakeTimeout, shutdownTimeout,
            callConnectionMade: false); // asyncio's start_tls: the protocol is already connected
    }

    static SslClientAuthenticationOptions WithHost(SslClientAuthenticationOptions o, string? host)
    {
        if (!string.IsNullOrEmpty(o.TargetHost) || string.IsNullOrEmpty(host)) return o;
        // The caller's options are left untouched: the host name to validate comes from the connection.
        return new SslClientAuthenticationOptions
        {
            TargetHost = host,
            RemoteCertificateValidationCallback = o.RemoteCertificateValidationCallback,
            LocalCertificateSelectionCallback = o.LocalCertificateSelectionCallback,
            ClientCertificates = o.ClientCertificates,
            ClientCertificateContext = o.ClientCertificateContext,
            EnabledSslProtocols = o.EnabledSslProtocols,
            ApplicationProtocols = o.ApplicationProtocols,
            CertificateRevocationCheckMode = o.CertificateRevocationCheckMode,
            EncryptionPolicy = o.EncryptionPolicy,
            AllowRenegotiation = o.AllowRenegotiation,
            CipherSuitesPolicy = o.CipherSuitesPolicy,
            CertificateChainPolicy = o.CertificateChainPolicy,
        };
    }

    async Task Handshake()
    {
        try
        {
            await Aio.Timeout(_handshakeTimeout.TotalSeconds, async () =>
            {
                if (_client != null) await _ssl.AuthenticateAsClientAsync(_client, CancellationToken.None);
                else await _ssl.AuthenticateAsServerAsync(_server!, CancellationToken.None);
            });
        }
        catch (Exception e)
        {
            bool timedOut = e is TimeoutException;
            if (timedOut) e = new TimeoutException($"SSL handshake is taking longer than {_handshakeTimeout.TotalSeconds} seconds: aborting the connection", e);
            if (_waiter is { IsDone: false } w) w.SetException(e);
            else if (!IsOsErrorLike(e)) Loop.CallExceptionHandler(new ExceptionContext("SSL handshake failed", e));
            _waiter = null;
            // After start_tls the protocol was connected already (on the plain transport): a handshake that
            // failed loses its connection, as asyncio's SSLProtocol tells it; one that timed out or was
            // cancelled does not (asyncio's is still in its handshake state then).
            bool tell = !_callConnectionMade && !timedOut && e is not OperationCanceledException;
            if (tell) _protocolConnected = true;
            ForceClose(e, callProtocol: tell);
            return;
        }
        if (_connLost)
        {
            // Closed while the handshake finished: the creating task was cancelled (and its waiter with it).
            if (_waiter is { IsDone: false } lost) lost.SetResult();
            _waiter = null;
            return;
        }
        Extra["peercert"] = _ssl.RemoteCertificate;
        Extra["cipher"] = _ssl.NegotiatedCipherSuite;
        Extra["compression"] = null;
        // Connected before ConnectionMade runs (asyncio's _on_handshake_complete sets WRAPPED first): a Write
        // there starts the write pump, and a Close there flushes and shuts down as any other close (it used to
        // abort, dropping what ConnectionMade had written).
        _protocolConnected = true;
        try
        {
            if (_callConnectionMade) ProtocolField.ConnectionMade(this);
        }
        catch (Exception e)
        {
            if (_waiter is { IsDone: false } w) w.SetException(e);
            else Loop.CallExceptionHandler(new ExceptionContext($"protocol.ConnectionMade() failed ({this})", e));
            _waiter = null;
            ForceClose(e, callProtocol: false);
            return;
        }
        if (_waiter is { IsDone: false } ok) ok.SetResult();
        _waiter = null;
        _readPump = Loop.CreateTask(ReadPump, "TLS read pump");
        if (_buffer.Count != 0 && !_writing) StartWritePump();
    }

    // A cancellation is never worth a report: SslStream runs with CancellationToken.None, so it comes from the
    // loop (an abort or close cancelled the handshake or the pump). It reaches here as our CancelledError, or,
    // when it ended an await inside SslStream's own pooled async methods, as the TaskCanceledException that
    // SslStream rethrows (seen as a rare "SSL handshake failed" report when CloseClients aborted a handshake).
    static bool IsOsErrorLike(Exception e) =>
        e is IOException or SocketException or AuthenticationException or TimeoutException or OperationCanceledException;

    // ---- reading ----

    public override bool IsReading => !_paused && !Closing;

    public override void PauseReading()
    {
        if (!IsReading) return;
        _paused = true;
    }

    public override void ResumeReading()
    {
        if (Closing || !_paused) return;
        _paused = false;
        if (_resume is { IsDone: false } f) f.SetResult();
        _resume = null;
    }

    async Task ReadPump()
    {
        // Rented for the life of the pump and returned when it ends. Safe: the pump only ends after its
        // await of SslStream.ReadAsync has finished (a foreign await is not cut short by cancelling the pump;
        // cancellation reaches the raw reader's wait inside SslStream, which then fails the read), so no
        // read still writes into the buffer once it is back in the pool.
        var buf = System.Buffers.ArrayPool<byte>.Shared.Rent(ReadBufferSize);
        try
        {
            while (!_connLost && !Closing)
            {
                if (!await WaitWhilePaused()) return;
                int n = await _ssl.ReadAsync(buf);
                if (_connLost || Closing) return;
                // Paused while the read was pending: asyncio calls no data_received (nor eof_received) while
                // reading is paused, so the chunk waits here for ResumeReading, and newer data waits behind it.
                if (!await WaitWhilePaused()) return;
                if (n == 0)
                {
                    bool keepOpen = false;
                    try { keepOpen = ProtocolField is Protocol p ? p.EofReceived() : ProtocolField is BufferedProtocol b && b.EofReceived(); }
                    catch (Exception e) { FatalError(e, "Fatal error: protocol.EofReceived() call failed."); return; }
                    _ = keepOpen; // a TLS connection cannot stay half-open (asyncio warns and closes too)
                    Close();
                    return;
                }
                try { Deliver(buf.AsSpan(0, n)); }
                catch (Exception e) { FatalError(e, "Fatal error: protocol.DataReceived() call failed."); return; }
            }
        }
        catch (Exception) when (_connLost || Closing)
        {
            // The connection is being closed or aborted: the read ends with it.
        }
        catch (Exception e)
        {
            FatalError(e, "Fatal read error on TLS transport");
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>Waits while reading is paused (until <see cref="ResumeReading"/>); <see langword="false"/> once the connection is closing or lost.</summary>
    async ValueTask<bool> WaitWhilePaused()
    {
        while (_paused)
        {
            _resume = Loop.CreateFuture();
            await _resume;
            if (_connLost || Closing) return false;
        }
        return true;
    }

    /// <summary>The size of the read pump's buffer, rented from the shared pool (four TLS records' payload).</summary>
    const int ReadBufferSize = 64 * 1024;

    void Deliver(ReadOnlySpan<byte> data)
    {
        switch (ProtocolField)
        {
            case Protocol p:
                p.DataReceived(data);
                break;
            case BufferedProtocol b:
                while (!data.IsEmpty)
                {
                    var into = b.GetBuffer(data.Length);
                    if (into.IsEmpty) throw new InvalidOperationException("GetBuffer() returned an empty buffer.");
                    int n = Math.Min(into.Length, data.Length);
                    data[..n].CopyTo(into.Span);
                    b.BufferUpdated(n);
                    data = data[n..];
                }
                break;
        }
    }

    // ---- writing ----

    public override int WriteBufferSize => _buffer.Count + _inFlight;

    public override bool CanWriteEof => false;

    public override void WriteEof() => throw new NotSupportedException("A TLS transport cannot write EOF (half-close); close it instead.");

    public override void Write(ReadOnlySpan<byte> data)
    {
        Loop.CheckThread(nameof(ITransport), nameof(Write));
        if (Closing || _connLost) ThrowClosed(null);
        if (data.IsEmpty) return;
        _buffer.Append(data);
        MaybePauseProtocol();
        if (!_writing && _protocolConnected) StartWritePump();
    }

    void StartWritePump()
    {
        _writing = true;
        Loop.CreateTask(WritePump, "TLS write pump");
    }

    async Task WritePump()
    {
        byte[] chunk = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (_buffer.Count != 0 && !_connLost)
            {
                int n = Math.Min(chunk.Length, _buffer.Count);
                _buffer.Pending[..n].CopyTo(chunk);
                _buffer.Consume(n);
                _inFlight = n;
                await _ssl.WriteAsync(chunk.AsMemory(0, n));
                _inFlight = 0;   // (already 0 if the connection was lost meanwhile)
                MaybeResumeProtocol();
            }
        }
        catch (Exception e)
        {
            _inFlight = 0;
            _writing = false;
            if (!_connLost) FatalError(e, "Fatal write error on TLS transport");
            return;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(chunk);
        }
        _writing = false;
        if (Closing && !_connLost) StartShutdown();
    }

    // ---- closing ----

    public override void Close()
    {
        Loop.CheckThread(nameof(ITransport), nameof(Close));
        if (Closing) return;
        Closing = true;
        if (_resume is { IsDone: false } f) f.SetResult();
        if (!_protocolConnected) { ForceClose(null, callProtocol: false); return; }
        _shutdownTimer = Loop.CallLater(_shutdownTimeout.TotalSeconds, s_shutdownTimedOut, this);
        if (!_writing) StartShutdown();
    }

    static readonly Action<object?> s_shutdownTimedOut = static o =>
    {
        var t = (SslTransport)o!;
        t._shutdownTimer = null;
        t.ForceClose(new TimeoutException("SSL shutdown timed out"), callProtocol: true);
    };

    void CancelShutdownTimer()
    {
        _shutdownTimer?.Cancel();
        _shutdownTimer = null;
    }

    void StartShutdown()
    {
        if (_shutdownStarted) return;
        _shutdownStarted = true;
        Loop.CreateTask(Shutdown, "TLS shutdown");
    }

    async Task Shutdown()
    {
        // No time limit here: the shutdown timer armed by Close aborts the raw transport on expiry, which
        // ends both awaits (the raw writes' drain and the raw close).
        try { await _ssl.ShutdownAsync(); }
        catch (Exception e) when (e is not CancelledError) { }
        if (_connLost) return;
        _raw.Close();
        try { await _rawProtocol.WaitClosed(); } catch (Exception e) when (e is not CancelledError) { }
        if (_connLost) return;
        CancelShutdownTimer();
        _connLost = true;
        CallConnectionLost(null, true);
    }

    public override void Abort()
    {
        Loop.CheckThread(nameof(ITransport), nameof(Abort));
        ForceClose(null, callProtocol: true);
    }

    void FatalError(Exception e, string message)
    {
        // SslStream wraps the plain connection's errors ("The read operation failed, see inner exception"): the
        // protocol gets the socket's own error, as on a plain connection (asyncio's ConnectionResetError).
        if (e is IOException { InnerException: SocketException se }) e = se;
        if (!IsOsErrorLike(e)) Loop.CallExceptionHandler(new ExceptionContext($"{message} ({this})", e));
        ForceClose(e, callProtocol: true);
    }

    void ForceClose(Exception? e, bool callProtocol)
    {
        if (_connLost) return;
        _connLost = true;
        Closing = true;
        CancelShutdownTimer();
        _buffer.Release();
        _inFlight = 0;   // dropped with the buffer: nothing is left to write once the connection is lost
        if (_resume is { IsDone: false } f) f.SetResult();
        _readPump?.Cancel();
        _raw.Abort();
        var lost = e;
        bool call = callProtocol && _protocolConnected;
        Loop.EnqueueInternal(o => ((SslTransport)o!).CallConnectionLost(lost, call), this);
    }

    void CallConnectionLost(Exception? e, bool callProtocol)
    {
        try
        {
            if (callProtocol && _protocolConnected) ProtocolField.ConnectionLost(e);
        }
        finally
        {
            _buffer.Release();
            _ssl.Dispose();
            DetachFromServer();
        }
    }

    public override string ToString() =>
        $"<SslTransport {(Extra.TryGetValue("peername", out var p) ? p : "?")} {(_connLost ? "closed" : Closing ? "closing" : "open")}>";
}

public sealed partial class EventLoop
{
    /// <summary>
    /// Upgrades <paramref name="transport"/> to TLS and returns the new transport, which delivers to
    /// <paramref name="protocol"/>, once the handshake is done; asyncio's <c>loop.start_tls</c>. The old
    /// transport must not be used afterwards. Pass <paramref name="client"/> on the connecting side,
    /// <paramref name="server"/> on the accepting side.
    /// </summary>
    /// <exception cref="AuthenticationException">The handshake failed (for example certificate validation).</exception>
    /// <exception cref="TimeoutException">The handshake took longer than <paramref name="handshakeTimeout"/> (default 60 s).</exception>
    public async Task<ITransport> StartTls(ITransport transport, BaseProtocol protocol,
        SslClientAuthenticationOptions? client, SslServerAuthenticationOptions? server,
        TimeSpan? handshakeTimeout = null, TimeSpan? shutdownTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(protocol);
        if ((client == null) == (server == null)) throw new ArgumentException("Pass exactly one of client or server options.");
        if (transport is not SocketTransport) throw new ArgumentException($"StartTls needs a plain socket transport, got {transport}.", nameof(transport));
        CheckThread(nameof(StartTls));
        SslTransport.CheckTimeouts(handshakeTimeout, shutdownTimeout);   // before the transport is touched
        transport.PauseReading();
        var waiter = CreateFuture();
        var tls = SslTransport.Wrap(this, transport, protocol, waiter, client, server, handshakeTimeout, shutdownTimeout);
        try { await waiter; }
        catch
        {
            tls.Abort();
            throw;
        }
        return tls;
    }
}
