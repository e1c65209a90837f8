using System.Runtime.InteropServices;

namespace Asyncio;

// Transports over pipes: asyncio's _UnixReadPipeTransport and _UnixWritePipeTransport, on the epoll reactor
// (which watches any descriptor). They serve the parent's ends of a child's pipes (SubprocessTransport) and the
// pipes a program hands the loop (EventLoop.ConnectReadPipe/ConnectWritePipe: a FIFO, an anonymous pipe, the
// standard input). The portable reactor watches sockets only; there a child's streams are socket pairs and
// SocketTransport serves them, and ConnectReadPipe/ConnectWritePipe are refused.
//
// Both derive from TransportBase so that the Net layer's streams take them (AsyncStreamReader pauses and resumes
// a read pipe, AsyncStreamWriter drains a write pipe); the half a pipe lacks throws NotSupportedException.
//
// Read pipe: each readiness reads once into the loop's shared receive buffer and hands the span to
// Protocol.DataReceived; a read of 0 is the end: EofReceived, then the transport closes (a pipe cannot be
// half-closed). Write pipe: Write tries the pipe at once and buffers the rest, arming the writer watch until it
// drains, with the water marks' PauseWriting/ResumeWriting. The reader watch of the write end catches the
// read end's closing (epoll reports EPOLLERR on it): with data still buffered that is a broken pipe, otherwise
// a plain close, as asyncio's write pipe transport does. ConnectionLost comes on a later iteration, once.

/// <summary>What both pipe transports share: the descriptor, its watches, and the end (ConnectionLost once, then close).</summary>
internal abstract unsafe partial class PipeTransportBase : TransportBase
{
    protected readonly IoSource Source;
    internal readonly int Fd;
    readonly PipeHandle? _handle;   // a pipe the program handed the loop: it closes through its handle
    bool _lostScheduled;
    bool _fdClosed;

    /// <summary>Resolved once <see cref="BaseProtocol.ConnectionMade"/> has returned (failed if it threw): what ConnectReadPipe/ConnectWritePipe await.</summary>
    internal Future? Made;

    protected PipeTransportBase(EventLoop loop, int fd, BaseProtocol protocol, PipeHandle? handle) : base(loop, protocol, null)
    {
        Fd = fd;
        _handle = handle;
        Source = loop.AttachOwnedDescriptor(fd, this);
        loop.EnqueueInternal(static o => ((PipeTransportBase)o!).Start(), this);
    }

    void Start()
    {
        try { ProtocolField.ConnectionMade(this); }
        catch (Exception e)
        {
            Loop.CallExceptionHandler(new ExceptionContext($"protocol.ConnectionMade() failed ({this})", e));
            if (Made is { IsDone: false }) Made.SetException(e);   // done already: the call was cancelled
            ForceClose(e);
            return;
        }
        if (Made is { IsDone: false }) Made.SetResult();
        if (Closing) return;
        try { Started(); }
        catch (Exception e)   // the watches could not be set up (epoll refused the descriptor)
        {
            Loop.CallExceptionHandler(new ExceptionContext($"Fatal error: watching the pipe failed ({this})", e));
            ForceClose(e);
        }
    }

    /// <summary>Turns on the watches once ConnectionMade has returned.</summary>
    protected abstract void Started();

    public override bool CanWriteEof => false;
    public override int WriteBufferSize => 0;
    public override bool IsReading => false;
    public override void PauseReading() { }
    public override void ResumeReading() { }
    public override void Write(ReadOnlySpan<byte> data) => throw new NotSupportedException("A read pipe cannot be written.");
    public override void WriteEof() => throw new NotSupportedException("A read pipe cannot be written.");

    public override void Abort()
    {
        Loop.CheckThread(nameof(ITransport), nameof(Abort));
        ForceClose(null);
    }

    /// <summary>Stops both watches and schedules ConnectionLost with <paramref name="error"/> (asyncio's <c>_force_close</c>).</summary>
    protected void ForceClose(Exception? error)
    {
        Closing = true;
        // Once the end is scheduled the watches are off, and once it has run the source may serve another descriptor.
        if (_lostScheduled) return;
        Loop.SetWatchActive(Source.Reader, false);
        Loop.SetWatchActive(Source.Writer, false);
        Dropped();
        _lostScheduled = true;
        Loop.EnqueueInternal(static o =>
        {
            var (t, e) = ((PipeTransportBase, Exception?))o!;
            t.CallConnectionLost(e);
        }, (this, error));
    }

    /// <summary>The buffered output is dropped (a write pipe's).</summary>
    protected virtual void Dropped() { }

    void CallConnectionLost(Exception? error)
    {
        try
        {
            // Start was queued first, so ConnectionMade has been called (as asyncio's call_soon'd connection_made).
            ProtocolField.ConnectionLost(error);
        }
        catch (Exception e)
        {
            Loop.CallExceptionHandler(new ExceptionContext($"protocol.ConnectionLost() failed ({this})", e));
        }
        finally
        {
            Loop.DetachSource(Source);   // before the descriptor closes: epoll forgets it by number
            CloseDescriptor();
        }
    }

    void CloseDescriptor()
    {
        if (_fdClosed) return;
        _fdClosed = true;
        if (_handle == null) SpawnNative.Close(Fd);
        else
        {
            _handle.Release();
            Loop.PipeClosed(this);
        }
    }

    /// <summary>The loop is closing with this pipe open: its ConnectionLost will never run, so the descriptor closes now.</summary>
    internal void LoopClosing()
    {
        Closing = true;
        Dropped();
        if (!_fdClosed) Loop.DetachSource(Source);   // before the descriptor closes
        CloseDescriptor();
    }

    /// <summary>The error for a failed read or write: asyncio's OSError.</summary>
    protected static IOException Failure(int errno, string call) =>
        new($"{call} on a pipe failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);

    protected const int EAGAIN = 11, EINTR = 4, EPIPE = 32;

    [LibraryImport("libc", SetLastError = true)]
    protected static partial nint read(int fd, byte* buffer, nint count);
    [LibraryImport("libc", SetLastError = true)]
    protected static partial nint write(int fd, byte* buffer, nint count);
}

/// <summary>A pipe the loop reads: a child's stdout or stderr, or a pipe handed to ConnectReadPipe; asyncio's <c>_UnixReadPipeTransport</c>.</summary>
internal sealed unsafe class ReadPipeTransport : PipeTransportBase
{
    bool _paused;

    public ReadPipeTransport(EventLoop loop, int fd, Protocol protocol, PipeHandle? handle = null) : base(loop, fd, protocol, handle)
    {
        Source.Reader.Callback = static o => ((ReadPipeTransport)o!).ReadReady();
        Source.Reader.State = this;
    }

    protected override void Started() => Loop.SetWatchActive(Source.Reader, !_paused);

    public override bool IsReading => !_paused && !Closing;

    public override void PauseReading()
    {
        Loop.CheckThread(nameof(ITransport), nameof(PauseReading));
        if (!IsReading) return;
        _paused = true;
        Loop.SetWatchActive(Source.Reader, false);
    }

    public override void ResumeReading()
    {
        Loop.CheckThread(nameof(ITransport), nameof(ResumeReading));
        if (Closing || !_paused) return;
        _paused = false;
        Loop.SetWatchActive(Source.Reader, true);
    }

    void ReadReady()
    {
        if (Closing) return;
        var buf = Loop.SharedReceiveBuffer;   // pinned
        nint n;
        fixed (byte* p = buf)
        {
            do n = read(Fd, p, buf.Length);
            while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
        }
        if (n < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != EAGAIN) ForceClose(Failure(errno, "read"));
            return;
        }
        var protocol = (Protocol)ProtocolField;
        try
        {
            if (n > 0)
            {
                protocol.DataReceived(buf.AsSpan(0, (int)n));
                return;
            }
            protocol.EofReceived();   // its answer does not matter: a pipe cannot stay half open
        }
        catch (Exception e)
        {
            Loop.CallExceptionHandler(new ExceptionContext($"Fatal error: protocol.{(n > 0 ? "DataReceived" : "EofReceived")}() call failed ({this})", e));
            ForceClose(e);
            return;
        }
        Close();
    }

    public override void Close()
    {
        Loop.CheckThread(nameof(ITransport), nameof(Close));
        if (Closing) return;
        ForceClose(null);
    }
}

/// <summary>A pipe the loop writes: a child's stdin, or a pipe handed to ConnectWritePipe; asyncio's <c>_UnixWritePipeTransport</c>.</summary>
internal sealed unsafe class WritePipeTransport : PipeTransportBase
{
    WriteBuffer _buffer;
    bool _eof;
    readonly bool _watchReaderEnd;

    /// <param name="loop">The loop.</param>
    /// <param name="fd">The descriptor, non-blocking.</param>
    /// <param name="protocol">The protocol.</param>
    /// <param name="handle">The program's handle it came from, if any.</param>
    /// <param name="watchReaderEnd">Whether the reader watch tells of the read end closing: true for pipes and sockets; a
    /// terminal is readable when someone types, which says nothing about the output (asyncio watches only pipes and sockets).</param>
    public WritePipeTransport(EventLoop loop, int fd, BaseProtocol protocol, PipeHandle? handle = null, bool watchReaderEnd = true) : base(loop, fd, protocol, handle)
    {
        _watchReaderEnd = watchReaderEnd;
        Source.Writer.Callback = static o => ((WritePipeTransport)o!).WriteReady();
        Source.Writer.State = this;
        Source.Reader.Callback = static o => ((WritePipeTransport)o!).ReaderClosed();
        Source.Reader.State = this;
    }

    // The reader watch of a write end fires only when the read end closes (EPOLLERR).
    protected override void Started()
    {
        if (_watchReaderEnd) Loop.SetWatchActive(Source.Reader, true);
    }

    public override int WriteBufferSize => _buffer.Count;
    public override bool CanWriteEof => true;

    public override void Write(ReadOnlySpan<byte> data)
    {
        Loop.CheckThread(nameof(ITransport), nameof(Write));
        if (_eof) ThrowWriteAfterEof();
        if (Closing) ThrowClosed(null);
        if (data.IsEmpty) return;
        if (_buffer.Count == 0)
        {
            int n = TryWrite(data, out var error);
            if (error != null) { ForceClose(error); return; }
            if (n == data.Length) return;
            data = data[n..];
            Loop.SetWatchActive(Source.Writer, true);
        }
        _buffer.Append(data);
        MaybePauseProtocol();
    }

    /// <summary>Writes what the pipe takes now; 0 when it is full.</summary>
    int TryWrite(ReadOnlySpan<byte> data, out Exception? error)
    {
        error = null;
        nint n;
        fixed (byte* p = data)
        {
            do n = write(Fd, p, data.Length);
            while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
        }
        if (n >= 0) return (int)n;
        int errno = Marshal.GetLastPInvokeError();
        if (errno != EAGAIN) error = Failure(errno, "write");
        return 0;
    }

    void WriteReady()
    {
        if (_buffer.Count == 0) { Loop.SetWatchActive(Source.Writer, false); return; }
        int n = TryWrite(_buffer.Pending, out var error);
        if (error != null) { ForceClose(error); return; }
        _buffer.Consume(n);
        MaybeResumeProtocol();
        if (_buffer.Count != 0) return;
        Loop.SetWatchActive(Source.Writer, false);
        if (Closing || _eof) ForceClose(null);   // a close or WriteEof waited for the buffer to drain
    }

    /// <summary>The reader closed its end (a child closed its stdin, or exited): a broken pipe if output was still waiting, else a plain end.</summary>
    void ReaderClosed()
    {
        if (_buffer.Count != 0) ForceClose(Failure(EPIPE, "write"));
        else ForceClose(null);
    }

    /// <summary>Closes the pipe once the buffer has drained, which the child reads as end of file; asyncio's <c>write_eof</c>.</summary>
    public override void WriteEof()
    {
        Loop.CheckThread(nameof(ITransport), nameof(WriteEof));
        if (_eof || Closing) return;
        _eof = true;
        Close();   // asyncio's write_eof of a pipe is its close
    }

    public override void Close()
    {
        Loop.CheckThread(nameof(ITransport), nameof(Close));
        if (Closing) return;
        if (_buffer.Count == 0) { ForceClose(null); return; }
        Closing = true;   // the writer watch is on: WriteReady closes once the buffer drains
        Loop.SetWatchActive(Source.Reader, false);
    }

    protected override void Dropped()
    {
        _buffer.Consume(_buffer.Count);
        _buffer.Release();
    }
}
