namespace Asyncio;

/// <summary>
/// The enumeration of <see cref="AsyncQueue{T}.ReadAllAsync"/>: items as they arrive, until the queue is
/// shut down and empty. Each wait is a pooled <see cref="ReadWaiter{T}"/>, so enumerating allocates the
/// enumerator once and nothing per item.
/// </summary>
internal sealed class QueueReader<T> : IAsyncEnumerable<T>, IAsyncEnumerator<T>
{
    readonly AsyncQueue<T> _queue;
    readonly CancellationToken _listToken;
    CancellationToken _token;
    CancellationTokenSource? _linked;
    bool _started;

    public QueueReader(AsyncQueue<T> queue, CancellationToken cancellationToken)
    {
        _queue = queue;
        _listToken = cancellationToken;
    }

    public T Current { get; internal set; } = default!;

    public IAsyncEnumerator<T> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        var e = _started ? new QueueReader<T>(_queue, _listToken) : this;
        e._started = true;
        if (!cancellationToken.CanBeCanceled || cancellationToken == _listToken) e._token = _listToken;
        else if (!_listToken.CanBeCanceled) e._token = cancellationToken;
        else
        {
            e._linked = CancellationTokenSource.CreateLinkedTokenSource(_listToken, cancellationToken);
            e._token = e._linked.Token;
        }
        return e;
    }

    public ValueTask<bool> MoveNextAsync()
    {
        var token = _token;
        if (token.IsCancellationRequested) return CancelledError.Refused<bool>(token);
        var q = _queue;
        if (q.TryGet(out var item))
        {
            Current = item;
            return new ValueTask<bool>(true);
        }
        if (q.IsEnded) // else every item left is promised to a woken getter: wait, one may come back
        {
            Current = default!;
            return new ValueTask<bool>(false);
        }
        var w = ReadWaiter<T>.Rent(q.BindLoop(), this, q);
        q.AppendGetter(w);
        TokenHook.Register(w, token);
        return new ValueTask<bool>(w, w.Version);
    }

    public ValueTask DisposeAsync()
    {
        _linked?.Dispose();
        _linked = null;
        return default;
    }
}

/// <summary>A wait of <see cref="QueueReader{T}.MoveNextAsync"/> (pooled): a getter whose result is "an item arrived".</summary>
internal sealed class ReadWaiter<T> : QueueGetter<T, bool>
{
    QueueReader<T>? _reader;

    public static ReadWaiter<T> Rent(EventLoop loop, QueueReader<T> reader, AsyncQueue<T> q)
    {
        var w = WaiterPool<ReadWaiter<T>>.Rent();
        w.Init(loop);
        w._reader = reader;
        w.Queue = q;
        return w;
    }

    internal override (string Operation, object? Target) Describe() => ("AsyncQueue.ReadAllAsync", Queue);

    /// <summary>Takes the claimed item into the reader's <c>Current</c>; <see langword="false"/> ends the enumeration (shutdown).</summary>
    protected override bool TakeResult()
    {
        bool got = TryTakeClaimed(out var item);
        _reader!.Current = got ? item! : default!;
        return got;
    }

    protected override void ReturnToPool()
    {
        _reader = null;
        Queue = null;
        if (Reset()) WaiterPool<ReadWaiter<T>>.Return(this);
    }

    protected override void ReturnParked() => WaiterPool<ReadWaiter<T>>.Return(this);
}
