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
    /// <summary>For a run's slot only: how many items of the run are still queued (see <see cref="ReadyQueue"/>).</summary>
    public int RunLength;
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
/// <para>A chain of 64 KiB chunks from a <see cref="ChunkPool{T}"/> rather than one growing ring: a million
/// tasks scheduled at once (a benchmark, a fan-out) would otherwise grow an array by doubling on the
/// large-object heap, copying and touching fresh memory at every step, and keep the largest array for
/// ever. Emptied chunks go back to the pool, which keeps up to <see cref="SpareChunks"/>. A queue that
/// drains completely rewinds to the start of its one chunk, so the usual one-to-a-few-items traffic
/// never leaves the first chunk.</para>
/// <para>Runs: consecutive items of the same callback, scope and flags that differ only in their state
/// (the starts of tasks created in a row: a million of them is W2) can be queued as a run
/// (<see cref="EnqueueRun"/>). A run takes one slot, which counts its items, and their states wait in a
/// second chain of 8-byte slots beside it: 8 bytes of queue a task instead of 32, memory that a burst
/// larger than any before touches for the first time. <see cref="Dequeue"/> hands the items of a run out
/// one by one, so nothing else sees the difference: the loop still runs them as separate items, and
/// <see cref="Count"/> counts each.</para>
/// </remarks>
internal sealed class ReadyQueue
{
    const int SpareChunks = 16;   // kept for reuse after a burst (1 MiB of slots, 256 KiB of states)

    /// <summary>The callback of a run's slot; the run's own callback is in the slot's state. Never called.</summary>
    static readonly Action<object?> s_run = static _ => throw new InvalidOperationException("A run of the ready queue was run as an item.");

    ChunkChain<ReadyItem> _slots = new(new ChunkPool<ReadyItem>(SpareChunks));
    ChunkChain<StateSlot> _runStates = new(new ChunkPool<StateSlot>(SpareChunks));
    int _count;                   // items, each item of a run counted (so 0 exactly when no slot is queued)
    int _runStateCount;           // states in _runStates

    /// <summary>Items queued, each item of a run counted.</summary>
    public int Count => _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enqueue(Action<object?> callback, object? state, CancelScope? scope, ReadyFlags flags)
    {
        ref var slot = ref _slots.Append();
        // A slot keeps the callback it last held (see Dequeue): storing the same delegate again is skipped,
        // as every reference stored into the heap costs a GC write barrier.
        if (!ReferenceEquals(slot.Callback, callback)) slot.Callback = callback;
        slot.State = state;
        slot.Scope = scope;
        slot.Flags = flags;
        _count++;
    }

    /// <summary>
    /// Queues an item as <see cref="Enqueue"/> does, as part of a run (see the remarks): it joins the queue's
    /// last slot if that is a run of the same callback, scope and flags, and starts a run otherwise.
    /// </summary>
    public void EnqueueRun(Action<object?> callback, object state, CancelScope scope, ReadyFlags flags)
    {
        // The last slot is still queued whenever the queue is not empty (a run being handed out stays at the
        // head until its last item leaves, and may grow meanwhile: what joins it comes after every item
        // queued before, as FIFO wants).
        if (_count != 0)
        {
            ref var last = ref _slots.Last;
            if (ReferenceEquals(last.Callback, s_run) && ReferenceEquals(last.State, callback)
                && ReferenceEquals(last.Scope, scope) && last.Flags == flags && last.RunLength != int.MaxValue)
            {
                last.RunLength++;
                _runStates.Append().Value = state;
                _runStateCount++;
                _count++;
                return;
            }
        }
        ref var slot = ref _slots.Append();
        if (!ReferenceEquals(slot.Callback, s_run)) slot.Callback = s_run;
        slot.State = callback;
        slot.Scope = scope;
        slot.Flags = flags;
        slot.RunLength = 1;
        _runStates.Append().Value = state;
        _runStateCount++;
        _count++;
    }

    /// <summary>Removes the first item; the caller knows the queue is not empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dequeue(out ReadyItem item)
    {
        ref var slot = ref _slots.First;
        if (ReferenceEquals(slot.Callback, s_run))
        {
            DequeueFromRun(ref slot, out item);
            return;
        }
        item = slot;
        // Drop what finished work holds so that it can be collected. The callback stays: nearly all of the
        // loop's callbacks are a handful of static delegates (a resumed coroutine's is always the same one), so
        // a queue that drains and refills its first slots, the steady state, rarely stores one again.
        slot.State = null;
        slot.Scope = null;
        _slots.RemoveFirst(--_count == 0);
    }

    void DequeueFromRun(ref ReadyItem run, out ReadyItem item)
    {
        ref var state = ref _runStates.First;
        item = new ReadyItem { Callback = Unsafe.As<Action<object?>>(run.State!), State = state.Value, Scope = run.Scope, Flags = run.Flags };
        state.Value = null;
        _runStates.RemoveFirst(--_runStateCount == 0);
        _count--;
        if (--run.RunLength != 0) return;
        run.State = null;
        run.Scope = null;
        _slots.RemoveFirst(_count == 0);
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

    /// <summary>A state of a run's item (a struct, because chunks hold structs).</summary>
    struct StateSlot
    {
        public object? Value;
    }
}

/// <summary>
/// A FIFO of structs in chunks from a <see cref="ChunkPool{T}"/>, never copied: the storage of the ready
/// queue. A mutable struct, kept in a field of its owner and never copied. The owner counts the slots (a
/// count here would be a second one on the loop's hottest path) and clears what a slot holds before
/// <see cref="RemoveFirst"/>.
/// </summary>
internal struct ChunkChain<T> where T : struct
{
    const int ChunkSize = ChunkPool<T>.Size;

    readonly ChunkPool<T> _pool;
    Chunk<T> _head;
    Chunk<T> _tail;
    int _headIndex;               // next slot to remove in _head
    int _tailIndex;               // next free slot in _tail

    public ChunkChain(ChunkPool<T> pool)
    {
        _pool = pool;
        _tail = _head = pool.Take();
    }

    /// <summary>Adds a slot at the end and returns it; it holds what it held when last used (cleared by its remover).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref T Append()
    {
        if (_tailIndex == ChunkSize) AddChunk();
        return ref _tail.Items[_tailIndex++];
    }

    /// <summary>The first slot; the chain is not empty.</summary>
    public ref T First
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref _head.Items[_headIndex];
    }

    /// <summary>The last slot appended; the chain is not empty.</summary>
    public ref T Last => ref _tail.Items[_tailIndex - 1];

    /// <summary>Removes the first slot, which the caller has cleared; <paramref name="nowEmpty"/> says whether it was the last.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RemoveFirst(bool nowEmpty)
    {
        if (++_headIndex == ChunkSize || nowEmpty) Advance(nowEmpty);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    void AddChunk()
    {
        var c = _pool.Take();
        _tail.Next = c;
        _tail = c;
        _tailIndex = 0;
    }

    void Advance(bool empty)
    {
        // Every slot before _headIndex has been removed, and so cleared.
        if (empty)
        {
            // Empty: rewind to the start of the head chunk and give back the others. With one chunk (the
            // steady state of a queue that drains every iteration) the tail is the head already, and
            // storing it again would cost a GC write barrier per iteration.
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
}
