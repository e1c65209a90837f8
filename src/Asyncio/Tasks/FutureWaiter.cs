namespace Asyncio;

/// <summary>An await of a <see cref="Future"/> (pooled).</summary>
/// <remarks>
/// Cancelling the awaiting scope cancels the awaited future itself, as asyncio's <c>Task.cancel()</c>
/// cancels <c>_fut_waiter</c>; the awaiter then resumes when the future is done. An awaited task that
/// swallows the cancellation therefore keeps its awaiter waiting, and the awaiter gets its result.
/// </remarks>
internal class FutureWaiter : Waiter
{
    protected Future? Future;

    public static FutureWaiter Rent(Future future)
    {
        var w = WaiterPool<FutureWaiter>.Rent();
        w.Attach(future);
        return w;
    }

    protected void Attach(Future future)
    {
        Init(future.Loop);
        Future = future;
        if (future.IsDone) State = WaiterState.Woken; // completed before the await: GetResult reads it at once
        else future.Append(this);
    }

    public override bool CancelFromScope(string? message)
    {
        if (State != WaiterState.Pending) return false;
        return Future!.Cancel(message);
    }

    /// <summary>The awaited task is already being cancelled further up the stack: end this await instead.</summary>
    public override bool CancelFromCycle(string? message) => CancelNow(message);

    /// <summary>
    /// A cancellation kept for the next await cancels the awaited future, and the await goes on until it is
    /// done, as asyncio's task step cancels the future it is handed while a cancellation is pending
    /// (bpo-34872): an awaited task, or a gather's children, are not left running.
    /// </summary>
    protected override void CancelAtSuspension(CancelScope scope, string? message) => CancelFuture(this, Future!, scope, message);

    /// <summary>
    /// <see cref="CancelAtSuspension"/> for both future waiters: registered in the scope first, so that the
    /// future's completion (at once for a plain future) finds it there, and a later cancellation too.
    /// </summary>
    internal static void CancelFuture(Waiter w, Future future, CancelScope scope, string? message)
    {
        scope.LinkWaiter(w);
        // A future that refuses (nothing to cancel) ends the wait at once instead: CancelFromCycle ends a
        // pending await of a future without cancelling the future again.
        if (!future.Cancel(message)) w.CancelFromCycle(message);
    }

    protected override void RemoveFromPrimitive() => Future!.Unlink(this);

    internal override (string Operation, object? Target) Describe() => ("await", Future);

    protected override void ReturnToPool()
    {
        Future = null;
        WaiterPool<FutureWaiter>.Return(this);
    }

    protected override void Finish()
    {
        var f = Future!;
        Release();
        f.ThrowIfNotSucceeded();
    }
}

/// <summary>An await of a future or task with a value (pooled).</summary>
internal sealed class FutureWaiter<T> : Waiter<T>
{
    Future? _future;
    IFutureResult<T>? _result;

    public static FutureWaiter<T> Rent(Future future, IFutureResult<T> result)
    {
        var w = WaiterPool<FutureWaiter<T>>.Rent();
        w.Init(future.Loop);
        w._future = future;
        w._result = result;
        if (future.IsDone) w.State = WaiterState.Woken;
        else future.Append(w);
        return w;
    }

    public override bool CancelFromScope(string? message)
    {
        if (State != WaiterState.Pending) return false;
        return _future!.Cancel(message);
    }

    /// <summary>The awaited task is already being cancelled further up the stack: end this await instead.</summary>
    public override bool CancelFromCycle(string? message) => CancelNow(message);

    /// <summary>Cancels the awaited future and goes on waiting; see <see cref="FutureWaiter.CancelAtSuspension"/>.</summary>
    protected override void CancelAtSuspension(CancelScope scope, string? message) => FutureWaiter.CancelFuture(this, _future!, scope, message);

    protected override void RemoveFromPrimitive() => _future!.Unlink(this);

    internal override (string Operation, object? Target) Describe() => ("await", _future);

    protected override T TakeResult() => _result!.GetResultCore();

    protected override void ReturnToPool()
    {
        _future = null;
        _result = null;
        WaiterPool<FutureWaiter<T>>.Return(this);
    }
}

/// <summary>A done callback registered with <see cref="Future.AddDoneCallback"/> (kept in the future's list to keep the order).</summary>
internal sealed class DoneCallbackNode : WaitNode
{
    readonly Future _future;
    public readonly Action<Future> Callback;
    /// <summary>The future the callback was added to (a callback's exception is reported with it).</summary>
    public Future Future => _future;
    readonly ExecutionContext? _context;   // the registering code's, as asyncio's add_done_callback copies it (ContextFlow.cs)

    public DoneCallbackNode(Future future, Action<Future> callback)
    {
        _future = future;
        Callback = callback;
        _context = future.Loop.ContextToHandOn();
    }

    public static readonly Action<object?> Invoke = static o =>
    {
        var n = (DoneCallbackNode)o!;
        var loop = n._future.Loop;
        var before = ContextFlow.Enter(loop, n._context);
        try { n.Callback(n._future); }
        finally { ContextFlow.Leave(loop, before); }
    };

    public override void NotifyDone() => _future.Loop.EnqueueInternal(Invoke, this);

    /// <summary>A task group's watch of its child stands for the task that runs the group (asyncio's awaited_by).</summary>
    internal override object? AwaitingParty => Callback.Target is TaskGroup g ? g.OwnerTask : null;
}
