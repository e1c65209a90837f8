using System.Runtime.CompilerServices;

namespace Asyncio;

// The loop's timers.
//
// What it must do: hold up to millions of pending timers (a million gathered sleeps is the seed's
// workload), hand them out in order of deadline and then of scheduling, let any one be cancelled in
// O(1), and stay bounded when timers are scheduled and cancelled forever.
//
// The structure: a 4-ary min-heap of TimerSlot structs keyed by (Due, Seq), plus up to 128 "lanes". A
// lane is a FIFO of timers of one delay: because the clock never goes back, timers of the same delay come
// due in the order they were scheduled, so a lane is already sorted and appending to it is O(1) with no
// sifting. The lanes that hold timers are themselves kept in a small binary heap ordered by their heads,
// so popping compares the big heap's top with that heap's root, and a pop from a lane sifts only among the
// lanes (a few hundred bytes, in cache) instead of through the big heap, whose sifting touches a cache
// line or two per level of a structure of megabytes (W4's 100,000 sleeps of 101 delays spent a sixth of
// their time there). Most programs use a handful of fixed delays (Sleep(1), a 30 s timeout), so most
// timers land in a lane; timers of further delays, and absolute deadlines, go to the heap. This is
// Node.js's timer lists (a list per duration in a priority queue), bounded: a delay keeps its lane while
// the lane is empty, until a new delay needs a lane and none is free. A delay gets a lane from its second
// timer on, so that delays used once each (random jitter) stay in the heap.
//
// A slot is 32 bytes and there is no object per sleep: a sleeping coroutine costs its async state
// machine plus one slot. The heap and the lanes store their slots in fixed 64 KiB chunks (ChunkPool.cs):
// growing never copies, never allocates on the large-object heap (whose allocations count towards a full
// collection), and a burst of 100,000 timers touches each page of its slots once. The heap's first chunk
// starts small and doubles up to a full one, and a lane links chunks that double from 16 slots up to a
// full one (never copied), so that a few timers cost a few slots: a hundred delays in use hold a hundred
// small chunks, not a hundred 64 KiB ones.
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
    /// <summary>Distinct delays that can hold a lane at once; timers of further delays go to the heap.</summary>
    const int MaxLanes = 128;
    const int Bits = ChunkPool<TimerSlot>.Bits;

    // The heap's slots: chunk 0 grows by doubling up to a full chunk, the next ones come from the pool.
    Chunk<TimerSlot>[] _heap = { new(new TimerSlot[64]) };
    int _heapChunks = 1;
    int _heapCount;
    readonly ChunkPool<TimerSlot> _pool = new(maxSpare: 32);   // a burst of up to 64 K timers comes back to warm memory (2 MiB kept)
    Lane[] _lanes = new Lane[8];           // every lane made so far (at most MaxLanes)
    int _laneCount;
    readonly Dictionary<long, Lane> _laneOf = new();   // a delay's lane; an empty lane keeps its delay until another takes it
    Lane? _lastLane;                       // the lane of the last timer added: a burst of one delay skips the lookup
    readonly long[] _recentKeys = NewRecentKeys();   // delays seen lately without a lane, by hash (LaneFor)
    Lane[] _freeLanes = new Lane[8];       // empty lanes, for a delay without one (a lane refilled by its own delay since may be listed)
    int _freeCount;
    LaneHead[] _order = new LaneHead[8];   // the lanes that hold timers: a binary min-heap by their heads' (Due, Seq)
    int _orderCount;

    struct LaneHead
    {
        public long Due;
        public int Seq;
        public Lane Lane;
    }
    int _total;            // slots held, live or dead
    int _dead;             // slots known to be cancelled but not yet dropped
    readonly HashSet<int> _cancelledSleeps = new();
    readonly Action<object?>?[] _conts = new Action<object?>?[64];
    int _contCount = 2;    // index 0 is the handle-timer kind, index 1 the fallback for a full table

    /// <param name="fallback">The continuation of a sleep wrapped because the table was full; it keeps index 1.</param>
    public TimerQueue(Action<object?> fallback)
    {
        _conts[1] = fallback;
    }

    static long[] NewRecentKeys()
    {
        var keys = new long[1024];
        Array.Fill(keys, -1L);
        return keys;
    }

    /// <summary>Lanes made so far, each for one delay at a time (for tests).</summary>
    public int LaneCount => _laneCount;

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
        if (laneKey >= 0 && LaneFor(laneKey) is { } lane)
        {
            if (lane.Count == 0)
            {
                lane.Append(in slot);
                PushOrder(lane);
                return;
            }
            if (due >= lane.TailDue)
            {
                lane.Append(in slot);
                return;
            }
        }
        HeapPush(in slot);
    }

    /// <summary>The lane of delay <paramref name="key"/>: its own, or a free one given to it; <see langword="null"/> when every lane holds timers of other delays.</summary>
    Lane? LaneFor(long key)
    {
        var lane = _lastLane;
        if (lane != null && lane.Key == key) return lane;
        if (!_laneOf.TryGetValue(key, out lane))
        {
            // A delay gets a lane the second time it is seen (as far as a small table of recent delays
            // remembers): delays used once each (random jitter, a deadline turned into a delay) stay in the
            // heap, which suits them, instead of taking a lane and its chunk for a timer each.
            // Two slots per delay, so that two delays sharing one slot do not keep each other out for good.
            ref long seen1 = ref _recentKeys[(int)((ulong)key * 0x9E3779B97F4A7C15UL >> 54)];
            ref long seen2 = ref _recentKeys[(int)((ulong)key * 0xC2B2AE3D27D4EB4FUL >> 54)];
            if (seen1 != key && seen2 != key)
            {
                seen1 = seen2 = key;
                return null;
            }
            lane = TakeFreeLane();
            if (lane == null) return null;
            if (lane.Key >= 0) _laneOf.Remove(lane.Key);
            lane.Key = key;
            _laneOf.Add(key, lane);
        }
        _lastLane = lane;
        return lane;
    }

    Lane? TakeFreeLane()
    {
        while (_freeCount > 0)
        {
            var lane = _freeLanes[--_freeCount];
            _freeLanes[_freeCount] = null!;
            lane.Listed = false;
            if (lane.Count == 0) return lane;   // else its own delay refilled it after it was listed
        }
        if (_laneCount == MaxLanes) return null;
        if (_laneCount == _lanes.Length) Array.Resize(ref _lanes, _lanes.Length * 2);
        return _lanes[_laneCount++] = new Lane(_pool);
    }

    /// <summary>Lists a lane that has just emptied as free for another delay.</summary>
    void NoteEmpty(Lane lane)
    {
        if (lane.Listed) return;
        lane.Listed = true;
        if (_freeCount == _freeLanes.Length) Array.Resize(ref _freeLanes, _freeLanes.Length * 2);
        _freeLanes[_freeCount++] = lane;
    }

    // ---- the heap of lanes, by head ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Before(in LaneHead a, in LaneHead b) => Earlier(a.Due, a.Seq, b.Due, b.Seq);

    static LaneHead HeadOf(Lane lane)
    {
        ref var h = ref lane.Head;
        return new LaneHead { Due = h.Due, Seq = h.Seq, Lane = lane };
    }

    /// <summary>Adds a lane that has just received its first timer.</summary>
    void PushOrder(Lane lane)
    {
        if (_orderCount == _order.Length) Array.Resize(ref _order, _order.Length * 2);
        var entry = HeadOf(lane);
        int i = _orderCount++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Before(in entry, in _order[parent])) break;
            _order[i] = _order[parent];
            i = parent;
        }
        _order[i] = entry;
    }

    /// <summary>The root lane's head was popped: re-place it by its new head, or drop it if it is empty.</summary>
    void RootLanePopped()
    {
        var lane = _order[0].Lane;
        if (lane.Count != 0)
        {
            SiftOrder(HeadOf(lane));
            return;
        }
        NoteEmpty(lane);
        int last = --_orderCount;
        var moved = _order[last];
        _order[last] = default;
        if (last > 0) SiftOrder(moved);
    }

    /// <summary>Puts <paramref name="entry"/> at the root of the lane heap and sifts it down.</summary>
    void SiftOrder(LaneHead entry)
    {
        int n = _orderCount, i = 0;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && Before(in _order[child + 1], in _order[child])) child++;
            if (!Before(in _order[child], in entry)) break;
            _order[i] = _order[child];
            i = child;
        }
        _order[i] = entry;
    }

    /// <summary>Rebuilds the lane heap and the free list from the lanes (after compaction or clearing).</summary>
    void RebuildOrder()
    {
        Array.Clear(_order, 0, _orderCount);
        _orderCount = 0;
        for (int i = 0; i < _laneCount; i++)
        {
            var lane = _lanes[i];
            if (lane.Count == 0) NoteEmpty(lane);
            else PushOrder(lane);
        }
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
    public bool TryPopDue(long now, out TimerSlot slot) => TryPopDue(now, sleepsOnly: false, out slot);

    /// <summary>
    /// Removes and returns the earliest live timer if it is a sleep due at <paramref name="now"/>; stops at a
    /// timer with a callback (a handle), which fires only at an iteration's start (EventLoop.RunSleepsDueNow).
    /// </summary>
    public bool TryPopDueSleep(long now, out TimerSlot slot) => TryPopDue(now, sleepsOnly: true, out slot);

    bool TryPopDue(long now, bool sleepsOnly, out TimerSlot slot)
    {
        while (true)
        {
            int src = MinSource(out var due);
            if (src == -2 || due > now) break;
            ref var head = ref PeekRef(src);
            if (IsDead(in head)) { DropDead(src); continue; }
            if (sleepsOnly && head.Kind == 0) break;
            slot = Pop(src);
            return true;
        }
        slot = default;
        return false;
    }

    /// <summary>
    /// Marks cancelled and collects the live sleeps registered in <paramref name="scope"/>. Cost: one
    /// pass over every slot; used only when a scope has several sleeps pending at once.
    /// </summary>
    public void TakeSleepsOf(CancelScope scope, List<TimerSlot> into)
    {
        int first = into.Count;
        CollectSleeps(into, scope);
        for (int i = first; i < into.Count; i++)
            if (_cancelledSleeps.Add(into[i].Seq)) _dead++;
        MaybeCompact();
    }

    /// <summary>
    /// Collects the live sleeps, in no particular order: those registered in <paramref name="scope"/>, or every
    /// one when it is <see langword="null"/> (the call graph's view of what tasks sleep on). One pass over every slot.
    /// </summary>
    public void CollectSleeps(List<TimerSlot> into, CancelScope? scope = null)
    {
        void Visit(in TimerSlot s)
        {
            if (s.Kind != 0 && (scope == null || ReferenceEquals(s.Scope, scope)) && !IsDead(in s)) into.Add(s);
        }
        for (int i = 0; i < _heapCount; i++) Visit(in H(i));
        for (int l = 0; l < _laneCount; l++)
            foreach (var seg in _lanes[l].Segments())
                for (int i = 0; i < seg.Count; i++) Visit(in seg.Array![seg.Offset + i]);
    }

    /// <summary>Drops every timer (loop close).</summary>
    public void Clear()
    {
        for (int i = 0; i < _heapCount; i++) H(i) = default;
        _heapCount = 0;
        ReleaseHeapChunks();
        for (int i = 0; i < _laneCount; i++) _lanes[i].Clear();
        RebuildOrder();
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

    // -2: empty; -1: the heap; 0: the lane at the root of the lane heap.
    int MinSource(out long due)
    {
        if (_heapCount != 0)
        {
            ref var top = ref _heap[0].Items[0];
            if (_orderCount != 0)
            {
                ref var lane = ref _order[0];
                if (Earlier(lane.Due, lane.Seq, top.Due, top.Seq)) { due = lane.Due; return 0; }
            }
            due = top.Due;
            return -1;
        }
        if (_orderCount != 0) { due = _order[0].Due; return 0; }
        due = long.MaxValue;
        return -2;
    }

    ref TimerSlot PeekRef(int src) => ref src == -1 ? ref _heap[0].Items[0] : ref _order[0].Lane.Head;

    TimerSlot Pop(int src)
    {
        _total--;
        if (src == -1) return HeapPop();
        var slot = _order[0].Lane.PopHead();
        RootLanePopped();
        return slot;
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
        for (int i = 0; i < _laneCount; i++)
        {
            var lane = _lanes[i];
            int before = lane.Count;
            lane.RemoveWhere(this);
            _total -= before - lane.Count;
        }
        RebuildOrder();
    }

    /// <summary>The timer order: by deadline, then by scheduling (sequence numbers compared with wrap-around).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Earlier(long dueA, int seqA, long dueB, int seqB) => dueA < dueB || (dueA == dueB && seqA - seqB < 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Less(in TimerSlot a, in TimerSlot b) => Earlier(a.Due, a.Seq, b.Due, b.Seq);

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

    /// <summary>A FIFO of timers of one delay, sorted by construction: a chain of chunks.</summary>
    sealed class Lane
    {
        const int ChunkSize = ChunkPool<TimerSlot>.Size;
        // The first chunk holds 16 slots and each next one twice as many as the one before, up to a full
        // chunk from the pool; chunks are linked, never copied. Emptied small chunks are kept (up to
        // KeptSmallMax slots in all) and taken again, in the same order, as the lane fills: a lane that fills
        // and empties in every burst of a program takes no fresh memory after the first.
        const int FirstChunkSize = 16;
        const int KeptSmallMax = 512;
        readonly ChunkPool<TimerSlot> _pool;
        Chunk<TimerSlot>? _headChunk, _tailChunk;
        Chunk<TimerSlot>? _spare, _spareTail;   // emptied small chunks kept for the next fill, smallest first
        int _spareSlots;
        int _headIndex;             // first live slot in _headChunk
        int _tailIndex;             // next free slot in _tailChunk
        long _tailDue;
        public int Count;
        /// <summary>The delay whose timers the lane holds; -1 before it has one.</summary>
        public long Key = -1;
        /// <summary>Whether the lane is in the queue's list of free lanes.</summary>
        public bool Listed;

        public Lane(ChunkPool<TimerSlot> pool) => _pool = pool;

        public long TailDue => _tailDue;

        /// <summary>The earliest timer (the lane holds one at least).</summary>
        public ref TimerSlot Head => ref _headChunk!.Items[_headIndex];

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

        public void Append(in TimerSlot slot)
        {
            if (_tailChunk == null)
            {
                _headChunk = _tailChunk = TakeSpare() ?? new Chunk<TimerSlot>(new TimerSlot[FirstChunkSize]);
                _headIndex = _tailIndex = 0;
            }
            else if (_tailIndex == _tailChunk.Items.Length)
            {
                int size = _tailChunk.Items.Length * 2;
                var c = TakeSpare() ?? (size >= ChunkSize ? _pool.Take() : new Chunk<TimerSlot>(new TimerSlot[size]));
                _tailChunk.Next = c;
                _tailChunk = c;
                _tailIndex = 0;
            }
            _tailChunk.Items[_tailIndex++] = slot;
            _tailDue = slot.Due;
            Count++;
        }

        Chunk<TimerSlot>? TakeSpare()
        {
            var c = _spare;
            if (c == null) return null;
            _spare = c.Next;
            if (_spare == null) _spareTail = null;
            _spareSlots -= c.Items.Length;
            c.Next = null;
            return c;
        }

        /// <summary>Gives back an emptied (cleared) chunk: a full one to the pool, a small one to the lane's spares while they have room.</summary>
        void Release(Chunk<TimerSlot> c)
        {
            c.Next = null;
            int size = c.Items.Length;
            if (size == ChunkSize) _pool.Return(c);
            else if (_spareSlots + size <= KeptSmallMax)
            {
                if (_spareTail == null) _spare = c; else _spareTail.Next = c;
                _spareTail = c;
                _spareSlots += size;
            }
        }

        public TimerSlot PopHead()
        {
            var c = _headChunk!;
            ref var h = ref c.Items[_headIndex];
            var slot = h;
            h = default;
            Count--;
            if (++_headIndex == c.Items.Length || Count == 0)
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
