using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Asyncio;

// asyncio 3.11+ semaphore fairness (gh-90155), kept exactly:
//
//   * Release() hands its permit to the first waiter: _value is decremented for it at once and _woken
//     counts it until it resumes. A new acquirer may not take a free permit while any task waits or has
//     been woken and not resumed (IsLocked), so nobody barges in ahead of the queue.
//   * A woken waiter that resumes wakes as many further waiters as free permits allow (permits released
//     while it was pending had to leave those waiters queued).
//   * A woken waiter cancelled before it resumes gives its permit back and wakes the next: nothing is
//     lost. A pending waiter that is cancelled leaves the queue at once and also wakes whoever the free
//     permits allow.
//
// Invariants: _value >= 0; _woken >= 0; a permit is either free (_value), held, or handed (_woken).

/// <summary>
/// A counter of permits for the tasks of one event loop; asyncio's <c>Semaphore</c>. <see cref="AcquireAsync"/>
/// takes a permit, waiting while none is free; <see cref="Release"/> returns one. Not thread-safe: use it from the
/// loop's thread; once a task has waited on it, a call from another thread while that loop runs throws <see
/// cref="InvalidOperationException"/>.
/// </summary>
/// <remarks>
/// <para>Scoped use: <c>using (await sem.AcquireAsync()) { ... }</c> (asyncio's <c>async with sem</c>).
/// Waiters are served in FIFO order and a new acquirer never takes a permit ahead of tasks already
/// waiting (asyncio 3.11+). A cancelled waiter leaves the queue at once, and one cancelled after it was
/// handed a permit gives it back to the next waiter. An uncontended acquire and release allocate nothing,
/// and neither does a contended wait once the waiter pool is warm.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public class AsyncSemaphore
{
    int _value;
    readonly int _bound;
    int _woken;
    WaitList _waiters;
    EventLoop? _loop;
    /// <summary>An idle waiter kept for the next wait (<see cref="SpareWaiter"/>).</summary>
    internal SemaphoreWaiter? Spare;

    /// <summary>Creates a semaphore with <paramref name="value"/> free permits (default 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is negative (asyncio's <c>ValueError</c>).</exception>
    public AsyncSemaphore(int value = 1) : this(value, int.MaxValue) { }

    private protected AsyncSemaphore(int value, int bound)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), value, "A semaphore's initial value must be >= 0.");
        _value = value;
        _bound = bound;
    }

    /// <summary>How many permits are free now.</summary>
    public int Value => _value;

    /// <summary>
    /// Whether an acquire would have to wait: no permit is free, or tasks are waiting or were woken and have
    /// not resumed; asyncio's <c>locked()</c>.
    /// </summary>
    public bool IsLocked => _value == 0 || !_waiters.IsEmpty || _woken != 0;

    /// <summary>
    /// Takes a permit, waiting in FIFO order while none may be taken; asyncio's <c>acquire()</c>. The result
    /// releases the permit when disposed: <c>using (await sem.AcquireAsync()) { ... }</c>; it may also be
    /// ignored and the permit returned with <see cref="Release"/>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait (no permit is then taken).</param>
    /// <exception cref="CancelledError">The task or <paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask<Releaser> AcquireAsync(CancellationToken cancellationToken = default)
    {
        if (_value > 0 && _waiters.IsEmpty && _woken == 0 && !cancellationToken.IsCancellationRequested)
        {
            LoopBinding.CheckThread(_loop, nameof(AsyncSemaphore), nameof(AcquireAsync));
            _value--;
            return new ValueTask<Releaser>(new Releaser(this));
        }
        return AcquireSlow(cancellationToken);
    }

    ValueTask<Releaser> AcquireSlow(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused<Releaser>(cancellationToken);
        var loop = LoopBinding.Bind(ref _loop, this);
        var w = SemaphoreWaiter.Rent(loop, this);
        _waiters.Append(w);
        TokenHook.Register(w, cancellationToken);
        return new ValueTask<Releaser>(w, w.Version);
    }

    /// <summary>Takes a permit if one may be taken now (see <see cref="IsLocked"/>), without waiting.</summary>
    /// <returns>Whether a permit was taken.</returns>
    public bool TryAcquire()
    {
        LoopBinding.CheckThread(_loop, nameof(AsyncSemaphore), nameof(TryAcquire));
        if (IsLocked) return false;
        _value--;
        return true;
    }

    /// <summary>
    /// Returns a permit; asyncio's <c>release()</c>. If tasks are waiting, the first one is handed the permit
    /// and resumes on a later iteration.
    /// </summary>
    /// <exception cref="SemaphoreFullException">An <see cref="AsyncBoundedSemaphore"/> would exceed its initial value (asyncio's <c>ValueError</c>).</exception>
    public void Release()
    {
        LoopBinding.CheckThread(_loop, nameof(AsyncSemaphore), nameof(Release)); // before any change: a wrong-thread call loses nothing
        if (_value >= _bound) ThrowFull();
        _value++;
        if (!_waiters.IsEmpty) WakeNext();
    }

    /// <summary>Hands a free permit to the first waiter.</summary>
    void WakeNext()
    {
        _value--;
        _woken++;
        _waiters.PopFirst().Wake();
    }

    /// <summary>Wakes as many waiters as there are free permits.</summary>
    void WakeWhileFree()
    {
        while (_value > 0 && !_waiters.IsEmpty) WakeNext();
    }

    /// <summary>A woken waiter resumed with its permit.</summary>
    internal void WokenResumed()
    {
        _woken--;
        WakeWhileFree();
    }

    /// <summary>A woken waiter was cancelled before it resumed: its permit goes back.</summary>
    internal void WokenCancelled()
    {
        _woken--;
        _value++;
        WakeWhileFree();
    }

    /// <summary>A pending waiter was cancelled: it leaves the queue.</summary>
    internal void RemoveWaiter(Waiter w)
    {
        _waiters.Remove(w);
        WakeWhileFree();
    }

    /// <summary>How many tasks wait for a permit.</summary>
    internal int WaiterCount => _waiters.Count;

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowFull() => throw new SemaphoreFullException("BoundedSemaphore released too many times.");

    /// <summary>Describes the semaphore as asyncio's repr does: <c>[unlocked, value:N]</c> or <c>[locked, waiters:N]</c>.</summary>
    public override string ToString()
    {
        var extra = IsLocked ? "locked" : $"unlocked, value:{_value}";
        if (_waiters.Count != 0) extra += $", waiters:{_waiters.Count}";
        return $"<{GetType().Name} [{extra}]>";
    }

    /// <summary>
    /// Returns the permit when disposed: the scoped form <c>using (await sem.AcquireAsync()) { ... }</c>. A struct,
    /// so the scoped form allocates nothing.
    /// </summary>
    public struct Releaser : IDisposable
    {
        AsyncSemaphore? _semaphore;

        internal Releaser(AsyncSemaphore semaphore) => _semaphore = semaphore;

        /// <summary>
        /// Releases the permit (no-op for a default instance). A second dispose of the same variable does nothing,
        /// as .NET's <see cref="IDisposable"/> asks; a copy of the releaser disposed as well would release a second
        /// permit, as a second <see cref="Release"/> does (a semaphore does not know who holds its permits).
        /// </summary>
        public void Dispose()
        {
            _semaphore?.Release();
            _semaphore = null;   // after the release: one refused (from another thread) can be retried
        }
    }
}

/// <summary>
/// A semaphore that refuses to be released above its initial value; asyncio's <c>BoundedSemaphore</c>.
/// </summary>
public sealed class AsyncBoundedSemaphore : AsyncSemaphore
{
    /// <summary>Creates a bounded semaphore with <paramref name="value"/> free permits, which is also its bound.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is negative.</exception>
    public AsyncBoundedSemaphore(int value = 1) : base(value, value) { }
}

/// <summary>A task waiting in <see cref="AsyncSemaphore.AcquireAsync"/> (pooled).</summary>
internal sealed class SemaphoreWaiter : Waiter<AsyncSemaphore.Releaser>, ITokenWaiter
{
    AsyncSemaphore? _semaphore;
    TokenHook _hook;

    public static SemaphoreWaiter Rent(EventLoop loop, AsyncSemaphore s)
    {
        var w = SpareWaiter.Rent(ref s.Spare);
        w.Init(loop);
        w._semaphore = s;
        return w;
    }

    protected override void RemoveFromPrimitive() => _semaphore!.RemoveWaiter(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncSemaphore.AcquireAsync", _semaphore);

    protected override void OnCancelledAfterWake() => _semaphore!.WokenCancelled();

    protected override AsyncSemaphore.Releaser TakeResult()
    {
        var s = _semaphore!;
        s.WokenResumed();
        return new AsyncSemaphore.Releaser(s);
    }

    protected override void ReturnToPool()
    {
        var s = _semaphore!;
        _semaphore = null;
        if (_hook.TryDetach()) SpareWaiter.Return(ref s.Spare, this);
    }

    ref TokenHook ITokenWaiter.Hook => ref _hook;

    void ITokenWaiter.ReturnParked() => WaiterPool<SemaphoreWaiter>.Return(this);
}
