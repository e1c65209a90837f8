using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Asyncio;

// A stream transport over a non-blocking socket on the loop's reactor: asyncio's
// _SelectorSocketTransport, with the same state machine and the same order of protocol calls.
//
// Reading: the reader watch stays registered while the transport is reading (not paused, not closing).
// Each readiness does one receive into the loop's shared receive buffer (256 KiB, asyncio's max_size):
// the data is handed to Protocol.DataReceived as a span and is dead once the call returns, so one buffer
// per loop serves every connection and receiving allocates nothing. A BufferedProtocol receives straight
// into the buffer it lends instead, and so does a stream whose task waits in ReadInto on an empty reader:
// the receive goes into the caller's memory and takes no more than fits, the rest staying in the kernel
// (no copy through the shared buffer, which for large messages was a second pass over every byte).
//
// Writing: Write tries the socket at once when nothing is pending (the common case: no copy, no
// registration); what the socket does not take goes to the write buffer and the writer watch is armed
// until the buffer drains. Crossing the high-water mark pauses the protocol, draining to the low mark
// resumes it (asyncio's _maybe_pause_protocol/_maybe_resume_protocol).
//
// Closing (asyncio's close/_force_close/_call_connection_lost): Close stops reading and lets the buffer
// drain, then ConnectionLost(null); Abort and fatal errors drop the buffer and call ConnectionLost(exc)
// on the next iteration. The socket is closed after ConnectionLost returns. Errors that are socket
// errors (a reset peer) end only this connection and are not reported to the loop's exception handler,
// as asyncio treats OSError; other exceptions (a protocol callback that throws) are reported.
//
// Differences from asyncio: Write on a closed or closing transport throws InvalidOperationException
// (asyncio silently counts and logs such writes); the data span passed to DataReceived must be copied if
// kept; a half-closed transport (EofReceived returned true) that is paused and resumed does not read the
// end of stream again (asyncio's does, and calls eof_received a second time, against its protocol contract).

/// <summary>A stream transport over a non-blocking socket; see the file's opening comment.</summary>
internal sealed unsafe class SocketTransport : TransportBase
{
    readonly Socket _sock;
    readonly IoSource _source;
    readonly int _fd;             // the descriptor for SocketNative, or -1 to use the Socket's methods
    Protocol? _stream;            // the protocol as a Protocol, or null
    StreamProtocol? _streams;     // the protocol of a stream reader/writer pair, or null
    bool _spill = true;           // a direct receive also takes what does not fit (ReadReady)
    BufferedProtocol? _buffered;  // the protocol as a BufferedProtocol, or null
    WriteBuffer _buffer;
    bool _paused;                 // reading paused by PauseReading
    bool _eof;                    // WriteEof called
    bool _eofReceived;            // the peer's end of stream was read: nothing more to read, ever
    bool _connLost;               // _force_close or the final close has run
    bool _started;                // Start has run: ConnectionMade was called
    bool _protocolConnected;      // ConnectionMade returned: ConnectionLost is owed
    Exception? _lostBecause;
    Future? _waiter;

    public SocketTransport(EventLoop loop, Socket sock, BaseProtocol protocol, Future? waiter, Server? server)
        : base(loop, protocol, server)
    {
        _sock = sock;
        sock.Blocking = false;
        if (sock.ProtocolType == ProtocolType.Tcp)
        {
            try { sock.NoDelay = true; } catch (SocketException) { }
        }
        Extra["socket"] = sock;
        try { Extra["sockname"] = sock.LocalEndPoint; } catch (SocketException) { Extra["sockname"] = null; }   // always there, as asyncio's
        try { Extra["peername"] = sock.RemoteEndPoint; } catch (SocketException) { Extra["peername"] = null; }
        _source = loop.AttachOwned(sock, this);
        _fd = SocketNative.Enabled ? _source.Fd : -1;
        _source.Reader.Callback = s_readReady;
        _source.Reader.State = this;
        _source.Writer.Callback = s_writeReady;
        _source.Writer.State = this;
        OnProtocolChanged();
        _waiter = waiter;
        // asyncio: call_soon(connection_made); call_soon(_add_reader); call_soon(waiter.set_result).
        loop.EnqueueInternal(s_start, this);
    }

    protected override void OnProtocolChanged()
    {
        _stream = ProtocolField as Protocol;
        _streams = ProtocolField as StreamProtocol;
        _buffered = ProtocolField as BufferedProtocol;
    }

    static readonly Action<object?> s_start = static o => ((SocketTransport)o!).Start();

    void Start()
    {
        if (_started) return;
        _started = true;
        try
        {
            // Also when the transport was closed before this ran (Server.CloseClients in the accepting
            // iteration): asyncio queues connection_made first, so a protocol always gets it before
            // connection_lost. Closing, the transport is not reading and the reader stays off.
            ProtocolField.ConnectionMade(this);
            _protocolConnected = true;
            if (IsReading) Loop.SetWatchActive(_source.Reader, true);
        }
        catch (Exception e)
        {
            if (_waiter is { IsDone: false } fw) { fw.SetException(e); _waiter = null; }
            else Loop.CallExceptionHandler(new ExceptionContext($"protocol.ConnectionMade() failed ({this})", e));
            ForceClose(e);
            return;
        }
        if (_waiter is { IsDone: false } w) w.SetResult();
        _waiter = null;
    }

    // ---- reading ----

    public override bool IsReading => !_paused && !Closing;

    public override void PauseReading()
    {
        if (!IsReading) return;
        _paused = true;
        Loop.SetWatchActive(_source.Reader, false);
    }

    public override void ResumeReading()
    {
        if (Closing || !_paused) return;
        _paused = false;
        // After the end of stream the reader stays off: the socket would report it again, and EofReceived is
        // called at most once (asyncio's resume_reading re-adds the reader and calls eof_received again).
        if (_protocolConnected && !_eofReceived) Loop.SetWatchActive(_source.Reader, true);
    }

    static readonly Action<object?> s_readReady = static o => ((SocketTransport)o!).ReadReady();

    void ReadReady()
    {
        if (_connLost) return;
        if (_buffered != null) { ReadReadyBuffered(_buffered); return; }
        var buf = Loop.SharedReceiveBuffer; // pinned
        if (_streams != null && _streams.TryGetDirectBuffer(out var direct))
        {
            // A task waits in ReadInto on an empty reader: receive straight into its memory, and whatever
            // does not fit into the loop's buffer in the same call (readv; up to what the reader holds
            // without pausing us), then fed to the reader: one receive per message, as without the direct
            // path, and no copy of what the task asked for. A two-buffer receive costs the kernel a little
            // more, so it is used only while receives fill the task's buffer (W5 measured both ways).
            int spillRoom = _spill && _fd >= 0 ? Math.Min(buf.Length, _streams.DirectSpillRoom) : 0;
            int got = ReceiveOrHandle(direct.Span, buf.AsSpan(0, spillRoom));
            if (got == 0) return;
            _spill = got >= direct.Length;
            int first = Math.Min(got, direct.Length);
            _streams.DirectReceived(first); // wakes the task; the rest is buffered behind it
            if (got > first) Deliver(new ReadOnlySpan<byte>(buf, 0, got - first));
            return;
        }
        int n = ReceiveOrHandle(buf);
        if (n != 0) Deliver(new ReadOnlySpan<byte>(buf, 0, n));
    }

    void Deliver(ReadOnlySpan<byte> data)
    {
        try
        {
            _stream?.DataReceived(data);
        }
        catch (Exception e)
        {
            FatalError(e, "Fatal error: protocol.DataReceived() call failed.");
        }
    }

    void ReadReadyBuffered(BufferedProtocol p)
    {
        Memory<byte> buf;
        try
        {
            buf = p.GetBuffer(-1);
            if (buf.IsEmpty) throw new InvalidOperationException("GetBuffer() returned an empty buffer.");
        }
        catch (Exception e)
        {
            FatalError(e, "Fatal error: protocol.GetBuffer() call failed.");
            return;
        }
        int n = ReceiveOrHandle(buf.Span);
        if (n == 0) return;
        try { p.BufferUpdated(n); }
        catch (Exception e) { FatalError(e, "Fatal error: protocol.BufferUpdated() call failed."); }
    }

    /// <summary>
    /// One receive into <paramref name="into"/>: the number of bytes, or 0 when there is nothing to hand on
    /// (the socket had nothing after all; an error, which ends the connection; or end of stream, passed on).
    /// </summary>
    int ReceiveOrHandle(Span<byte> into, Span<byte> spill = default)
    {
        int n;
        SocketError error;
        if (_fd >= 0)
        {
            fixed (byte* p = into)
            fixed (byte* q = spill)
            {
                n = spill.IsEmpty
                    ? SocketNative.Receive(_fd, p, into.Length, out error)
                    : SocketNative.Receive(_fd, p, into.Length, q, spill.Length, out error);
            }
        }
        else n = _sock.Receive(into, SocketFlags.None, out error);
        if (error != SocketError.Success)
        {
            if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
                FatalError(new SocketException((int)error), "Fatal read error on socket transport");
            return 0;
        }
        if (n == 0) OnEof();
        return n;
    }

    void OnEof()
    {
        _eofReceived = true;
        bool keepOpen;
        try
        {
            keepOpen = _buffered != null ? _buffered.EofReceived() : _stream?.EofReceived() ?? false;
        }
        catch (Exception e)
        {
            FatalError(e, "Fatal error: protocol.EofReceived() call failed.");
            return;
        }
        if (keepOpen)
        {
            // Half-closed: stop reading (the socket would report EOF forever) but keep writing.
            Loop.SetWatchActive(_source.Reader, false);
        }
        else Close();
    }

    // ---- writing ----

    public override int WriteBufferSize => _buffer.Count;

    public override bool CanWriteEof => true;

    public override void Write(ReadOnlySpan<byte> data)
    {
        Loop.CheckThread(nameof(ITransport), nameof(Write));
        if (_eof) ThrowWriteAfterEof();
        if (Closing || _connLost) ThrowClosed(_lostBecause);
        if (data.IsEmpty) return;
        if (_buffer.Count == 0)
        {
            int n = SendNow(data, out var error);
            if (error == SocketError.Success)
            {
                if (n == data.Length) return;
                data = data[n..];
            }
            else if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
            {
                FatalError(new SocketException((int)error), "Fatal write error on socket transport");
                return;
            }
            Loop.SetWatchActive(_source.Writer, true);
        }
        _buffer.Append(data);
        MaybePauseProtocol();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    int SendNow(ReadOnlySpan<byte> data, out SocketError error)
    {
        if (_fd < 0) return _sock.Send(data, SocketFlags.None, out error);
        fixed (byte* p = data) return SocketNative.Send(_fd, p, data.Length, out error);
    }

    static readonly Action<object?> s_writeReady = static o => ((SocketTransport)o!).WriteReady();

    void WriteReady()
    {
        if (_connLost) return;
        int n = SendNow(_buffer.Pending, out var error);
        if (error != SocketError.Success)
        {
            if (error is SocketError.WouldBlock or SocketError.Interrupted) return;
            Loop.SetWatchActive(_source.Writer, false);
            _buffer.Release();
            FatalError(new SocketException((int)error), "Fatal write error on socket transport");
            return;
        }
        _buffer.Consume(n);
        MaybeResumeProtocol();
        if (_connLost)
        {
            // ResumeWriting ended the connection (Abort, Close, a write that failed): the ConnectionLost it
            // queued carries the outcome. Calling ConnectionLost(null) here would drop a write's error.
            Loop.SetWatchActive(_source.Writer, false);
            return;
        }
        if (_buffer.Count != 0) return;
        Loop.SetWatchActive(_source.Writer, false);
        if (Closing) CallConnectionLost(null);
        else if (_eof) ShutdownSend();
    }

    void ShutdownSend()
    {
        try { _sock.Shutdown(SocketShutdown.Send); }
        catch (SocketException) { }
    }

    public override void WriteEof()
    {
        if (Closing || _eof) return;
        _eof = true;
        if (_buffer.Count == 0) ShutdownSend();
    }

    // ---- closing ----

    public override void Close()
    {
        Loop.CheckThread(nameof(ITransport), nameof(Close));
        if (Closing) return;
        Closing = true;
        Loop.SetWatchActive(_source.Reader, false);
        if (_buffer.Count == 0)
        {
            _connLost = true;
            Loop.SetWatchActive(_source.Writer, false);
            Loop.EnqueueInternal(s_callConnectionLost, this);
        }
    }

    public override void Abort()
    {
        Loop.CheckThread(nameof(ITransport), nameof(Abort));
        ForceClose(null);
    }

    void FatalError(Exception e, string message)
    {
        if (e is not SocketException)
            Loop.CallExceptionHandler(new ExceptionContext($"{message} ({this})", e));
        ForceClose(e);
    }

    void ForceClose(Exception? e)
    {
        if (_connLost) return;
        _lostBecause = e;
        if (_buffer.Count != 0)
        {
            _buffer.Release();
            Loop.SetWatchActive(_source.Writer, false);
        }
        if (!Closing)
        {
            Closing = true;
            Loop.SetWatchActive(_source.Reader, false);
        }
        _connLost = true;
        _pendingLoss = e;
        Loop.EnqueueInternal(s_callConnectionLost, this);
    }

    Exception? _pendingLoss;
    bool _finished;

    static readonly Action<object?> s_callConnectionLost = static o =>
    {
        var t = (SocketTransport)o!;
        t.CallConnectionLost(t._pendingLoss);
    };

    void CallConnectionLost(Exception? e)
    {
        if (_finished) return;
        // A shuffled schedule (LoopOptions.ScheduleSeed) may run the loss before Start when both were queued
        // in one iteration: ConnectionMade still comes first.
        Start();
        _finished = true;
        _connLost = true;
        try
        {
            if (_protocolConnected) ProtocolField.ConnectionLost(e);
        }
        finally
        {
            Loop.DetachSource(_source);
            _buffer.Release();
            _sock.Dispose();
            DetachFromServer();
        }
    }

    public override string ToString() =>
        $"<SocketTransport {(Extra.TryGetValue("peername", out var p) ? p : "?")} {(_finished ? "closed" : Closing ? "closing" : "open")}>";
}
