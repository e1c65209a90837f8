namespace Asyncio;

public static partial class Aio
{
    /// <summary>
    /// Opens a TCP connection and returns a reader and a writer for it; asyncio's <c>open_connection</c>.
    /// </summary>
    /// <param name="host">Host name or address.</param>
    /// <param name="port">Port.</param>
    /// <param name="limit">The reader's line limit (default 64 KiB).</param>
    /// <param name="ssl">TLS client options to open a TLS connection (validation on unless the options turn it off).</param>
    /// <param name="sslHandshakeTimeout">TLS handshake time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">TLS close time limit, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <param name="happyEyeballsDelay">Enables Happy Eyeballs with this connection attempt delay; see <see cref="EventLoop.CreateConnection{TProtocol}(Func{TProtocol}, string, int, System.Net.EndPoint?, System.Net.Security.SslClientAuthenticationOptions?, TimeSpan?, TimeSpan?, TimeSpan?, int?, bool)"/>.</param>
    /// <param name="interleave">Reorders the addresses by family (default 1 with Happy Eyeballs, else 0); see <c>CreateConnection</c>.</param>
    /// <param name="allErrors">On failure, throw an <see cref="ExceptionGroup"/> with every attempt's error.</param>
    /// <param name="localEndPoint">A local address to bind to before connecting (asyncio's <c>local_addr</c>); see <c>CreateConnection</c>.</param>
    /// <exception cref="System.Net.Sockets.SocketException">The connection failed (the first attempt's error).</exception>
    /// <exception cref="ExceptionGroup">The connection failed, with <paramref name="allErrors"/>.</exception>
    public static Task<(AsyncStreamReader Reader, AsyncStreamWriter Writer)> OpenConnection(string host, int port,
        int limit = AsyncStreamReader.DefaultLimit, System.Net.Security.SslClientAuthenticationOptions? ssl = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null,
        TimeSpan? happyEyeballsDelay = null, int? interleave = null, bool allErrors = false, System.Net.EndPoint? localEndPoint = null) =>
        OpenStreams(limit, (loop, protocol) => loop.CreateConnection(protocol, host, port,
            localEndPoint: localEndPoint, ssl: ssl, sslHandshakeTimeout: sslHandshakeTimeout, sslShutdownTimeout: sslShutdownTimeout,
            happyEyeballsDelay: happyEyeballsDelay, interleave: interleave, allErrors: allErrors));

    /// <summary>
    /// The reader and writer of a connection that <paramref name="connect"/> opens on the running loop with the stream
    /// protocol it is given, over a reader with the line limit <paramref name="limit"/>.
    /// </summary>
    static async Task<(AsyncStreamReader Reader, AsyncStreamWriter Writer)> OpenStreams(int limit,
        Func<EventLoop, Func<StreamProtocol>, Task<(ITransport Transport, StreamProtocol Protocol)>> connect)
    {
        var loop = EventLoop.GetRunningLoop();
        var reader = new AsyncStreamReader(limit);
        var (transport, protocol) = await connect(loop, () => new StreamProtocol(reader));
        return (reader, new AsyncStreamWriter(transport, protocol, reader, loop));
    }

    /// <summary>
    /// Returns a reader and a writer for an already connected stream socket (TCP, Unix, one end of a socket pair);
    /// asyncio's <c>open_connection(sock=sock)</c>. The loop takes ownership of the socket.
    /// </summary>
    /// <param name="socket">The connected socket.</param>
    /// <param name="limit">The reader's line limit (default 64 KiB).</param>
    /// <param name="ssl">TLS client options to open a TLS connection; their <c>TargetHost</c> is required (a socket has no host name).</param>
    /// <param name="sslHandshakeTimeout">TLS handshake time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">TLS close time limit, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <exception cref="ArgumentException"><paramref name="ssl"/> without a <c>TargetHost</c>, or a TLS argument without <paramref name="ssl"/>.</exception>
    public static Task<(AsyncStreamReader Reader, AsyncStreamWriter Writer)> OpenConnection(System.Net.Sockets.Socket socket,
        int limit = AsyncStreamReader.DefaultLimit, System.Net.Security.SslClientAuthenticationOptions? ssl = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null) =>
        OpenStreams(limit, (loop, protocol) => loop.CreateConnection(protocol, socket, ssl, sslHandshakeTimeout, sslShutdownTimeout));

    /// <summary>Opens a Unix domain stream connection; asyncio's <c>open_unix_connection</c>.</summary>
    /// <param name="path">The socket's path.</param>
    /// <param name="limit">The reader's line limit (default 64 KiB).</param>
    /// <param name="ssl">TLS client options to open a TLS connection (validation on unless the options turn it off).</param>
    /// <param name="serverHostname">The host name the server's certificate is checked against; required with
    /// <paramref name="ssl"/> unless the options' <c>TargetHost</c> is set (see <see cref="EventLoop.CreateUnixConnection{TProtocol}"/>).</param>
    /// <param name="sslHandshakeTimeout">TLS handshake time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">TLS close time limit, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <exception cref="ArgumentException"><paramref name="ssl"/> without a host name, or a TLS argument without <paramref name="ssl"/>.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">The connection failed (see <see cref="EventLoop.CreateUnixConnection{TProtocol}"/>:
    /// <c>AddressNotAvailable</c> for a missing path, Python's <c>FileNotFoundError</c>).</exception>
    public static Task<(AsyncStreamReader Reader, AsyncStreamWriter Writer)> OpenUnixConnection(string path, int limit = AsyncStreamReader.DefaultLimit,
        System.Net.Security.SslClientAuthenticationOptions? ssl = null, string? serverHostname = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null) =>
        OpenStreams(limit, (loop, protocol) => loop.CreateUnixConnection(protocol, path, ssl, serverHostname, sslHandshakeTimeout, sslShutdownTimeout));

    /// <summary>
    /// Starts a TCP server that runs <paramref name="clientConnected"/> as a new task for every connection,
    /// with its reader and writer; asyncio's <c>start_server</c>. If the callback throws, the error is
    /// reported to the loop's exception handler and the connection is closed.
    /// </summary>
    /// <remarks>The handler closes the writer when it is done with the connection: returning does not close it
    /// (the writer may live on elsewhere, as in a chat server that keeps it). CPython closes a writer nobody
    /// references when reference counting collects it; here the connection stays open, and
    /// <see cref="Server.WaitClosed"/> waits for it.</remarks>
    /// <param name="clientConnected">The connection handler.</param>
    /// <param name="host">Address or host to listen on (<see langword="null"/> or empty for every interface).</param>
    /// <param name="port">Port (0 for a free one).</param>
    /// <param name="limit">Each reader's line limit (default 64 KiB).</param>
    /// <param name="backlog">Listen backlog (default 100).</param>
    /// <param name="ssl">TLS server options to serve TLS.</param>
    /// <param name="sslHandshakeTimeout">TLS handshake time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">TLS close time limit, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <param name="reusePort">SO_REUSEPORT.</param>
    /// <param name="reuseAddress">SO_REUSEADDR (default on, as asyncio on Unix).</param>
    /// <param name="startServing">Whether to accept at once; otherwise call <see cref="Server.StartServing"/> or <see cref="Server.ServeForever"/>.</param>
    public static Task<Server> StartServer(Func<AsyncStreamReader, AsyncStreamWriter, Task> clientConnected, string? host, int port,
        int limit = AsyncStreamReader.DefaultLimit, int backlog = 100, System.Net.Security.SslServerAuthenticationOptions? ssl = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null, bool reusePort = false,
        bool reuseAddress = true, bool startServing = true) =>
        StartServer(clientConnected, host == null ? null : [host], port, limit, backlog, ssl, sslHandshakeTimeout, sslShutdownTimeout,
            reusePort, reuseAddress, startServing);

    /// <summary>
    /// As <see cref="StartServer(Func{AsyncStreamReader, AsyncStreamWriter, Task}, string?, int, int, int, System.Net.Security.SslServerAuthenticationOptions?, TimeSpan?, TimeSpan?, bool, bool, bool)"/>,
    /// listening on several hosts (one socket per address); asyncio's <c>start_server</c> with a sequence of hosts.
    /// <paramref name="hosts"/> <see langword="null"/>, or an empty host name in it, means every interface.
    /// </summary>
    /// <param name="clientConnected">The connection handler.</param>
    /// <param name="hosts">Addresses or hosts to listen on.</param>
    /// <param name="port">Port (0 for a free one, chosen per socket).</param>
    /// <param name="limit">Each reader's line limit (default 64 KiB).</param>
    /// <param name="backlog">Listen backlog (default 100).</param>
    /// <param name="ssl">TLS server options to serve TLS.</param>
    /// <param name="sslHandshakeTimeout">TLS handshake time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">TLS close time limit, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <param name="reusePort">SO_REUSEPORT.</param>
    /// <param name="reuseAddress">SO_REUSEADDR (default on, as asyncio on Unix).</param>
    /// <param name="startServing">Whether to accept at once; otherwise call <see cref="Server.StartServing"/> or <see cref="Server.ServeForever"/>.</param>
    public static Task<Server> StartServer(Func<AsyncStreamReader, AsyncStreamWriter, Task> clientConnected, IEnumerable<string>? hosts, int port,
        int limit = AsyncStreamReader.DefaultLimit, int backlog = 100, System.Net.Security.SslServerAuthenticationOptions? ssl = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null, bool reusePort = false,
        bool reuseAddress = true, bool startServing = true)
    {
        ArgumentNullException.ThrowIfNull(clientConnected);
        var loop = EventLoop.GetRunningLoop();
        return loop.CreateServer(() => new StreamProtocol(new AsyncStreamReader(limit), clientConnected),
            hosts, port, backlog, reuseAddress, reusePort, startServing, ssl, sslHandshakeTimeout, sslShutdownTimeout);
    }

    /// <summary>
    /// Serves stream connections on an already bound socket (TCP or Unix); asyncio's <c>start_server(sock=sock)</c>. The
    /// loop takes ownership of the socket. See the other <c>StartServer</c> forms for the handler.
    /// </summary>
    /// <param name="clientConnected">The connection handler.</param>
    /// <param name="socket">The bound socket (it is put in listening mode if it is not yet).</param>
    /// <param name="limit">Each reader's line limit (default 64 KiB).</param>
    /// <param name="backlog">Listen backlog (default 100).</param>
    /// <param name="ssl">TLS server options to serve TLS.</param>
    /// <param name="sslHandshakeTimeout">TLS handshake time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">TLS close time limit, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <param name="startServing">Whether to accept at once; otherwise call <see cref="Server.StartServing"/> or <see cref="Server.ServeForever"/>.</param>
    public static Task<Server> StartServer(Func<AsyncStreamReader, AsyncStreamWriter, Task> clientConnected, System.Net.Sockets.Socket socket,
        int limit = AsyncStreamReader.DefaultLimit, int backlog = 100, System.Net.Security.SslServerAuthenticationOptions? ssl = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null, bool startServing = true)
    {
        ArgumentNullException.ThrowIfNull(clientConnected);
        return EventLoop.GetRunningLoop().CreateServer(() => new StreamProtocol(new AsyncStreamReader(limit), clientConnected), socket,
            backlog, startServing, ssl, sslHandshakeTimeout, sslShutdownTimeout);
    }

    /// <summary>Starts a Unix domain socket server; asyncio's <c>start_unix_server</c>.</summary>
    /// <param name="clientConnected">The connection handler.</param>
    /// <param name="path">The socket's path (a stale socket file there is removed first).</param>
    /// <param name="limit">Each reader's line limit (default 64 KiB).</param>
    /// <param name="backlog">Listen backlog (default 100).</param>
    /// <param name="ssl">TLS server options to serve TLS.</param>
    /// <param name="sslHandshakeTimeout">TLS handshake time limit (default 60 s).</param>
    /// <param name="sslShutdownTimeout">TLS close time limit, flushing included (default 30 s); on expiry the connection is aborted.</param>
    /// <exception cref="ArgumentException">A TLS time limit without <paramref name="ssl"/>.</exception>
    public static Task<Server> StartUnixServer(Func<AsyncStreamReader, AsyncStreamWriter, Task> clientConnected, string path,
        int limit = AsyncStreamReader.DefaultLimit, int backlog = 100, System.Net.Security.SslServerAuthenticationOptions? ssl = null,
        TimeSpan? sslHandshakeTimeout = null, TimeSpan? sslShutdownTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(clientConnected);
        return EventLoop.GetRunningLoop().CreateUnixServer(() => new StreamProtocol(new AsyncStreamReader(limit), clientConnected), path,
            backlog, ssl: ssl, sslHandshakeTimeout: sslHandshakeTimeout, sslShutdownTimeout: sslShutdownTimeout);
    }
}
