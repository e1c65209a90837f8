using System.Net;
using System.Net.Sockets;

namespace Asyncio;

// asyncio's Server (base_events.Server plus the selector loop's accept path).
//
// Accepting: each listening socket has a reader watch; on readiness up to `backlog` connections are
// accepted in one go (asyncio's loop in _accept_connection), each wrapped at once in a transport with a
// new protocol from the factory; a connection aborted before accept() is skipped and the loop goes on.
// Errors that mean the process is out of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) are reported to
// the loop's exception handler, and the listening socket stops being watched for AcceptRetryDelay (1 s,
// asyncio's ACCEPT_RETRY_DELAY) instead of spinning on a readiness that accept cannot consume.
//
// Lifetime (asyncio 3.12+): Close stops listening and closes the listening sockets but leaves accepted
// connections alone; WaitClosed returns once the server is closed and every connection it accepted has
// ended; CloseClients/AbortClients end those connections. ServeForever cancelled closes the server.

/// <summary>A listening server made by <see cref="EventLoop.CreateServer(Func{BaseProtocol}, string?, int, int, bool, bool, bool)"/>
/// or <c>AsyncStreams.StartServer</c>; asyncio's <c>Server</c>.</summary>
/// <remarks><c>await using</c> closes it and waits for its connections to end (asyncio's <c>async with server</c>).</remarks>
public sealed class Server : IAsyncDisposable
{
    readonly EventLoop _loop;
    readonly Func<Socket, Server, ITransport?> _accepted;
    List<Socket>? _sockets;
    readonly List<IoSource> _sources = new();
    readonly int _backlog;
    bool _serving;
    int _activeCount;
    readonly HashSet<ITransport> _clients = new();
    List<Future>? _waiters = new();
    Future? _servingForever;

    /// <summary>How long accepting pauses after running out of descriptors or memory (asyncio's ACCEPT_RETRY_DELAY).</summary>
    internal double AcceptRetryDelay = 1.0;

    /// <summary>Test hook: replaces <see cref="Socket.Accept"/>.</summary>
    internal Func<Socket, Socket>? AcceptHook;

    internal Server(EventLoop loop, List<Socket> sockets, int backlog, Func<Socket, Server, ITransport?> accepted)
    {
        _loop = loop;
        _sockets = sockets;
        _backlog = backlog;
        _accepted = accepted;
    }

    /// <summary>The loop the server runs on.</summary>
    public EventLoop GetLoop() => _loop;

    /// <summary>The listening sockets (empty once closed).</summary>
    public IReadOnlyList<Socket> Sockets => _sockets?.ToArray() ?? [];

    /// <summary>Whether the server accepts connections; asyncio's <c>is_serving()</c>.</summary>
    public bool IsServing => _serving;

    /// <summary>Starts accepting connections if it does not yet; asyncio's <c>start_serving()</c>.</summary>
    public async Task StartServing()
    {
        StartServingCore();
        await Aio.Sleep(0);
    }

    internal void StartServingCore()
    {
        _loop.CheckThread(nameof(Server), nameof(StartServing));
        if (_serving || _sockets == null) return;
        _serving = true;
        foreach (var sock in _sockets)
        {
            sock.Listen(_backlog);
            var source = _loop.AttachOwned(sock, this);
            source.Reader.Callback = s_acceptReady;
            source.Reader.State = (this, sock, source);
            _sources.Add(source);
            _loop.SetWatchActive(source.Reader, true);
        }
    }

    static readonly Action<object?> s_acceptReady = static o =>
    {
        var (server, sock, source) = ((Server, Socket, IoSource))o!;
        server.AcceptReady(sock, source);
    };

    void AcceptReady(Socket listener, IoSource source)
    {
        for (int i = 0; i < _backlog && _sockets != null; i++)
        {
            Socket conn;
            try
            {
                conn = AcceptHook != null ? AcceptHook(listener) : listener.Accept();
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted)
            {
                continue; // that connection was aborted before accept(): skip it, go on (asyncio, gh-127529)
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
            {
                _loop.CallExceptionHandler(new ExceptionContext("socket.accept() out of system resource", e));
                _loop.SetWatchActive(source.Reader, false);
                _loop.CallLater(AcceptRetryDelay, static o =>
                {
                    var (server, src) = ((Server, IoSource))o!;
                    if (server._sockets != null && src.Attached) server._loop.SetWatchActive(src.Reader, true);
                }, (this, source));
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            try
            {
                _accepted(conn, this);
            }
            catch (Exception e)
            {
                conn.Dispose();
                _loop.CallExceptionHandler(new ExceptionContext("Error on transport creation for incoming connection", e));
            }
        }
    }

    /// <summary>
    /// Stops listening and closes the listening sockets; asyncio's <c>close()</c>. Accepted connections stay
    /// open (see <see cref="CloseClients"/>); <see cref="WaitClosed"/> waits for them.
    /// </summary>
    public void Close()
    {
        _loop.CheckThread(nameof(Server), nameof(Close));
        var sockets = _sockets;
        if (sockets == null) return;
        _sockets = null;
        foreach (var s in _sources) _loop.DetachSource(s);
        _sources.Clear();
        foreach (var s in sockets) s.Dispose();
        _serving = false;
        if (_servingForever is { IsDone: false } f) f.Cancel();
        _servingForever = null;
        if (_activeCount == 0) Wakeup();
    }

    /// <summary>Closes every connection the server accepted (buffered data is still sent); asyncio's <c>close_clients()</c>.</summary>
    public void CloseClients()
    {
        _loop.CheckThread(nameof(Server), nameof(CloseClients));
        foreach (var t in _clients.ToArray()) t.Close();
    }

    /// <summary>Aborts every connection the server accepted; asyncio's <c>abort_clients()</c>.</summary>
    public void AbortClients()
    {
        _loop.CheckThread(nameof(Server), nameof(AbortClients));
        foreach (var t in _clients.ToArray()) t.Abort();
    }

    /// <summary>
    /// Completes once the server is closed and every connection it accepted has ended; asyncio's
    /// <c>wait_closed()</c> (3.12+). Returns at once if that is already so. A stream handler that returned
    /// without closing its writer leaves its connection open, and this waits for it (see
    /// <see cref="CloseClients"/>).
    /// </summary>
    public async Task WaitClosed()
    {
        if (_waiters == null) return;
        var w = _loop.CreateFuture();
        _waiters.Add(w);
        try { await w; }
        finally { _waiters?.Remove(w); }
    }

    /// <summary>
    /// Accepts connections until cancelled; asyncio's <c>serve_forever()</c>. Cancelling closes the server
    /// and waits for it to close before the cancellation propagates.
    /// </summary>
    /// <exception cref="InvalidOperationException">The server is closed, or another ServeForever is running.</exception>
    public async Task ServeForever()
    {
        if (_servingForever != null) throw new InvalidOperationException($"Server {this} is already being awaited on ServeForever().");
        if (_sockets == null) throw new InvalidOperationException($"Server {this} is closed.");
        StartServingCore();
        var f = _servingForever = _loop.CreateFuture();
        try
        {
            await f;
        }
        catch (CancelledError)
        {
            Close();
            await WaitClosed();
            throw;
        }
        finally
        {
            if (ReferenceEquals(_servingForever, f)) _servingForever = null;
        }
    }

    /// <summary>Closes the server and waits for its connections to end (<c>async with server</c>).</summary>
    public async ValueTask DisposeAsync()
    {
        Close();
        await WaitClosed();
    }

    internal void Attach(ITransport t)
    {
        _activeCount++;
        _clients.Add(t);
    }

    internal void Detach(ITransport t)
    {
        _activeCount--;
        _clients.Remove(t);
        if (_activeCount == 0 && _sockets == null) Wakeup();
    }

    void Wakeup()
    {
        var waiters = _waiters;
        _waiters = null;
        if (waiters == null) return;
        foreach (var w in waiters)
            if (!w.IsDone) w.SetResult();
    }

    /// <inheritdoc />
    public override string ToString()
    {
        var socks = _sockets;
        return socks == null ? "<Server closed>" : $"<Server sockets=[{string.Join(", ", socks.Select(s => s.LocalEndPoint))}]>";
    }
}
