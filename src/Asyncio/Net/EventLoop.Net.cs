using System.Net;
using System.Net.Sockets;

namespace Asyncio;

// The connection factories of the loop (asyncio's create_connection, create_server and friends). They
// make or take a socket, wrap it in a SocketTransport (or a TLS transport over one) with a protocol from
// the factory, and complete once the protocol's ConnectionMade has run.

public sealed partial class EventLoop
{
    byte[]? _receiveBuffer;

    /// <summary>asyncio's <c>max_size</c>: the most one receive of a stream transport takes.</summary>
    internal const int MaxReceiveSize = 256 * 1024;

    /// <summary>The one receive buffer of the loop's stream transports (data is handed out only during a callback).</summary>
    internal byte[] SharedReceiveBuffer => _receiveBuffer ??= GC.AllocateUninitializedArray<byte>(MaxReceiveSize, pinned: true);

    /// <summary>
    /// Opens a TCP connection to <paramref name="host"/>:<paramref name="port"/> and attaches a protocol made
    /// by <paramref name="protocolFactory"/>; asyncio's <c>create_connection</c>. Every address the host
    /// resolves to is tried in turn, or, with <paramref name="happyEyeballsDelay"/>, raced by Happy Eyeballs.
    /// </summary>
    /// <param name="protocolFactory">Makes the protocol of the connection.</param>
    /// <param name="host">A host name or address.</param>
    /// <param name="port">The port.</param>
    /// <param name="localEndPoint">A local address to bind the socket to before connecting (asyncio's <c>local_addr</c>),
    /// or <see langword="null"/>: an <see cref="IPEndPoint"/>, or a <see cref="DnsEndPoint"/> resolved first. Each
    /// connection attempt binds to the first of its addresses of the attempt's family; an attempt with none fails.</param>
    /// <param name="ssl">TLS client options to wrap the connection in TLS (certificate validation stays on unless the options turn it off).</param>
    /// <param name="sslHandshakeTimeout">The TLS handshake's time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">The time limit on a TLS close, from Close to the socket closed, flushing included (default 30 s); on expiry the connection is aborted and ConnectionLost gets a <see cref="TimeoutException"/>.</param>
    /// <param name="happyEyeballsDelay">Enables Happy Eyeballs (RFC 8305; asyncio's <c>happy_eyeballs_delay</c>): the
    /// time to give a connection attempt before the next address is tried beside it (the RFC recommends 250 ms).
    /// The first attempt to connect wins and the others are cancelled. <see langword="null"/> (the default): one
    /// attempt at a time, each after the previous one has failed.</param>
    /// <param name="interleave">Reorders the addresses by family (asyncio's <c>interleave</c>, RFC 8305's "First
    /// Address Family Count"): that many addresses of the first family, then one of each family in turn. 0 keeps
    /// the resolver's order; the default is 1 with Happy Eyeballs and 0 without.</param>
    /// <param name="allErrors">When no address can be connected to, throw an <see cref="ExceptionGroup"/> with the
    /// error of every attempt (asyncio's <c>all_errors</c>) instead of the first attempt's error.</param>
    /// <returns>The transport and the protocol.</returns>
    /// <exception cref="SocketException">No address could be connected to (the error of the first attempt), or the host has none.</exception>
    /// <exception cref="ExceptionGroup">No address could be connected to, with <paramref name="allErrors"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="happyEyeballsDelay"/> or <paramref name="interleave"/> is negative.</exception>
    /// <exception cref="ArgumentException"><paramref name="localEndPoint"/> is neither an <see cref="IPEndPoint"/> nor a <see cref="DnsEndPoint"/>,
    /// or a TLS time limit is given without <paramref name="ssl"/> (asyncio's ValueError "... is only meaningful with ssl").</exception>
    public async Task<(ITransport Transport, TProtocol Protocol)> CreateConnection<TProtocol>(Func<TProtocol> protocolFactory, string host, int port,
        EndPoint? localEndPoint = null, System.Net.Security.SslClientAuthenticationOptions? ssl = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null,
        TimeSpan? happyEyeballsDelay = null, int? interleave = null, bool allErrors = false) where TProtocol : BaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(host);
        if (happyEyeballsDelay is { } delay) ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero, nameof(happyEyeballsDelay));
        if (interleave is { } n) ArgumentOutOfRangeException.ThrowIfNegative(n, nameof(interleave));
        CheckTlsOnlyArguments(ssl != null, sslHandshakeTimeout, sslShutdownTimeout);
        ConnectAttempts.CheckLocal(localEndPoint);
        CheckThread(nameof(CreateConnection));
        CheckNotClosed();
        IReadOnlyList<AddrInfo> infos = await GetAddrInfo(host, port, type: SocketType.Stream);
        var locals = localEndPoint == null ? null : await ConnectAttempts.ResolveLocal(this, localEndPoint);
        int firstFamilyCount = interleave ?? (happyEyeballsDelay != null ? 1 : 0);
        if (firstFamilyCount > 0) infos = ConnectAttempts.Interleave(infos, i => i.Family, firstFamilyCount);
        var errors = new Exception?[infos.Count];
        var sock = await ConnectAttempts.Connect(this, infos.Select(i => i.EndPoint).ToList(), locals, happyEyeballsDelay, errors);
        if (sock == null) ConnectAttempts.ThrowFailure(errors, allErrors, host, port);
        return await CreateConnectionTransport(sock, protocolFactory, ssl, host, sslHandshakeTimeout, sslShutdownTimeout);
    }

    /// <summary>
    /// Wraps an already connected socket in a transport and protocol; asyncio's <c>create_connection(sock=...)</c>.
    /// The loop takes ownership of the socket.
    /// </summary>
    public Task<(ITransport Transport, TProtocol Protocol)> CreateConnection<TProtocol>(Func<TProtocol> protocolFactory, Socket socket,
        System.Net.Security.SslClientAuthenticationOptions? ssl = null, TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null)
        where TProtocol : BaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(socket);
        // asyncio's create_connection(sock=..., ssl=...): a socket has no host name to check the certificate against.
        if (ssl != null && string.IsNullOrEmpty(ssl.TargetHost))
            throw new ArgumentException("You must set the TargetHost of the ssl options when using ssl without a host (asyncio's server_hostname).", nameof(ssl));
        CheckTlsOnlyArguments(ssl != null, sslHandshakeTimeout, sslShutdownTimeout);
        CheckThread(nameof(CreateConnection));
        CheckNotClosed();
        return CreateConnectionTransport(socket, protocolFactory, ssl, ssl?.TargetHost, sslHandshakeTimeout, sslShutdownTimeout);
    }

    /// <summary>
    /// Wraps a socket accepted outside the loop in a transport and protocol; asyncio's
    /// <c>connect_accepted_socket</c>. With <paramref name="ssl"/> the TLS handshake runs as the server side.
    /// </summary>
    public async Task<(ITransport Transport, TProtocol Protocol)> ConnectAcceptedSocket<TProtocol>(Func<TProtocol> protocolFactory, Socket socket,
        System.Net.Security.SslServerAuthenticationOptions? ssl = null, TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null)
        where TProtocol : BaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(socket);
        CheckTlsOnlyArguments(ssl != null, sslHandshakeTimeout, sslShutdownTimeout);
        CheckThread(nameof(ConnectAcceptedSocket));
        CheckNotClosed();
        var protocol = protocolFactory();
        var waiter = CreateFuture();
        var transport = MakeTransport(socket, protocol, waiter, null, null, ssl, null, sslHandshakeTimeout, sslShutdownTimeout);
        await AwaitTransportWaiter(transport, waiter);
        return (transport, protocol);
    }

    async Task<(ITransport, TProtocol)> CreateConnectionTransport<TProtocol>(Socket sock, Func<TProtocol> factory,
        System.Net.Security.SslClientAuthenticationOptions? ssl, string? host, TimeSpan? hs, TimeSpan? sd) where TProtocol : BaseProtocol
    {
        TProtocol protocol;
        try { protocol = factory(); }
        catch { sock.Dispose(); throw; }
        var waiter = CreateFuture();
        var transport = MakeTransport(sock, protocol, waiter, null, ssl, null, host, hs, sd);
        await AwaitTransportWaiter(transport, waiter);
        return (transport, protocol);
    }

    static async Task AwaitTransportWaiter(ITransport transport, Future waiter)
    {
        try { await waiter; }
        catch
        {
            transport.Close();
            throw;
        }
    }

    /// <summary>Makes the transport of a connected socket: plain, or TLS over a plain one.</summary>
    internal ITransport MakeTransport(Socket sock, BaseProtocol protocol, Future? waiter, Server? server,
        System.Net.Security.SslClientAuthenticationOptions? clientSsl, System.Net.Security.SslServerAuthenticationOptions? serverSsl,
        string? serverHostname, TimeSpan? handshakeTimeout, TimeSpan? shutdownTimeout)
    {
        if (clientSsl == null && serverSsl == null) return new SocketTransport(this, sock, protocol, waiter, server);
        return SslTransport.Create(this, sock, protocol, waiter, server, clientSsl, serverSsl, serverHostname, handshakeTimeout, shutdownTimeout);
    }

    /// <summary>
    /// Listens on <paramref name="host"/>:<paramref name="port"/> and makes a transport and a protocol (from
    /// <paramref name="protocolFactory"/>) for every connection; asyncio's <c>create_server</c>.
    /// </summary>
    /// <param name="protocolFactory">Makes the protocol of each connection.</param>
    /// <param name="host">The address or host name to listen on; <see langword="null"/> or empty for every interface (IPv4 and IPv6).</param>
    /// <param name="port">The port; 0 picks a free one (see <see cref="Server.Sockets"/>).</param>
    /// <param name="backlog">The listen backlog, and the most connections accepted per readiness (asyncio's default 100).</param>
    /// <param name="reuseAddress">SO_REUSEADDR (default on, as asyncio on Unix).</param>
    /// <param name="reusePort">SO_REUSEPORT, to share the port between several loops or processes.</param>
    /// <param name="startServing">Whether to accept at once; otherwise call <see cref="Server.StartServing"/> or <see cref="Server.ServeForever"/>.</param>
    public Task<Server> CreateServer(Func<BaseProtocol> protocolFactory, string? host, int port, int backlog = 100,
        bool reuseAddress = true, bool reusePort = false, bool startServing = true) =>
        CreateServer(protocolFactory, host == null ? null : [host], port, backlog, reuseAddress, reusePort, startServing, null, null, null);

    /// <summary>The addresses a server on <paramref name="hosts"/> listens on (without duplicates).</summary>
    internal async Task<List<IPEndPoint>> ListenEndpoints(IEnumerable<string>? hosts, int port)
    {
        var endpoints = new List<IPEndPoint>();
        // asyncio: no host, or an empty one, means every interface (not the local host name's addresses).
        foreach (var h in hosts ?? [""])
            foreach (var i in await GetAddrInfo(string.IsNullOrEmpty(h) ? null : h, port, type: SocketType.Stream, passive: true))
                if (!endpoints.Contains(i.EndPoint)) endpoints.Add(i.EndPoint);
        return endpoints;
    }

    /// <summary>
    /// As <see cref="CreateServer(Func{BaseProtocol}, string?, int, int, bool, bool, bool)"/>, on several hosts
    /// and optionally with TLS (<paramref name="ssl"/>). <paramref name="hosts"/> <see langword="null"/>, or an
    /// empty host name in it, means every interface.
    /// </summary>
    public async Task<Server> CreateServer(Func<BaseProtocol> protocolFactory, IEnumerable<string>? hosts, int port, int backlog = 100,
        bool reuseAddress = true, bool reusePort = false, bool startServing = true,
        System.Net.Security.SslServerAuthenticationOptions? ssl = null, TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentOutOfRangeException.ThrowIfNegative(backlog);
        CheckTlsOnlyArguments(ssl != null, sslHandshakeTimeout, sslShutdownTimeout);
        CheckThread(nameof(CreateServer));
        CheckNotClosed();
        var endpoints = await ListenEndpoints(hosts, port).ConfigureAwait(true);
        var sockets = new List<Socket>();
        try
        {
            foreach (var ep in endpoints)
            {
                var s = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(s);
                if (reuseAddress && !OperatingSystem.IsWindows()) s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                if (reusePort) SetReusePort(s);
                // As asyncio: an IPv6 socket does not also take IPv4, so that both can be bound on one port.
                if (ep.AddressFamily == AddressFamily.InterNetworkV6) s.DualMode = false;
                try { s.Bind(ep); }
                catch (SocketException e) { throw BindFailure(ep, e); }
                s.Blocking = false;
            }
        }
        catch
        {
            foreach (var s in sockets) s.Dispose();
            throw;
        }
        return await MakeServer(sockets, protocolFactory, backlog, startServing, ssl, sslHandshakeTimeout, sslShutdownTimeout);
    }

    /// <summary>Serves on an already bound socket; asyncio's <c>create_server(sock=...)</c>. The loop takes ownership of it.</summary>
    public Task<Server> CreateServer(Func<BaseProtocol> protocolFactory, Socket socket, int backlog = 100, bool startServing = true,
        System.Net.Security.SslServerAuthenticationOptions? ssl = null, TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(socket);
        CheckTlsOnlyArguments(ssl != null, sslHandshakeTimeout, sslShutdownTimeout);
        CheckThread(nameof(CreateServer));
        CheckNotClosed();
        if (socket.SocketType != SocketType.Stream) throw new ArgumentException($"A stream socket was expected, got {socket.SocketType}.", nameof(socket));
        socket.Blocking = false;
        return MakeServer([socket], protocolFactory, backlog, startServing, ssl, sslHandshakeTimeout, sslShutdownTimeout);
    }

    async Task<Server> MakeServer(List<Socket> sockets, Func<BaseProtocol> factory, int backlog, bool startServing,
        System.Net.Security.SslServerAuthenticationOptions? ssl, TimeSpan? hs, TimeSpan? sd)
    {
        var server = new Server(this, sockets, backlog, (conn, srv) =>
        {
            var protocol = factory();
            return MakeTransport(conn, protocol, null, srv, null, ssl, null, hs, sd);
        });
        if (startServing)
        {
            server.StartServingCore();
            await Aio.Sleep(0); // asyncio: "Skip one loop iteration so that all 'loop.add_reader' go through."
        }
        return server;
    }

    /// <summary>A bind error that names the address (asyncio's "error while attempting to bind on address ...").</summary>
    internal static SocketException BindFailure(EndPoint address, SocketException e) =>
        new((int)e.SocketErrorCode, $"error while attempting to bind on address {address}: {e.Message}");

    static void SetReusePort(Socket s)
    {
        if (OperatingSystem.IsWindows()) throw new NotSupportedException("reusePort is not supported on Windows.");
        // SO_REUSEPORT: 15 on Linux, 0x200 on the BSDs and macOS.
        int optname = OperatingSystem.IsLinux() ? 15 : 0x200;
        s.SetRawSocketOption(0xFFFF & (OperatingSystem.IsLinux() ? 1 : 0xFFFF), optname, BitConverter.GetBytes(1));
    }

    static bool IsStaleUnixSocket(string path)
    {
        // A socket file nobody listens on refuses connections; anything else (a live server, a regular
        // file) is left alone and the bind error stands. A file that is not a socket refuses connections
        // too, so its type is checked as well (asyncio checks S_ISSOCK before it unlinks). A socket bound to
        // the path in /proc/net/unix is taken as live without a probe connection, which a live server would
        // accept (UnixFileProbe.cs says why a path missing there is still probed).
        if (UnixFileProbe.IsBoundHere(path)) return false;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { probe.Connect(new UnixDomainSocketEndPoint(path)); return false; }
        catch (SocketException e) { return e.SocketErrorCode == SocketError.ConnectionRefused && UnixFileProbe.IsSocket(path); }
    }

    /// <summary>
    /// Opens a Unix domain stream connection to <paramref name="path"/>; asyncio's <c>create_unix_connection</c>.
    /// </summary>
    /// <param name="protocolFactory">Makes the protocol of the connection.</param>
    /// <param name="path">The socket's path (a leading NUL names a Linux abstract socket).</param>
    /// <param name="ssl">TLS client options to wrap the connection in TLS (certificate validation stays on unless the options turn it off).</param>
    /// <param name="serverHostname">The host name the server's certificate is checked against (asyncio's
    /// <c>server_hostname</c>); a path gives none, so with <paramref name="ssl"/> this or the options'
    /// <see cref="System.Net.Security.SslClientAuthenticationOptions.TargetHost"/> (which wins when set) is required.</param>
    /// <param name="sslHandshakeTimeout">The TLS handshake's time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">The time limit on a TLS close, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <returns>The transport and the protocol.</returns>
    /// <exception cref="ArgumentException"><paramref name="ssl"/> without a host name, or a TLS argument without
    /// <paramref name="ssl"/> (asyncio's ValueError).</exception>
    /// <exception cref="SocketException">The connection failed: <see cref="SocketError.AddressNotAvailable"/> when
    /// nothing exists at the path (.NET's name for ENOENT; Python's <c>FileNotFoundError</c>),
    /// <see cref="SocketError.ConnectionRefused"/> when a socket file is there but nobody listens (Python's
    /// <c>ConnectionRefusedError</c>).</exception>
    public async Task<(ITransport Transport, TProtocol Protocol)> CreateUnixConnection<TProtocol>(Func<TProtocol> protocolFactory, string path,
        System.Net.Security.SslClientAuthenticationOptions? ssl = null, string? serverHostname = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null)
        where TProtocol : BaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentException.ThrowIfNullOrEmpty(path);
        // asyncio's create_unix_connection: a path is no host name, so TLS needs one given.
        if (ssl != null && serverHostname == null && string.IsNullOrEmpty(ssl.TargetHost))
            throw new ArgumentException("you have to pass server_hostname when using ssl", nameof(serverHostname));
        if (ssl == null && serverHostname != null)
            throw new ArgumentException("server_hostname is only meaningful with ssl", nameof(serverHostname));
        CheckTlsOnlyArguments(ssl != null, sslHandshakeTimeout, sslShutdownTimeout);
        CheckThread(nameof(CreateUnixConnection));
        CheckNotClosed();
        var sock = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
        try { await SockConnect(sock, new UnixDomainSocketEndPoint(path)); }
        catch { sock.Dispose(); throw; }
        return await CreateConnectionTransport(sock, protocolFactory, ssl, serverHostname, sslHandshakeTimeout, sslShutdownTimeout);
    }

    /// <summary>
    /// asyncio's ValueErrors: "ssl_handshake_timeout is only meaningful with ssl" (and the same for the shutdown
    /// timeout), and a timeout that is not positive; checked before anything is connected.
    /// </summary>
    static void CheckTlsOnlyArguments(bool ssl, TimeSpan? handshakeTimeout, TimeSpan? shutdownTimeout)
    {
        if (ssl) { SslTransport.CheckTimeouts(handshakeTimeout, shutdownTimeout); return; }
        if (handshakeTimeout != null) throw new ArgumentException("ssl_handshake_timeout is only meaningful with ssl", "sslHandshakeTimeout");
        if (shutdownTimeout != null) throw new ArgumentException("ssl_shutdown_timeout is only meaningful with ssl", "sslShutdownTimeout");
    }

    /// <summary>
    /// Listens on the Unix domain socket <paramref name="path"/>; asyncio's <c>create_unix_server</c>. A stale
    /// socket file at the path is removed first.
    /// </summary>
    /// <param name="protocolFactory">Makes the protocol of each connection.</param>
    /// <param name="path">The socket's path (a leading NUL names a Linux abstract socket).</param>
    /// <param name="backlog">The listen backlog, and the most connections accepted per readiness (asyncio's default 100).</param>
    /// <param name="startServing">Whether to accept at once; otherwise call <see cref="Server.StartServing"/> or <see cref="Server.ServeForever"/>.</param>
    /// <param name="ssl">TLS server options to serve TLS.</param>
    /// <param name="sslHandshakeTimeout">The TLS handshake's time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">The time limit on a TLS close, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <exception cref="ArgumentException">A TLS time limit without <paramref name="ssl"/> (asyncio's ValueError).</exception>
    public Task<Server> CreateUnixServer(Func<BaseProtocol> protocolFactory, string path, int backlog = 100, bool startServing = true,
        System.Net.Security.SslServerAuthenticationOptions? ssl = null, TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckTlsOnlyArguments(ssl != null, sslHandshakeTimeout, sslShutdownTimeout);
        CheckThread(nameof(CreateUnixServer));
        CheckNotClosed();
        var sock = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            try { sock.Bind(new UnixDomainSocketEndPoint(path)); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && path[0] != '\0' && IsStaleUnixSocket(path))
            {
                File.Delete(path);
                sock.Bind(new UnixDomainSocketEndPoint(path));
            }
            sock.Blocking = false;
        }
        catch { sock.Dispose(); throw; }
        return MakeServer([sock], protocolFactory, backlog, startServing, ssl, sslHandshakeTimeout, sslShutdownTimeout);
    }
}
