using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Asyncio;

// The wait lists of the Sync and Queues primitives.
//
// Every waiting operation rents a pooled Waiter (see Tasks/Waiter.cs for the protocol) and appends it
// here; the list is intrusive, threaded through the waiter's own WaitNode.Prev/Next links, so appending,
// popping the first waiter and removing a cancelled one are O(1) and allocate nothing. A waiter is in at
// most one list at a time and only while it is pending: the primitive pops it before waking it, and a
// cancelled waiter removes itself at once (RemoveFromPrimitive), so a long-lived primitive with many
// cancelled waiters does not grow. The order is FIFO: primitives wake the first waiter.
//
// It is a mutable struct held in a field of its primitive; never copy it.

/// <summary>An intrusive FIFO list of pending waiters (see the file's opening comment).</summary>
[DebuggerDisplay("Count = {Count}")]
internal struct WaitList
{
    Waiter? _head;
    Waiter? _tail;   // the last waiter, or null when that is _head (a list of one stores no tail)

    /// <summary>How many waiters are in the list.</summary>
    public int Count;

    /// <summary>Whether the list holds no waiter.</summary>
    public readonly bool IsEmpty
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _head == null;
    }

    /// <summary>The first (longest waiting) waiter, or <see langword="null"/>.</summary>
    public readonly Waiter? First => _head;

    /// <summary>Appends <paramref name="w"/> at the end.</summary>
    /// <remarks>
    /// The common case is a list of one (a consumer waiting on its queue): then no link of the waiter is
    /// written (they are null while it is in no list), the tail is not stored either, and popping it stores
    /// only nulls, so a wait costs one reference store with a GC write barrier here instead of five.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Append(Waiter w)
    {
        Debug.Assert(w.Prev == null && w.Next == null && !ReferenceEquals(_head, w));
        var head = _head;
        if (head == null)
        {
            _head = w;
        }
        else
        {
            var tail = _tail ?? head;
            w.Prev = tail;
            tail.Next = w;
            _tail = w;
        }
        Count++;
    }

    /// <summary>Removes and returns the first waiter; the caller knows the list is not empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Waiter PopFirst()
    {
        var w = _head!;
        var next = Unsafe.As<Waiter?>(w.Next);
        if (next == null) _head = _tail = null;
        else
        {
            _head = next;
            next.Prev = null;
            w.Next = null;
        }
        Count--;
        return w;
    }

    /// <summary>Removes <paramref name="w"/>, which is in this list (O(1)).</summary>
    public void Remove(Waiter w)
    {
        Debug.Assert(Contains(w));
        var prev = Unsafe.As<Waiter?>(w.Prev);
        var next = Unsafe.As<Waiter?>(w.Next);
        if (prev != null) prev.Next = next; else _head = next;
        if (next != null) next.Prev = prev; else _tail = prev; // the new last (null when the list is empty)
        w.Prev = w.Next = null;
        Count--;
    }

    /// <summary>Whether <paramref name="w"/> is in this list (O(n); for assertions and tests).</summary>
    public readonly bool Contains(Waiter w)
    {
        for (var n = _head; n != null; n = Unsafe.As<Waiter?>(n.Next))
            if (ReferenceEquals(n, w)) return true;
        return false;
    }
}

/// <summary>Binds a primitive to the event loop that first makes it wait; asyncio's <c>_LoopBoundMixin</c>.</summary>
internal static class LoopBinding
{
    /// <summary>
    /// Returns the running loop, binding <paramref name="bound"/> to it on first use.
    /// </summary>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the primitive belongs to another loop.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static EventLoop Bind(ref EventLoop? bound, object primitive)
    {
        // Bound, and running here: the running loop is the bound one, no thread-local read needed.
        var loop = bound;
        if (loop != null && loop.OnLoopStack()) return loop;
        return Bind(ref bound, primitive, EventLoop.GetRunningLoop());
    }

    /// <summary>Binds <paramref name="bound"/> to <paramref name="running"/> on first use.</summary>
    /// <exception cref="InvalidOperationException">The primitive belongs to another loop.</exception>
    public static EventLoop Bind(ref EventLoop? bound, object primitive, EventLoop running)
    {
        var loop = bound;
        if (loop == null) bound = running;
        else if (!ReferenceEquals(loop, running)) ThrowOtherLoop(primitive);
        return running;
    }

    /// <summary>
    /// Throws unless called on the thread of <paramref name="bound"/> while it runs; nothing to check while the
    /// primitive is bound to no loop (it has never been waited on) or its loop is not running. Every call that
    /// changes a primitive's state checks, whether or not a task waits at that moment, so that a call from a
    /// wrong thread fails every time, not only when its timing meets a waiter.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CheckThread(EventLoop? bound, string type, string member)
    {
        if (bound != null) bound.CheckThread(type, member);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowOtherLoop(object primitive) =>
        throw new InvalidOperationException($"{primitive} is bound to a different event loop; a primitive can be waited on only in the loop that first used it.");
}

/// <summary>
/// A one-waiter cache kept by each primitive in front of the per-thread <see cref="WaiterPool{TWaiter}"/>:
/// a primitive that waits over and over (a queue's getter, a contended lock) reuses its own waiter without
/// touching thread-local storage, which costs a call per access on Linux. At most one idle waiter per kind
/// stays with a primitive.
/// </summary>
internal static class SpareWaiter
{
    /// <summary>The primitive's spare waiter if it has one, else one from the thread's pool.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TWaiter Rent<TWaiter>(ref TWaiter? spare) where TWaiter : Waiter, new()
    {
        var w = spare;
        if (w == null) return WaiterPool<TWaiter>.Rent();
        spare = null;
        return w;
    }

    /// <summary>Keeps a released waiter as the primitive's spare, or returns it to the loop's pool.</summary>
    /// <returns>Whether it was kept as the spare (it may then keep what binds it to this primitive).</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Return<TWaiter>(ref TWaiter? spare, TWaiter w) where TWaiter : Waiter, new()
    {
        if (spare == null)
        {
            spare = w;
            return true;
        }
        WaiterPool<TWaiter>.Return(w);
        return false;
    }
}
