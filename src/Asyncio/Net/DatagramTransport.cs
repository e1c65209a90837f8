using System.Net;
using System.Net.Sockets;

namespace Asyncio;

// A datagram transport on the reactor: asyncio's _SelectorDatagramTransport. Each readiness receives one
// datagram (up to 256 KiB) into the loop's shared buffer and hands it to DatagramReceived; socket errors
// (an ICMP port-unreachable reported on a connected socket, say) go to ErrorReceived and leave the
// endpoint open. SendTo tries the socket at once when nothing is queued; datagrams the socket cannot take
// are queued whole (never split) with the same water marks and pause/resume calls as stream transports.
// As in asyncio, a queued datagram counts its bytes plus 8 for its header in the write-buffer size (and so
// against the water marks): a burst of tiny datagrams costs more than its payload.

/// <summary>A UDP (or other datagram) transport; see the file's opening comment.</summary>
internal sealed class DatagramTransport : IDatagramTransport
{
    readonly EventLoop _loop;
    readonly Socket _sock;
    readonly IoSource _source;
    readonly EndPoint? _address;   // the connected peer, if any
    readonly Dictionary<string, object?> _extra = new();
    readonly Queue<(byte[] Data, EndPoint? To)> _buffer = new();
    int _bufferSize;           // queued bytes, HeaderSize included per datagram
    const int HeaderSize = 8;  // asyncio's _header_size: what each queued datagram adds beyond its payload
    WaterMarks _marks = WaterMarks.Default;
    bool _protocolPaused, _closing, _connLost, _protocolConnected, _finished;
    DatagramProtocol _protocol;
    Future? _waiter;

    public DatagramTransport(EventLoop loop, Socket sock, DatagramProtocol protocol, EndPoint? address, Future waiter)
    {
        _loop = loop;
        _sock = sock;
        _protocol = protocol;
        _address = address;
        _waiter = waiter;
        sock.Blocking = false;
        _extra["socket"] = sock;
        // Both keys are always there, null when the socket has none, as asyncio's extra info
        // (get_extra_info("peername", d) of an unconnected endpoint is None, not d).
        try { _extra["sockname"] = sock.LocalEndPoint; } catch (SocketException) { _extra["sockname"] = null; }
        _extra["peername"] = address;
        _source = loop.AttachOwned(sock, this);
        _source.Reader.Callback = static o => ((DatagramTransport)o!).ReadReady();
        _source.Reader.State = this;
        _source.Writer.Callback = static o => ((DatagramTransport)o!).WriteReady();
        _source.Writer.State = this;
        loop.EnqueueInternal(static o => ((DatagramTransport)o!).Start(), this);
    }

    void Start()
    {
        if (!_connLost)
        {
            try
            {
                _protocol.ConnectionMade(this);
                _protocolConnected = true;
                _loop.SetWatchActive(_source.Reader, true);
            }
            catch (Exception e)
            {
                if (_waiter is { IsDone: false } fw) fw.SetException(e);
                _waiter = null;
                ForceClose(e);
                return;
            }
        }
        // asyncio's _set_result_unless_cancelled: the creating task may have been cancelled meanwhile.
        if (_waiter is { IsDone: false } w) w.SetResult();
        _waiter = null;
    }

    public BaseProtocol Protocol
    {
        get => _protocol;
        set => _protocol = value as DatagramProtocol ?? throw new ArgumentException("A datagram transport needs a DatagramProtocol.", nameof(value));
    }

    public object? GetExtraInfo(string name, object? defaultValue = null) => _extra.TryGetValue(name, out var v) ? v : defaultValue;

    public bool IsClosing => _closing;

    public int WriteBufferSize => _bufferSize;

    void ReadReady()
    {
        if (_connLost) return;
        var buf = _loop.SharedReceiveBuffer;
        EndPoint from = EventLoop.AnyEndPoint(_sock.AddressFamily);
        int n;
        try
        {
            n = _sock.ReceiveFrom(buf, SocketFlags.None, ref from);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
        {
            return;
        }
        catch (SocketException e)
        {
            ReportError(e);
            return;
        }
        // A protocol that throws is reported and the endpoint stays open, as in asyncio, where the exception
        // leaves the reader callback for the loop's handler (a stream transport closes: its byte stream would
        // be left half-consumed; a datagram is whole).
        try { _protocol.DatagramReceived(new ReadOnlySpan<byte>(buf, 0, n), from); }
        catch (Exception e) { _loop.CallExceptionHandler(new ExceptionContext($"Exception in protocol.DatagramReceived() ({this})", e)); }
    }

    /// <summary>Tells the protocol of a socket error met by the loop's callbacks; reported, not fatal, if it throws (as above).</summary>
    void ReportError(SocketException e)
    {
        try { _protocol.ErrorReceived(e); }
        catch (Exception inner) { _loop.CallExceptionHandler(new ExceptionContext($"Exception in protocol.ErrorReceived() ({this})", inner)); }
    }

    public void SendTo(ReadOnlySpan<byte> data, EndPoint? remote = null)
    {
        _loop.CheckThread(nameof(IDatagramTransport), nameof(SendTo));
        if (_address != null)
        {
            if (remote != null && !remote.Equals(_address))
                throw new ArgumentException($"Invalid address: must be null or {_address}.", nameof(remote));
            remote = null;
        }
        else if (remote == null) throw new ArgumentNullException(nameof(remote), "An unconnected datagram endpoint needs a destination.");
        if (_closing || _connLost) throw new InvalidOperationException($"Cannot send on a closed datagram transport ({this}).");
        if (_buffer.Count == 0)
        {
            try
            {
                if (remote == null) _sock.Send(data);
                else _sock.SendTo(data, SocketFlags.None, remote);
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
            {
                _loop.SetWatchActive(_source.Writer, true);
            }
            catch (SocketException e)
            {
                _protocol.ErrorReceived(e);   // if it throws, the caller of SendTo sees it, as asyncio's sendto()
                return;
            }
        }
        _buffer.Enqueue((data.ToArray(), remote));
        _bufferSize += data.Length + HeaderSize;
        MaybePause();
    }

    void WriteReady()
    {
        while (_buffer.Count != 0 && !_connLost)
        {
            var (data, to) = _buffer.Peek();
            try
            {
                if (to == null) _sock.Send(data);
                else _sock.SendTo(data, to);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
            {
                break;
            }
            catch (SocketException e)
            {
                _buffer.Dequeue();
                _bufferSize -= data.Length + HeaderSize;
                ReportError(e);
                return;
            }
            _buffer.Dequeue();
            _bufferSize -= data.Length + HeaderSize;
        }
        MaybeResume();
        if (_buffer.Count == 0)
        {
            _loop.SetWatchActive(_source.Writer, false);
            if (_closing) CallConnectionLost(null);
        }
    }

    void MaybePause()
    {
        if (_bufferSize <= _marks.High || _protocolPaused) return;
        _protocolPaused = true;
        try { _protocol.PauseWriting(); }
        catch (Exception e) { _loop.CallExceptionHandler(new ExceptionContext($"protocol.PauseWriting() failed ({this})", e)); }
    }

    void MaybeResume()
    {
        if (!_protocolPaused || _bufferSize > _marks.Low) return;
        _protocolPaused = false;
        try { _protocol.ResumeWriting(); }
        catch (Exception e) { _loop.CallExceptionHandler(new ExceptionContext($"protocol.ResumeWriting() failed ({this})", e)); }
    }

    public void Close()
    {
        _loop.CheckThread(nameof(IDatagramTransport), nameof(Close));
        if (_closing) return;
        _closing = true;
        _loop.SetWatchActive(_source.Reader, false);
        if (_buffer.Count == 0)
        {
            _connLost = true;
            _loop.EnqueueInternal(static o => ((DatagramTransport)o!).CallConnectionLost(null), this);
        }
    }

    public void Abort()
    {
        _loop.CheckThread(nameof(IDatagramTransport), nameof(Abort));
        ForceClose(null);
    }

    void ForceClose(Exception? e)
    {
        if (_connLost) return;
        _buffer.Clear();
        _bufferSize = 0;
        _loop.SetWatchActive(_source.Writer, false);
        _closing = true;
        _loop.SetWatchActive(_source.Reader, false);
        _connLost = true;
        _loop.EnqueueInternal(o => ((DatagramTransport)o!).CallConnectionLost(e), this);
    }

    void CallConnectionLost(Exception? e)
    {
        if (_finished) return;
        _finished = true;
        _connLost = true;
        try
        {
            if (_protocolConnected) _protocol.ConnectionLost(e);
        }
        finally
        {
            _loop.DetachSource(_source);
            _sock.Dispose();
        }
    }

    public override string ToString() => $"<DatagramTransport {_extra.GetValueOrDefault("sockname")} {(_finished ? "closed" : _closing ? "closing" : "open")}>";
}

public sealed partial class EventLoop
{
    /// <summary>
    /// Creates a datagram (UDP) endpoint; asyncio's <c>create_datagram_endpoint</c>. With
    /// <paramref name="localEndPoint"/> the socket is bound there; with <paramref name="remoteEndPoint"/> it is
    /// connected, so that <see cref="IDatagramTransport.SendTo"/> needs no address and only that peer's
    /// datagrams arrive.
    /// </summary>
    /// <exception cref="ArgumentException">Neither end point is given.</exception>
    /// <exception cref="SocketException">Binding or connecting failed.</exception>
    public async Task<(IDatagramTransport Transport, TProtocol Protocol)> CreateDatagramEndpoint<TProtocol>(Func<TProtocol> protocolFactory,
        IPEndPoint? localEndPoint = null, IPEndPoint? remoteEndPoint = null, bool reusePort = false, bool allowBroadcast = false)
        where TProtocol : DatagramProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        if (localEndPoint == null && remoteEndPoint == null)
            throw new ArgumentException("Give a local end point, a remote end point, or both.");
        CheckThread(nameof(CreateDatagramEndpoint));
        CheckNotClosed();
        var family = (localEndPoint ?? remoteEndPoint)!.AddressFamily;
        var sock = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (reusePort) SetReusePort(sock);
            if (allowBroadcast) sock.EnableBroadcast = true;
            if (localEndPoint != null) sock.Bind(localEndPoint);
            if (remoteEndPoint != null) sock.Connect(remoteEndPoint);
        }
        catch
        {
            sock.Dispose();
            throw;
        }
        return await MakeDatagramEndpoint(sock, protocolFactory, remoteEndPoint);
    }

    /// <summary>
    /// Wraps an existing datagram socket in a transport and protocol; asyncio's
    /// <c>create_datagram_endpoint(sock=...)</c>. The socket may be bound and may be connected (then
    /// <see cref="IDatagramTransport.SendTo"/> needs no address); it may be of any family that sends datagrams,
    /// a Unix domain datagram socket included. The loop takes ownership of it and makes it non-blocking.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="socket"/> is not a datagram socket.</exception>
    public async Task<(IDatagramTransport Transport, TProtocol Protocol)> CreateDatagramEndpoint<TProtocol>(Func<TProtocol> protocolFactory,
        Socket socket) where TProtocol : DatagramProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(socket);
        if (socket.SocketType != SocketType.Dgram)
            throw new ArgumentException($"A datagram socket was expected, got {socket.SocketType}.", nameof(socket));
        CheckThread(nameof(CreateDatagramEndpoint));
        CheckNotClosed();
        return await MakeDatagramEndpoint(socket, protocolFactory, socket.RemoteEndPoint);
    }

    async Task<(IDatagramTransport, TProtocol)> MakeDatagramEndpoint<TProtocol>(Socket sock, Func<TProtocol> protocolFactory, EndPoint? remote)
        where TProtocol : DatagramProtocol
    {
        TProtocol protocol;
        try { protocol = protocolFactory(); }
        catch { sock.Dispose(); throw; }
        var waiter = CreateFuture();
        var transport = new DatagramTransport(this, sock, protocol, remote, waiter);
        try { await waiter; }
        catch
        {
            transport.Close();
            throw;
        }
        return (transport, protocol);
    }
}
