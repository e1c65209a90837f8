namespace Asyncio;

// The memory the ready queue and the timers grow by.
//
// Both hold 32-byte structs, up to millions at once (a million tasks scheduled to start, a million
// sleeps). One array grown by doubling would live on the large-object heap (whose allocations count
// towards a full collection), be copied at every step, and touch twice the memory it ends with. So they
// grow by fixed chunks of 2,048 items (64 KiB, under the large-object threshold), linked or indexed,
// never copied. An emptied chunk goes back to its pool, which keeps a few for reuse and lets the rest go.
//
// Fresh memory is expensive on some machines (Prefetcher.cs): once a pool has many chunks out, a
// thread-pool thread allocates the next ones - zeroed, their pages faulted in - so that the loop's thread
// only takes them. Small programs never start this.

/// <summary>A fixed-size array of items and a link: the unit the ready queue and the timers grow by.</summary>
internal sealed class Chunk<T> where T : struct
{
    public T[] Items;
    public Chunk<T>? Next;

    public Chunk(T[] items) => Items = items;
}

/// <summary>Chunks of <see cref="Size"/> items for one loop structure; see the file's opening comment.</summary>
internal sealed class ChunkPool<T> where T : struct
{
    public const int Bits = 11;
    public const int Size = 1 << Bits;   // 2048 x 32-byte items = 64 KiB
    public const int Mask = Size - 1;
    const int PrefetchAbove = 64;        // chunks out before prefetching starts (128 K items)
    const int PrefetchBatch = 32;        // chunks prepared per request (2 MiB)

    readonly int _maxSpare;
    Chunk<T>? _spare;                    // emptied chunks kept for reuse, linked through Next
    int _spareCount;
    int _inUse;
    Prefetcher<Chunk<T>>? _prefetcher;   // made once the pool has more than PrefetchAbove chunks out

    /// <param name="maxSpare">How many emptied chunks to keep for reuse.</param>
    public ChunkPool(int maxSpare) => _maxSpare = maxSpare;

    /// <summary>Chunks taken and not given back.</summary>
    public int InUse => _inUse;

    /// <summary>A chunk whose items are all default.</summary>
    public Chunk<T> Take()
    {
        if (TakeSpare() is { } spare) return spare;
        _inUse++;
        if (_inUse > PrefetchAbove)
        {
            var prefetcher = _prefetcher ??= new(NewChunk, PrefetchBatch);
            prefetcher.Request();
            if (prefetcher.TryTake(out var ready)) return ready;
        }
        return NewChunk();
    }

    static Chunk<T> NewChunk() => new(new T[Size]);

    /// <summary>A chunk kept for reuse (all items default), or <see langword="null"/> if none is: takes no fresh memory.</summary>
    public Chunk<T>? TakeSpare()
    {
        var c = _spare;
        if (c == null) return null;
        _spare = c.Next;
        _spareCount--;
        _inUse++;
        c.Next = null;
        return c;
    }

    /// <summary>Gives back a chunk taken from this pool; the caller has cleared every item it used.</summary>
    public void Return(Chunk<T> c)
    {
        _inUse--;
        if (_spareCount >= _maxSpare)
        {
            c.Next = null;
            return;
        }
        c.Next = _spare;
        _spare = c;
        _spareCount++;
    }
}
