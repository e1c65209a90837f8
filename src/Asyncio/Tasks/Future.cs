using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Asyncio;

/// <summary>
/// A result that will be available later, bound to one event loop; asyncio's <c>Future</c>. This
/// non-generic form carries no value (it completes with <see cref="SetResult()"/>, an exception or a
/// cancellation); <see cref="Future{T}"/> carries one.
/// </summary>
/// <remarks>
/// <para>Awaiting a future suspends until it is done. Its awaiters and done callbacks are always resumed
/// through the loop's ready queue, never on the stack of the code that completes it.</para>
/// <para>Awaiting inside a task registers the await with the task: cancelling the task cancels the
/// awaited future, as asyncio does (use <see cref="Aio.Shield(Future)"/> to prevent that).</para>
/// <para>Not thread-safe: complete it on the loop thread (from elsewhere, through
/// <see cref="EventLoop.CallSoonThreadsafe(Action)"/>).</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public class Future
{
    internal readonly EventLoop Loop;
    private protected FutureState _state;
    // Every task is a future, so the fields are few (a task is 88 bytes): one slot holds the observer
    // while the future is pending and the outcome once it is done, and the list of nodes keeps its tail in
    // the head's Prev link.
    object? _slot;              // pending: the one combinator watching without a node (Gather of tasks), or null;
                                // done: the exception when finished with one (wrapped in an UnretrievedException
                                // until it is retrieved), the message when cancelled
    WaitNode? _first;           // awaiters, done callbacks and AsTask links, in registration order; _first.Prev is the last

    object? Outcome => _state == FutureState.Pending ? null : _slot;

    /// <summary>Creates a pending future bound to <paramref name="loop"/> (usually through <see cref="EventLoop.CreateFuture()"/>).</summary>
    public Future(EventLoop loop)
    {
        ArgumentNullException.ThrowIfNull(loop);
        Loop = loop;
    }

    /// <summary>The loop the future is bound to; asyncio's <c>get_loop()</c>.</summary>
    public EventLoop GetLoop() => Loop;

    /// <summary>Whether the future has a result, an exception, or was cancelled; asyncio's <c>done()</c>.</summary>
    public bool IsDone => _state != FutureState.Pending;

    /// <summary>Whether the future was cancelled; asyncio's <c>cancelled()</c>.</summary>
    public bool IsCancelled => _state == FutureState.Cancelled;

    /// <summary>Whether the future finished without an exception (combinators' fast path).</summary>
    internal bool SucceededCore => _state == FutureState.Finished && _slot == null;

    /// <summary>Whether the future finished with an exception.</summary>
    public bool IsFaulted => _state == FutureState.Finished && Outcome != null;

    /// <summary>
    /// Completes the future without a value and schedules its awaiters and callbacks; asyncio's
    /// <c>set_result(None)</c>.
    /// </summary>
    /// <exception cref="InvalidStateError">The future is already done.</exception>
    /// <exception cref="InvalidOperationException">The future is an <see cref="AioTask"/>, whose coroutine decides its outcome (asyncio raises <c>RuntimeError</c>);
    /// or the loop is closed and a done callback or an await waits for the future (asyncio's "Event loop is closed"; the future stays pending).</exception>
    public void SetResult()
    {
        BeginComplete(nameof(SetResult));
        Complete(FutureState.Finished, null);
    }

    /// <summary>Completes the future with an exception; asyncio's <c>set_exception()</c>.</summary>
    /// <exception cref="InvalidStateError">The future is already done.</exception>
    /// <exception cref="InvalidOperationException">The future is an <see cref="AioTask"/>, whose coroutine decides its outcome (asyncio raises <c>RuntimeError</c>);
    /// or the loop is closed and a done callback or an await waits for the future (the future stays pending).</exception>
    public void SetException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        BeginComplete(nameof(SetException));
        Complete(FutureState.Finished, new UnretrievedException(this, exception));
    }

    /// <summary>
    /// Cancels the future if it is pending and schedules its awaiters and callbacks; asyncio's
    /// <c>cancel(msg)</c>. Awaiters then get a <see cref="CancelledError"/> carrying <paramref name="message"/>.
    /// </summary>
    /// <returns><see langword="false"/> if the future was already done.</returns>
    public virtual bool Cancel(string? message = null)
    {
        Loop.CheckThread(nameof(Future), nameof(Cancel));
        if (_state != FutureState.Pending) return false;
        SetCancelledCore(message);
        return true;
    }

    /// <summary>Marks the future cancelled and schedules its awaiters (no checks).</summary>
    private protected void SetCancelledCore(string? message) => Complete(FutureState.Cancelled, message);

    /// <summary>Completes the future with an exception (no state check beyond pending).</summary>
    private protected void SetExceptionCore(Exception exception) => Complete(FutureState.Finished, new UnretrievedException(this, exception));

    /// <summary>Completes the future successfully (the subclass has stored its value).</summary>
    private protected void SetFinishedCore() => Complete(FutureState.Finished, null);

    private protected void BeginComplete(string member)
    {
        if (this is AioTask) ThrowTaskCompletion(member);
        Loop.CheckThread(nameof(Future), member);
        if (_state != FutureState.Pending) ThrowInvalidState($"{member}: the future is already done ({StateName}).");
    }

    /// <summary>
    /// Returns normally if the future finished without an exception; otherwise throws its exception or a
    /// <see cref="CancelledError"/>; asyncio's <c>result()</c> for a future without a value.
    /// </summary>
    /// <exception cref="InvalidStateError">The future is not done.</exception>
    public void GetResult() => ThrowIfNotSucceeded();

    /// <summary>
    /// The exception the future finished with, or <see langword="null"/>; asyncio's <c>exception()</c>.
    /// </summary>
    /// <exception cref="CancelledError">The future was cancelled.</exception>
    /// <exception cref="InvalidStateError">The future is not done.</exception>
    public Exception? GetException()
    {
        if (_state == FutureState.Pending) ThrowInvalidState("The future is not done yet.");
        if (_state == FutureState.Cancelled) throw MakeCancelledError();
        return RetrieveException();
    }

    /// <summary>
    /// The stored exception (or <see langword="null"/>), marked retrieved: it will not be reported as never
    /// retrieved. What <see cref="GetException"/>, <see cref="GetResult"/> and awaiting do, and what a
    /// combinator does for a child whose outcome it takes over (asyncio calls <c>exception()</c> there).
    /// </summary>
    internal Exception? RetrieveException()
    {
        if (_state != FutureState.Finished) return null;
        if (_slot is UnretrievedException u)
        {
            _slot = u.Exception;
            GC.SuppressFinalize(u);
        }
        return (Exception?)_slot;
    }

    /// <summary>The message given to <see cref="Cancel"/>, once cancelled.</summary>
    internal string? CancelMessage => _state == FutureState.Cancelled ? (string?)Outcome : null;

    /// <summary>Throws unless the future finished without an exception.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ThrowIfNotSucceeded()
    {
        if (_state != FutureState.Finished || Outcome != null) ThrowOutcome();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    void ThrowOutcome()
    {
        switch (_state)
        {
            case FutureState.Pending: ThrowInvalidState("The result is not set yet."); break;
            case FutureState.Cancelled: throw MakeCancelledError();
            default: ExceptionDispatchInfo.Throw(RetrieveException()!); break;
        }
    }

    /// <summary>A new <see cref="CancelledError"/> carrying the cancellation message.</summary>
    internal CancelledError MakeCancelledError() => new(CancelMessage);

    /// <summary>The stored exception without marking it retrieved (for combinators).</summary>
    internal Exception? ExceptionCore => _state != FutureState.Finished ? null
        : _slot is UnretrievedException u ? u.Exception : (Exception?)_slot;

    [DoesNotReturn]
    private protected static void ThrowInvalidState(string message) => throw new InvalidStateError(message);

    [DoesNotReturn]
    static void ThrowTaskCompletion(string member) =>
        throw new InvalidOperationException($"A task does not support {member}: its coroutine decides its outcome.");

    // ---- done callbacks ----

    /// <summary>
    /// Adds a callback to run (through <see cref="EventLoop.CallSoon(Action)"/>) when the future is done,
    /// with the future as its argument; at once (on the next iteration) if it is already done. asyncio's
    /// <c>add_done_callback</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The future is done and its loop is closed (asyncio's "Event loop is closed").</exception>
    public void AddDoneCallback(Action<Future> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        Loop.CheckThread(nameof(Future), nameof(AddDoneCallback));
        if (_state != FutureState.Pending)
        {
            Loop.CheckNotClosed();   // asyncio's call_soon raises too: the callback would never run
            Loop.EnqueueInternal(DoneCallbackNode.Invoke, new DoneCallbackNode(this, callback));
            return;
        }
        Append(new DoneCallbackNode(this, callback));
    }

    /// <summary>Removes every registration of <paramref name="callback"/>; asyncio's <c>remove_done_callback</c>.</summary>
    /// <returns>How many were removed.</returns>
    public int RemoveDoneCallback(Action<Future> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        Loop.CheckThread(nameof(Future), nameof(RemoveDoneCallback));
        int removed = 0;
        for (var n = _first; n != null;)
        {
            var next = n.Next;
            if (n is DoneCallbackNode d && d.Callback == callback) { Unlink(d); removed++; }
            n = next;
        }
        return removed;
    }

    // The list of nodes: linked forwards through Next and ending with null; backwards through Prev and
    // circular, so the head's Prev is the tail. A linked node's Prev is therefore never null.

    internal void Append(WaitNode node)
    {
        var head = _first;
        node.Next = null;
        if (head == null)
        {
            node.Prev = node;
            _first = node;
            return;
        }
        var tail = head.Prev!;
        tail.Next = node;
        node.Prev = tail;
        head.Prev = node;
    }

    internal void Unlink(WaitNode node)
    {
        var head = _first!;
        var next = node.Next;
        if (ReferenceEquals(node, head))
        {
            if (next != null) next.Prev = node.Prev; // the new head keeps the tail
            _first = next;
        }
        else
        {
            node.Prev!.Next = next;
            if (next != null) next.Prev = node.Prev;
            else head.Prev = node.Prev;               // the tail went
        }
        node.Prev = node.Next = null;
    }

    /// <summary>Moves the future from pending to <paramref name="state"/> with <paramref name="outcome"/> and runs <see cref="MarkDone"/>.</summary>
    void Complete(FutureState state, object? outcome)
    {
        Debug.Assert(_state == FutureState.Pending);
        var observer = _state == FutureState.Pending ? Unsafe.As<IFutureObserver?>(_slot) : null;
        if (Loop.IsClosed) CheckListenersNeedNoLoop(observer);
        if (outcome != null) _slot = outcome;
        else _slot = null;   // no write barrier for a null (most futures finish without an exception)
        _state = state;
        MarkDone(observer);
    }

    /// <summary>
    /// Before a future of a closed loop completes: refuses if a done callback, a task's await or a combining future
    /// waits for it, whose wake-up the closed loop would never run (asyncio's <c>call_soon</c> raises "Event loop is
    /// closed" there); the future stays pending, so nothing is lost. A .NET Task from <see cref="AsTask"/> needs no loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    void CheckListenersNeedNoLoop(IFutureObserver? observer)
    {
        bool needsLoop = observer != null;
        for (var n = _first; n != null && !needsLoop; n = n.Next) needsLoop = n.NeedsLoop;
        if (needsLoop)
            throw new InvalidOperationException("The event loop is closed: the future's done callbacks and awaiters could never run.");
    }

    void MarkDone(IFutureObserver? observer)
    {
        observer?.FutureDone(this);
        var n = _first;
        _first = null;
        while (n != null)
        {
            var next = n.Next;
            n.Prev = n.Next = null;
            n.NotifyDone();
            n = next;
        }
        OnDone();
    }

    /// <summary>Called once the future is done and its awaiters are scheduled.</summary>
    private protected virtual void OnDone() { }

    // ---- awaiting ----

    /// <summary>Lets <c>await future</c> suspend until the future is done; allocation-free on the loop.</summary>
    /// <exception cref="InvalidOperationException">Awaited from another thread or loop, or a task awaits itself.</exception>
    public ValueTaskAwaiter GetAwaiter()
    {
        if (_state == FutureState.Finished && Outcome == null) return default(ValueTask).GetAwaiter();
        if (_state == FutureState.Pending)
        {
            Loop.CheckAwaitThread();
            Loop.CheckNotSelfAwait(this);
        }
        var w = FutureWaiter.Rent(this);
        return new ValueTask(w, w.Version).GetAwaiter();
    }

    /// <summary>
    /// A <see cref="Task"/> that completes with the future, for .NET code that takes tasks (for example
    /// <see cref="Task.WhenAny(Task[])"/>). Its continuations run asynchronously. While the future is
    /// pending, repeated calls return the same Task.
    /// </summary>
    public virtual Task AsTask() => AsTaskCore<VoidResult>();

    /// <summary>The Task view of the future (for <typeparamref name="TResult"/> = <see cref="VoidResult"/>, a result-less one).</summary>
    private protected Task<TResult> AsTaskCore<TResult>()
    {
        if (_state != FutureState.Pending) return TaskNode<TResult>.Completed(this);
        for (var n = _first; n != null; n = n.Next)
            if (n is TaskNode<TResult> existing) return existing.Task;
        Loop.CheckThread(nameof(Future), nameof(AsTask));
        var node = new TaskNode<TResult>(this);
        Append(node);
        return node.Task;
    }

    // ---- observation by combinators ----

    /// <summary>Takes the future's one observer slot; false if taken or the future is done (use a node then).</summary>
    internal bool TryObserve(IFutureObserver observer)
    {
        if (_state != FutureState.Pending || _slot != null) return false;
        _slot = observer;
        return true;
    }

    /// <summary>Gives the observer slot back.</summary>
    internal void StopObserving(IFutureObserver observer)
    {
        if (_state == FutureState.Pending && ReferenceEquals(_slot, observer)) _slot = null;
    }

    // ---- introspection (Diagnostics/CallGraph.cs) ----

    /// <summary>The first of the nodes registered with the pending future (awaiters, done callbacks), linked through Next.</summary>
    internal WaitNode? FirstNode => _first;

    /// <summary>The combinator watching the pending future through its slot, if any.</summary>
    internal IFutureObserver? Observer => _state == FutureState.Pending ? _slot as IFutureObserver : null;

    /// <summary>Converts the future to a <see cref="Task"/> (<see cref="AsTask"/>).</summary>
    public static implicit operator Task(Future future) => future.AsTask();

    /// <summary>The state in words: pending, cancelled, finished, finished with an exception.</summary>
    internal string StateName => _state switch
    {
        FutureState.Pending => "pending",
        FutureState.Cancelled => "cancelled",
        _ => Outcome != null ? "finished with an exception" : "finished",
    };

    /// <summary>Describes the future and its state, as asyncio's repr does: <c>&lt;Future pending&gt;</c>.</summary>
    public override string ToString() => $"<{ReprName} {StateName}{ExceptionSuffix}>";

    /// <summary>The type's name for a repr, without .NET's arity (<c>Future</c>, not <c>Future`1</c>); a task's is <c>AioTask</c>.</summary>
    private protected string ReprName => this is AioTask ? nameof(AioTask) : ReprTypeName(GetType());

    static string ReprTypeName(Type type)
    {
        string name = type.Name;
        int tick = name.IndexOf('`');
        return tick < 0 ? name : name[..tick];
    }

    private protected string ExceptionSuffix => ExceptionCore is { } e ? $" exception={e.GetType().Name}: {e.Message}" : "";
}

internal enum FutureState : byte { Pending, Cancelled, Finished }

/// <summary>A future that carries a value of type <typeparamref name="T"/>; asyncio's <c>Future</c>.</summary>
/// <remarks>See <see cref="Future"/> for awaiting, cancellation and threading.</remarks>
[DebuggerDisplay("{ToString(),nq}")]
public class Future<T> : Future, IFutureResult<T>
{
    T _result = default!;

    /// <summary>Creates a pending future bound to <paramref name="loop"/> (usually through <see cref="EventLoop.CreateFuture{T}()"/>).</summary>
    public Future(EventLoop loop) : base(loop) { }

    /// <summary>Completes the future with <paramref name="result"/>; asyncio's <c>set_result()</c>.</summary>
    /// <exception cref="InvalidStateError">The future is already done.</exception>
    /// <exception cref="InvalidOperationException">The loop is closed and a done callback or an await waits for the future (asyncio's "Event loop is closed"); the future stays pending.</exception>
    public void SetResult(T result)
    {
        BeginComplete(nameof(SetResult));
        _result = result;
        SetFinishedCore();
    }

    /// <summary>
    /// The result; asyncio's <c>result()</c>. Throws the future's exception, or <see cref="CancelledError"/>
    /// if it was cancelled.
    /// </summary>
    /// <exception cref="InvalidStateError">The future is not done.</exception>
    public T Result
    {
        get
        {
            ThrowIfNotSucceeded();
            return _result;
        }
    }

    T IFutureResult<T>.GetResultCore() => Result;

    /// <summary>Lets <c>await future</c> return the result; allocation-free on the loop.</summary>
    public new ValueTaskAwaiter<T> GetAwaiter()
    {
        if (_state == FutureState.Finished && ExceptionCore == null) return new ValueTask<T>(_result).GetAwaiter();
        if (_state == FutureState.Pending) Loop.CheckAwaitThread();
        var w = FutureWaiter<T>.Rent(this, this);
        return new ValueTask<T>(w, w.Version).GetAwaiter();
    }

    /// <summary>A <see cref="Task{TResult}"/> that completes with the future; see <see cref="Future.AsTask"/>.</summary>
    public override Task<T> AsTask() => AsTaskCore<T>();

    /// <summary>Converts the future to a <see cref="Task{TResult}"/> (<see cref="AsTask"/>).</summary>
    public static implicit operator Task<T>(Future<T> future) => future.AsTask();

    /// <inheritdoc />
    public override string ToString() =>
        _state == FutureState.Finished && ExceptionCore == null ? $"<{ReprName} finished result={_result}>" : base.ToString();
}

/// <summary>A future or task whose value can be read once it has succeeded.</summary>
internal interface IFutureResult<T>
{
    T GetResultCore();
}

/// <summary>A combinator watching a future through its observer slot (told synchronously when it is done).</summary>
internal interface IFutureObserver
{
    void FutureDone(Future future);
}

/// <summary>The value of a result-less future seen as a <see cref="Task{TResult}"/>.</summary>
internal readonly struct VoidResult;

/// <summary>Links a future to the Task returned by <see cref="Future.AsTask"/>.</summary>
internal sealed class TaskNode<T>(Future future) : WaitNode
{
    readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Task => _tcs.Task;

    public override void NotifyDone() => Complete(future, _tcs);

    internal override bool NeedsLoop => false;

    static void Complete(Future f, TaskCompletionSource<T> tcs)
    {
        if (f.IsCancelled) tcs.TrySetCanceled();
        else if (f.RetrieveException() is { } e) tcs.TrySetException(e); // .NET observes it from here on
        else tcs.TrySetResult(f is IFutureResult<T> r ? r.GetResultCore() : default!);
    }

    /// <summary>A completed Task with the outcome of a done future.</summary>
    public static Task<T> Completed(Future f)
    {
        var tcs = new TaskCompletionSource<T>();
        Complete(f, tcs);
        return tcs.Task;
    }
}

/// <summary>
/// The exception of a future that finished with one, until something retrieves it (awaiting, the result,
/// <see cref="Future.GetException"/>, a combinator that takes the outcome over). If the future is collected
/// first, the loop's exception handler is told "... exception was never retrieved", as asyncio's
/// <c>Future.__del__</c> does. Only failed futures pay for it (a finalizable object each).
/// </summary>
internal sealed class UnretrievedException(Future future, Exception exception)
{
    public readonly Exception Exception = exception;

    ~UnretrievedException()
    {
        // On the finalizer thread: hand the report to the loop, which runs the handler on its own thread.
        try
        {
            var loop = future.Loop;
            if (!loop.IsClosed) loop.PostThreadsafe(static o => ((UnretrievedException)o!).Report(), this);
        }
        catch (Exception)
        {
            // The loop closed meanwhile: nobody is left to tell.
        }
    }

    void Report() => future.Loop.CallExceptionHandler(
        new ExceptionContext($"{(future is AioTask ? "Task" : "Future")} exception was never retrieved", Exception)
        {
            Future = future,
            Task = future as AioTask,
        });
}
