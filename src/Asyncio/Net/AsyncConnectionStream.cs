namespace Asyncio;

// A System.IO.Stream over a reader/writer pair, so that any .NET code that takes a Stream (SslStream,
// serializers, compression, HttpClient's handlers...) works on a loop connection.
//
// The Stream's async methods map onto the streams layer: ReadAsync is AsyncStreamReader.ReadInto (no
// allocation without a token), WriteAsync is Write followed by Drain (so a slow peer makes the writer wait),
// FlushAsync is Drain, disposing closes the writer. They must be called on the loop thread, from code the
// loop runs, like every loop primitive, or from another thread, in which case they are handed to the
// loop (RunCoroutineThreadsafe) and complete on the thread pool: .NET code that continues on the pool
// (SslStream does in some paths) keeps working. The synchronous Read/Write would block the loop that has
// to deliver the data, so they throw NotSupportedException.
//
// The ValueTasks returned without a token are the streams layer's pooled waiters, not Tasks: .NET runs
// a Task's ConfigureAwait(false) continuation (SslStream's, for one) on the thread pool when the Task
// completes on a thread that has a synchronisation context, as the loop's thread has, and the
// continuation would then touch the loop from the wrong thread. A waiter resumes through the ready queue.
//
// A CancellationToken is honoured by running the operation as a child task of the loop and cancelling
// that task when the token fires; a cancelled read consumes nothing (the streams layer's guarantee). A token
// cancelled before the call gives a cancelled task and does nothing (no byte written or taken), as .NET's
// streams do. Dispose and DisposeAsync from another thread hand the close to the loop, as the I/O calls do.

/// <summary>
/// A <see cref="Stream"/> view of a connection (its <see cref="AsyncStreamReader"/> and
/// <see cref="AsyncStreamWriter"/>); use it with .NET APIs that take a <see cref="Stream"/>.
/// </summary>
/// <remarks>Asynchronous methods only (called off the loop thread they are marshalled to it). Reading returns 0 at the end of the stream;
/// a read into an empty buffer waits until data has arrived (or the stream has ended) and returns 0 without taking any, as
/// .NET's network streams do; disposing closes the connection.</remarks>
public sealed class AsyncConnectionStream : Stream
{
    readonly AsyncStreamReader _reader;
    readonly AsyncStreamWriter _writer;
    readonly bool _ownsConnection;
    bool _disposed;

    /// <summary>Creates the view; with <paramref name="ownsConnection"/> (the default) disposing the stream closes the connection.</summary>
    public AsyncConnectionStream(AsyncStreamReader reader, AsyncStreamWriter writer, bool ownsConnection = true)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        _reader = reader;
        _writer = writer;
        _ownsConnection = ownsConnection;
    }

    /// <summary>The reader under the view.</summary>
    public AsyncStreamReader Reader => _reader;

    /// <summary>The writer under the view.</summary>
    public AsyncStreamWriter Writer => _writer;

    /// <inheritdoc />
    public override bool CanRead => !_disposed;
    /// <inheritdoc />
    public override bool CanWrite => !_disposed;
    /// <inheritdoc />
    public override bool CanSeek => false;
    /// <inheritdoc />
    public override long Length => throw new NotSupportedException("A connection has no length.");
    /// <inheritdoc />
    public override long Position
    {
        get => throw new NotSupportedException("A connection has no position.");
        set => throw new NotSupportedException("A connection has no position.");
    }

    /// <inheritdoc />
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<int>(cancellationToken);
        var loop = _reader.Loop;
        if (!loop.IsAwaitableHere)
            return new ValueTask<int>(loop.RunCoroutineThreadsafe(() => ReadAsync(buffer, cancellationToken).AsTask(), cancellationToken));
        if (buffer.IsEmpty)
        {
            // A zero-byte read waits for data and takes none, as NetworkStream's and SslStream's do.
            if (!cancellationToken.CanBeCanceled) return _reader.WaitReadable(nameof(ReadAsync));
            return new ValueTask<int>(WithToken(() => _reader.WaitReadable(nameof(ReadAsync)).AsTask(), cancellationToken));
        }
        if (!cancellationToken.CanBeCanceled) return _reader.ReadInto(buffer);
        return new ValueTask<int>(WithToken(() => _reader.ReadInto(buffer).AsTask(), cancellationToken));
    }

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled(cancellationToken);
        var loop = _reader.Loop;
        if (!loop.IsAwaitableHere)
            return new ValueTask(loop.RunCoroutineThreadsafe(() => WriteAsync(buffer, cancellationToken).AsTask(), cancellationToken));
        _writer.Write(buffer.Span);
        if (!cancellationToken.CanBeCanceled) return _writer.Drain();
        return new ValueTask(WithToken(async () => { await _writer.Drain(); return 0; }, cancellationToken));
    }

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled(cancellationToken);
        if (_disposed) return Task.CompletedTask;
        var loop = _reader.Loop;
        if (!loop.IsAwaitableHere) return loop.RunCoroutineThreadsafe(() => FlushAsync(cancellationToken), cancellationToken);
        if (!cancellationToken.CanBeCanceled) return _writer.Drain().AsTask();
        return WithToken(async () => { await _writer.Drain(); return 0; }, cancellationToken);
    }

    static Task<int> WithToken(Func<Task<int>> op, CancellationToken token)
    {
        token.ThrowIfCancellationRequested();
        var loop = EventLoop.GetRunningLoop();
        var task = loop.CreateTask(op);
        var reg = token.Register(static o =>
        {
            var (l, t) = ((EventLoop, AioTask))o!;
            l.PostInternal(static task => ((AioTask)task!).Cancel(), t);   // dropped if the loop is closed
        }, (loop, (AioTask)task));
        task.AddDoneCallback(_ => reg.Dispose());
        return task.AsTask();
    }

    /// <summary>Not supported: a synchronous read would block the loop that delivers the data. Use <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>.</summary>
    public override int Read(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("Synchronous reads would block the event loop; use ReadAsync.");

    /// <summary>Not supported: use <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>.</summary>
    public override void Write(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("Synchronous writes would block the event loop; use WriteAsync.");

    /// <summary>Does nothing: writes are handed to the transport at once (use <see cref="FlushAsync(CancellationToken)"/> to wait for the buffer to drain).</summary>
    public override void Flush() { }

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("A connection cannot seek.");

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException("A connection has no length.");

    /// <summary>Closes the connection (when the view owns it); from another thread than the running loop's, the close is handed to the loop.</summary>
    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing && _ownsConnection)
        {
            var loop = _reader.Loop;
            if (loop.IsRunning && !loop.IsLoopThread)
            {
                // A closed loop has already dropped its connections: nothing is left to close.
                try { loop.CallSoonThreadsafe(_writer.Close); } catch (InvalidOperationException) { }
            }
            else _writer.Close();
        }
        _disposed = true;
        base.Dispose(disposing);
    }

    /// <summary>Closes the connection (when the view owns it) and waits for it to close; from another thread than the running loop's, on the loop.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_ownsConnection) return;
        var loop = _reader.Loop;
        if (!loop.IsRunning || loop.IsLoopThread)
        {
            await _writer.DisposeAsync();
            return;
        }
        // A loop closed before it took the close has already dropped its connections.
        try { await loop.RunCoroutineThreadsafe(() => _writer.DisposeAsync().AsTask()).ConfigureAwait(false); }
        catch (InvalidOperationException) when (loop.IsClosed) { }
    }
}
