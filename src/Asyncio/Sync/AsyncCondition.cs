using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Asyncio;

// A condition wait is one waiter that lives in two lists in turn:
//
//   WaitAsync:  release the lock, append the waiter to the condition's list      (phase InCondition)
//   Notify:     move it straight to the lock's wait list, still pending           (phase InLock)
//               (or give it the lock at once if it is free)
//   the lock is handed to it: Wake, the task resumes holding the lock
//
// so a notified task does not resume only to queue for the lock again (one wake-up per wait, no
// allocation). As in asyncio the wait always returns holding the lock, even when cancelled: a
// cancellation of a waiter in the condition's list moves it to the lock's list with the cancellation
// recorded, and it throws CancelledError once the lock is its own; a second cancellation meanwhile is
// absorbed, as asyncio's re-acquire loop does (the task's cancellation replaces a token's in what is thrown,
// as asyncio throws the most recent one). A notification is never lost (asyncio 3.13, gh-112202):
// a notified waiter that is cancelled before it resumes passes its notification to the next waiter.
// Unlike asyncio, a waiter cancelled before it was notified does not notify another (asyncio does, as
// an allowed spurious wake-up).

/// <summary>
/// A condition variable for the tasks of one event loop; asyncio's <c>Condition</c>. Tasks hold its lock,
/// <see cref="WaitAsync"/> until another task <see cref="Notify"/>s them, and resume holding the lock again.
/// </summary>
/// <remarks>
/// <para>The lock is an <see cref="AsyncLock"/>, given or the condition's own; <see cref="AcquireAsync"/>,
/// <see cref="Release"/> and <see cref="IsLocked"/> act on it, so <c>using (await cond.AcquireAsync())</c>
/// is asyncio's <c>async with cond</c>. A wait always returns holding the lock, also when it throws
/// <see cref="CancelledError"/>. Not thread-safe: use it from the loop's thread; once a task has waited on it, a
/// call from another thread while that loop runs throws <see cref="InvalidOperationException"/>.</para>
/// <para><b>Differences from asyncio.</b> A notified task queues for the lock at once, in the order of
/// notification, instead of when it resumes. A wait cancelled before it was notified does not wake another
/// waiter spuriously.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class AsyncCondition
{
    readonly AsyncLock _lock;
    WaitList _waiters;
    EventLoop? _loop;
    /// <summary>An idle waiter kept for the next wait (<see cref="SpareWaiter"/>).</summary>
    internal ConditionWaiter? Spare;

    /// <summary>Creates a condition over <paramref name="lock"/>, or over a new lock of its own when <see langword="null"/>.</summary>
    public AsyncCondition(AsyncLock? @lock = null)
    {
        _lock = @lock ?? new AsyncLock();
    }

    /// <summary>The lock the condition uses.</summary>
    public AsyncLock Lock => _lock;

    /// <summary>Whether the condition's lock is held; asyncio's <c>locked()</c>.</summary>
    public bool IsLocked => _lock.IsLocked;

    /// <summary>Acquires the condition's lock; see <see cref="AsyncLock.AcquireAsync"/>.</summary>
    public ValueTask<AsyncLock.Releaser> AcquireAsync(CancellationToken cancellationToken = default) => _lock.AcquireAsync(cancellationToken);

    /// <summary>Releases the condition's lock; see <see cref="AsyncLock.Release"/>.</summary>
    public void Release() => _lock.Release();

    /// <summary>
    /// Releases the lock, waits until notified, and re-acquires the lock before returning; asyncio's
    /// <c>wait()</c>. The caller must hold the lock.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait; the lock is still re-acquired before the cancellation is thrown.</param>
    /// <exception cref="InvalidOperationException">The lock is not held (asyncio's <c>RuntimeError</c>).</exception>
    /// <exception cref="CancelledError">The task or <paramref name="cancellationToken"/> was cancelled; the lock is held again.</exception>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default)
    {
        if (!_lock.IsHeld) ThrowUnacquired("wait");
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused(cancellationToken);
        var loop = LoopBinding.Bind(ref _loop, this);
        _lock.BindTo(loop); // the wait continues in the lock's queue
        var w = ConditionWaiter.Rent(loop, this);
        w.Hold = _lock.CurrentHold;
        // A cancellation already pending for this task would be taken when the await suspends, which would
        // end the wait without the lock; take it here instead, so that it goes through the re-acquire.
        string? message = null;
        bool cancelNow = loop.MustCancelCount != 0 && loop.CurrentScope.TryConsumeCancel(out message);
        _lock.PassOn();
        if (cancelNow) w.RecordCancel(message);
        else _waiters.Append(w);
        TokenHook.Register(w, cancellationToken);
        return new ValueTask(w, w.Version);
    }

    /// <summary>
    /// Waits until <paramref name="predicate"/> is true, calling <see cref="WaitAsync"/> while it is false;
    /// asyncio's <c>wait_for()</c>. The predicate is checked first, with the lock held.
    /// </summary>
    /// <param name="predicate">The condition to wait for.</param>
    /// <param name="cancellationToken">Cancels the wait as in <see cref="WaitAsync"/>; a token already cancelled fails the call even when the predicate is true.</param>
    /// <exception cref="InvalidOperationException">The predicate is false and the lock is not held.</exception>
    /// <exception cref="CancelledError">The task or <paramref name="cancellationToken"/> was cancelled; the lock is held again.</exception>
    public ValueTask WaitForAsync(Func<bool> predicate, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused(cancellationToken);
        return predicate() ? default : WaitForSlow(predicate, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    async ValueTask WaitForSlow(Func<bool> predicate, CancellationToken cancellationToken)
    {
        do await WaitAsync(cancellationToken);
        while (!predicate());
    }

    /// <summary>
    /// Wakes up to <paramref name="n"/> waiting tasks (default 1); asyncio's <c>notify()</c>. They resume
    /// once they get the lock, after the caller releases it. The caller must hold the lock.
    /// </summary>
    /// <exception cref="InvalidOperationException">The lock is not held (asyncio's <c>RuntimeError</c>), or the call is not on the thread of the running loop the condition was waited on in.</exception>
    public void Notify(int n = 1)
    {
        if (!_lock.IsHeld) ThrowUnacquired("notify");
        LoopBinding.CheckThread(_loop, nameof(AsyncCondition), nameof(Notify)); // before any change: a wrong-thread call loses nothing
        NotifyCore(n);
    }

    /// <summary>Wakes every waiting task; asyncio's <c>notify_all()</c>. The caller must hold the lock.</summary>
    /// <exception cref="InvalidOperationException">The lock is not held.</exception>
    public void NotifyAll() => Notify(int.MaxValue);

    internal void NotifyCore(int n)
    {
        for (int i = 0; i < n && !_waiters.IsEmpty; i++)
            ((ConditionWaiter)_waiters.PopFirst()).Notified();
    }

    internal void RemoveWaiter(Waiter w) => _waiters.Remove(w);

    internal AsyncLock LockCore => _lock;

    /// <summary>How many tasks wait to be notified.</summary>
    internal int WaiterCount => _waiters.Count;

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowUnacquired(string what) => throw new InvalidOperationException($"Cannot {what} on an un-acquired lock.");

    /// <summary>Describes the condition as asyncio's repr does: <c>[locked, waiters:N]</c>.</summary>
    public override string ToString() =>
        $"<AsyncCondition [{(_lock.IsLocked ? "locked" : "unlocked")}{(_waiters.Count != 0 ? $", waiters:{_waiters.Count}" : "")}]>";
}

/// <summary>A task waiting in <see cref="AsyncCondition.WaitAsync"/> (pooled); see the file's opening comment.</summary>
internal sealed class ConditionWaiter : Waiter, ITokenWaiter
{
    AsyncCondition? _cond;
    TokenHook _hook;
    bool _inLock;          // in the lock's wait list (else in the condition's)
    bool _notified;        // moved to the lock by a notification
    bool _cancelled;       // a cancellation arrived while pending: throw it once the lock is held
    string? _cancelMessage;
    CancellationToken _cancelToken; // the token of the recorded cancellation (none: the scope's)

    /// <summary>The lock's hold when the wait began, restored when the lock is handed back (see <see cref="AsyncLock.Releaser"/>).</summary>
    public int Hold;

    public static ConditionWaiter Rent(EventLoop loop, AsyncCondition c)
    {
        var w = SpareWaiter.Rent(ref c.Spare);
        w.Init(loop);
        w._cond = c;
        return w;
    }

    /// <summary>A notification took the waiter out of the condition's list: queue for the lock.</summary>
    public void Notified()
    {
        _notified = true;
        MoveToLock();
    }

    /// <summary>Records a cancellation of a waiter that is not in the condition's list, and queues it for the lock.</summary>
    public void RecordCancel(string? message)
    {
        _cancelled = true;
        _cancelMessage = message;
        MoveToLock();
    }

    void MoveToLock()
    {
        _inLock = true;
        if (_cond!.LockCore.TakeOrEnqueue(this)) Wake();
    }

    /// <summary>Cancelled while pending: the wait still ends holding the lock (see the file's opening comment).</summary>
    public override bool CancelFromScope(string? message)
    {
        if (State != WaiterState.Pending) return false;
        if (_cancelled)
        {
            // Already cancelled, still re-acquiring: absorbed, as in asyncio's re-acquire loop, which then
            // throws the most recent cancellation. Here a task's (scope's) cancellation replaces a token's,
            // never the reverse, so that code handling its own token cannot swallow the task's cancellation.
            // CancelFromToken sets CancelledBy before it calls here, so an unchanged one means the scope.
            if (CancelledBy == _cancelToken)
            {
                _cancelMessage = message;
                CancelledBy = _cancelToken = default;
            }
            else CancelledBy = _cancelToken;
            return true;
        }
        _cancelToken = CancelledBy;
        if (!_inLock)
        {
            _cond!.RemoveWaiter(this);
            RecordCancel(message);
        }
        else
        {
            _cancelled = true;
            _cancelMessage = message;
            if (_notified) _cond!.NotifyCore(1); // this notification will not be used: pass it on
        }
        return true;
    }

    /// <summary>Waiting for a notification, or (notified or cancelled) for the condition's lock again.</summary>
    internal override (string Operation, object? Target) Describe() => (_inLock ? "AsyncCondition.WaitAsync (re-acquiring the lock)" : "AsyncCondition.WaitAsync", _cond);

    // Only reachable if a cancellation were taken by the await's suspension, which WaitAsync prevents.
    protected override void RemoveFromPrimitive()
    {
        Debug.Fail("a condition wait must re-acquire the lock when cancelled");
        if (_inLock) _cond!.LockCore.RemoveWaiter(this);
        else _cond!.RemoveWaiter(this);
    }

    /// <summary>Handed the lock, then cancelled before resuming: keep the lock, pass on the notification.</summary>
    protected override void OnCancelledAfterWake()
    {
        _cond!.LockCore.HandOverTaken();
        if (_notified && !_cancelled) _cond.NotifyCore(1);
    }

    protected override void Finish()
    {
        _cond!.LockCore.HandOverTaken();
        bool cancelled = _cancelled;
        var message = _cancelMessage;
        var token = CancelledBy;
        Release();
        if (cancelled) throw new CancelledError(message, token);
    }

    protected override void ReturnToPool()
    {
        var c = _cond!;
        _cond = null;
        _inLock = _notified = _cancelled = false;
        _cancelMessage = null;
        _cancelToken = default;
        if (_hook.TryDetach()) SpareWaiter.Return(ref c.Spare, this);
    }

    ref TokenHook ITokenWaiter.Hook => ref _hook;

    void ITokenWaiter.ReturnParked() => WaiterPool<ConditionWaiter>.Return(this);
}
