using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// A flag that tasks can wait for; asyncio's <c>Event</c>. <see cref="Set"/> wakes every waiting task,
/// <see cref="Clear"/> resets the flag. Not thread-safe: use it from the loop's thread; once a task has waited on it, a
/// call from another thread while that loop runs throws <see cref="InvalidOperationException"/>.
/// </summary>
/// <remarks>
/// A set wakes every task waiting at that moment, even one that is cancelled before it resumes (it then
/// gets the <see cref="CancelledError"/>; there is nothing to pass on) and even if the flag is cleared
/// again before the tasks resume, as in asyncio. Waiting on a set event allocates nothing, nor does a
/// wait once the waiter pool is warm.
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class AsyncEvent
{
    bool _set;
    WaitList _waiters;
    EventLoop? _loop;
    /// <summary>An idle waiter kept for the next wait (<see cref="SpareWaiter"/>).</summary>
    internal EventWaiter? Spare;

    /// <summary>Creates an event whose flag is not set. It binds to the event loop that first waits on it.</summary>
    public AsyncEvent() { }

    /// <summary>Whether the flag is set; asyncio's <c>is_set()</c>.</summary>
    public bool IsSet => _set;

    /// <summary>
    /// Waits until the flag is set; returns at once if it is; asyncio's <c>wait()</c>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="CancelledError">The task was cancelled, or <paramref name="cancellationToken"/> was, while waiting.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask WaitAsync(CancellationToken cancellationToken = default)
    {
        if (_set && !cancellationToken.IsCancellationRequested) return default;
        return WaitSlow(cancellationToken);
    }

    ValueTask WaitSlow(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused(cancellationToken);
        var loop = LoopBinding.Bind(ref _loop, this);
        var w = EventWaiter.Rent(loop, this);
        _waiters.Append(w);
        TokenHook.Register(w, cancellationToken);
        return new ValueTask(w, w.Version);
    }

    /// <summary>Sets the flag and wakes every waiting task; asyncio's <c>set()</c>. No-op if already set.</summary>
    public void Set()
    {
        LoopBinding.CheckThread(_loop, nameof(AsyncEvent), nameof(Set)); // before any change: a wrong-thread call loses nothing
        if (_set) return;
        _set = true;
        while (!_waiters.IsEmpty) _waiters.PopFirst().Wake();
    }

    /// <summary>Resets the flag; asyncio's <c>clear()</c>. Tasks that <see cref="WaitAsync"/> then wait until the next <see cref="Set"/>.</summary>
    public void Clear()
    {
        LoopBinding.CheckThread(_loop, nameof(AsyncEvent), nameof(Clear));
        _set = false;
    }

    internal void RemoveWaiter(Waiter w) => _waiters.Remove(w);

    /// <summary>How many tasks wait for the event.</summary>
    internal int WaiterCount => _waiters.Count;

    /// <summary>Describes the event as asyncio's repr does: <c>[set]</c> or <c>[unset, waiters:N]</c>.</summary>
    public override string ToString() =>
        $"<AsyncEvent [{(_set ? "set" : "unset")}{(_waiters.Count != 0 ? $", waiters:{_waiters.Count}" : "")}]>";
}

/// <summary>A task waiting in <see cref="AsyncEvent.WaitAsync"/> (pooled).</summary>
internal sealed class EventWaiter : Waiter, ITokenWaiter
{
    AsyncEvent? _event;
    TokenHook _hook;

    public static EventWaiter Rent(EventLoop loop, AsyncEvent e)
    {
        var w = SpareWaiter.Rent(ref e.Spare);
        w.Init(loop);
        w._event = e;
        return w;
    }

    protected override void RemoveFromPrimitive() => _event!.RemoveWaiter(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncEvent.WaitAsync", _event);

    // OnCancelledAfterWake: nothing to pass on, a set wakes every waiter.

    protected override void ReturnToPool()
    {
        var e = _event!;
        _event = null;
        if (_hook.TryDetach()) SpareWaiter.Return(ref e.Spare, this);
    }

    ref TokenHook ITokenWaiter.Hook => ref _hook;

    void ITokenWaiter.ReturnParked() => WaiterPool<EventWaiter>.Return(this);
}
