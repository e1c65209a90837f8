using System.Runtime.CompilerServices;
using System.Diagnostics;

namespace Asyncio;

/// <summary>
/// A coroutine scheduled on the event loop; asyncio's <c>Task</c>. Create one with
/// <see cref="Aio.CreateTask(Func{Task}, string?)"/> (or <see cref="EventLoop.CreateTask(Func{Task}, string?)"/>);
/// it starts on a later iteration of the loop (at once with <see cref="LoopOptions.EagerTasks"/>).
/// </summary>
/// <remarks>
/// <para>A task is a <see cref="Future"/>: await it for its outcome, add done callbacks, convert it to a
/// <see cref="Task"/> with <see cref="Future.AsTask"/>. The loop keeps a strong reference to every live
/// task, so a task nobody awaits is not lost (unlike asyncio, where it may be collected).</para>
/// <para><b>Cancellation.</b> <see cref="Cancel"/> makes every await of a loop primitive pending in the
/// task throw <see cref="CancelledError"/>, or, if none is pending, the next one that suspends. It also
/// signals <see cref="CancellationToken"/>, so foreign APIs that were given the token stop too. The task
/// ends cancelled when the coroutine lets the error (any <see cref="OperationCanceledException"/>)
/// escape; a coroutine that catches it keeps running, and <see cref="Cancelling"/> still counts the
/// request until <see cref="Uncancel"/>.</para>
/// <para><b>Differences from asyncio.</b> Calling an async method inside a task runs it at once, as part
/// of the task: its awaits belong to the task and are cancelled with it. To give a coroutine its own
/// cancellation, make it a task.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public class AioTask : Future, ICoroutineObserver
{
    // Memory matters here (a million tasks is a benchmark): the coroutine function and, once started,
    // its Task share one field, and the cancel scope exists only from the first step to the end.
    object? _body;             // the coroutine function (Func<Task>, Func<Coroutine>, or their <T> forms) until the
                               // task starts; then the running coroutine (its Task or Coroutine)
    CancelScope? _scope;       // created on first need (the first step, Cancel, or the token); see Start
    string? _name;
    readonly int _id;
    int _cancelRequests;
    internal AioTask? NextLive;  // the loop's list of its tasks (EventLoop.Tasks.cs)

    internal AioTask(EventLoop loop, Delegate coroutine, string? name) : base(loop)
    {
        _body = coroutine;
        if (name != null) _name = name;   // a reference stored costs a write barrier
        _id = loop.NextTaskId();
    }

    /// <summary>The task's cancel scope (and synchronisation context), created on first need.</summary>
    internal CancelScope Scope => ScopeIfAny ?? (_scope = new CancelScope(Loop, this, null));

    /// <summary>The task's scope if it has one: its own, or the one its first step is running in (none before its first step and after its end).</summary>
    internal CancelScope? ScopeIfAny => _scope ?? (Loop.StartingScope is { } starting && ReferenceEquals(starting.Task, this) ? starting : null);

    /// <summary>Whether the task's coroutine has been called (the task has started).</summary>
    internal bool IsStarted => _body is not Delegate;

    /// <summary>The task's number on its loop (the N of <c>Task-N</c>).</summary>
    internal int Id => _id;

    /// <summary>The running coroutine (its <see cref="Task"/> or <see cref="Coroutine"/>) once the task has started.</summary>
    private protected object? Inner => _body is Delegate ? null : _body;

    /// <summary>The task's name (asyncio's <c>get_name()</c>/<c>set_name()</c>); <c>Task-N</c> unless one was given.</summary>
    public string Name
    {
        get => _name ??= $"Task-{_id}";
        set => _name = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>
    /// The coroutine, as asyncio's <c>get_coro()</c>: the coroutine function until the task starts, then
    /// the running coroutine (its <see cref="Task"/>, or its <see cref="Coroutine"/>).
    /// </summary>
    public object? GetCoroutine() => _body;

    /// <summary>
    /// The token signalled when the task is cancelled: pass it to APIs that take a
    /// <see cref="System.Threading.CancellationToken"/> so that they stop too. Reachable ambiently as
    /// <see cref="Aio.CancellationToken"/>. Once <see cref="Uncancel"/> brings the count back to zero, later
    /// reads return a fresh token. Once the task is done, the token is already cancelled if the task was
    /// cancelled (<see cref="Future.IsCancelled"/>, or <see cref="Cancelling"/> above zero), and otherwise one
    /// that is never cancelled (<see cref="System.Threading.CancellationToken.None"/>).
    /// </summary>
    public CancellationToken CancellationToken =>
        // A done task has let go of its scope (Finish): reading the token must not make a new one.
        IsDone ? new CancellationToken(canceled: IsCancelled || _cancelRequests > 0) : Scope.Token;

    /// <summary>
    /// Requests cancellation; asyncio's <c>Task.cancel(msg)</c>. Every await of a loop primitive pending in
    /// the task (or, if none, the next one) throws <see cref="CancelledError"/> with <paramref name="message"/>;
    /// an awaited future or task is itself cancelled. A task cancelled before it starts never runs. A task
    /// that ends through a foreign API stopped by its <see cref="CancellationToken"/> (a plain
    /// <see cref="OperationCanceledException"/>) ends with <paramref name="message"/> too.
    /// </summary>
    /// <returns><see langword="false"/> if the task is already done.</returns>
    public override bool Cancel(string? message = null)
    {
        Loop.CheckThread(nameof(AioTask), nameof(Cancel));
        if (IsDone) return false;
        _cancelRequests++;
        Scope.Cancel(message);
        return true;
    }

    /// <summary>How many cancellation requests are pending (not withdrawn by <see cref="Uncancel"/>); asyncio's <c>cancelling()</c>.</summary>
    public int Cancelling() => _cancelRequests;

    /// <summary>
    /// Withdraws one cancellation request and returns how many remain; asyncio's <c>uncancel()</c>. At zero
    /// a cancellation not yet delivered is dropped and the token is renewed.
    /// </summary>
    public int Uncancel()
    {
        Loop.CheckThread(nameof(AioTask), nameof(Uncancel));
        if (_cancelRequests > 0 && --_cancelRequests == 0)
        {
            Scope.ClearMustCancel();
            Scope.WithdrawKept();   // one a task group kept for the next await inside a timeout or group body
            Scope.ResetToken();
        }
        return _cancelRequests;
    }

    // ---- running ----

    internal static readonly Action<object?> s_start = static o => ((AioTask)o!).StartIn(null);

    /// <summary>Starts a task created in an execution context other than the loop's, in that context (ContextFlow.cs).</summary>
    internal static readonly Action<object?> s_startInContext = static o =>
    {
        var (task, context) = (Tuple<AioTask, ExecutionContext>)o!;
        task.StartIn(context);
    };

    /// <summary>The task a ready item with <paramref name="callback"/> and <paramref name="state"/> starts in another execution context, if it is one (traces, debug reports).</summary>
    internal static AioTask? StartedBy(Action<object?> callback, object? state) =>
        ReferenceEquals(callback, s_startInContext) && state is Tuple<AioTask, ExecutionContext> started ? started.Item1 : null;

    /// <summary>Runs the first step in <paramref name="context"/> (the loop's for <see langword="null"/>), and leaves nothing it set on the thread.</summary>
    internal void StartIn(ExecutionContext? context)
    {
        var loop = Loop;
        var before = ContextFlow.Enter(loop, context);
        try { Start(); }
        finally { ContextFlow.Leave(loop, before); }
    }

    /// <summary>Runs the coroutine up to its first suspension, in the task's scope.</summary>
    /// <remarks>
    /// The scope is written into the task only if the coroutine is still pending when the step ends;
    /// meanwhile the loop knows it as the starting task's scope. A coroutine that finishes in its first step
    /// (W2's million trivial tasks) thus never stores a young object into its task, which by then is
    /// usually old: the garbage collector has no old-to-young reference to trace (W2's run phase: 192 ms
    /// of gen-0 pauses before, 106-111 ms after; <c>Workloads w2 1000000 --costs</c>).
    /// </remarks>
    internal void Start()
    {
        if (IsDone) return;
        var loop = Loop;
        var scope = _scope ?? loop.NewTaskScope(this);
        var previous = loop.EnterScope(scope);
        var outerScope = loop.StartingScope;   // an eager task starts inside another task's first step
        loop.StartingScope = scope;
        try
        {
            if (scope.MustCancel)
            {
                // Cancelled before it started: the coroutine never runs (asyncio throws into it at once).
                scope.TryConsumeCancel(out var msg);
                Finish(FinishKind.Cancelled, null, msg);
                return;
            }
            object inner;
            try
            {
                inner = InvokeCoroutine(_body!);   // the coroutine function until the task starts (no cast: the overrides test its exact type)
                if (inner == null) throw new InvalidOperationException("The coroutine function returned null instead of a Task or Coroutine.");
            }
            catch (Exception e)
            {
                _body = null;
                FinishFromException(e);
                return;
            }
            _body = inner;
            if (inner is Task task)   // tested first: the common case, and the cheaper test
            {
                if (task.IsCompletedSuccessfully) FinishSucceeded(scope);
                else if (task.IsCompleted) FinishFrom(task);
                else
                {
                    // Captures the task's scope as the context on purpose: .NET runs a context-free
                    // continuation on the thread pool whenever a custom SynchronizationContext is current (it
                    // judges the location unsafe for inlining), which would hop threads at every task's end.
                    // With the scope captured, a completion on the loop thread in the same scope runs inline,
                    // and any other is posted back to the loop.
                    if (loop.Debug) loop.WatchWhereItEnds(this, task);
                    task.GetAwaiter().UnsafeOnCompleted(OnInnerCompleted);
                }
            }
            else
            {
                // The task waits in the coroutine's own slot and ends in the step that ends the coroutine.
                var coroutine = (Coroutine)inner;
                if (!coroutine.AddWaiter(this)) FinishFrom(coroutine);
            }
        }
        finally
        {
            loop.StartingScope = outerScope;
            if (!IsDone) _scope = scope;
            loop.EnterScope(previous);
        }
    }

    private protected virtual object InvokeCoroutine(object coroutine) =>
        coroutine is Func<Task> f ? f() : ((Func<Coroutine>)coroutine)();

    void OnInnerCompleted() => FinishFrom((Task)_body!);

    void ICoroutineObserver.CoroutineDone(Coroutine coroutine)
    {
        if (Loop.IsLoopThread) FinishFrom(coroutine);
        else
        {
            // The coroutine's last step ran on another thread: its code escaped the loop (debug mode says so).
            if (Loop.Debug) Loop.ReportEscapedTask(this);
            Loop.PostInternal(static o => { var t = (AioTask)o!; t.FinishFrom((Coroutine)t._body!); }, this);
        }
    }

    void FinishFrom(Coroutine inner)
    {
        if (IsDone) return;
        if (inner.IsCompletedSuccessfully) FinishSucceeded();
        else FinishFromException(inner.GetException()!);
    }

    /// <summary>The coroutine returned: the task ends with its result, or cancelled if a cancellation came just before.</summary>
    void FinishSucceeded() => FinishSucceeded(ScopeIfAny);

    /// <summary><see cref="FinishSucceeded()"/>, given the task's scope (<see cref="ScopeIfAny"/>).</summary>
    void FinishSucceeded(CancelScope? scope)
    {
        if (scope is { MustCancel: true })
        {
            // Cancelled right before the coroutine returned: asyncio still ends the task cancelled.
            scope.TryConsumeCancel(out var msg);
            Finish(FinishKind.Cancelled, null, msg, scope);
        }
        else Finish(FinishKind.Result, null, null, scope);
    }

    void FinishFrom(Task inner)
    {
        if (IsDone) return;
        switch (inner.Status)
        {
            case TaskStatus.RanToCompletion:
                FinishSucceeded();
                break;
            case TaskStatus.Canceled:
                try { inner.GetAwaiter().GetResult(); }
                catch (Exception e) { FinishFromException(e); return; }
                Finish(FinishKind.Cancelled, null, null);
                break;
            default:
                var agg = inner.Exception!;
                FinishFromException(agg.InnerExceptions.Count == 1 ? agg.InnerExceptions[0] : agg);
                break;
        }
    }

    void FinishFromException(Exception e)
    {
        if (e is CancelledError ce)
            Finish(FinishKind.Cancelled, null, ce.CancelMessage);
        else if (e is OperationCanceledException)
        {
            // A foreign API stopped by the task's token (Task.Delay(t, Aio.CancellationToken)) throws a plain
            // OperationCanceledException, which carries no message: if the task was asked to cancel, it ends
            // with that request's message, as if the CancelledError had come out (Runner's "interrupted").
            var message = _cancelRequests > 0 ? ScopeIfAny?.CancelMessage : null;
            Finish(FinishKind.Cancelled, null, message);
        }
        else
            Finish(FinishKind.Exception, e, null);
    }

    enum FinishKind { Result, Exception, Cancelled }

    void Finish(FinishKind kind, Exception? exception, string? cancelMessage) => Finish(kind, exception, cancelMessage, ScopeIfAny);

    /// <summary>Ends the task; <paramref name="scope"/> is its <see cref="ScopeIfAny"/>, which the caller may know already.</summary>
    void Finish(FinishKind kind, Exception? exception, string? cancelMessage, CancelScope? scope)
    {
        Loop.TaskEnded(this);
        // The scope stays alive for whoever still holds it (an escaped hot coroutine); the task lets go.
        if (scope is { MustCancel: true }) scope.ClearMustCancel();
        _scope = null;
        switch (kind)
        {
            case FinishKind.Result: SetFinishedCore(); break;
            case FinishKind.Exception: SetExceptionCore(exception!); break;
            default: SetCancelledCore(cancelMessage); break;
        }
    }

    /// <summary>Describes the task as asyncio's repr does: name, state and outcome (<c>&lt;AioTask pending name='main'&gt;</c>).</summary>
    public override string ToString() => $"<{ReprName} {StateName} name='{Name}'{ExceptionSuffix}>";
}

/// <summary>A task whose coroutine returns a value of type <typeparamref name="T"/>; see <see cref="AioTask"/>.</summary>
[DebuggerDisplay("{ToString(),nq}")]
public class AioTask<T> : AioTask, IFutureResult<T>
{
    internal AioTask(EventLoop loop, Func<Task<T>> coroutine, string? name) : base(loop, coroutine, name) { }

    internal AioTask(EventLoop loop, Func<Coroutine<T>> coroutine, string? name) : base(loop, coroutine, name) { }

    private protected AioTask(EventLoop loop, Delegate coroutine, string? name) : base(loop, coroutine, name) { }

    private protected override object InvokeCoroutine(object coroutine) =>
        coroutine is Func<Task<T>> f ? f() : ((Func<Coroutine<T>>)coroutine)();

    T InnerResult => Inner is Coroutine<T> c ? c.Result : ((Task<T>)Inner!).Result;

    /// <summary>The coroutine's result; throws its exception, or <see cref="CancelledError"/> if the task was cancelled.</summary>
    /// <exception cref="InvalidStateError">The task is not done.</exception>
    public T Result
    {
        get
        {
            ThrowIfNotSucceeded();
            return InnerResult;
        }
    }

    T IFutureResult<T>.GetResultCore() => Result;

    /// <summary>Lets <c>await task</c> return the result; allocation-free on the loop.</summary>
    /// <exception cref="InvalidOperationException">Awaited from another thread or loop, or the task awaits itself.</exception>
    public new ValueTaskAwaiter<T> GetAwaiter()
    {
        if (_state == FutureState.Finished && ExceptionCore == null) return new ValueTask<T>(InnerResult).GetAwaiter();
        if (_state == FutureState.Pending)
        {
            Loop.CheckAwaitThread();
            Loop.CheckNotSelfAwait(this);
        }
        var w = FutureWaiter<T>.Rent(this, this);
        return new ValueTask<T>(w, w.Version).GetAwaiter();
    }

    /// <summary>A <see cref="Task{TResult}"/> that completes with the task; see <see cref="Future.AsTask"/>.</summary>
    public override Task<T> AsTask() => AsTaskCore<T>();

    /// <summary>Converts the task to a <see cref="Task{TResult}"/> (<see cref="AsTask"/>).</summary>
    public static implicit operator Task<T>(AioTask<T> task) => task.AsTask();
}

/// <summary>
/// A task whose coroutine function takes an argument (<see cref="EventLoop.CreateTask{TArg}(Func{TArg, Coroutine}, TArg, string?)"/>):
/// the argument waits in the task, so creating it allocates no closure and no delegate.
/// </summary>
internal sealed class ArgTask<TArg> : AioTask
{
    TArg _arg;

    internal ArgTask(EventLoop loop, Delegate coroutine, TArg arg, string? name) : base(loop, coroutine, name) => _arg = arg;

    private protected override object InvokeCoroutine(object coroutine)
    {
        var arg = _arg;
        _arg = default!;   // the task does not keep the argument alive once the coroutine has it
        return coroutine is Func<TArg, Task> f ? f(arg) : ((Func<TArg, Coroutine>)coroutine)(arg);
    }
}

/// <summary>A task with a result whose coroutine function takes an argument; see <see cref="ArgTask{TArg}"/>.</summary>
internal sealed class ArgTask<TArg, T> : AioTask<T>
{
    TArg _arg;

    internal ArgTask(EventLoop loop, Delegate coroutine, TArg arg, string? name) : base(loop, coroutine, name) => _arg = arg;

    private protected override object InvokeCoroutine(object coroutine)
    {
        var arg = _arg;
        _arg = default!;
        return coroutine is Func<TArg, Task<T>> f ? f(arg) : ((Func<TArg, Coroutine<T>>)coroutine)(arg);
    }
}
