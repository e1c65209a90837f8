using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Asyncio;

// The reactor contract, and the two objects it shares with the loop: IoSource (one file descriptor or
// socket) and IoWatch (one direction of interest in it).
//
// Readiness, not completion: a watch that is active is told "you can probably read (or write) now" by
// queuing its callback on the loop's ready queue, in the loop's own scope, from inside Poll. The loop
// then runs it in the same iteration (RunOnce snapshots the ready count after polling), which is where
// asyncio's _process_events puts I/O callbacks too. Queuing instead of calling from inside Poll keeps
// "RunOnce's ready loop is the only place callbacks run" true, costs one struct write in the ring (no
// allocation), and lets the exception handling, debug timing and schedule shuffling of ordinary
// callbacks apply to I/O callbacks unchanged.
//
// A watch is queued at most once at a time (Queued). Its callback is run only if the watch is still
// active when its turn comes, so a reader removed by an earlier callback of the same batch is not
// called (asyncio checks handle._cancelled for the same reason). Callbacks must tolerate spurious
// readiness (a non-blocking call that would block simply returns), as asyncio's do.

/// <summary>
/// The loop's waiting point: blocks until a thread-safe wake-up, I/O readiness, or a timeout, and queues
/// the callbacks of the I/O watches that became ready.
/// </summary>
/// <remarks>
/// The loop calls <see cref="Poll"/> once per iteration at most, on its own thread, and only when it has
/// nothing ready to run or has run a batch of callbacks since the last poll. <see cref="Wake"/> may be
/// called from any thread; a wake-up that arrives before <see cref="Poll"/> makes the next poll return at
/// once. Every other member is called on the loop thread.
/// </remarks>
internal interface IReactor : IDisposable
{
    /// <summary>
    /// Waits for at most <paramref name="timeoutTicks"/> (in <see cref="System.Diagnostics.Stopwatch"/>
    /// ticks; negative means no limit, zero means do not block) and dispatches what became ready.
    /// </summary>
    void Poll(long timeoutTicks);

    /// <summary>Makes a current or the next <see cref="Poll"/> return. Thread-safe.</summary>
    void Wake();

    /// <summary>Whether file descriptors or sockets are registered (virtual time then waits for them before jumping).</summary>
    bool HasRegistrations { get; }

    /// <summary>Whether raw file descriptors (not only sockets) can be watched.</summary>
    bool SupportsFileDescriptors { get; }

    /// <summary>Starts tracking <paramref name="source"/> (no interest yet).</summary>
    void Attach(IoSource source);

    /// <summary>Applies the <see cref="IoWatch.Active"/> flags of <paramref name="source"/>'s two watches.</summary>
    void Update(IoSource source);

    /// <summary>Stops tracking <paramref name="source"/>; call before its socket or descriptor is closed.</summary>
    void Detach(IoSource source);
}

/// <summary>One file descriptor or socket known to the reactor, with its reader and writer watches.</summary>
internal sealed class IoSource
{
    public readonly EventLoop Loop;
    /// <summary>The socket, when the source is one (the portable reactor needs it; it keeps the handle alive).</summary>
    public Socket? Socket;
    /// <summary>The file descriptor (on Unix the socket's handle); -1 when the platform has none.</summary>
    public int Fd;
    /// <summary>The key of the loop's table: the descriptor or the socket handle.</summary>
    public nint Key;
    public readonly IoWatch Reader, Writer;
    /// <summary>The transport or server that uses this source; the public AddReader/AddWriter refuse such sources.</summary>
    public object? Owner;
    /// <summary>Set between <see cref="IReactor.Attach"/> and <see cref="IReactor.Detach"/>.</summary>
    public bool Attached;

    // Epoll bookkeeping: slot in the reactor's table, generation (stale events are ignored), and the
    // events currently registered with the kernel.
    internal int Slot = -1;
    internal uint Generation;
    internal uint Registered;

    // Portable bookkeeping (guarded by the portable reactor's lock): wanted directions and directions
    // delivered to the loop and not yet re-armed (bit 1 read, bit 2 write).
    internal int PortWant, PortFired;
    /// <summary>Whether the portable poller's current Select call holds this source's socket.</summary>
    internal bool PortInSelect;

    /// <summary>The next source in the loop's free list (sources are reused once detached).</summary>
    internal IoSource? NextFree;

    public IoSource(EventLoop loop)
    {
        Loop = loop;
        Reader = new IoWatch(this);
        Writer = new IoWatch(this);
    }

    /// <summary>Whether neither watch is active.</summary>
    public bool Idle => !Reader.Active && !Writer.Active;
}

/// <summary>One direction of interest (read or write) of an <see cref="IoSource"/>; see IReactor.cs.</summary>
internal sealed class IoWatch
{
    public readonly IoSource Source;
    public Action<object?>? Callback;
    public object? State;
    /// <summary>Whether the reactor watches this direction (set by the owner, applied by <see cref="IReactor.Update"/>).</summary>
    public bool Active;
    /// <summary>Whether a dispatch of this watch is in the ready queue (at most one at a time).</summary>
    bool _queued;

    public IoWatch(IoSource source) => Source = source;

    /// <summary>Readiness seen by the reactor: queue the callback unless it is already queued.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Fire()
    {
        if (!Active || _queued) return;
        _queued = true;
        Source.Loop.EnqueueInternal(s_run, this);
    }

    static readonly Action<object?> s_run = static o =>
    {
        var w = (IoWatch)o!;
        w._queued = false;
        if (w.Active) w.Callback!(w.State);
    };
}

/// <summary>Conversions shared by the reactors.</summary>
internal static class ReactorTimeout
{
    /// <summary>
    /// A poll timeout in <see cref="System.Diagnostics.Stopwatch"/> ticks as whole milliseconds for a wait
    /// that takes an <see cref="int"/>: negative stays -1 (no limit), the rest rounds up (never early) and
    /// is capped at <see cref="int.MaxValue"/>, so a timer months away neither overflows nor waits forever.
    /// </summary>
    public static int ToMilliseconds(long timeoutTicks)
    {
        if (timeoutTicks < 0) return -1;
        long freq = System.Diagnostics.Stopwatch.Frequency;
        if (timeoutTicks >= (long)int.MaxValue * freq / 1000) return int.MaxValue;
        return (int)((timeoutTicks * 1000 + freq - 1) / freq);
    }
}
