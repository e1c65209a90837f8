namespace Asyncio;

// asyncio's StreamReaderProtocol with its FlowControlMixin: the protocol that connects a transport to
// an AsyncStreamReader (data, end of stream, errors) and gives AsyncStreamWriter.Drain its waits (the
// transport's pause/resume writing). Drain waits are pooled Waiters in an intrusive list, so a cancelled
// drain leaves in O(1) and nothing else changes: the connection stays usable.

/// <summary>The protocol behind a reader/writer pair; asyncio's <c>StreamReaderProtocol</c>.</summary>
internal sealed class StreamProtocol : Protocol
{
    readonly EventLoop _loop;
    AsyncStreamReader? _reader;
    readonly Func<AsyncStreamReader, AsyncStreamWriter, Task>? _clientConnected;
    internal ITransport? Transport;
    internal bool OverSsl;
    bool _paused;
    bool _connectionLost;
    Exception? _lostWith;
    bool _closed;
    List<Future>? _closeWaiters;  // one future per pending WaitClosed, so that cancelling one cancels no other
    DrainWaiter? _firstDrain, _lastDrain;

    /// <summary>Whether the end of stream closes the transport, as for a pipe, which cannot be half-closed (a child's streams).</summary>
    internal bool CloseOnEof;

    /// <summary>Called at the end of <see cref="ConnectionLost"/>, with its exception (a subprocess counts its open pipes).</summary>
    internal Action<Exception?>? Lost;

    /// <summary>The protocol of a write-only stream (a child's stdin): data received is dropped, and the end of stream closes the transport.</summary>
    public StreamProtocol(EventLoop loop)
    {
        _loop = loop;
        CloseOnEof = true;
    }

    public StreamProtocol(AsyncStreamReader reader, Func<AsyncStreamReader, AsyncStreamWriter, Task>? clientConnected = null)
    {
        _loop = reader.Loop;
        _reader = reader;
        _clientConnected = clientConnected;
    }

    public override void ConnectionMade(IBaseTransport transport)
    {
        var t = (ITransport)transport;
        Transport = t;
        _reader?.SetTransport(t);
        OverSsl = t.GetExtraInfo("sslcontext") != null;
        if (_clientConnected == null) return;
        var writer = new AsyncStreamWriter(t, this, _reader, _loop);
        var reader = _reader!;
        var cb = _clientConnected;
        var task = _loop.CreateTask(() => cb(reader, writer));
        task.AddDoneCallback(f =>
        {
            if (f.IsCancelled) { t.Close(); return; }
            var e = f.RetrieveException(); // reported here, so not again as never retrieved
            if (e != null)
            {
                _loop.CallExceptionHandler(new ExceptionContext("Unhandled exception in client_connected_cb", e) { Task = (AioTask)f });
                t.Close();
            }
        });
    }

    internal void ReplaceTransport(ITransport t)
    {
        Transport = t;
        _reader?.ReplaceTransport(t);
        OverSsl = t.GetExtraInfo("sslcontext") != null;
    }

    public override void ConnectionLost(Exception? exception)
    {
        var reader = _reader;
        if (reader != null)
        {
            if (exception == null) reader.FeedEof();
            else reader.SetException(exception);
        }
        _closed = true;
        _lostWith = exception;
        var waiters = _closeWaiters;
        _closeWaiters = null;
        if (waiters != null)
        {
            foreach (var f in waiters)
            {
                if (f.IsDone) continue;
                if (exception == null) f.SetResult();
                else f.SetException(exception);
            }
        }
        _connectionLost = true;
        WakeDrainers(exception);
        _reader = null;
        Lost?.Invoke(exception);
    }

    public override void DataReceived(ReadOnlySpan<byte> data) => _reader?.FeedData(data);

    /// <summary>
    /// The memory of a <see cref="AsyncStreamReader.ReadInto"/> waiting on an empty reader, for the transport
    /// to receive into directly (then <see cref="DirectReceived"/>); false when data must go through <see cref="DataReceived"/>.
    /// </summary>
    internal bool TryGetDirectBuffer(out Memory<byte> buffer)
    {
        if (_reader is { } r) return r.TryGetDirectBuffer(out buffer);
        buffer = default;
        return false;
    }

    /// <summary>The transport received <paramref name="count"/> bytes into the buffer of <see cref="TryGetDirectBuffer"/>.</summary>
    internal void DirectReceived(int count) => _reader!.DirectReceived(count);

    /// <summary>How many bytes the reader takes beyond a direct receive without pausing the transport.</summary>
    internal int DirectSpillRoom => _reader!.SpillRoom;

    public override bool EofReceived()
    {
        _reader?.FeedEof();
        // A TLS transport cannot half-close: closing it is the only answer to end of stream. Nor can a pipe.
        return !OverSsl && !CloseOnEof;
    }

    public override void PauseWriting() => _paused = true;

    public override void ResumeWriting()
    {
        _paused = false;
        WakeDrainers(null);
    }

    /// <summary>Whether <see cref="DrainHelper"/> would complete at once (not paused, connection alive).</summary>
    internal bool CanDrainNow => !_paused && !_connectionLost;

    /// <summary>asyncio's <c>_drain_helper</c>.</summary>
    internal ValueTask DrainHelper()
    {
        if (_connectionLost) return ValueTask.FromException(NewConnectionLost());
        if (!_paused) return default;
        var w = DrainWaiter.Rent(this);
        w.Prev = _lastDrain;
        if (_lastDrain != null) _lastDrain.Next = w; else _firstDrain = w;
        _lastDrain = w;
        return new ValueTask(w, w.Version);
    }

    internal static Exception NewConnectionLost() =>
        new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionReset);

    internal void Unlink(DrainWaiter w)
    {
        if (w.Prev != null) w.Prev.Next = w.Next; else _firstDrain = (DrainWaiter?)w.Next;
        if (w.Next != null) w.Next.Prev = w.Prev; else _lastDrain = (DrainWaiter?)w.Prev;
        w.Prev = w.Next = null;
    }

    void WakeDrainers(Exception? error)
    {
        var w = _firstDrain;
        _firstDrain = _lastDrain = null;
        while (w != null)
        {
            var next = (DrainWaiter?)w.Next;
            w.Prev = w.Next = null;
            w.Error = error;
            w.Wake();
            w = next;
        }
    }

    /// <summary>
    /// asyncio's <c>_get_close_waiter</c>: completes when the connection is lost (with its error). Each call
    /// waits on its own future: asyncio's callers share one, which a cancelled <c>wait_closed()</c> cancels
    /// for every other caller, present and future.
    /// </summary>
    internal Task WaitClosed()
    {
        if (_closed) return _lostWith == null ? Task.CompletedTask : Task.FromException(_lostWith);
        var f = _loop.CreateFuture();
        (_closeWaiters ??= new()).Add(f);
        return AwaitClosed(f);
    }

    async Task AwaitClosed(Future f)
    {
        try { await f; }
        finally { _closeWaiters?.Remove(f); }
    }
}

/// <summary>A drain waiting for the transport to resume writing (pooled).</summary>
internal sealed class DrainWaiter : Waiter
{
    StreamProtocol? _protocol;
    public Exception? Error;

    public static DrainWaiter Rent(StreamProtocol p)
    {
        var w = WaiterPool<DrainWaiter>.Rent();
        w.Init(EventLoop.GetRunningLoop());
        w._protocol = p;
        return w;
    }

    protected override void RemoveFromPrimitive() => _protocol!.Unlink(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncStreamWriter.Drain", _protocol);

    protected override void Finish()
    {
        var e = Error;
        Release();
        if (e != null) EventLoop.Rethrow(e);
    }

    protected override void ReturnToPool()
    {
        _protocol = null;
        Error = null;
        WaiterPool<DrainWaiter>.Return(this);
    }
}
