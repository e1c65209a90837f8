using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>One entry of the ready queue: a callback, its argument, and the cancel scope it resumes in.</summary>
/// <remarks>
/// <see cref="Scope"/> is <see langword="null"/> for plain callbacks (asyncio's handles, which run outside
/// any task). <see cref="Flags"/> carries what the resumed awaiter reads back (<see cref="ReadyFlags"/>).
/// </remarks>
internal struct ReadyItem
{
    public Action<object?> Callback;
    public object? State;
    public CancelScope? Scope;
    public ReadyFlags Flags;
}

/// <summary>What the loop tells an awaiter that it resumes.</summary>
[Flags]
internal enum ReadyFlags
{
    None = 0,
    /// <summary>The callback resumes an awaiter of a loop primitive (checks cancellation on resume).</summary>
    Resume = 1,
    /// <summary>The awaited operation was cancelled: the awaiter's <c>GetResult</c> throws.</summary>
    Cancelled = 2,
}

/// <summary>
/// The ready queue: a growable power-of-two ring of <see cref="ReadyItem"/> structs. FIFO, loop thread only,
/// no allocation once it has grown to the working size.
/// </summary>
internal sealed class ReadyQueue
{
    ReadyItem[] _items = new ReadyItem[256];
    int _head;   // index of the first item
    int _count;  // items in the queue

    public int Count => _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enqueue(Action<object?> callback, object? state, CancelScope? scope, ReadyFlags flags)
    {
        var items = _items;
        if (_count == items.Length) { Grow(); items = _items; }
        ref var slot = ref items[(_head + _count) & (items.Length - 1)];
        slot.Callback = callback;
        slot.State = state;
        slot.Scope = scope;
        slot.Flags = flags;
        _count++;
    }

    /// <summary>Removes the first item; the caller knows the queue is not empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dequeue(out ReadyItem item)
    {
        var items = _items;
        ref var slot = ref items[_head];
        item = slot;
        slot = default; // drop references so that finished work can be collected
        _head = (_head + 1) & (items.Length - 1);
        _count--;
    }

    /// <summary>Reorders the first <paramref name="n"/> items at random (schedule exploration).</summary>
    public void Shuffle(int n, Random random)
    {
        var items = _items;
        int mask = items.Length - 1;
        for (int i = n - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            ref var a = ref items[(_head + i) & mask];
            ref var b = ref items[(_head + j) & mask];
            (a, b) = (b, a);
        }
    }

    /// <summary>Drops every item (loop close).</summary>
    public void Clear()
    {
        Array.Clear(_items);
        _head = 0;
        _count = 0;
    }

    void Grow()
    {
        var bigger = new ReadyItem[_items.Length * 2];
        int firstPart = Math.Min(_count, _items.Length - _head);
        Array.Copy(_items, _head, bigger, 0, firstPart);
        Array.Copy(_items, 0, bigger, firstPart, _count - firstPart);
        _items = bigger;
        _head = 0;
    }
}
