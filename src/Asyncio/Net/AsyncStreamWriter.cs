using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// Writes to a connection; asyncio's <c>StreamWriter</c>. <see cref="Write"/> never blocks: follow it with
/// <c>await Drain()</c> so that a slow peer makes the writer wait instead of letting the buffer grow.
/// </summary>
public sealed class AsyncStreamWriter : IAsyncDisposable
{
    readonly EventLoop _loop;
    ITransport _transport;
    readonly StreamProtocol _protocol;
    readonly AsyncStreamReader? _reader;

    internal AsyncStreamWriter(ITransport transport, StreamProtocol protocol, AsyncStreamReader? reader, EventLoop loop)
    {
        _transport = transport;
        _protocol = protocol;
        _reader = reader;
        _loop = loop;
    }

    /// <summary>The underlying transport.</summary>
    public ITransport Transport => _transport;

    /// <summary>Writes <paramref name="data"/> (buffered if the socket cannot take it now); asyncio's <c>write</c>.</summary>
    /// <exception cref="InvalidOperationException">The writer is closed, or <see cref="WriteEof"/> was called.</exception>
    public void Write(ReadOnlySpan<byte> data) => _transport.Write(data);

    /// <summary>Writes each buffer in turn; asyncio's <c>writelines</c>.</summary>
    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> lines) => _transport.WriteLines(lines);

    /// <summary>Closes the write side after buffered data is sent; asyncio's <c>write_eof</c>.</summary>
    public void WriteEof() => _transport.WriteEof();

    /// <summary>Whether <see cref="WriteEof"/> is supported (not over TLS).</summary>
    public bool CanWriteEof => _transport.CanWriteEof;

    /// <summary>Closes the connection (buffered data is still sent); asyncio's <c>close</c>. Follow with <see cref="WaitClosed"/>.</summary>
    public void Close() => _transport.Close();

    /// <summary>Whether the connection is closing or closed.</summary>
    public bool IsClosing => _transport.IsClosing;

    /// <summary>
    /// Completes when the connection is closed; throws the error that ended it, if any; asyncio's <c>wait_closed</c>.
    /// Cancelling one wait leaves every other one waiting (in asyncio it cancels them all).
    /// </summary>
    public Task WaitClosed() => _protocol.WaitClosed();

    /// <summary>Transport information by asyncio's names (see <see cref="IBaseTransport.GetExtraInfo"/>).</summary>
    public object? GetExtraInfo(string name, object? defaultValue = null) => _transport.GetExtraInfo(name, defaultValue);

    /// <summary>
    /// Waits until the write buffer is below its high-water mark; asyncio's <c>drain</c>. Completes at once
    /// (without allocating) when it already is. Cancelling the wait loses nothing.
    /// </summary>
    /// <exception cref="System.Net.Sockets.SocketException">The connection was lost (<see cref="System.Net.Sockets.SocketError.ConnectionReset"/>), or the error that ended it.</exception>
    public ValueTask Drain()
    {
        if (_reader?.Exception is { } e) return ValueTask.FromException(e);
        if (_transport.IsClosing) return DrainClosing();
        // Completes at once, or waits on a pooled waiter that resumes on the loop (never a Task, whose
        // ConfigureAwait(false) continuations .NET would send to the thread pool from a loop thread).
        return _protocol.DrainHelper();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    async ValueTask DrainClosing()
    {
        // Let ConnectionLost run first if the connection is going away (asyncio yields here too).
        await Aio.Sleep(0);
        await _protocol.DrainHelper();
    }

    /// <summary>
    /// Upgrades the connection to TLS in place and returns when the handshake is done; asyncio's
    /// <c>start_tls</c>. The reader and this writer then carry the encrypted connection. As a client
    /// pass <paramref name="client"/>; on a server connection pass <paramref name="server"/>.
    /// </summary>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The handshake failed (for example certificate validation).</exception>
    /// <exception cref="TimeoutException">The handshake took longer than <paramref name="handshakeTimeout"/> (default 60 s).</exception>
    public async Task StartTls(System.Net.Security.SslClientAuthenticationOptions? client = null,
        System.Net.Security.SslServerAuthenticationOptions? server = null, TimeSpan? handshakeTimeout = null, TimeSpan? shutdownTimeout = null)
    {
        if ((client == null) == (server == null)) throw new ArgumentException("Pass exactly one of client or server options.");
        await Drain();
        var t = await _loop.StartTls(_transport, _protocol, client, server, handshakeTimeout, shutdownTimeout);
        _transport = t;
        _protocol.ReplaceTransport(t);
    }

    /// <summary>Closes the connection and waits until it is closed (errors of the connection are not rethrown).</summary>
    public async ValueTask DisposeAsync()
    {
        Close();
        try { await WaitClosed(); }
        catch (Exception e) when (e is not OperationCanceledException) { }
    }

    /// <inheritdoc />
    public override string ToString() => $"<AsyncStreamWriter transport={_transport}>";
}
