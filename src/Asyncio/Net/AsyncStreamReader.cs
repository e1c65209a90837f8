using System.Runtime.CompilerServices;

namespace Asyncio;

// asyncio's StreamReader: a buffer fed by a protocol, and coroutines that take from it.
//
// Every read follows one shape: check for a stored exception, try to satisfy the read from the buffer,
// and otherwise wait for more data and try again. The wait (ReaderWaiter) consumes nothing; data is
// taken from the buffer only synchronously, after a successful check. A task cancelled while it waits,
// or woken and cancelled before it resumes, therefore leaves every byte in the buffer for the next read:
// a connection is never half-consumed. Only one coroutine may wait at a time (asyncio raises
// RuntimeError; here InvalidOperationException).
//
// Flow control: when the buffer holds more than twice the limit the transport is paused; it is resumed
// when a read brings the buffer down to the limit, or when a read has to wait (asyncio's
// _maybe_resume_transport and _wait_for_data).
//
// Differences from asyncio: ReadLine raises LimitOverrunError and keeps the buffer intact when a line is
// longer than the limit (asyncio discards the data and raises ValueError), so that bad input loses
// nothing; ReadInto reads into a caller's buffer without allocating, and a ReadInto of 32 KiB or more that
// waits on an empty buffer is filled by the socket transport's receive itself (no copy; on Linux the same
// receive puts what does not fit into the reader's buffer, up to twice the limit); the reader enumerates its
// lines with await foreach (asyncio's async for).

/// <summary>
/// Reads from a connection; asyncio's <c>StreamReader</c>. Made by <c>Aio.OpenConnection</c> and
/// <see cref="Aio.StartServer(Func{AsyncStreamReader, AsyncStreamWriter, Task}, string?, int, int, int, System.Net.Security.SslServerAuthenticationOptions?, TimeSpan?, TimeSpan?, bool, bool, bool)"/>; loop thread only.
/// </summary>
public sealed class AsyncStreamReader : IAsyncEnumerable<byte[]>
{
    /// <summary>asyncio's default limit, 64 KiB.</summary>
    public const int DefaultLimit = 64 * 1024;

    readonly EventLoop _loop;
    byte[] _buf = [];
    int _start, _end;
    bool _eof;
    Exception? _exception;
    IReadTransport? _transport;
    bool _paused;
    Waiter? _waiter;             // the one pending read (ReaderWaiter or ReadIntoWaiter)

    /// <summary>Creates a reader on the running loop with the given line limit; asyncio's <c>StreamReader(limit)</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is not positive.</exception>
    public AsyncStreamReader(int limit = DefaultLimit)
    {
        if (limit <= 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "Limit cannot be <= 0");
        Limit = limit;
        _loop = EventLoop.GetRunningLoop();
    }

    internal EventLoop Loop => _loop;

    /// <summary>The buffer limit: the longest line or separated chunk a read accepts.</summary>
    public int Limit { get; }

    /// <summary>Bytes buffered and not read yet.</summary>
    public int BufferedCount => _end - _start;

    ReadOnlySpan<byte> Buffered => new(_buf, _start, _end - _start);

    /// <summary>The exception set by <see cref="SetException"/> (the connection's error), or <see langword="null"/>.</summary>
    public Exception? Exception => _exception;

    /// <summary>Whether the stream has ended and the buffer is empty; asyncio's <c>at_eof()</c>.</summary>
    public bool AtEof => _eof && _start == _end;

    // ---- feeding (the protocol side) ----

    /// <summary>Sets the transport the reader pauses and resumes.</summary>
    public void SetTransport(IReadTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        if (_transport != null) throw new InvalidOperationException("Transport already set.");
        _transport = transport;
    }

    internal void ReplaceTransport(IReadTransport transport) => _transport = transport;

    /// <summary>Appends received bytes and wakes a waiting read; asyncio's <c>feed_data</c>.</summary>
    /// <exception cref="InvalidOperationException">After <see cref="FeedEof"/>.</exception>
    public void FeedData(ReadOnlySpan<byte> data)
    {
        if (_eof) throw new InvalidOperationException("FeedData after FeedEof.");
        if (data.IsEmpty) return;
        if (_waiter is ReadIntoWaiter direct && _start == _end)
        {
            // A ReadInto is waiting on an empty buffer: copy straight into its memory (one copy instead of
            // two). Should its task be cancelled before it resumes, the bytes are put back (Unread).
            int n = direct.Fill(data);
            data = data[n..];
        }
        if (!data.IsEmpty) Append(data);
        WakeWaiter();
        if (_transport != null && !_paused && _end - _start > 2 * Limit)
        {
            try
            {
                _transport.PauseReading();
                _paused = true;
            }
            catch (NotSupportedException)
            {
                _transport = null;
            }
        }
    }

    /// <summary>
    /// The smallest <see cref="ReadInto"/> buffer that a transport receives into directly. A smaller read is
    /// better served by one large receive into the loop's buffer, whose rest the next reads take without a
    /// system call or a wait each.
    /// </summary>
    internal const int DirectReceiveMinimum = 32 * 1024;

    /// <summary>
    /// When a <see cref="ReadInto"/> of at least <see cref="DirectReceiveMinimum"/> bytes waits on an empty
    /// buffer, the part of its memory still free: a transport may receive straight into it and report the
    /// count with <see cref="DirectReceived"/>.
    /// </summary>
    internal bool TryGetDirectBuffer(out Memory<byte> buffer)
    {
        if (_waiter is ReadIntoWaiter w && _start == _end && !_eof && w.Unfilled.Length >= DirectReceiveMinimum)
        {
            buffer = w.Unfilled;
            return true;
        }
        buffer = default;
        return false;
    }

    /// <summary>A transport received <paramref name="count"/> bytes into <see cref="TryGetDirectBuffer"/>'s memory: wake the read.</summary>
    internal void DirectReceived(int count)
    {
        ((ReadIntoWaiter)_waiter!).Filled(count);
        WakeWaiter();
    }

    /// <summary>How many more bytes <see cref="FeedData"/> takes before it pauses the transport (twice the limit in all).</summary>
    internal int SpillRoom => Math.Max(0, 2 * Limit - (_end - _start));

    void Append(ReadOnlySpan<byte> data)
    {
        if (_buf.Length - _end < data.Length)
        {
            int count = _end - _start;
            if (_buf.Length >= count + data.Length && _start > 0)
            {
                Buffer.BlockCopy(_buf, _start, _buf, 0, count);
            }
            else
            {
                var bigger = GC.AllocateUninitializedArray<byte>(Math.Max(count + data.Length, Math.Max(1024, _buf.Length * 2)));
                Buffer.BlockCopy(_buf, _start, bigger, 0, count);
                _buf = bigger;
            }
            _start = 0;
            _end = count;
        }
        data.CopyTo(_buf.AsSpan(_end));
        _end += data.Length;
    }

    /// <summary>Marks the end of the stream and wakes a waiting read; asyncio's <c>feed_eof</c>.</summary>
    public void FeedEof()
    {
        _eof = true;
        WakeWaiter();
    }

    /// <summary>Stores the connection's error: every later read throws it; asyncio's <c>set_exception</c>.</summary>
    public void SetException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        _exception = exception;
        WakeWaiter();
    }

    void WakeWaiter()
    {
        var w = _waiter;
        if (w == null) return;
        _waiter = null;
        w.Wake();
    }

    void Consume(int n)
    {
        _start += n;
        if (_start == _end) _start = _end = 0;
        MaybeResumeTransport();
    }

    void MaybeResumeTransport()
    {
        if (_paused && _end - _start <= Limit)
        {
            _paused = false;
            _transport!.ResumeReading();
        }
    }

    /// <summary>asyncio's <c>_wait_for_data</c>: one waiter at a time; resumes a paused transport first.</summary>
    ValueTask WaitForData(string member)
    {
        if (_waiter != null) ThrowBusy(member);
        ResumeIfPaused();
        var w = ReaderWaiter.Rent(this);
        _waiter = w;
        return new ValueTask(w, w.Version);
    }

    void ResumeIfPaused()
    {
        if (_paused)
        {
            _paused = false;
            _transport!.ResumeReading();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowBusy(string member) =>
        throw new InvalidOperationException($"{member}() called while another coroutine is already waiting for incoming data.");

    internal void WaiterLeft(Waiter w)
    {
        if (ReferenceEquals(_waiter, w)) _waiter = null;
    }

    internal void ThrowIfFaulted()
    {
        if (_exception != null) EventLoop.Rethrow(_exception);
    }

    // ---- reads ----

    /// <summary>
    /// Reads up to <paramref name="n"/> bytes, waiting until at least one is available; with
    /// <paramref name="n"/> = -1 reads to the end of the stream. Returns an empty array at the end of the
    /// stream; asyncio's <c>read(n)</c>.
    /// </summary>
    public async ValueTask<byte[]> Read(int n = -1)
    {
        ThrowIfFaulted();
        if (n == 0) return [];
        if (n < 0) return await ReadToEnd();
        await WaitReadable(nameof(Read));
        int take = Math.Min(n, _end - _start);
        var data = Buffered[..take].ToArray();
        Consume(take);
        return data;
    }

    /// <summary>
    /// Completes once data is buffered or the stream has ended, and takes nothing: <see cref="Read"/>'s wait,
    /// and the zero-byte read of .NET's network streams (a caller waits for data before it rents a buffer) for
    /// <see cref="AsyncConnectionStream"/>. Pooled: a wait allocates nothing in steady state.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<int> WaitReadable(string member)
    {
        ThrowIfFaulted();
        while (_start == _end && !_eof)
        {
            await WaitForData(member);
            ThrowIfFaulted();
        }
        return 0;
    }

    /// <summary>
    /// Reads up to <paramref name="buffer"/>.Length bytes into <paramref name="buffer"/>, waiting until at
    /// least one is available; returns 0 at the end of the stream. Allocates nothing: the wait is a pooled
    /// waiter. Data that arrives while it waits goes straight into <paramref name="buffer"/> (for a buffer of
    /// 32 KiB or more on a plain TCP or Unix connection, the socket is read into it directly, and on Linux the same
    /// receive buffers what does not fit, up to twice <see cref="Limit"/>); should the task be cancelled before
    /// it resumes, those bytes go back into the reader, in order.
    /// </summary>
    public ValueTask<int> ReadInto(Memory<byte> buffer)
    {
        ThrowIfFaulted();
        if (buffer.IsEmpty) return new ValueTask<int>(0);
        if (_start != _end || _eof) return new ValueTask<int>(TakeInto(buffer.Span));
        if (_waiter != null) ThrowBusy(nameof(ReadInto));
        ResumeIfPaused();
        var w = ReadIntoWaiter.Rent(this, buffer);
        _waiter = w;
        return new ValueTask<int>(w, w.Version);
    }

    /// <summary>Puts bytes back in front of the buffer (a ReadInto filled directly, then cancelled before it resumed).</summary>
    internal void Unread(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        int count = _end - _start;
        if (_start >= data.Length)
        {
            _start -= data.Length;
        }
        else
        {
            var bigger = GC.AllocateUninitializedArray<byte>(Math.Max(1024, count + data.Length));
            Buffer.BlockCopy(_buf, _start, bigger, data.Length, count);
            _buf = bigger;
            _start = 0;
            _end = data.Length + count;
        }
        data.CopyTo(_buf.AsSpan(_start));
    }

    /// <summary>Copies buffered bytes into <paramref name="dest"/> (what a woken ReadInto does).</summary>
    internal int TakeInto(Span<byte> dest)
    {
        ThrowIfFaulted();
        int take = Math.Min(dest.Length, _end - _start);
        Buffered[..take].CopyTo(dest);
        Consume(take);
        return take;
    }

    /// <summary>
    /// Reads everything up to the end of the stream; asyncio's <c>read()</c>. The bytes stay in the buffer
    /// until the end has come (each wait resumes a transport paused by the buffer's limit), so that a read
    /// cancelled midway leaves them all for the next read (asyncio's, which keeps its blocks in a local list,
    /// loses them).
    /// </summary>
    public async ValueTask<byte[]> ReadToEnd()
    {
        ThrowIfFaulted();
        while (!_eof)
        {
            await WaitForData(nameof(ReadToEnd));
            ThrowIfFaulted();
        }
        var data = Buffered.ToArray();
        Consume(data.Length);
        return data;
    }

    /// <summary>
    /// Reads exactly <paramref name="n"/> bytes; asyncio's <c>readexactly</c>.
    /// </summary>
    /// <exception cref="IncompleteReadError">The stream ended first; the bytes read are in <see cref="IncompleteReadError.Partial"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    public async ValueTask<byte[]> ReadExactly(int n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "ReadExactly size can not be less than zero.");
        ThrowIfFaulted();
        if (n == 0) return [];
        while (_end - _start < n)
        {
            if (_eof)
            {
                var partial = Buffered.ToArray();
                Consume(partial.Length);
                throw new IncompleteReadError(partial, n);
            }
            await WaitForData(nameof(ReadExactly));
            ThrowIfFaulted();
        }
        var data = Buffered[..n].ToArray();
        Consume(n);
        return data;
    }

    static readonly ReadOnlyMemory<byte>[] s_newlineSeparators = ["\n"u8.ToArray()];

    /// <summary>
    /// Reads one line, up to and including <c>\n</c>; at the end of the stream returns the partial line
    /// (empty when nothing is left); asyncio's <c>readline</c>.
    /// </summary>
    /// <exception cref="LimitOverrunError">The line is longer than <see cref="Limit"/>; nothing is consumed
    /// (asyncio discards the data and raises ValueError).</exception>
    public async ValueTask<byte[]> ReadLine()
    {
        try
        {
            return await ReadUntilCore(s_newlineSeparators);
        }
        catch (IncompleteReadError e)
        {
            return e.Partial;
        }
    }

    /// <summary>
    /// Reads up to and including <paramref name="separator"/>; asyncio's <c>readuntil</c>.
    /// </summary>
    /// <exception cref="IncompleteReadError">The stream ended first; the partial data is consumed and carried by the error.</exception>
    /// <exception cref="LimitOverrunError">No separator within the limit; nothing is consumed.</exception>
    /// <exception cref="ArgumentException">The separator is empty.</exception>
    public ValueTask<byte[]> ReadUntil(ReadOnlyMemory<byte> separator) => ReadUntilCore([separator]);

    /// <summary>
    /// Reads up to and including <c>\n</c>: asyncio's <c>readuntil()</c> with its default separator. Unlike
    /// <see cref="ReadLine"/>, a stream that ends without a newline raises. Errors as
    /// <see cref="ReadUntil(ReadOnlyMemory{byte})"/>.
    /// </summary>
    public ValueTask<byte[]> ReadUntil() => ReadUntilCore(s_newlineSeparators);

    /// <summary>
    /// Reads up to and including whichever of <paramref name="separators"/> ends the shortest chunk (asyncio
    /// 3.13's <c>readuntil</c> with a tuple of separators). Errors as <see cref="ReadUntil(ReadOnlyMemory{byte})"/>;
    /// when several separators end the chunk, the limit is checked against the data before the shortest of them.
    /// </summary>
    public ValueTask<byte[]> ReadUntil(params ReadOnlyMemory<byte>[] separators) => ReadUntilCore(separators);

    async ValueTask<byte[]> ReadUntilCore(ReadOnlyMemory<byte>[] separators)
    {
        ArgumentNullException.ThrowIfNull(separators);
        if (separators.Length == 0) throw new ArgumentException("Must provide at least one separator.", nameof(separators));
        int minLen = int.MaxValue, maxLen = 0;
        foreach (var s in separators)
        {
            if (s.IsEmpty) throw new ArgumentException("Separator should be at least one-byte string.", nameof(separators));
            minLen = Math.Min(minLen, s.Length);
            maxLen = Math.Max(maxLen, s.Length);
        }
        ThrowIfFaulted();
        int offset = 0;
        int matchEnd;
        int matchStart;
        while (true)
        {
            int buflen = _end - _start;
            if (buflen - offset >= minLen)
            {
                matchStart = -1;
                matchEnd = -1;
                var window = Buffered;
                foreach (var s in separators)
                {
                    int i = window[offset..].IndexOf(s.Span);
                    if (i < 0) continue;
                    i += offset;
                    int end = i + s.Length;
                    // The shortest chunk wins; of separators ending it together, the shortest is the one that
                    // matched (asyncio sorts them by length), which sets the chunk length the limit checks.
                    if (matchEnd < 0 || end < matchEnd || (end == matchEnd && i > matchStart)) { matchEnd = end; matchStart = i; }
                }
                if (matchEnd >= 0) break;
                offset = Math.Max(0, buflen + 1 - maxLen);
                if (offset > Limit)
                    throw new LimitOverrunError("Separator is not found, and chunk exceed the limit", offset);
            }
            if (_eof)
            {
                var chunk = Buffered.ToArray();
                Consume(chunk.Length);
                throw new IncompleteReadError(chunk, null);
            }
            await WaitForData(nameof(ReadUntil));
            ThrowIfFaulted();
        }
        if (matchStart > Limit)
            throw new LimitOverrunError("Separator is found, but chunk is longer than limit", matchStart);
        var result = Buffered[..matchEnd].ToArray();
        Consume(matchEnd);
        return result;
    }

    /// <summary>Enumerates lines until the end of the stream (asyncio's <c>async for line in reader</c>).</summary>
    public async IAsyncEnumerator<byte[]> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var line = await ReadLine();
            if (line.Length == 0) yield break;
            yield return line;
        }
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"<AsyncStreamReader {BufferedCount} bytes{(_eof ? " eof" : "")}{(_exception != null ? " exception=" + _exception.GetType().Name : "")}{(_paused ? " paused" : "")}>";
}

/// <summary>A read waiting for data (pooled); see the Waiter protocol.</summary>
internal sealed class ReaderWaiter : Waiter
{
    AsyncStreamReader? _reader;

    public static ReaderWaiter Rent(AsyncStreamReader reader)
    {
        var w = WaiterPool<ReaderWaiter>.Rent();
        w.Init(reader.Loop);
        w._reader = reader;
        return w;
    }

    protected override void RemoveFromPrimitive() => _reader!.WaiterLeft(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncStreamReader read", _reader);

    protected override void ReturnToPool()
    {
        _reader = null;
        WaiterPool<ReaderWaiter>.Return(this);
    }
}

/// <summary>
/// A ReadInto waiting for data (pooled). The first data to arrive goes straight into the caller's buffer,
/// received there by the transport (<see cref="Filled"/>) or copied (<see cref="Fill"/>); if the awaiting
/// task is cancelled before it resumes, those bytes go back to the front of the reader's buffer, so nothing
/// is lost. Otherwise it takes from the reader's buffer when it resumes (end of stream, or an error).
/// </summary>
internal sealed class ReadIntoWaiter : Waiter<int>
{
    AsyncStreamReader? _reader;
    Memory<byte> _buffer;
    int _filled;

    /// <summary>Copies as much of <paramref name="data"/> as fits into the caller's buffer; returns how much.</summary>
    public int Fill(ReadOnlySpan<byte> data)
    {
        int n = Math.Min(data.Length, _buffer.Length - _filled);
        data[..n].CopyTo(_buffer.Span[_filled..]);
        _filled += n;
        return n;
    }

    /// <summary>The part of the caller's buffer not filled yet (a transport may receive into it).</summary>
    public Memory<byte> Unfilled => _buffer[_filled..];

    /// <summary>Counts <paramref name="count"/> bytes received straight into <see cref="Unfilled"/>.</summary>
    public void Filled(int count) => _filled += count;

    protected override void OnCancelledAfterWake()
    {
        _reader!.Unread(_buffer.Span[.._filled]);
        _filled = 0;
    }

    public static ReadIntoWaiter Rent(AsyncStreamReader reader, Memory<byte> buffer)
    {
        var w = WaiterPool<ReadIntoWaiter>.Rent();
        w.Init(reader.Loop);
        w._reader = reader;
        w._buffer = buffer;
        return w;
    }

    protected override void RemoveFromPrimitive() => _reader!.WaiterLeft(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncStreamReader read", _reader);

    protected override int TakeResult()
    {
        // Woken only by data, end of stream or an error; a failure here still returns the waiter to its pool.
        if (_filled != 0) return _filled;
        try { return _reader!.TakeInto(_buffer.Span); }
        catch { Release(); throw; }
    }

    protected override void ReturnToPool()
    {
        _reader = null;
        _buffer = default;
        _filled = 0;
        WaiterPool<ReadIntoWaiter>.Return(this);
    }
}
