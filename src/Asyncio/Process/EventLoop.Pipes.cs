using System.Runtime.InteropServices;

namespace Asyncio;

// Pipes a program hands the loop: asyncio's loop.connect_read_pipe and connect_write_pipe ("Working with
// pipes"), the way to read the standard input, a FIFO or an anonymous pipe without blocking the loop. The
// transports are the ones a child's pipes use (PipeTransport.cs); what is added here is taking the program's
// handle: checked to be a pipe, socket or character device (epoll cannot watch a regular file), made non-blocking
// for as long as the transport lives (the flag belongs to the open file, which another process may share: a
// terminal's), and owned by the transport, which disposes of it when it closes, as asyncio's transport closes
// its pipe. A handle that does not own its descriptor (`new SafeFileHandle(0, ownsHandle: false)` for the
// standard input) leaves the descriptor open.

public sealed partial class EventLoop
{
    HashSet<PipeTransportBase>? _pipes;

    /// <summary>
    /// Reads a pipe through a protocol; asyncio's <c>loop.connect_read_pipe</c>. <paramref name="pipe"/> is a pipe,
    /// a FIFO, a socket or a character device such as a terminal (the standard input: <c>new SafeFileHandle(0,
    /// ownsHandle: false)</c>). The transport takes the handle: it makes the descriptor non-blocking while it reads
    /// (and restores the flag when it closes), and disposes of the handle when it closes, after the end of the
    /// data (<see cref="Protocol.EofReceived"/>, then <see cref="BaseProtocol.ConnectionLost"/>), or on
    /// <see cref="IBaseTransport.Close"/>. Most programs use the stream form, <see cref="Aio.OpenPipeReader"/>.
    /// Needs the epoll reactor (Linux). Loop thread only.
    /// </summary>
    /// <param name="protocolFactory">Makes the protocol.</param>
    /// <param name="pipe">The pipe's read end; owned by the transport from now on.</param>
    /// <returns>The transport and the protocol, once the protocol's <see cref="BaseProtocol.ConnectionMade"/> has returned.</returns>
    /// <exception cref="ArgumentException"><paramref name="pipe"/> is a regular file, a directory, or a device epoll cannot watch (<c>/dev/null</c>).</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="pipe"/> is closed.</exception>
    /// <exception cref="InvalidOperationException">The loop already watches the descriptor (a transport or <c>AddReader</c> has it).</exception>
    /// <exception cref="NotSupportedException">The loop runs on the portable reactor, which watches sockets only.</exception>
    /// <remarks>If the call throws before the transport exists (these exceptions, or the protocol factory's), the handle is left as it
    /// was; if <see cref="BaseProtocol.ConnectionMade"/> throws or the call is cancelled, the transport closes and disposes of it.</remarks>
    public Task<(ITransport Transport, TProtocol Protocol)> ConnectReadPipe<TProtocol>(Func<TProtocol> protocolFactory, SafeHandle pipe)
        where TProtocol : Protocol =>
        ConnectPipe(protocolFactory, pipe, nameof(ConnectReadPipe), static (loop, fd, protocol, handle) => new ReadPipeTransport(loop, fd, protocol, handle));

    /// <summary>
    /// Writes a pipe through a transport; asyncio's <c>loop.connect_write_pipe</c>. <paramref name="pipe"/> is a pipe,
    /// a FIFO, a socket or a character device (the standard output: <c>new SafeFileHandle(1, ownsHandle: false)</c>).
    /// Writes that the pipe does not take at once are buffered, with the transport's water marks
    /// (<see cref="BaseProtocol.PauseWriting"/>); <see cref="IWriteTransport.WriteEof"/> or <see cref="IBaseTransport.Close"/>
    /// closes the pipe once the buffer has drained, which the reader sees as the end of the data; the reader closing its
    /// end ends the transport (a broken pipe if data was still waiting). The transport takes the handle as
    /// <see cref="ConnectReadPipe"/> does. Most programs use the stream form, <see cref="Aio.OpenPipeWriter"/>.
    /// Needs the epoll reactor (Linux). Loop thread only.
    /// </summary>
    /// <param name="protocolFactory">Makes the protocol.</param>
    /// <param name="pipe">The pipe's write end; owned by the transport from now on.</param>
    /// <returns>The transport and the protocol, once the protocol's <see cref="BaseProtocol.ConnectionMade"/> has returned.</returns>
    /// <exception cref="ArgumentException"><paramref name="pipe"/> is a regular file, a directory, or a device epoll cannot watch (<c>/dev/null</c>).</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="pipe"/> is closed.</exception>
    /// <exception cref="InvalidOperationException">The loop already watches the descriptor (a transport or <c>AddReader</c> has it).</exception>
    /// <exception cref="NotSupportedException">The loop runs on the portable reactor, which watches sockets only.</exception>
    /// <remarks>If the call throws before the transport exists (these exceptions, or the protocol factory's), the handle is left as it
    /// was; if <see cref="BaseProtocol.ConnectionMade"/> throws or the call is cancelled, the transport closes and disposes of it.</remarks>
    public Task<(ITransport Transport, TProtocol Protocol)> ConnectWritePipe<TProtocol>(Func<TProtocol> protocolFactory, SafeHandle pipe)
        where TProtocol : BaseProtocol =>
        ConnectPipe(protocolFactory, pipe, nameof(ConnectWritePipe), static (loop, fd, protocol, handle) => new WritePipeTransport(loop, fd, protocol, handle, watchReaderEnd: handle.IsPipeOrSocket));

    /// <summary>Takes the handle, makes the protocol and the transport, and waits for ConnectionMade (both forms).</summary>
    async Task<(ITransport Transport, TProtocol Protocol)> ConnectPipe<TProtocol>(Func<TProtocol> protocolFactory, SafeHandle pipe, string member,
        Func<EventLoop, int, TProtocol, PipeHandle, PipeTransportBase> makeTransport)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(pipe);
        CheckThread(member);
        var protocol = protocolFactory();   // before the handle is touched, as asyncio does
        var handle = TakePipe(pipe, member);
        PipeTransportBase transport;
        try
        {
            transport = makeTransport(this, handle.Fd, protocol, handle);
        }
        catch
        {
            handle.GiveBack();   // the descriptor is already watched, say: the handle is the program's again, as it was
            throw;
        }
        await Connected(transport).ConfigureAwait(true);
        return (transport, protocol);
    }

    PipeHandle TakePipe(SafeHandle pipe, string member)
    {
        CheckNotClosed();
        if (!_reactor.SupportsFileDescriptors)
            throw new NotSupportedException($"EventLoop.{member} needs the epoll reactor (Linux): the portable reactor watches sockets only.");
        return PipeHandle.Take(pipe);
    }

    /// <summary>Waits for the transport's ConnectionMade; closes the transport if that failed or the wait was cancelled, as asyncio does.</summary>
    async Task Connected(PipeTransportBase transport)
    {
        var made = CreateFuture();
        transport.Made = made;
        (_pipes ??= new()).Add(transport);
        try { await made; }
        catch
        {
            if (!transport.IsClosing) transport.Close();
            throw;
        }
    }

    /// <summary>A pipe of <see cref="ConnectReadPipe"/>/<see cref="ConnectWritePipe"/> has let go of its handle.</summary>
    internal void PipeClosed(PipeTransportBase transport) => _pipes?.Remove(transport);

    /// <summary>The loop closes: the pipes still open let go of their handles now (their ConnectionLost will never run).</summary>
    void ClosePipes()
    {
        if (_pipes == null) return;
        foreach (var p in _pipes.ToArray()) p.LoopClosing();
        _pipes.Clear();
    }
}

/// <summary>
/// A program's pipe handle held by a transport: referenced while the transport lives (so that it cannot be closed
/// under it), its descriptor non-blocking meanwhile, and disposed of (the flags put back first) when the transport closes.
/// </summary>
internal sealed partial class PipeHandle
{
    readonly SafeHandle _handle;
    readonly bool _setNonBlocking;   // the transport made the open file non-blocking, and puts it back
    bool _released;

    public readonly int Fd;

    /// <summary>A pipe, a FIFO or a socket, whose other end can close (not a terminal or another character device).</summary>
    public readonly bool IsPipeOrSocket;

    PipeHandle(SafeHandle handle, int fd, bool setNonBlocking, bool pipeOrSocket)
    {
        _handle = handle;
        Fd = fd;
        _setNonBlocking = setNonBlocking;
        IsPipeOrSocket = pipeOrSocket;
    }

    /// <summary>Checks and takes <paramref name="pipe"/>: a pipe, socket or character device, open; made non-blocking.</summary>
    public static PipeHandle Take(SafeHandle pipe)
    {
        ObjectDisposedException.ThrowIf(pipe.IsClosed, pipe);
        if (pipe.IsInvalid) throw new ArgumentException("The pipe's handle is invalid.", nameof(pipe));
        bool added = false;
        pipe.DangerousAddRef(ref added);
        try
        {
            int fd = (int)pipe.DangerousGetHandle();
            int type = FileType(fd);
            if (type is not (S_IFIFO or S_IFSOCK or S_IFCHR))
                throw new ArgumentException($"Descriptor {fd} is {(type == S_IFREG ? "a regular file" : type == S_IFDIR ? "a directory" : "not a pipe")}: pipe transports take pipes, FIFOs, sockets and character devices only (epoll cannot watch the others).", nameof(pipe));
            if (type == S_IFCHR && !EpollReactor.CanWatch(fd))
                throw new ArgumentException($"Descriptor {fd} is a character device that epoll cannot watch (such as /dev/null): read or write it directly instead.", nameof(pipe));
            int flags = SpawnNative.SetNonBlocking(fd, true);
            if (flags < 0)
                throw new IOException($"fcntl on descriptor {fd} failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            return new PipeHandle(pipe, fd, (flags & SpawnNative.O_NONBLOCK) == 0, type != S_IFCHR);
        }
        catch
        {
            pipe.DangerousRelease();
            throw;
        }
    }

    /// <summary>Puts the blocking mode back, lets go of the handle and disposes of it (which closes the descriptor if the handle owns it). Once.</summary>
    public void Release()
    {
        if (GiveBack()) _handle.Dispose();
    }

    /// <summary>Puts the blocking mode back and lets go of the handle without disposing of it (a transport that could not be made). Once; false if done before.</summary>
    public bool GiveBack()
    {
        if (_released) return false;
        _released = true;
        if (_setNonBlocking) SpawnNative.SetNonBlocking(Fd, false);   // only the flag it set
        _handle.DangerousRelease();
        return true;
    }

    const int S_IFMT = 0xF000, S_IFIFO = 0x1000, S_IFCHR = 0x2000, S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFSOCK = 0xC000;
    const int AT_EMPTY_PATH = 0x1000, STATX_TYPE = 0x1;

    /// <summary>The descriptor's file type (<c>S_IFMT</c> bits), from <c>statx</c>, whose layout is the same on every architecture.</summary>
    static unsafe int FileType(int fd)
    {
        byte* buffer = stackalloc byte[256];   // struct statx
        if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE, buffer) != 0)
            throw new IOException($"statx on descriptor {fd} failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        return *(ushort*)(buffer + 28) & S_IFMT;   // stx_mode
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

}

public static partial class Aio
{
    /// <summary>
    /// Reads a pipe as a stream: the stream form of <see cref="EventLoop.ConnectReadPipe"/> (asyncio's
    /// <c>StreamReader</c> with <c>connect_read_pipe</c>). The reader ends (an empty read) when the writers have all
    /// closed the pipe, and the handle is disposed of then. For the standard input:
    /// <c>await Aio.OpenPipeReader(new SafeFileHandle(0, ownsHandle: false))</c>. Needs the epoll reactor (Linux).
    /// </summary>
    /// <param name="pipe">The pipe's read end; owned by the reader's transport from now on.</param>
    /// <param name="limit">The reader's buffer limit (see <see cref="AsyncStreamReader(int)"/>).</param>
    /// <exception cref="ArgumentException"><paramref name="pipe"/> is a regular file or a directory.</exception>
    /// <exception cref="NotSupportedException">The loop runs on the portable reactor.</exception>
    public static async Task<AsyncStreamReader> OpenPipeReader(SafeHandle pipe, int limit = AsyncStreamReader.DefaultLimit)
    {
        var reader = new AsyncStreamReader(limit);
        await GetRunningLoop().ConnectReadPipe(() => new StreamProtocol(reader) { CloseOnEof = true }, pipe).ConfigureAwait(true);
        return reader;
    }

    /// <summary>
    /// Writes a pipe as a stream: the stream form of <see cref="EventLoop.ConnectWritePipe"/> (asyncio's
    /// <c>StreamWriter</c> over <c>connect_write_pipe</c>). <see cref="AsyncStreamWriter.Drain"/> waits while the
    /// pipe is full; <see cref="AsyncStreamWriter.Close"/> closes it once what was written has gone, and the reader
    /// then sees the end of the data. Needs the epoll reactor (Linux).
    /// </summary>
    /// <param name="pipe">The pipe's write end; owned by the writer's transport from now on.</param>
    /// <exception cref="ArgumentException"><paramref name="pipe"/> is a regular file or a directory.</exception>
    /// <exception cref="NotSupportedException">The loop runs on the portable reactor.</exception>
    public static async Task<AsyncStreamWriter> OpenPipeWriter(SafeHandle pipe)
    {
        var loop = GetRunningLoop();
        var (transport, protocol) = await loop.ConnectWritePipe(() => new StreamProtocol(loop), pipe).ConfigureAwait(true);
        return new AsyncStreamWriter(transport, protocol, null, loop);
    }
}
