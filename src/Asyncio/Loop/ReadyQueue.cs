using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>One entry of the ready queue: a callback, its argument, and the cancel scope it resumes in.</summary>
/// <remarks>
/// <see cref="Scope"/> is the loop's own scope for plain callbacks (asyncio's handles, which run outside
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
/// The ready queue: FIFO, loop thread only, no allocation in steady state.
/// </summary>
/// <remarks>
/// A chain of 64 KiB chunks from a <see cref="ChunkPool{T}"/> rather than one growing ring: a million
/// tasks scheduled at once (a benchmark, a fan-out) would otherwise grow an array by doubling on the
/// large-object heap, copying and touching fresh memory at every step, and keep the largest array for
/// ever. Emptied chunks go back to the pool, which keeps up to <see cref="SpareChunks"/>. A queue that
/// drains completely rewinds to the start of its one chunk, so the usual one-to-a-few-items traffic
/// never leaves the first chunk.
/// </remarks>
internal sealed class ReadyQueue
{
    const int ChunkSize = ChunkPool<ReadyItem>.Size;
    const int SpareChunks = 16;   // kept for reuse after a burst (1 MiB)

    readonly ChunkPool<ReadyItem> _pool = new(SpareChunks);
    Chunk<ReadyItem> _head;
    Chunk<ReadyItem> _tail;
    int _headIndex;               // next item to dequeue in _head
    int _tailIndex;               // next free slot in _tail
    int _count;

    public ReadyQueue() => _tail = _head = _pool.Take();

    public int Count => _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enqueue(Action<object?> callback, object? state, CancelScope? scope, ReadyFlags flags)
    {
        if (_tailIndex == ChunkSize) AddChunk();
        ref var slot = ref _tail.Items[_tailIndex++];
        // A slot keeps the callback it last held (see Dequeue): storing the same delegate again is skipped,
        // as every reference stored into the heap costs a GC write barrier.
        if (!ReferenceEquals(slot.Callback, callback)) slot.Callback = callback;
        slot.State = state;
        slot.Scope = scope;
        slot.Flags = flags;
        _count++;
    }

    /// <summary>Whether the item queued last, still waiting, has <paramref name="state"/> (a dequeued item's state is cleared).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool LastHasState(object state) => _tailIndex != 0 && ReferenceEquals(_tail.Items[_tailIndex - 1].State, state);

    /// <summary>Removes the first item; the caller knows the queue is not empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dequeue(out ReadyItem item)
    {
        ref var slot = ref _head.Items[_headIndex];
        item = slot;
        // Drop what finished work holds so that it can be collected. The callback stays: nearly all of the
        // loop's callbacks are a handful of static delegates (a resumed coroutine's is always the same one), so
        // a queue that drains and refills its first slots, the steady state, rarely stores one again.
        slot.State = null;
        slot.Scope = null;
        _count--;
        if (++_headIndex == ChunkSize || _count == 0) Advance();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    void AddChunk()
    {
        var c = _pool.Take();
        _tail.Next = c;
        _tail = c;
        _tailIndex = 0;
    }

    void Advance()
    {
        // Every item before _headIndex has been dequeued, and so cleared.
        if (_count == 0)
        {
            // Empty: rewind to the start of the head chunk and give back the others. With one chunk (the
            // steady state of a loop that drains its queue every iteration) the tail is the head already,
            // and storing it again would cost a GC write barrier per iteration.
            if (_head.Next != null)
            {
                for (var c = _head.Next; c != null;)
                {
                    var next = c.Next;
                    _pool.Return(c);
                    c = next;
                }
                _head.Next = null;
                _tail = _head;
            }
            _headIndex = _tailIndex = 0;
            return;
        }
        var old = _head;
        _head = old.Next!;
        _headIndex = 0;
        _pool.Return(old);
    }

    /// <summary>Reorders the first <paramref name="n"/> items at random (schedule exploration; not a hot path).</summary>
    public void Shuffle(int n, Random random)
    {
        var items = new ReadyItem[n];
        for (int i = 0; i < n; i++) Dequeue(out items[i]);
        var rest = new List<ReadyItem>(_count);
        while (_count > 0)
        {
            Dequeue(out var item);
            rest.Add(item);
        }
        random.Shuffle(items);
        foreach (var item in items) Enqueue(item.Callback, item.State, item.Scope, item.Flags);
        foreach (var item in rest) Enqueue(item.Callback, item.State, item.Scope, item.Flags);
    }
}
