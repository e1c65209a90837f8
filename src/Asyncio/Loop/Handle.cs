using System.Diagnostics;
using System.Globalization;

namespace Asyncio;

/// <summary>
/// A callback scheduled with <see cref="EventLoop.CallSoon(Action)"/>; asyncio's <c>Handle</c>. Cancel it to
/// keep the callback from running.
/// </summary>
/// <remarks>
/// Differences from asyncio: a value type, so that scheduling a callback allocates nothing. The loop reuses
/// its callback records; a handle remembers which use it belongs to, so cancelling a handle whose callback
/// has started or run does nothing, as in asyncio, except that <see cref="IsCancelled"/> then stays
/// <see langword="false"/> (asyncio's <c>cancelled()</c> turns true; see docs/differences.md).
/// </remarks>
[DebuggerDisplay("Handle(cancelled = {IsCancelled})")]
public readonly struct Handle : IEquatable<Handle>
{
    readonly CallbackEntry? _entry;
    readonly int _version;

    internal Handle(CallbackEntry entry, int version)
    {
        _entry = entry;
        _version = version;
    }

    /// <summary>Keeps the callback from running if it has not run yet. Loop thread only.</summary>
    public void Cancel()
    {
        var e = _entry;
        if (e == null || e.Version != _version || e.Cancelled) return;
        e.Loop.CheckThread(nameof(Handle), nameof(Cancel));
        e.Cancelled = true;
        e.Callback = null;
        e.State = null;
    }

    /// <summary>Whether <see cref="Cancel"/> was called before the callback ran.</summary>
    public bool IsCancelled => _entry is { } e && e.Version == _version && e.Cancelled;

    /// <summary>
    /// Describes the handle as asyncio's repr does: <c>&lt;Handle Program.F&gt;</c>, naming the callback as debug reports
    /// do, or <c>&lt;Handle cancelled&gt;</c>. Once the callback has started, the loop reuses its record and the handle
    /// no longer knows it: <c>&lt;Handle&gt;</c> (so does a default handle).
    /// </summary>
    public override string ToString()
    {
        var e = _entry;
        if (e == null || e.Version != _version) return "<Handle>";
        if (e.Cancelled) return "<Handle cancelled>";
        var cb = e.Callback;
        var st = e.State;
        if (e.Version != _version || cb == null) return "<Handle>";
        return $"<Handle {EventLoop.CallbackName(EventLoop.ScheduledCallback(cb, st))}>";
    }

    /// <inheritdoc />
    public bool Equals(Handle other) => ReferenceEquals(_entry, other._entry) && _version == other._version;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Handle h && Equals(h);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_entry, _version);

    /// <summary>Whether two handles refer to the same scheduled callback.</summary>
    public static bool operator ==(Handle left, Handle right) => left.Equals(right);

    /// <summary>Whether two handles refer to different scheduled callbacks.</summary>
    public static bool operator !=(Handle left, Handle right) => !left.Equals(right);
}

/// <summary>A pooled record of a callback scheduled with <c>CallSoon</c>.</summary>
/// <remarks>
/// Invariant: <see cref="Version"/> changes each time the record goes back to the pool, so a stale
/// <see cref="Handle"/> never touches a later use. A cancelled record is dropped, not pooled, so that its
/// handle keeps reporting <see cref="Handle.IsCancelled"/>.
/// </remarks>
internal sealed class CallbackEntry
{
    public readonly EventLoop Loop;
    public Action<object?>? Callback;
    public object? State;
    /// <summary>The execution context to run in, handed on by the scheduling code (ContextFlow.cs); null for the loop's.</summary>
    public ExecutionContext? Context;
    public int Version;
    public bool Cancelled;
    /// <summary>Returned to the loop's pool after it runs (false for entries made on other threads).</summary>
    public readonly bool Pooled;
    public CallbackEntry? NextFree;

    public CallbackEntry(EventLoop loop, bool pooled = true)
    {
        Loop = loop;
        Pooled = pooled;
    }

    public static readonly Action<object?> Run = static o =>
    {
        var e = (CallbackEntry)o!;
        if (e.Cancelled) return;
        var cb = e.Callback!;
        var st = e.State;
        var loop = e.Loop;
        var before = ContextFlow.Enter(loop, e.Context);
        loop.RecycleEntry(e);
        // Caught here rather than by the loop, which sees only this delegate: the report names the
        // callback that was scheduled (asyncio's context carries the handle, which names it).
        try { cb(st); }
        catch (Exception ex) { loop.ReportCallbackException(ex, EventLoop.ScheduledCallback(cb, st)); }
        finally { ContextFlow.Leave(loop, before); }
    };
}

/// <summary>
/// A callback scheduled for a time with <see cref="EventLoop.CallLater(double, Action)"/> or
/// <see cref="EventLoop.CallAt(double, Action)"/>; asyncio's <c>TimerHandle</c>.
/// </summary>
[DebuggerDisplay("TimerHandle(when = {When}, cancelled = {IsCancelled})")]
public sealed class TimerHandle
{
    internal readonly TimerEntry Entry;

    internal TimerHandle(TimerEntry entry) => Entry = entry;

    /// <summary>
    /// The loop time (<see cref="EventLoop.Time"/>) at which the callback is scheduled;
    /// <see cref="double.PositiveInfinity"/> for a timer that never fires (an infinite delay, or a deadline
    /// beyond the clock's range of about 73 years).
    /// </summary>
    public double When => EventLoop.DeadlineToSeconds(Entry.Due);

    /// <summary>Keeps the callback from running if it has not run yet. Loop thread only.</summary>
    public void Cancel() => Entry.Loop.CancelTimer(Entry);

    /// <summary>Whether <see cref="Cancel"/> was called; as in asyncio, also when it came after the callback ran.</summary>
    public bool IsCancelled => Entry.Cancelled;

    /// <summary>
    /// Describes the handle as asyncio's repr does: <c>&lt;TimerHandle when=12.5 Program.F&gt;</c>, naming the callback
    /// as debug reports do, or <c>&lt;TimerHandle cancelled when=12.5&gt;</c>; once the callback has run, the handle
    /// lets go of it and shows its deadline only.
    /// </summary>
    public override string ToString()
    {
        string when = When.ToString("R", CultureInfo.InvariantCulture);
        if (Entry.Cancelled) return $"<TimerHandle cancelled when={when}>";
        var cb = Entry.Callback;
        var st = Entry.State;
        return cb == null ? $"<TimerHandle when={when}>" : $"<TimerHandle when={when} {EventLoop.CallbackName(EventLoop.ScheduledCallback(cb, st))}>";
    }
}

/// <summary>The loop's record of a handle timer (CallLater, CallAt and TimeProvider timers).</summary>
internal sealed class TimerEntry
{
    public readonly EventLoop Loop;
    public Action<object?>? Callback;
    public object? State;
    /// <summary>The execution context to run in (ContextFlow.cs); null for the loop's.</summary>
    public ExecutionContext? Context;
    public long Due;
    public bool Cancelled;
    /// <summary>True while the entry sits in the timer queue (not yet moved to the ready queue).</summary>
    public bool Queued;

    public TimerEntry(EventLoop loop, Action<object?> callback, object? state, long due)
    {
        Loop = loop;
        Callback = callback;
        State = state;
        Due = due;
    }

    public static readonly Action<object?> Run = static o =>
    {
        var e = (TimerEntry)o!;
        if (e.Cancelled) return;
        var cb = e.Callback!;
        var st = e.State;
        e.Callback = null;
        e.State = null;
        var loop = e.Loop;
        var before = ContextFlow.Enter(loop, e.Context);
        e.Context = null;
        try { cb(st); }
        catch (Exception ex) { loop.ReportCallbackException(ex, EventLoop.ScheduledCallback(cb, st)); }
        finally { ContextFlow.Leave(loop, before); }
    };
}
