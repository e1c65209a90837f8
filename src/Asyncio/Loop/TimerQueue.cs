using System.Runtime.CompilerServices;

namespace Asyncio;

// The loop's timers.
//
// What it must do: hold up to millions of pending timers (a million gathered sleeps is the seed's
// workload), hand them out in order of deadline and then of scheduling, let any one be cancelled in
// O(1), and stay bounded when timers are scheduled and cancelled forever.
//
// The structure: a 4-ary min-heap of TimerSlot structs keyed by (Due, Seq), plus a few "lanes". A lane
// is a FIFO ring holding timers of one delay: because the clock never goes back, timers of the same
// delay come due in the order they were scheduled, so a lane is already sorted and appending to it is
// O(1) with no sifting. Most programs use a handful of fixed delays (Sleep(1), a 30 s timeout), so most
// timers land in a lane; the rest go to the heap. Popping compares the heap's top with each lane's head.
// This is Node.js's timer-list idea, bounded to a few lanes so the pop stays cheap.
//
// A slot is 32 bytes and there is no object per sleep: a sleeping coroutine costs its async state
// machine plus one slot. The heap and the lanes store their slots in fixed 64 KiB chunks (ChunkPool.cs):
// growing never copies, never allocates on the large-object heap (whose allocations count towards a full
// collection), and a burst of 100,000 timers touches each page of its slots once. The heap's first chunk
// and a lane's first start small and double up to a full one, so that a few timers cost a few slots: a
// program with eight delays in use does not hold eight 64 KiB chunks for a handful of sleeps.
//
// Slots are cancelled lazily: a handle timer's TimerEntry carries a flag, and a sleep's sequence number
// goes into a set that is checked when the slot comes up. When more than half of the slots are dead the
// heap and lanes are compacted, so cancelled timers never pile up.
//
// A sleep's slot names its continuation by an index into a small table (the continuations of async
// methods are all one delegate); when the table is full, a sleep wraps its continuation and state in an
// object whose own continuation, given at construction, always has its place.
//
// Sequence numbers are ints compared with wrap-around, so ties are ordered correctly as long as no
// live timer was scheduled 2^31 timers before another with the very same deadline.

/// <summary>A pending timer: a handle timer (<see cref="Kind"/> 0, <see cref="State"/> is a <see cref="TimerEntry"/>) or a sleep.</summary>
internal struct TimerSlot
{
    public long Due;
    public object? State;
    public CancelScope? Scope;
    public int Seq;
    /// <summary>0 for a handle timer; otherwise the index of the sleep's continuation in the continuation table.</summary>
    public int Kind;
}

internal sealed class TimerQueue
{
    const int LaneCount = 8;
    const int Bits = ChunkPool<TimerSlot>.Bits;

    // The heap's slots: chunk 0 grows by doubling up to a full chunk, the next ones come from the pool.
    Chunk<TimerSlot>[] _heap = { new(new TimerSlot[64]) };
    int _heapChunks = 1;
    int _heapCount;
    readonly ChunkPool<TimerSlot> _pool = new(maxSpare: 32);   // a burst of up to 64 K timers comes back to warm memory (2 MiB kept)
    readonly Lane[] _lanes = new Lane[LaneCount];
    int _total;            // slots held, live or dead
    int _dead;             // slots known to be cancelled but not yet dropped
    readonly HashSet<int> _cancelledSleeps = new();
    readonly Action<object?>?[] _conts = new Action<object?>?[64];
    int _contCount = 2;    // index 0 is the handle-timer kind, index 1 the fallback for a full table

    /// <param name="fallback">The continuation of a sleep wrapped because the table was full; it keeps index 1.</param>
    public TimerQueue(Action<object?> fallback)
    {
        _conts[1] = fallback;
        for (int i = 0; i < LaneCount; i++) _lanes[i] = new Lane(_pool);
    }

    /// <summary>Slots the heap can hold before it takes another chunk (for tests of its memory).</summary>
    public int HeapCapacity => _heapChunks == 1 ? _heap[0].Items.Length : _heapChunks << Bits;

    /// <summary>Full chunks taken from the pool and not yet given back, by the heap and the lanes.</summary>
    public int ChunksInUse => _pool.InUse;

    /// <summary>Slots not known to be cancelled.</summary>
    public int LiveCount => _total - _dead;

    /// <summary>All slots held, cancelled ones included (for tests of compaction).</summary>
    public int HeldCount => _total;

    /// <summary>Index of <paramref name="continuation"/> in the continuation table, or -1 when the table is full.</summary>
    public int KindOf(Action<object?> continuation)
    {
        for (int i = 1; i < _contCount; i++)
            if (ReferenceEquals(_conts[i], continuation)) return i;
        if (_contCount == _conts.Length) return -1;
        _conts[_contCount] = continuation;
        return _contCount++;
    }

    public Action<object?> ContinuationOf(int kind) => _conts[kind]!;

    /// <summary>Adds a timer. <paramref name="laneKey"/> is its delay in ticks, or -1 when it has none (an absolute deadline).</summary>
    public void Add(long due, int seq, object? state, CancelScope? scope, int kind, long laneKey)
    {
        var slot = new TimerSlot { Due = due, State = state, Scope = scope, Seq = seq, Kind = kind };
        _total++;
        if (laneKey >= 0)
        {
            Lane? free = null;
            foreach (var lane in _lanes)
            {
                if (lane.Count == 0) { free ??= lane; continue; }
                if (lane.Key == laneKey)
                {
                    if (due >= lane.TailDue) { lane.Append(in slot); return; }
                    break;
                }
            }
            if (free != null && !HasLane(laneKey))
            {
                free.Key = laneKey;
                free.Append(in slot);
                return;
            }
        }
        HeapPush(in slot);
    }

    bool HasLane(long key)
    {
        foreach (var lane in _lanes)
            if (lane.Count != 0 && lane.Key == key) return true;
        return false;
    }

    /// <summary>Marks a handle timer cancelled; its slot is dropped when it comes up or at compaction.</summary>
    public void NoteEntryCancelled()
    {
        _dead++;
        MaybeCompact();
    }

    /// <summary>Marks the sleep with sequence number <paramref name="seq"/> cancelled.</summary>
    public void CancelSleep(int seq)
    {
        if (_cancelledSleeps.Add(seq))
        {
            _dead++;
            MaybeCompact();
        }
    }

    /// <summary>The deadline of the earliest live timer, or <see cref="long.MaxValue"/> when there is none.</summary>
    public long NextDue()
    {
        while (true)
        {
            int src = MinSource(out var due);
            if (src == -2) return long.MaxValue;
            ref var slot = ref PeekRef(src);
            if (!IsDead(in slot)) return due;
            DropDead(src);
        }
    }

    /// <summary>Removes and returns the earliest live timer if it is due at <paramref name="now"/>.</summary>
    public bool TryPopDue(long now, out TimerSlot slot)
    {
        while (true)
        {
            int src = MinSource(out var due);
            if (src == -2 || due > now) { slot = default; return false; }
            slot = Pop(src);
            if (IsDead(in slot)) { ForgetDead(in slot); continue; }
            return true;
        }
    }

    /// <summary>
    /// Marks cancelled and collects the live sleeps registered in <paramref name="scope"/>. Cost: one
    /// pass over every slot; used only when a scope has several sleeps pending at once.
    /// </summary>
    public void TakeSleepsOf(CancelScope scope, List<TimerSlot> into)
    {
        void Visit(ref TimerSlot s)
        {
            if (s.Kind != 0 && ReferenceEquals(s.Scope, scope) && !IsDead(in s))
            {
                into.Add(s);
                if (_cancelledSleeps.Add(s.Seq)) _dead++;
            }
        }
        for (int i = 0; i < _heapCount; i++) Visit(ref H(i));
        foreach (var lane in _lanes)
            foreach (var seg in lane.Segments())
                for (int i = 0; i < seg.Count; i++) Visit(ref seg.Array![seg.Offset + i]);
        MaybeCompact();
    }

    /// <summary>Drops every timer (loop close).</summary>
    public void Clear()
    {
        for (int i = 0; i < _heapCount; i++) H(i) = default;
        _heapCount = 0;
        ReleaseHeapChunks();
        foreach (var lane in _lanes) lane.Clear();
        _cancelledSleeps.Clear();
        _total = _dead = 0;
    }

    bool IsDead(in TimerSlot slot) =>
        slot.Kind == 0
            ? ((TimerEntry)slot.State!).Cancelled
            : _cancelledSleeps.Count != 0 && _cancelledSleeps.Contains(slot.Seq);

    void ForgetDead(in TimerSlot slot)
    {
        _dead--;
        if (slot.Kind != 0) _cancelledSleeps.Remove(slot.Seq);
    }

    void DropDead(int src)
    {
        var slot = Pop(src);
        ForgetDead(in slot);
    }

    // -2: empty; -1: the heap; 0..LaneCount-1: a lane.
    int MinSource(out long due)
    {
        int best = -2;
        due = long.MaxValue;
        int bestSeq = 0;
        if (_heapCount != 0) { ref var top = ref _heap[0].Items[0]; best = -1; due = top.Due; bestSeq = top.Seq; }
        for (int i = 0; i < LaneCount; i++)
        {
            var lane = _lanes[i];
            if (lane.Count == 0) continue;
            ref var head = ref lane.At(0);
            if (best == -2 || head.Due < due || (head.Due == due && head.Seq - bestSeq < 0))
            {
                best = i; due = head.Due; bestSeq = head.Seq;
            }
        }
        return best;
    }

    ref TimerSlot PeekRef(int src) => ref src == -1 ? ref _heap[0].Items[0] : ref _lanes[src].At(0);

    TimerSlot Pop(int src)
    {
        _total--;
        return src == -1 ? HeapPop() : _lanes[src].PopHead();
    }

    void MaybeCompact()
    {
        if (_dead < 1024 || _dead * 2 < _total) return;
        int kept = 0;
        for (int i = 0; i < _heapCount; i++)
        {
            ref var slot = ref H(i);
            if (IsDead(in slot)) { ForgetDead(in slot); continue; }
            H(kept++) = slot;
        }
        for (int i = kept; i < _heapCount; i++) H(i) = default;
        _total -= _heapCount - kept;
        _heapCount = kept;
        ReleaseHeapChunks();
        for (int i = (kept - 2) / 4; i >= 0; i--) SiftDown(i);
        foreach (var lane in _lanes)
        {
            int before = lane.Count;
            lane.RemoveWhere(this);
            _total -= before - lane.Count;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Less(in TimerSlot a, in TimerSlot b) => a.Due < b.Due || (a.Due == b.Due && a.Seq - b.Seq < 0);

    /// <summary>The heap's slot <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    ref TimerSlot H(int i) => ref _heap[i >> Bits].Items[i & ChunkPool<TimerSlot>.Mask];

    void GrowHeap()
    {
        var first = _heap[0];
        if (first.Items.Length < ChunkPool<TimerSlot>.Size)
        {
            Array.Resize(ref first.Items, Math.Min(first.Items.Length * 2, ChunkPool<TimerSlot>.Size));
            return;
        }
        if (_heapChunks == _heap.Length) Array.Resize(ref _heap, _heap.Length * 2);
        _heap[_heapChunks++] = _pool.Take();
    }

    /// <summary>Whether the heap's last chunk can go: the one before it is empty too (a chunk of slack stays).</summary>
    bool HeapHasSpareChunk => _heapChunks > 1 && _heapCount <= (_heapChunks - 2) << Bits;

    /// <summary>Gives back the heap's chunks beyond the one after its last slot (they are all empty).</summary>
    void ReleaseHeapChunks()
    {
        while (HeapHasSpareChunk)
        {
            var chunk = _heap[--_heapChunks];
            _heap[_heapChunks] = null!;
            _pool.Return(chunk);
        }
    }

    void HeapPush(in TimerSlot slot)
    {
        if (_heapCount == HeapCapacity) GrowHeap();
        int i = _heapCount++;
        while (i > 0)
        {
            int parent = (i - 1) >> 2;
            ref var p = ref H(parent);
            if (!Less(in slot, in p)) break;
            H(i) = p;
            i = parent;
        }
        H(i) = slot;
    }

    TimerSlot HeapPop()
    {
        ref var root = ref _heap[0].Items[0];
        var top = root;
        int last = --_heapCount;
        if (last > 0)
        {
            ref var tail = ref H(last);
            root = tail;
            tail = default;
            SiftDown(0);
        }
        else root = default;
        if (HeapHasSpareChunk) ReleaseHeapChunks();
        return top;
    }

    void SiftDown(int i)
    {
        int n = _heapCount;
        var item = H(i);
        while (true)
        {
            int first = (i << 2) + 1;
            if (first >= n) break;
            int min = first;
            ref var minSlot = ref H(first);
            int end = Math.Min(first + 4, n);
            for (int c = first + 1; c < end; c++)
            {
                ref var child = ref H(c);
                if (Less(in child, in minSlot)) { min = c; minSlot = ref child; }
            }
            if (!Less(in minSlot, in item)) break;
            H(i) = minSlot;
            i = min;
        }
        H(i) = item;
    }

    /// <summary>A FIFO of timers of one delay, sorted by construction: a chain of chunks from the pool.</summary>
    sealed class Lane
    {
        const int ChunkSize = ChunkPool<TimerSlot>.Size;
        // A lane starts with a small chunk of its own and doubles it up to a full chunk before it links
        // pooled ones: eight lanes that each hold a few timers (W4's random delays) would otherwise take
        // eight fresh 64 KiB chunks, half a megabyte for a handful of sleeps. While a lane's chunk is
        // smaller than a full one it is the lane's only chunk; when the lane empties, it keeps it.
        const int FirstChunkSize = 64;
        readonly ChunkPool<TimerSlot> _pool;
        Chunk<TimerSlot>? _headChunk, _tailChunk;
        Chunk<TimerSlot>? _small;   // the lane's small chunk, kept while the lane is empty
        int _headIndex;             // first live slot in _headChunk
        int _tailIndex;             // next free slot in _tailChunk
        public int Count;
        public long Key;
        long _tailDue;

        public Lane(ChunkPool<TimerSlot> pool) => _pool = pool;

        public long TailDue => _tailDue;

        /// <summary>The live part of each chunk, head first (for passes over every slot).</summary>
        public IEnumerable<ArraySegment<TimerSlot>> Segments()
        {
            int remaining = Count;
            int start = _headIndex;
            for (var c = _headChunk; c != null && remaining > 0; c = c.Next)
            {
                int n = Math.Min(c.Items.Length - start, remaining);
                yield return new ArraySegment<TimerSlot>(c.Items, start, n);
                remaining -= n;
                start = 0;
            }
        }

        public ref TimerSlot At(int i)
        {
            int index = _headIndex + i;
            var c = _headChunk!;
            while (index >= ChunkSize) { index -= ChunkSize; c = c.Next!; }
            return ref c.Items[index];
        }

        public void Append(in TimerSlot slot)
        {
            if (_tailChunk == null)
            {
                _headChunk = _tailChunk = _small ?? _pool.TakeSpare() ?? new Chunk<TimerSlot>(new TimerSlot[FirstChunkSize]);
                _small = null;
                _headIndex = _tailIndex = 0;
            }
            else if (_tailIndex == _tailChunk.Items.Length)
            {
                if (_tailIndex < ChunkSize) GrowSmall();
                else
                {
                    var c = _pool.Take();
                    _tailChunk.Next = c;
                    _tailChunk = c;
                    _tailIndex = 0;
                }
            }
            _tailChunk.Items[_tailIndex++] = slot;
            _tailDue = slot.Due;
            Count++;
        }

        /// <summary>The lane's only chunk, a small one, is full at its end: move the live slots to its start, or to one twice as large.</summary>
        void GrowSmall()
        {
            var items = _headChunk!.Items;
            if (Count <= items.Length / 2)
            {
                Array.Copy(items, _headIndex, items, 0, Count);
                Array.Clear(items, Count, _tailIndex - Count);
            }
            else
            {
                var c = items.Length * 2 >= ChunkSize ? _pool.Take() : new Chunk<TimerSlot>(new TimerSlot[items.Length * 2]);
                Array.Copy(items, _headIndex, c.Items, 0, Count);
                _headChunk = _tailChunk = c;
            }
            _headIndex = 0;
            _tailIndex = Count;
        }

        /// <summary>Gives back an emptied (cleared) chunk: a full one to the pool, a small one to the lane.</summary>
        void Release(Chunk<TimerSlot> c)
        {
            c.Next = null;
            if (c.Items.Length == ChunkSize) _pool.Return(c);
            else _small = c;
        }

        public TimerSlot PopHead()
        {
            var c = _headChunk!;
            ref var h = ref c.Items[_headIndex];
            var slot = h;
            h = default;
            Count--;
            if (++_headIndex == ChunkSize || Count == 0)
            {
                // Every slot of the chunk before the head has been popped, and so cleared.
                if (Count == 0) _headChunk = _tailChunk = null;
                else _headChunk = c.Next;
                Release(c);
                _headIndex = 0;
            }
            return slot;
        }

        public void RemoveWhere(TimerQueue q)
        {
            var kept = new List<TimerSlot>(Count);
            foreach (var seg in Segments())
                foreach (var s in seg)
                {
                    if (q.IsDead(in s)) q.ForgetDead(in s);
                    else kept.Add(s);
                }
            Clear();
            foreach (var s in kept) Append(in s);
        }

        public void Clear()
        {
            for (var c = _headChunk; c != null;)
            {
                var next = c.Next;
                Array.Clear(c.Items);
                Release(c);
                c = next;
            }
            _headChunk = _tailChunk = null;
            _headIndex = _tailIndex = 0;
            Count = 0;
        }
    }
}
