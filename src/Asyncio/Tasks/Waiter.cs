using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Asyncio;

// The one blocking protocol that every loop primitive uses (Trio's "parking lot" idea, asyncio's
// semantics).
//
// A primitive that must make its caller wait rents a Waiter, puts it in its own wait list, and returns
// a ValueTask over it. The awaiting code's continuation arrives in OnCompleted, which registers the
// waiter in the loop's current cancel scope. From there one of three things happens:
//
//   Pending --Wake()-------------> Woken      the primitive granted the wait; the continuation is queued
//   Pending --CancelFromScope()--> Cancelled  the scope was cancelled; the waiter left the primitive's list
//   Woken   --GetResult()--------> (pooled)   normal resumption
//
// and one subtle case: a waiter woken but not yet resumed whose scope is cancelled in between. As in
// asyncio (the task's __step throws CancelledError although its future is done), GetResult then throws
// CancelledError, and first calls OnCancelledAfterWake so that the primitive passes the wake-up on (the
// queue item goes back, the lock goes to the next waiter): nothing is lost.
//
// Awaiting through ValueTask matters: the async method builder recognises ValueTaskAwaiter and hands
// OnCompleted a static delegate plus its state-machine box, so suspending allocates nothing. Waiters are
// pooled per loop and type; Version, the ValueTask token, changes on every return to the pool so a
// stale ValueTask is caught.

/// <summary>What a waiter is doing. See the protocol in the file's opening comment.</summary>
internal enum WaiterState : byte { Idle, Pending, Woken, Cancelled }

/// <summary>A node of an intrusive list: a future's callbacks, or a primitive's waiters.</summary>
internal abstract class WaitNode
{
    /// <summary>Links of the list that holds the node (a future's callbacks or a primitive's waiters).</summary>
    public WaitNode? Prev, Next;

    /// <summary>The future this node is registered with is done (called in registration order).</summary>
    public abstract void NotifyDone();

    /// <summary>
    /// Whether <see cref="NotifyDone"/> schedules work on the future's loop (a done callback, a task's wake-up), which
    /// a closed loop cannot run; <see langword="false"/> for a node that only completes a .NET Task.
    /// </summary>
    internal virtual bool NeedsLoop => true;

    /// <summary>
    /// Who waits through this node, for the call graph (Diagnostics/CallGraph.cs): the task whose await it
    /// is, or the future that combines the awaited one (a gather), or <see langword="null"/> if not known.
    /// </summary>
    internal virtual object? AwaitingParty => null;
}

/// <summary>A pooled wait of a loop primitive; see the protocol above.</summary>
internal abstract class Waiter : WaitNode, IValueTaskSource
{
    public EventLoop Loop = null!;
    public WaiterState State;
    public short Version;

    /// <summary>The scope of the code that awaited; <see langword="null"/> until it suspends.</summary>
    public CancelScope? Scope;
    /// <summary>Whether the waiter is in its <see cref="Scope"/>'s list (only while pending and registered).</summary>
    public bool Linked;
    public Waiter? ScopePrev, ScopeNext;

    Action<object?>? _cont;
    object? _contState;
    string? _cancelMessage;

    /// <summary>
    /// The token whose cancellation ended the wait (a primitive's own <see cref="CancellationToken"/>
    /// parameter), carried by the <see cref="CancelledError"/>; none for a scope's cancellation.
    /// </summary>
    protected CancellationToken CancelledBy;

    /// <summary>Prepares a freshly rented waiter.</summary>
    protected void Init(EventLoop loop)
    {
        if (!ReferenceEquals(Loop, loop)) Loop = loop; // a reused waiter has it already: no write barrier
        State = WaiterState.Pending;
    }

    // ---- for introspection (Diagnostics/CallGraph.cs; loop thread, never on a hot path) ----

    /// <summary>The task whose code awaits, once the await has suspended.</summary>
    internal override object? AwaitingParty => Scope?.Task;

    /// <summary>The state of the suspended awaiter's continuation: a coroutine's box, or an async method's Task.</summary>
    internal object? ContinuationState => FlowingContinuation.Unwrap(_contState);

    /// <summary>What the wait is for: the operation, as the public API names it, and the object awaited.</summary>
    internal abstract (string Operation, object? Target) Describe();

    // ---- for primitives ----

    /// <summary>An awaited future is done: grant the wait.</summary>
    public override void NotifyDone() => Wake();

    /// <summary>Grants the wait: queues the continuation (if the awaiter has suspended).</summary>
    public void Wake()
    {
        Debug.Assert(State == WaiterState.Pending);
        State = WaiterState.Woken;
        Resume(ReadyFlags.Resume);
    }

    /// <summary>Leaves the scope's list and queues the continuation, if the awaiter has suspended.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void Resume(ReadyFlags flags)
    {
        if (Linked) Scope!.UnlinkWaiter(this);
        var cont = _cont;
        if (cont != null)
        {
            _cont = null;
            var st = _contState;
            _contState = null;
            Loop.EnqueueResume(cont, st, Scope!, flags);
        }
    }

    /// <summary>
    /// The scope of the awaiting code was cancelled while this waiter was pending. The default leaves the
    /// primitive's list and resumes the awaiter with <see cref="CancelledError"/>.
    /// </summary>
    /// <returns>Whether the cancellation was taken (asyncio's return value of <c>Future.cancel()</c>).</returns>
    public virtual bool CancelFromScope(string? message) => CancelNow(message);

    /// <summary>
    /// As <see cref="CancelFromScope"/>, when the scope's cancellation has come back to it through a cycle of
    /// awaits (task a awaits b, b awaits a: cancelling a cancels b, which cancels a again). The default is
    /// the same; an await of a future overrides it to end the cycle here rather than cancel the future again.
    /// </summary>
    public virtual bool CancelFromCycle(string? message) => CancelFromScope(message);

    /// <summary>Leaves the primitive's list and resumes the pending awaiter with <see cref="CancelledError"/>.</summary>
    /// <returns>Whether the waiter was pending.</returns>
    protected bool CancelNow(string? message)
    {
        if (State != WaiterState.Pending) return false;
        RemoveFromPrimitive();
        CancelPending(message);
        return true;
    }

    /// <summary>
    /// A <see cref="CancellationToken"/> given to the primitive was cancelled while the waiter is pending
    /// (loop thread): cancel it as its scope would, with a <see cref="CancelledError"/> that carries the token.
    /// </summary>
    /// <returns>Whether the cancellation was taken.</returns>
    public bool CancelFromToken(CancellationToken token)
    {
        if (State != WaiterState.Pending) return false;
        CancelledBy = token;
        return CancelFromScope(null);
    }

    /// <summary>Leaves the primitive's wait list (O(1)). Called on cancellation of a pending waiter.</summary>
    protected abstract void RemoveFromPrimitive();

    /// <summary>
    /// The waiter was woken but its scope was cancelled before it resumed: pass the wake-up on so that
    /// nothing is lost. The default does nothing (for waits that grant nothing, such as a future's).
    /// </summary>
    protected virtual void OnCancelledAfterWake() { }

    /// <summary>Returns the waiter to its pool; <see cref="Version"/> has already moved on.</summary>
    protected abstract void ReturnToPool();

    /// <summary>Resumes the awaiter with <see cref="CancelledError"/>.</summary>
    protected void CancelPending(string? message)
    {
        Debug.Assert(State == WaiterState.Pending);
        State = WaiterState.Cancelled;
        _cancelMessage = message;
        Resume(ReadyFlags.Resume | ReadyFlags.Cancelled);
    }

    // ---- IValueTaskSource ----

    public ValueTaskSourceStatus GetStatus(short token)
    {
        CheckToken(token);
        return State switch
        {
            WaiterState.Pending => ValueTaskSourceStatus.Pending,
            WaiterState.Cancelled => ValueTaskSourceStatus.Canceled,
            _ => ValueTaskSourceStatus.Succeeded,
        };
    }

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        CheckToken(token);
        var loop = Loop;
        if (!loop.IsAwaitableHere)
        {
            // Throwing from OnCompleted would crash the process (the builder rethrows on the thread
            // pool), so the misuse is reported through GetResult instead. Primitives check the thread
            // when the wait is created; this is the last line of defence.
            _misuse = loop.MakeBadAwaitError();
            ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: false);
            return;
        }
        if ((flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0)
            FlowingContinuation.Wrap(ref continuation, ref state);
        var scope = loop.CurrentScope;
        Scope = scope;
        if (State != WaiterState.Pending)
        {
            // Granted or cancelled before the await suspended: resume on the next iteration.
            loop.EnqueueResume(continuation, state, scope,
                State == WaiterState.Cancelled ? ReadyFlags.Resume | ReadyFlags.Cancelled : ReadyFlags.Resume);
            return;
        }
        _cont = continuation;
        _contState = state;
        if (loop.MustCancelCount != 0 && scope.TryConsumeCancel(out var message))
        {
            CancelAtSuspension(scope, message);
            return;
        }
        scope.LinkWaiter(this);
    }

    /// <summary>
    /// The awaiting code had a cancellation kept for its next await (its scope's "must cancel") when this wait
    /// suspended in <paramref name="scope"/>. The default ends the wait with <see cref="CancelledError"/> at once.
    /// </summary>
    protected virtual void CancelAtSuspension(CancelScope scope, string? message)
    {
        RemoveFromPrimitive();
        CancelPending(message);
    }

    void IValueTaskSource.GetResult(short token)
    {
        Complete(token);
        Finish();
    }

    /// <summary>Collects a granted wait without a value: the default just returns the waiter to its pool.</summary>
    protected virtual void Finish() => Release();

    /// <summary>Ends the wait: throws if it was cancelled, else lets the subclass collect its grant.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected void Complete(short token)
    {
        CheckToken(token);
        if (_misuse != null) ThrowMisuse();
        if (State == WaiterState.Woken)
        {
            if (Scope != null && Loop.MustCancelCount != 0 && Scope.TryConsumeCancel(out var msg))
            {
                OnCancelledAfterWake();
                Release();
                throw new CancelledError(msg);
            }
            return;
        }
        ThrowNotWoken();
    }

    Exception? _misuse;

    [MethodImpl(MethodImplOptions.NoInlining)]
    void ThrowMisuse()
    {
        // The waiter may still sit in its primitive's list; it is abandoned to the collector.
        var e = _misuse!;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    void ThrowNotWoken()
    {
        if (State == WaiterState.Cancelled)
        {
            var msg = _cancelMessage;
            var token = CancelledBy;
            // One error for every cancellation that reached the await before it resumed (see CompleteSleep).
            // If the wait was ended by a token and the task was cancelled too, the error is the task's, as
            // asyncio throws the task's cancellation when its awaited future was already cancelled: code
            // that handles its own token must not swallow the task's cancellation.
            if (Scope != null && Loop.MustCancelCount != 0 && Scope.TryConsumeCancel(out var scopeMessage) && token.CanBeCanceled)
            {
                msg = scopeMessage;
                token = default;
            }
            Release();
            throw new CancelledError(msg, token);
        }
        throw new InvalidOperationException("The operation has not completed yet; await it instead of reading its result.");
    }

    /// <summary>Resets the waiter and returns it to its pool. Call after reading the grant.</summary>
    protected void Release()
    {
        Version++;
        State = WaiterState.Idle;
        Scope = null;
        _cancelMessage = null;
        CancelledBy = default;
        Prev = Next = null;
        ReturnToPool();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void CheckToken(short token)
    {
        if (token != Version) ThrowBadToken();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowBadToken() =>
        throw new InvalidOperationException("This ValueTask was already awaited; a ValueTask of a loop primitive may be awaited only once.");
}

/// <summary>A pooled wait whose grant is a value.</summary>
internal abstract class Waiter<T> : Waiter, IValueTaskSource<T>
{
    /// <summary>Reads the grant (after <see cref="Waiter.Complete"/> has checked the state).</summary>
    protected abstract T TakeResult();

    T IValueTaskSource<T>.GetResult(short token)
    {
        Complete(token);
        var result = TakeResult();
        Release();
        return result;
    }
}

/// <summary>A free list of waiters of one type, kept by the running loop.</summary>
/// <remarks>
/// Per loop rather than per thread: a generic thread-static costs a TLS lookup on every rent, which
/// showed in profiles of the queue ping-pong. Each waiter type gets a slot number once; the loop keeps
/// one list head per slot. Off the loop (no running loop) a fresh waiter is made.
/// </remarks>
internal static class WaiterPool<TWaiter> where TWaiter : Waiter, new()
{
    const int MaxPooled = 4096;
    static readonly int s_slot = EventLoop.NewWaiterPoolSlot();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TWaiter Rent()
    {
        var loop = EventLoop.TryGetRunningLoop();
        if (loop != null)
        {
            ref var pool = ref loop.WaiterPool(s_slot);
            if (pool.Head is TWaiter w)
            {
                pool.Head = w.Next;
                pool.Count--;
                w.Next = null;
                return w;
            }
        }
        return new TWaiter();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Return(TWaiter w)
    {
        var loop = w.Loop;
        if (loop == null || !loop.IsLoopThread) return;
        ref var pool = ref loop.WaiterPool(s_slot);
        if (pool.Count >= MaxPooled) return;
        w.Next = pool.Head;
        pool.Head = w;
        pool.Count++;
    }
}

/// <summary>A continuation that must run in the execution context captured when it was registered.</summary>
internal sealed class FlowingContinuation
{
    readonly Action<object?> _continuation;
    readonly object? _state;
    readonly ExecutionContext _context;

    FlowingContinuation(Action<object?> continuation, object? state, ExecutionContext context)
    {
        _continuation = continuation;
        _state = state;
        _context = context;
    }

    /// <summary>The state of the continuation that <paramref name="state"/> wraps, if it is a wrapper; else itself.</summary>
    public static object? Unwrap(object? state) => state is FlowingContinuation f ? f._state : state;

    public static void Wrap(ref Action<object?> continuation, ref object? state)
    {
        var ec = ExecutionContext.Capture();
        if (ec == null) return;
        state = new FlowingContinuation(continuation, state, ec);
        continuation = s_run;
    }

    static readonly ContextCallback s_invoke = static o =>
    {
        var f = (FlowingContinuation)o!;
        f._continuation(f._state);
    };

    static readonly Action<object?> s_run = static o =>
    {
        var f = (FlowingContinuation)o!;
        ExecutionContext.Run(f._context, s_invoke, f);
    };
}
