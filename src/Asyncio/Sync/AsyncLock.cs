using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Asyncio;

// The lock hands itself over. Release() with waiters does not unlock: it gives the lock to the first
// waiter (which stays "locked" on its behalf) and wakes it. A task that arrives before the woken waiter
// has resumed finds the lock held and queues behind it, which is asyncio's FIFO guarantee (asyncio gets
// it by making a new arrival wait while any waiter is not cancelled). If the woken waiter is cancelled
// before it resumes, OnCancelledAfterWake hands the lock on again, so the wake-up is never lost. While
// the lock is handed over and its new holder has not resumed, nobody holds it: Release throws, as asyncio's
// release() of an unlocked lock does (asyncio unlocks on release and the woken waiter locks on resuming),
// so that a second release cannot hand the lock to a second waiter while the first still gets it.
//
// Invariant: _waiters is not empty => _locked.

/// <summary>
/// A mutual-exclusion lock for the tasks of one event loop; asyncio's <c>Lock</c>. Not thread-safe: use it from the
/// loop's thread; once a task has waited on it, a call from another thread while that loop runs throws <see
/// cref="InvalidOperationException"/>.
/// </summary>
/// <remarks>
/// <para>Acquire with <c>await lock.AcquireAsync()</c> and <see cref="Release"/> it, or scoped:
/// <c>using (await lock.AcquireAsync()) { ... }</c>. The lock is fair: waiters acquire it in the order
/// they started waiting, and one that is cancelled (by its task or its token) leaves the queue at once and
/// passes on a hand-over it had already received. An uncontended acquire and release allocate nothing,
/// and neither does a contended wait once the waiter pool is warm.</para>
/// <para><b>Differences from asyncio.</b> The lock is handed directly to the next waiter, so
/// <see cref="IsLocked"/> stays <see langword="true"/> from a <see cref="Release"/> with waiters until that
/// waiter releases it (asyncio reports unlocked until the waiter has resumed, although a new acquirer must
/// wait anyway). As in asyncio the lock has no owner: any code may release it.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class AsyncLock
{
    bool _locked;
    /// <summary>Handed to a woken waiter that has not resumed yet: locked for newcomers, held by nobody.</summary>
    bool _handing;
    /// <summary>The current hold, so that a <see cref="Releaser"/> releases only the hold it was made for.</summary>
    int _hold;
    /// <summary>
    /// The last hold handed out. Holds only grow: a condition wait gets back the hold it had before it
    /// waited, so counting on from the restored one would hand a stale releaser's hold out again.
    /// </summary>
    int _lastHold;
    WaitList _waiters;
    EventLoop? _loop;
    /// <summary>An idle waiter kept for the next wait (<see cref="SpareWaiter"/>).</summary>
    internal LockWaiter? Spare;

    /// <summary>Creates an unlocked lock. It binds to the event loop that first waits on it.</summary>
    public AsyncLock() { }

    /// <summary>Whether the lock is held (or handed to a waiter that has not resumed yet); asyncio's <c>locked()</c>.</summary>
    public bool IsLocked => _locked;

    /// <summary>
    /// Acquires the lock, waiting if it is held; asyncio's <c>acquire()</c>. Returns a releaser for the
    /// scoped form <c>using (await lock.AcquireAsync()) { ... }</c>; the result may also be ignored and the
    /// lock released with <see cref="Release"/>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait (the lock is then not acquired).</param>
    /// <exception cref="CancelledError">The task was cancelled, or <paramref name="cancellationToken"/> was, while waiting.</exception>
    /// <exception cref="InvalidOperationException">The wait is outside a running loop, or in another loop than the lock's.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask<Releaser> AcquireAsync(CancellationToken cancellationToken = default)
    {
        if (!_locked && !cancellationToken.IsCancellationRequested)
        {
            LoopBinding.CheckThread(_loop, nameof(AsyncLock), nameof(AcquireAsync));
            _locked = true;
            return new ValueTask<Releaser>(new Releaser(this, _hold = ++_lastHold));
        }
        return AcquireSlow(cancellationToken);
    }

    ValueTask<Releaser> AcquireSlow(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused<Releaser>(cancellationToken);
        var loop = LoopBinding.Bind(ref _loop, this);
        var w = LockWaiter.Rent(loop, this);
        _waiters.Append(w);
        TokenHook.Register(w, cancellationToken);
        return new ValueTask<Releaser>(w, w.Version);
    }

    /// <summary>
    /// Acquires the lock if it is free, without waiting. Not in asyncio (its <c>threading</c> counterpart is
    /// <c>acquire(blocking=False)</c>).
    /// </summary>
    /// <returns>Whether the lock was acquired.</returns>
    public bool TryAcquire()
    {
        LoopBinding.CheckThread(_loop, nameof(AsyncLock), nameof(TryAcquire));
        if (_locked) return false;
        _locked = true;
        _hold = ++_lastHold;
        return true;
    }

    /// <summary>
    /// Releases the lock; asyncio's <c>release()</c>. If tasks are waiting, the first one gets the lock and
    /// resumes on a later iteration.
    /// </summary>
    /// <exception cref="InvalidOperationException">The lock is not held (asyncio's <c>RuntimeError</c>), which
    /// includes a lock handed by a release to a waiter that has not resumed yet.</exception>
    public void Release()
    {
        if (!IsHeld) ThrowNotLocked();
        PassOn();
    }

    /// <summary>Whether some code holds the lock: locked, and not on its way to a woken waiter (asyncio's <c>locked()</c>).</summary>
    internal bool IsHeld => _locked && !_handing;

    /// <summary>Gives the held lock to the first waiter, or unlocks it when there is none.</summary>
    internal void PassOn()
    {
        AssertInvariants();
        LoopBinding.CheckThread(_loop, nameof(AsyncLock), nameof(Release)); // before any change: a wrong-thread call loses nothing
        if (_waiters.IsEmpty) { _locked = _handing = false; return; }
        var w = _waiters.PopFirst();
        // A new hold from the hand-over on, so that a stale releaser of the previous holder cannot release
        // it; a condition waiter gets back the hold it had before it waited.
        _hold = w is ConditionWaiter c ? c.Hold : ++_lastHold;
        _handing = true;
        w.Wake();
    }

    /// <summary>Binds the lock to <paramref name="loop"/> (a condition over it waits there).</summary>
    /// <exception cref="InvalidOperationException">The lock belongs to another loop.</exception>
    internal void BindTo(EventLoop loop) => LoopBinding.Bind(ref _loop, this, loop);

    /// <summary>Takes the lock for <paramref name="w"/> if it is free (returns <see langword="true"/>), else queues it.</summary>
    internal bool TakeOrEnqueue(ConditionWaiter w)
    {
        if (!_locked)
        {
            _locked = _handing = true;   // held by the waiter once it resumes
            _hold = w.Hold;
            return true;
        }
        _waiters.Append(w);
        return false;
    }

    /// <summary>Removes a pending waiter that was cancelled.</summary>
    internal void RemoveWaiter(Waiter w) => _waiters.Remove(w);

    /// <summary>A woken waiter has resumed with the lock it was handed: it holds it now.</summary>
    internal void HandOverTaken() => _handing = false;

    /// <summary>Takes the hand-over for a resuming waiter, and returns the releaser of its hold.</summary>
    internal Releaser TakeHandOver()
    {
        HandOverTaken();
        return new(this, _hold);
    }

    /// <summary>The current hold, which a condition wait restores when it gets the lock back.</summary>
    internal int CurrentHold => _hold;

    /// <summary>How many tasks wait for the lock.</summary>
    internal int WaiterCount => _waiters.Count;

    void ReleaseHold(int hold)
    {
        if (!IsHeld || hold != _hold)
            throw new InvalidOperationException("This releaser's hold on the lock has already been released.");
        PassOn();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowNotLocked() => throw new InvalidOperationException("Lock is not acquired.");

    [Conditional("DEBUG")]
    void AssertInvariants() => Debug.Assert(_waiters.IsEmpty || _locked, "a lock with waiters must be held");

    /// <summary>Describes the lock as asyncio's repr does: <c>[locked, waiters:N]</c>.</summary>
    public override string ToString() =>
        $"<AsyncLock [{(_locked ? "locked" : "unlocked")}{(_waiters.Count != 0 ? $", waiters:{_waiters.Count}" : "")}]>";

    /// <summary>
    /// Releases the hold it was returned for when disposed: the scoped form
    /// <c>using (await lock.AcquireAsync()) { ... }</c>. A struct, so the scoped form allocates nothing.
    /// </summary>
    public readonly struct Releaser : IDisposable
    {
        readonly AsyncLock? _lock;
        readonly int _hold;

        internal Releaser(AsyncLock l, int hold)
        {
            _lock = l;
            _hold = hold;
        }

        /// <summary>Releases the lock (no-op for a default instance).</summary>
        /// <exception cref="InvalidOperationException">This hold was already released (a second dispose, or a release through <see cref="Release"/>).</exception>
        public void Dispose() => _lock?.ReleaseHold(_hold);
    }
}

/// <summary>A task waiting in <see cref="AsyncLock.AcquireAsync"/> (pooled).</summary>
internal sealed class LockWaiter : Waiter<AsyncLock.Releaser>, ITokenWaiter
{
    AsyncLock? _lock;
    TokenHook _hook;

    public static LockWaiter Rent(EventLoop loop, AsyncLock l)
    {
        var w = SpareWaiter.Rent(ref l.Spare);
        w.Init(loop);
        w._lock = l;
        return w;
    }

    protected override void RemoveFromPrimitive() => _lock!.RemoveWaiter(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncLock.AcquireAsync", _lock);

    /// <summary>Handed the lock, then cancelled before resuming: hand it to the next waiter.</summary>
    protected override void OnCancelledAfterWake() => _lock!.PassOn();

    protected override AsyncLock.Releaser TakeResult() => _lock!.TakeHandOver();

    protected override void ReturnToPool()
    {
        var l = _lock!;
        _lock = null;
        if (_hook.TryDetach()) SpareWaiter.Return(ref l.Spare, this);
    }

    ref TokenHook ITokenWaiter.Hook => ref _hook;

    void ITokenWaiter.ReturnParked() => WaiterPool<LockWaiter>.Return(this);
}
