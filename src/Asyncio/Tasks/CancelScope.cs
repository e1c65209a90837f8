using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Asyncio;

// Cancel scopes: how cancellation finds the awaits it must interrupt.
//
// asyncio interrupts a task at its one current await. A C# task can have several awaits in flight at
// once, because calling an async method starts it at once ("hot"): `await Aio.Gather(A(), B())` runs A
// and B inside the calling task. So cancellation here is addressed to a scope, not to one await:
//
//  * Every task has a root scope. Timeout scopes and task-group bodies open child scopes inside it.
//  * Every await of a loop primitive is registered, when it suspends, in the scope of the code that
//    awaits (the loop's current scope). Waiter objects sit in the scope's intrusive list; sleeps, which
//    have no object of their own, are counted (the single one is remembered, several are found by a
//    pass over the timers).
//  * Cancelling a scope delivers one CancelledError to every await pending in it and in its children
//    (an awaited future is itself cancelled, as asyncio's Task.cancel does with _fut_waiter). If no await
//    is pending, the scope keeps a "must cancel" mark and the next await that suspends inside it, or the
//    next wake-up of an await inside it that has not resumed yet, takes the CancelledError instead. This
//    is asyncio's edge-triggered delivery (one cancel, one error; a task may catch it and go on), not
//    Trio's level-triggered one.
//  * The scope is also the SynchronizationContext installed while its code runs, so a continuation of a
//    foreign await (HttpClient, Task.Delay) that was captured inside the scope comes back to the loop
//    thread and resumes in that same scope: the current task survives foreign awaits without AsyncLocal.
//  * A scope that closes while awaits started in it are still pending (an escaped hot coroutine) stays
//    linked to its parent until they end, so cancelling the task still reaches them.

/// <summary>
/// A node of the cancellation tree and the synchronisation context of the code that runs in it. See the
/// file's opening comment.
/// </summary>
[DebuggerDisplay("CancelScope(task = {Task?.Name}, waiters = {_firstWaiter != null}, sleeps = {_sleepCount}, mustCancel = {MustCancel})")]
internal sealed class CancelScope : SynchronizationContext
{
    // Every task has a scope from its first suspension to its end (a million suspended tasks hold a
    // million), so the scope is kept to 64 bytes: the task and the loop share one field, and what only
    // child scopes, tokens and cancellations need lives in Extras.
    object _owner;             // the task whose code runs in this scope, or the loop for its own scope; set once (Bind)

    // Rarely used state, allocated on first need, so that the scope every task start creates stays
    // small: the parent and the links of child scopes, the token, the cancellation message.
    sealed class Extras
    {
        public CancelScope? Parent;
        // Children that are open, or closed with waits still pending (intrusive list).
        public CancelScope? FirstChild, PrevSibling, NextSibling;
        public bool Linked;
        public CancellationTokenSource? Cts;
        public string? CancelMessage;
        // The "must cancel" mark was left by Keep for a cancellation of the task (asyncio's re-cancel after a
        // task group's errors won): the task's uncancel() reaching zero withdraws it.
        public bool Kept;
    }

    Extras? _x;
    Extras X => _x ??= new Extras();

    // Pending waiters (intrusive list through Waiter.ScopePrev/ScopeNext).
    Waiter? _firstWaiter;

    // Pending sleeps: how many, and the one when there is exactly one and it is known (its sequence
    // number, its continuation's kind in the loop's timer table - 0 when none is known - and its state).
    int _sleepCount;
    int _sleepSeq;
    byte _sleepKind;           // a byte: the timer table has at most 64 continuations, and it fits beside the flags
    object? _sleepState;

    /// <summary>The task whose code runs in this scope, or the loop (for a cheap identity test: <see cref="EventLoop.CheckNotSelfAwait"/>).</summary>
    public object Owner => _owner;

    /// <summary>The loop the scope belongs to.</summary>
    public EventLoop Loop => _owner as EventLoop ?? Unsafe.As<AioTask>(_owner).Loop;

    /// <summary>The task whose code runs in this scope; <see langword="null"/> for the loop's own scope (plain callbacks).</summary>
    public AioTask? Task => _owner is EventLoop ? null : Unsafe.As<AioTask>(_owner);

    /// <summary>The enclosing scope; <see langword="null"/> for a task's or the loop's root scope.</summary>
    public CancelScope? Parent => _x?.Parent;

    /// <summary>A cancellation that found no pending await and waits for the next one.</summary>
    public bool MustCancel;

    /// <summary>The message of the last cancellation of this scope.</summary>
    public string? CancelMessage
    {
        get => _x?.CancelMessage;
        set { if (value != null || _x != null) X.CancelMessage = value; }
    }

    /// <summary>Set once <see cref="Cancel"/> has been called on this scope (for Timeout and TaskGroup).</summary>
    public bool CancelCalled;
    /// <summary>Set when a cancellation of an enclosing scope reached this one (Timeout and TaskGroup then let it propagate).</summary>
    public bool CancelledFromOutside;
    public bool Closed;
    bool _delivering;          // Deliver is on the stack for this scope (see Deliver)

    /// <summary>A task's root scope made ahead, on a thread-pool thread, and bound to its task by <see cref="Bind"/> (ScopeSupply.cs).</summary>
    internal CancelScope() => _owner = null!;

    /// <summary>Makes a scope made by <see cref="CancelScope()"/> the root scope of <paramref name="task"/>: the same as <c>new CancelScope(task.Loop, task, null)</c>.</summary>
    internal void Bind(AioTask task)
    {
        Debug.Assert(_owner == null);
        _owner = task;
    }

    public CancelScope(EventLoop loop, AioTask? task, CancelScope? parent)
    {
        Debug.Assert(task == null || ReferenceEquals(task.Loop, loop));
        _owner = (object?)task ?? loop;
        if (parent != null)
        {
            X.Parent = parent;
            parent.AddChild(this);
        }
    }

    /// <summary>Whether this scope is <paramref name="ancestor"/> or lies inside it.</summary>
    public bool IsWithin(CancelScope ancestor)
    {
        for (var s = this; s != null; s = s.Parent)
            if (ReferenceEquals(s, ancestor)) return true;
        return false;
    }

    // ---- introspection (Diagnostics/CallGraph.cs) ----

    /// <summary>The first pending waiter registered here (linked through <see cref="Waiter.ScopeNext"/>).</summary>
    internal Waiter? FirstWaiter => _firstWaiter;

    /// <summary>The first child scope (open, or closed with waits pending), linked through <see cref="NextSibling"/>.</summary>
    internal CancelScope? FirstChild => _x?.FirstChild;

    /// <summary>The next child scope of this scope's parent.</summary>
    internal CancelScope? NextSibling => _x?.NextSibling;

    // ---- registration of waits ----

    public void LinkWaiter(Waiter w)
    {
        Debug.Assert(!w.Linked && w.ScopePrev == null && w.ScopeNext == null && ReferenceEquals(w.Scope, this));
        // A task usually waits on one thing at a time: with the list empty, the waiter's links stay null and
        // only the head is stored (each reference store into a heap object costs a GC write barrier).
        w.Linked = true;
        var first = _firstWaiter;
        if (first != null)
        {
            w.ScopeNext = first;
            first.ScopePrev = w;
        }
        _firstWaiter = w;
    }

    public void UnlinkWaiter(Waiter w)
    {
        Debug.Assert(w.Linked && ReferenceEquals(w.Scope, this));
        var prev = w.ScopePrev;
        var next = w.ScopeNext;
        if (prev == null && next == null)
        {
            _firstWaiter = null;
        }
        else
        {
            if (prev != null) prev.ScopeNext = next;
            else _firstWaiter = next;
            if (next != null) next.ScopePrev = prev;
            w.ScopePrev = w.ScopeNext = null;
        }
        w.Linked = false;
        if (Closed) MaybeDetach();
    }

    /// <summary>A sleep of this scope was scheduled; <paramref name="kind"/> is its continuation's index in the loop's timer table (never 0).</summary>
    public void AddSleep(int seq, int kind, object? state)
    {
        Debug.Assert(kind is > 0 and <= byte.MaxValue);
        if (++_sleepCount == 1)
        {
            _sleepSeq = seq;
            _sleepKind = (byte)kind;
            _sleepState = state;
        }
        else ForgetKnownSleep();
    }

    public void SleepEnded(int seq)
    {
        _sleepCount--;
        if (_sleepKind != 0 && _sleepSeq == seq) ForgetKnownSleep();
        if (Closed) MaybeDetach();
    }

    void ForgetKnownSleep()
    {
        _sleepKind = 0;
        _sleepState = null;
    }

    /// <summary>
    /// Takes a pending "must cancel" from this scope or the nearest enclosing scope that has one.
    /// Called when an await suspends or resumes inside this scope.
    /// </summary>
    public bool TryConsumeCancel(out string? message)
    {
        for (var s = this; s != null; s = s.Parent)
        {
            if (s.MustCancel)
            {
                for (var inner = this; !ReferenceEquals(inner, s); inner = inner.Parent!) inner.CancelledFromOutside = true;
                s.MustCancel = false;
                if (s._x != null) s._x.Kept = false;
                Loop.MustCancelCount--;
                message = s.CancelMessage;
                return true;
            }
        }
        message = null;
        return false;
    }

    /// <summary>Withdraws a pending "must cancel" (asyncio's uncancel() reaching zero).</summary>
    public void ClearMustCancel()
    {
        if (MustCancel) { MustCancel = false; Loop.MustCancelCount--; }
        if (_x != null) _x.Kept = false;
    }

    /// <summary>
    /// Leaves a cancellation of the task for the next await in this scope without interrupting the awaits
    /// pending here now (asyncio re-cancels the task when a task group's errors win over its cancellation);
    /// nothing if a "must cancel" is already waiting here or further out, which the next await takes anyway
    /// (asyncio has one such mark per task).
    /// </summary>
    public void Keep(string? message)
    {
        for (var s = this; s != null; s = s.Parent)
            if (s.MustCancel) return;
        MustCancel = true;
        CancelMessage = message;
        X.Kept = true;
        Loop.MustCancelCount++;
    }

    /// <summary>
    /// Withdraws the marks <see cref="Keep"/> left here and in the scopes inside (the task's uncancel() reaching
    /// zero), except where a timeout or group body that has cancelled itself is still open, at the mark or
    /// around it: the mark then stands for that cancellation too, which asyncio counts in cancelling() until
    /// the scope exits, so its count has not reached zero there (<see cref="Aio.OutsideCancels"/>).
    /// </summary>
    public void WithdrawKept(bool cancelledAround = false)
    {
        if (_x == null) return;
        cancelledAround |= _x.Parent != null && CancelCalled && !Closed;
        if (_x.Kept && !cancelledAround) ClearMustCancel();
        for (var c = _x.FirstChild; c != null; c = c._x!.NextSibling) c.WithdrawKept(cancelledAround);
    }

    // ---- cancellation ----

    /// <summary>
    /// Delivers a cancellation to every await pending in this scope and its children, or keeps it for the
    /// next await if none is pending; signals the scope's token.
    /// </summary>
    /// <returns>Whether an await took it at once.</returns>
    public bool Cancel(string? message)
    {
        CancelCalled = true;
        CancelMessage = message;
        bool delivered = Deliver(message);
        if (!delivered && !MustCancel)
        {
            MustCancel = true;
            Loop.MustCancelCount++;
        }
        if (_x?.Cts is { IsCancellationRequested: false } cts)
        {
            try { cts.Cancel(); }
            catch (Exception e)
            {
                Loop.CallExceptionHandler(new ExceptionContext("Exception in a cancellation token callback", e) { Task = Task });
            }
        }
        return delivered;
    }

    // Cancelling a task's await of another task cancels that task, and so on down a chain of awaits. If the
    // chain leads back to a scope whose delivery is still on the stack, the awaits form a cycle (a awaits b,
    // b awaits a) that would recurse until the stack overflows (asyncio raises RecursionError there). The
    // cycle ends at that scope instead: its awaits end with CancelledError at once, without cancelling what
    // they await again, and the other tasks of the cycle follow as the tasks they await end.
    bool Deliver(string? message, bool cycle = false)
    {
        bool outer = _delivering;
        cycle |= outer;
        _delivering = true;
        try
        {
            return DeliverCore(message, cycle);
        }
        finally
        {
            _delivering = outer;
        }
    }

    bool DeliverCore(string? message, bool cycle)
    {
        bool any = false;
        if (_firstWaiter != null)
        {
            // A waiter leaves the list when it stops pending; one whose cancellation is refused (an
            // awaited task that swallows it) stays, so take a snapshot first.
            var snapshot = Loop.RentWaiterList();
            for (var w = _firstWaiter; w != null; w = w.ScopeNext) snapshot.Add(w);
            foreach (var w in snapshot) any |= cycle ? w.CancelFromCycle(message) : w.CancelFromScope(message);
            Loop.ReturnWaiterList(snapshot);
        }
        if (_sleepCount != 0)
        {
            if (_sleepKind != 0)
            {
                int kind = _sleepKind;
                var state = _sleepState;
                int seq = _sleepSeq;
                SleepEnded(seq);
                Loop.CancelSleep(seq, kind, state, this, message);
            }
            else Loop.CancelSleepsOf(this, message);
            any = true;
        }
        for (var c = _x?.FirstChild; c != null;)
        {
            var next = c._x!.NextSibling;
            c.CancelledFromOutside = true;
            any |= c.Deliver(message, cycle);
            c = next;
        }
        return any;
    }

    /// <summary>Called by a timer pass that cancelled a sleep of this scope.</summary>
    public void SleepCancelledByScan(int seq) => SleepEnded(seq);

    /// <summary>Whether the scope's token has been handed out (to this scope's code or, linked, to a scope inside it).</summary>
    public bool HasTokenSource => _x?.Cts != null;

    /// <summary>The token signalled when this scope (or an enclosing one) is cancelled.</summary>
    public CancellationToken Token
    {
        get
        {
            var x = X;
            if (x.Cts == null)
            {
                x.Cts = Parent != null
                    ? CancellationTokenSource.CreateLinkedTokenSource(Parent.Token)
                    : new CancellationTokenSource();
                if (CancelCalled) x.Cts.Cancel();
            }
            return x.Cts.Token;
        }
    }

    /// <summary>
    /// Gives the scope a fresh token (after a task's cancellation count drops back to zero), and so the child
    /// scopes whose tokens were signalled through it: those not cancelled on their own (an expired timeout, a
    /// task group that aborted) take the new one at their next read.
    /// </summary>
    public void ResetToken()
    {
        if (_x?.Cts is { IsCancellationRequested: true } cts)
        {
            cts.Dispose();
            _x.Cts = null;
        }
        CancelCalled = false;
        for (var c = _x?.FirstChild; c != null; c = c._x!.NextSibling)
            if (!c.CancelCalled) c.ResetToken();
    }

    // ---- tree ----

    void AddChild(CancelScope child)
    {
        var x = X;
        var cx = child.X;
        cx.NextSibling = x.FirstChild;
        if (x.FirstChild != null) x.FirstChild._x!.PrevSibling = child;
        x.FirstChild = child;
        cx.Linked = true;
    }

    /// <summary>Closes a child scope (its body has ended); it stays reachable while awaits are pending in it.</summary>
    public void Close()
    {
        if (Closed) return;
        Closed = true;
        ClearMustCancel();
        MaybeDetach();
    }

    void MaybeDetach()
    {
        var x = _x;
        if (x == null || !x.Linked || _firstWaiter != null || _sleepCount != 0 || x.FirstChild != null) return;
        var p = x.Parent!;
        if (x.PrevSibling != null) x.PrevSibling._x!.NextSibling = x.NextSibling;
        else p._x!.FirstChild = x.NextSibling;
        if (x.NextSibling != null) x.NextSibling._x!.PrevSibling = x.PrevSibling;
        x.PrevSibling = x.NextSibling = null;
        x.Linked = false;
        x.Cts?.Dispose();
        x.Cts = null;
        if (p.Closed) p.MaybeDetach();
    }

    // ---- synchronisation context ----

    /// <summary>Queues <paramref name="d"/> to run on the loop thread, in this scope.</summary>
    public override void Post(SendOrPostCallback d, object? state)
    {
        ArgumentNullException.ThrowIfNull(d);
        Loop.PostFromContext(d, state, this);
    }

    /// <summary>Runs <paramref name="d"/> on the loop thread and waits for it (inline when already there).</summary>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    public override void Send(SendOrPostCallback d, object? state)
    {
        ArgumentNullException.ThrowIfNull(d);
        if (Loop.IsLoopThread) { d(state); return; }
        using var request = new SendRequest(d, state);
        // A closed loop would never run it: the post throws rather than leave this thread waiting for good. A loop
        // that closes after taking the post drops it, and tells the request so (SendRequest.LoopClosed).
        Loop.PostInScope(SendRequest.s_run, request, this, throwIfClosed: true);
        request.Done.Wait();
        if (request.Error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(request.Error);
    }

    /// <summary>A <see cref="Send"/> waiting for the loop: run there, or failed by a <see cref="EventLoop.Close"/> that drops it.</summary>
    sealed class SendRequest(SendOrPostCallback d, object? state) : IDroppedOnClose, IDisposable
    {
        public readonly ManualResetEventSlim Done = new();
        public Exception? Error;

        public static readonly Action<object?> s_run = static o =>
        {
            var r = (SendRequest)o!;
            try { r._d(r._state); }
            catch (Exception e) { r.Error = e; }
            finally { r.Done.Set(); }
        };

        readonly SendOrPostCallback _d = d;
        readonly object? _state = state;

        public void LoopClosed()
        {
            Error = new InvalidOperationException("The event loop was closed before the callback sent to it ran.");
            Done.Set();
        }

        public void Dispose() => Done.Dispose();
    }

    /// <summary>The scope is its own copy: a copy must resume in the same scope.</summary>
    public override SynchronizationContext CreateCopy() => this;
}
