using System.Net.Sockets;

namespace Asyncio;

// asyncio's loop.sendfile and loop.sock_sendfile, in their portable form (the fallbacks): the file is read
// in chunks on a worker thread and written to the transport (or sent on the socket). Sendfile waits whenever
// the transport pauses writing: while it runs, a forwarding protocol stands in for the transport's protocol,
// as asyncio's _SendfileFallbackProtocol does, to see pause/resume writing; received data still reaches the
// original protocol. Differences from asyncio: no zero-copy os.sendfile path (the kernel's sendfile would
// need the transport's buffer empty and a descriptor for the file; the chunked copy is what TLS transports
// use in asyncio as well); a count of 0 sends nothing (asyncio's sock_sendfile rejects it).

public sealed partial class EventLoop
{
    const int SendfileChunk = 256 * 1024;

    /// <summary>
    /// Sends <paramref name="count"/> bytes of <paramref name="file"/> (to its end when <see langword="null"/>)
    /// from <paramref name="offset"/> over <paramref name="transport"/>, honouring its flow control; asyncio's
    /// <c>loop.sendfile</c>. Returns the number of bytes sent. The file's position is left after the last
    /// byte sent. The transport keeps reading meanwhile and its protocol receives what arrives (asyncio pauses
    /// reading; call <see cref="IReadTransport.PauseReading"/> first for that).
    /// </summary>
    /// <exception cref="ArgumentException">The file cannot be read or seeked.</exception>
    /// <exception cref="InvalidOperationException">The transport is closing.</exception>
    public async Task<long> Sendfile(ITransport transport, Stream file, long offset = 0, long? count = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        CheckSendfileArguments(file, offset, count);
        CheckThread(nameof(Sendfile));
        if (transport.IsClosing) throw new InvalidOperationException("Transport is closing.");
        var original = transport.Protocol;
        // The transport paused the original protocol if its buffer is above the high-water mark.
        bool pausedBefore = transport.WriteBufferSize > transport.GetWriteBufferLimits().High;
        var watcher = new SendfileProtocol(this, original, pausedBefore);
        transport.Protocol = watcher;
        try
        {
            long sent = await SendChunks(file, offset, count, async chunk =>
            {
                await watcher.Drain();
                transport.Write(chunk.Span);
            });
            await watcher.Drain();
            return sent;
        }
        finally
        {
            if (ReferenceEquals(transport.Protocol, watcher)) transport.Protocol = original;
            watcher.Restore();
        }
    }

    /// <summary>
    /// Sends <paramref name="count"/> bytes of <paramref name="file"/> (to its end when <see langword="null"/>)
    /// from <paramref name="offset"/> over the connected stream socket <paramref name="socket"/>, waiting while
    /// its buffer is full; asyncio's <c>loop.sock_sendfile</c>. Returns the number of bytes sent; the file's
    /// position is left after the last byte sent, also when the send fails or is cancelled part-way.
    /// </summary>
    /// <remarks>The file is read in chunks on the executor and sent with <see cref="SockSendAll"/> (asyncio's
    /// fallback path; see the file's opening comment).</remarks>
    /// <exception cref="ArgumentException">The socket is blocking or not a stream socket, or the file cannot be read or seeked.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> or <paramref name="count"/> is negative.</exception>
    /// <exception cref="SocketException">The send failed.</exception>
    public Task<long> SockSendfile(Socket socket, Stream file, long offset = 0, long? count = null)
    {
        CheckNonBlocking(socket);
        if (socket.SocketType != SocketType.Stream) throw new ArgumentException("The socket must be a stream socket.", nameof(socket));
        CheckSendfileArguments(file, offset, count);
        CheckThread(nameof(SockSendfile));
        return SendChunks(file, offset, count, chunk => SockSendAll(socket, chunk));
    }

    /// <summary>
    /// Reads <paramref name="count"/> bytes of <paramref name="file"/> from <paramref name="offset"/> (to its end
    /// when <see langword="null"/>) in chunks on the executor and hands each to <paramref name="send"/>; returns
    /// the bytes sent. A chunk counts once <paramref name="send"/> has completed: whatever happens, the file's
    /// position is left after the chunks sent (asyncio's fallbacks do the same).
    /// </summary>
    /// <remarks>
    /// The read of a chunk runs on the executor, which cancellation cannot stop: a call cancelled meanwhile leaves
    /// the buffer and the file to that read, and puts them back (buffer to its pool, position after what was
    /// sent) only when it ends.
    /// </remarks>
    async Task<long> SendChunks(Stream file, long offset, long? count, Func<ReadOnlyMemory<byte>, ValueTask> send)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(SendfileChunk);
        long sent = 0;
        Future<int>? reading = null;
        try
        {
            file.Seek(offset, SeekOrigin.Begin);
            while (true)
            {
                int want = (int)Math.Min(SendfileChunk, count is long c ? c - sent : SendfileChunk);
                if (want == 0) break;
                reading = RunInExecutor(null, () => file.Read(buffer, 0, want));
                // A cancellation must not mark the read done while it runs; a late failure is moot (below).
                int n = await Aio.ShieldQuietly(reading);
                if (n == 0) break;
                await send(buffer.AsMemory(0, n));
                sent += n;
            }
            return sent;
        }
        finally
        {
            if (reading is { IsDone: false } running)
                running.AddDoneCallback(f =>
                {
                    f.RetrieveException();   // a late read's failure is moot
                    PutBack();
                });
            else PutBack();
        }

        void PutBack()
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            if (file.CanSeek) file.Seek(offset + sent, SeekOrigin.Begin);
        }
    }

    static void CheckSendfileArguments(Stream file, long offset, long? count)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (count is < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be a non-negative integer or null.");
        if (!file.CanRead || !file.CanSeek) throw new ArgumentException("The file must be readable and seekable.", nameof(file));
    }

    /// <summary>Forwards everything to the original protocol and tracks pause/resume writing for Sendfile.</summary>
    sealed class SendfileProtocol(EventLoop loop, BaseProtocol inner, bool pausedBefore) : Protocol
    {
        bool _paused = pausedBefore, _lost;
        readonly bool _innerPaused = pausedBefore;
        Exception? _lostWith;
        Future? _resumed;

        public async Task Drain()
        {
            if (_lost) throw _lostWith ?? StreamProtocol.NewConnectionLost();
            while (_paused)
            {
                _resumed ??= loop.CreateFuture();
                await _resumed;
                if (_lost) throw _lostWith ?? StreamProtocol.NewConnectionLost();
            }
        }

        /// <summary>Tells the original protocol the state it missed (asyncio's _SendfileFallbackProtocol.restore).</summary>
        public void Restore()
        {
            if (_paused != _innerPaused)
            {
                if (_paused) inner.PauseWriting(); else inner.ResumeWriting();
            }
        }

        public override void ConnectionMade(IBaseTransport transport) => inner.ConnectionMade(transport);

        public override void ConnectionLost(Exception? exception)
        {
            _lost = true;
            _lostWith = exception;
            Wake();
            inner.ConnectionLost(exception);
        }

        public override void PauseWriting() => _paused = true;

        public override void ResumeWriting()
        {
            _paused = false;
            Wake();
        }

        void Wake()
        {
            var f = _resumed;
            _resumed = null;
            if (f is { IsDone: false }) f.SetResult();
        }

        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            if (inner is Protocol p) p.DataReceived(data);
            else if (inner is BufferedProtocol b)
            {
                while (!data.IsEmpty)
                {
                    var into = b.GetBuffer(data.Length);
                    int n = Math.Min(into.Length, data.Length);
                    data[..n].CopyTo(into.Span);
                    b.BufferUpdated(n);
                    data = data[n..];
                }
            }
        }

        public override bool EofReceived() => inner is Protocol p ? p.EofReceived() : inner is BufferedProtocol b && b.EofReceived();
    }
}
