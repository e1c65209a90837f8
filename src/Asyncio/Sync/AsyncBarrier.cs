using System.Diagnostics;

namespace Asyncio;

// asyncio's Barrier is a small state machine (filling -> draining -> filling, with resetting and broken),
// built there on a Condition. Here it drives two wait lists directly:
//
//   _filling  tasks that arrived while filling and wait for the last party (each counted in _count);
//   _blocked  tasks that arrived while the barrier drains or resets and wait for it to fill again.
//
// The last arrival switches to draining and wakes _filling. Each task leaving the barrier decrements
// _count; when it reaches zero a draining or resetting barrier fills again and, on the next iteration
// (when asyncio's blocked tasks would resume and re-check), admits _blocked in FIFO order as arrivals.
// The one that would complete the barrier waits in _filling as its releaser (_releaser) and arrives one
// iteration later (ReleaserArrives), as asyncio's blocked task arrives and releases only when it
// resumes: if it is cancelled before, it never arrived and the others go on waiting; if another party
// left meanwhile, the barrier is no longer full and the releaser waits like any party (the barrier opens
// only with all its parties); a reset or abort before then breaks it like the others. While a releaser
// is on its way, new arrivals wait as they do while the barrier drains. As in asyncio a woken task
// decides at resumption what it got: the barrier's state then (draining: its arrival index; resetting or
// broken: BrokenBarrierError), so a reset or abort between the wake-up and the resumption still reaches
// it. A blocked task learns of an abort on the next iteration, when asyncio's would re-check the state:
// if a reset came in between, it waits for the next round instead. A task cancelled while waiting just
// leaves (asyncio does not break the barrier).

/// <summary>
/// A barrier for the tasks of one event loop; asyncio's <c>Barrier</c>. Each of <see cref="Parties"/>
/// tasks calls <see cref="WaitAsync"/>; all of them resume once the last one arrives.
/// </summary>
/// <remarks>
/// <para>A task that arrives while the barrier is still releasing the previous round waits for the next
/// round. <see cref="Reset"/> and <see cref="Abort"/> make waiting tasks throw
/// <see cref="BrokenBarrierError"/>; after <see cref="Abort"/> every wait throws until <see cref="Reset"/>.
/// A task cancelled while waiting leaves without breaking the barrier. Not thread-safe: use it from the loop's thread;
/// once a task has waited on it, a call from another thread while that loop runs throws <see
/// cref="InvalidOperationException"/>.</para>
/// <para><b>Differences from asyncio.</b> <see cref="Reset"/> and <see cref="Abort"/> are synchronous:
/// the barrier has no internal lock to wait for, so they take effect at once (asyncio's are coroutines).
/// asyncio's <c>async with barrier</c> has no equivalent; <c>await barrier.WaitAsync()</c> is its whole
/// effect.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class AsyncBarrier
{
    internal enum BarrierState : byte { Filling, Draining, Resetting, Broken }

    readonly int _parties;
    BarrierState _state;
    int _count;                 // tasks inside the barrier: arrived in this round and not yet left
    WaitList _filling, _blocked;
    BarrierWaiter? _releaser;   // admitted from _blocked as the last party, in _filling, not yet arrived
    bool _admitScheduled;
    bool _abortScheduled;
    EventLoop? _loop;
    /// <summary>An idle waiter kept for the next wait (<see cref="SpareWaiter"/>).</summary>
    internal BarrierWaiter? Spare;

    /// <summary>Creates a barrier for <paramref name="parties"/> tasks.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="parties"/> is less than 1 (asyncio's <c>ValueError</c>).</exception>
    public AsyncBarrier(int parties)
    {
        if (parties < 1) throw new ArgumentOutOfRangeException(nameof(parties), parties, "A barrier needs at least one party.");
        _parties = parties;
    }

    /// <summary>How many tasks must call <see cref="WaitAsync"/> to pass the barrier; asyncio's <c>parties</c>.</summary>
    public int Parties => _parties;

    /// <summary>How many tasks wait in the barrier while it fills; asyncio's <c>n_waiting</c>.</summary>
    public int WaitingCount => _state == BarrierState.Filling ? _count - (_releaser != null ? 1 : 0) : 0;

    /// <summary>Whether the barrier is broken (by <see cref="Abort"/>); asyncio's <c>broken</c>.</summary>
    public bool IsBroken => _state == BarrierState.Broken;

    /// <summary>
    /// Waits until <see cref="Parties"/> tasks have called it, and returns this task's arrival index,
    /// 0 … parties − 1 (how many tasks were in the barrier when it arrived; as in asyncio, a task that
    /// leaves by cancellation frees its index for the next arrival); asyncio's <c>wait()</c>. A task
    /// arriving while the barrier drains or resets waits for the next round.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait; the task leaves the barrier without breaking it.</param>
    /// <exception cref="BrokenBarrierError">The barrier is broken, or was reset or aborted while the task waited in it.</exception>
    /// <exception cref="CancelledError">The task or <paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public ValueTask<int> WaitAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused<int>(cancellationToken);
        LoopBinding.CheckThread(_loop, nameof(AsyncBarrier), nameof(WaitAsync));
        switch (_state)
        {
            case BarrierState.Broken:
                return ValueTask.FromException<int>(new BrokenBarrierError("The barrier is broken (aborted)."));
            case BarrierState.Draining:
            case BarrierState.Resetting:
            case BarrierState.Filling when _releaser != null:
            {
                var w = BarrierWaiter.Rent(LoopBinding.Bind(ref _loop, this), this);
                _blocked.Append(w);
                TokenHook.Register(w, cancellationToken);
                return new ValueTask<int>(w, w.Version);
            }
        }
        int index = _count++;
        if (index + 1 == _parties)
        {
            Open();
            _count--;
            Leave();
            return new ValueTask<int>(index);
        }
        var f = BarrierWaiter.Rent(LoopBinding.Bind(ref _loop, this), this);
        f.Arrive(index);
        _filling.Append(f);
        TokenHook.Register(f, cancellationToken);
        return new ValueTask<int>(f, f.Version);
    }

    /// <summary>
    /// Returns the barrier to its empty, filling state; asyncio's <c>reset()</c>. Tasks waiting in it throw
    /// <see cref="BrokenBarrierError"/>; tasks arriving meanwhile wait until those have left.
    /// </summary>
    public void Reset()
    {
        LoopBinding.CheckThread(_loop, nameof(AsyncBarrier), nameof(Reset));
        if (_count > 0)
        {
            _state = BarrierState.Resetting;
            _releaser = null; // woken with the others: it throws as they do
            WakeAll(ref _filling);
        }
        else
        {
            _state = BarrierState.Filling;
            ScheduleAdmit();
        }
    }

    /// <summary>
    /// Breaks the barrier; asyncio's <c>abort()</c>. Waiting tasks, and every later <see cref="WaitAsync"/>
    /// until <see cref="Reset"/>, throw <see cref="BrokenBarrierError"/>.
    /// </summary>
    public void Abort()
    {
        LoopBinding.CheckThread(_loop, nameof(AsyncBarrier), nameof(Abort));
        _state = BarrierState.Broken;
        _releaser = null;
        WakeAll(ref _filling);
        // Tasks blocked by a draining or resetting barrier learn of the abort when asyncio's would resume and
        // re-check the state, on the next iteration: a Reset before then lets them wait for the next round.
        if (!_blocked.IsEmpty && !_abortScheduled)
        {
            _abortScheduled = true;
            _loop!.EnqueueInternal(s_abortBlocked, this);
        }
    }

    static readonly Action<object?> s_abortBlocked = static o =>
    {
        var b = (AsyncBarrier)o!;
        b._abortScheduled = false;
        if (b._state == BarrierState.Broken) WakeAll(ref b._blocked);   // they throw when they resume
        else b.AdmitBlocked();   // reset meanwhile: they arrive if the barrier fills, else stay blocked
    };

    /// <summary>The last party arrived: release the tasks waiting in the barrier.</summary>
    void Open()
    {
        _state = BarrierState.Draining;
        WakeAll(ref _filling);
    }

    /// <summary>Wakes every waiter of <paramref name="list"/> (the public entry points checked the thread).</summary>
    static void WakeAll(ref WaitList list)
    {
        while (!list.IsEmpty) list.PopFirst().Wake();
    }

    /// <summary>A task left the barrier (its _count was already decremented).</summary>
    internal void Leave()
    {
        if (_count == 0 && _state is BarrierState.Draining or BarrierState.Resetting)
        {
            _state = BarrierState.Filling;
            ScheduleAdmit();
        }
    }

    /// <summary>
    /// Admits the blocked tasks on the next iteration, when asyncio's would resume and re-check the state:
    /// code that runs before then (the last task out resetting the barrier, or waiting on it again)
    /// comes first, as in asyncio.
    /// </summary>
    void ScheduleAdmit()
    {
        if (_blocked.IsEmpty || _admitScheduled) return;
        _admitScheduled = true;
        _loop!.EnqueueInternal(s_admit, this);
    }

    static readonly Action<object?> s_admit = static o =>
    {
        var b = (AsyncBarrier)o!;
        b._admitScheduled = false;
        b.AdmitBlocked();
    };

    /// <summary>Lets tasks blocked by draining or resetting arrive, in FIFO order, while the barrier fills.</summary>
    void AdmitBlocked()
    {
        while (_state == BarrierState.Filling && _releaser == null && !_blocked.IsEmpty)
        {
            var w = (BarrierWaiter)_blocked.PopFirst();
            int index = _count++;
            w.Arrive(index);
            _filling.Append(w);
            if (index + 1 == _parties)
            {
                // It opens the barrier on the next iteration, not now: see the opening comment.
                _releaser = w;
                _loop!.EnqueueInternal(s_releaserArrives, w);
            }
        }
    }

    static readonly Action<object?> s_releaserArrives = static o =>
    {
        var w = (BarrierWaiter)o!;
        w.Barrier?.ReleaserArrives(w);
    };

    /// <summary>
    /// The releaser admitted an iteration ago arrives, if it is still the releaser (not cancelled, and no
    /// reset or abort came in between): it opens the barrier if the barrier is still full; if a party left
    /// meanwhile it waits like any other, with the index of its arrival now.
    /// </summary>
    void ReleaserArrives(BarrierWaiter w)
    {
        if (!ReferenceEquals(_releaser, w)) return;
        _releaser = null;
        Debug.Assert(_state == BarrierState.Filling && _count <= _parties);
        w.Index = _count - 1;
        if (_count == _parties) Open();
        else AdmitBlocked(); // tasks that arrived while it was on its way come in behind it
    }

    /// <summary>A woken arrival resumes: the barrier's state now decides its outcome; see the opening comment.</summary>
    internal int Resume(BarrierWaiter w, out bool broken)
    {
        broken = false;
        if (!w.Arrived) { broken = true; return 0; } // woken from _blocked by Abort
        var state = _state;
        _count--;
        Leave();
        if (state is BarrierState.Broken or BarrierState.Resetting) broken = true;
        return w.Index;
    }

    /// <summary>A pending waiter was cancelled: it leaves the barrier.</summary>
    internal void RemoveWaiter(BarrierWaiter w)
    {
        if (!w.Arrived)
        {
            _blocked.Remove(w);
            return;
        }
        _filling.Remove(w);
        _count--;
        Leave();
        if (ReferenceEquals(w, _releaser))
        {
            // It never arrived: the others go on waiting, and tasks that arrived meanwhile come in.
            _releaser = null;
            ScheduleAdmit();
        }
    }

    /// <summary>A woken waiter was cancelled before it resumed: it leaves the barrier.</summary>
    internal void WokenCancelled(BarrierWaiter w)
    {
        if (!w.Arrived) return;
        _count--;
        Leave();
    }

    internal BarrierState State => _state;

    /// <summary>Describes the barrier as asyncio's repr does: <c>[filling, waiters:N/P]</c>, the count in every state but <c>broken</c>.</summary>
    public override string ToString()
    {
        var name = _state.ToString().ToLowerInvariant();
        return _state != BarrierState.Broken ? $"<AsyncBarrier [{name}, waiters:{WaitingCount}/{_parties}]>" : $"<AsyncBarrier [{name}]>";
    }
}

/// <summary>A task waiting in <see cref="AsyncBarrier.WaitAsync"/> (pooled).</summary>
internal sealed class BarrierWaiter : Waiter<int>, ITokenWaiter
{
    AsyncBarrier? _barrier;
    TokenHook _hook;
    /// <summary>Counted in the barrier (in _filling, or woken from it); else blocked.</summary>
    public bool Arrived;
    public int Index;

    /// <summary>The barrier it waits on (<see langword="null"/> once it is back in its pool).</summary>
    public AsyncBarrier? Barrier => _barrier;

    public static BarrierWaiter Rent(EventLoop loop, AsyncBarrier b)
    {
        var w = SpareWaiter.Rent(ref b.Spare);
        w.Init(loop);
        w._barrier = b;
        return w;
    }

    public void Arrive(int index)
    {
        Arrived = true;
        Index = index;
    }

    protected override void RemoveFromPrimitive() => _barrier!.RemoveWaiter(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncBarrier.WaitAsync", _barrier);

    protected override void OnCancelledAfterWake() => _barrier!.WokenCancelled(this);

    protected override int TakeResult()
    {
        int index = _barrier!.Resume(this, out bool broken);
        if (broken)
        {
            var message = Arrived ? "The barrier was reset or aborted while waiting." : "The barrier is broken (aborted).";
            Release(); // the throw skips the release that follows TakeResult
            throw new BrokenBarrierError(message);
        }
        return index;
    }

    protected override void ReturnToPool()
    {
        var b = _barrier!;
        _barrier = null;
        Arrived = false;
        Index = 0;
        if (_hook.TryDetach()) SpareWaiter.Return(ref b.Spare, this);
    }

    ref TokenHook ITokenWaiter.Hook => ref _hook;

    void ITokenWaiter.ReturnParked() => WaiterPool<BarrierWaiter>.Return(this);
}
