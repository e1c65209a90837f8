using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Asyncio;

// Objects made ahead of a burst, on another thread.
//
// On some machines the first touch of a page costs microseconds (about 3 ms per MB on the benchmark VM,
// docs/design/performance.md, "Two costs"), and the thread that allocates an object is the one that pays:
// the runtime clears the memory it hands out. During a burst - a million tasks scheduled to start, a million
// sleeps - the loop's thread would spend much of its time in those faults. A prefetcher lets a thread-pool
// thread make the next objects instead, on the other core, and hands them to the loop's thread, which only
// takes them. The ready queue's and the timers' chunks (ChunkPool) and the scopes of task starts (ScopeSupply)
// are made this way once a burst has begun; small programs never start it.

/// <summary>Makes objects on a thread-pool thread, a batch at a time, for one consumer thread to take; see the file's opening comment.</summary>
internal sealed class Prefetcher<T> where T : class
{
    readonly ConcurrentQueue<T> _ready = new();
    readonly Func<T> _make;
    readonly int _batch;
    int _making;

    /// <param name="make">Makes one object; runs on a thread-pool thread.</param>
    /// <param name="batch">How many objects one request makes.</param>
    public Prefetcher(Func<T> make, int batch)
    {
        _make = make;
        _batch = batch;
    }

    /// <summary>Whether a thread-pool thread is making a batch now (for tests).</summary>
    public bool IsMaking => Volatile.Read(ref _making) != 0;

    /// <summary>Objects made and not taken yet.</summary>
    public int Count => _ready.Count;

    /// <summary>Asks a thread-pool thread for another batch, unless one is being made or half a batch is still ready.</summary>
    public void Request()
    {
        if (_ready.Count < _batch / 2 && Interlocked.CompareExchange(ref _making, 1, 0) == 0)
            ThreadPool.UnsafeQueueUserWorkItem(static p => p.Make(), this, preferLocal: false);
    }

    /// <summary>Takes an object made ahead, if one is ready.</summary>
    public bool TryTake([MaybeNullWhen(false)] out T item) => _ready.TryDequeue(out item);

    void Make()
    {
        try
        {
            for (int i = 0; i < _batch; i++) _ready.Enqueue(_make());
        }
        finally
        {
            Volatile.Write(ref _making, 0);
        }
    }
}
