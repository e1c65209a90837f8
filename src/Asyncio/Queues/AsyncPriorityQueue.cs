using System.Diagnostics;

namespace Asyncio;

/// <summary>
/// A queue that returns its smallest item first, for the tasks of one event loop; asyncio's
/// <c>PriorityQueue</c>. Everything but the order is as in <see cref="AsyncQueue{T}"/>.
/// </summary>
/// <remarks>
/// Items are ordered by the comparer given (default: <see cref="Comparer{T}.Default"/>), so a tuple
/// <c>(priority, data)</c> works as in asyncio. Unlike asyncio's heap, items that compare equal come out in
/// the order they were put (the queue is stable). If the comparer throws (a tuple whose data is not
/// comparable, when two priorities tie), the put or get that called it throws its exception and the queue
/// is left as it was.
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class AsyncPriorityQueue<T> : AsyncQueue<T>
{
    readonly IComparer<T> _comparer;
    Entry[] _heap = [];
    long _sequence;

    /// <summary>
    /// Creates a priority queue holding at most <paramref name="maxSize"/> items (zero or less: unbounded),
    /// ordered by <paramref name="comparer"/> (default: <see cref="Comparer{T}.Default"/>).
    /// </summary>
    public AsyncPriorityQueue(int maxSize = 0, IComparer<T>? comparer = null) : base(maxSize, customStorage: true)
    {
        _comparer = comparer ?? Comparer<T>.Default;
    }

    /// <summary>The comparer that orders the items.</summary>
    public IComparer<T> Comparer => _comparer;

    struct Entry(T item, long sequence)
    {
        public T Item = item;
        public readonly long Sequence = sequence;
    }

    bool Less(in Entry a, in Entry b)
    {
        int c = _comparer.Compare(a.Item, b.Item);
        return c < 0 || (c == 0 && a.Sequence < b.Sequence);
    }

    private protected override void PutCustom(T item)
    {
        int n = _stored;
        if (n == _heap.Length) Array.Resize(ref _heap, Math.Max(4, _heap.Length * 2));
        var entry = new Entry(item, _sequence++);
        var heap = _heap;
        // Find the entry's place first and move the items only then, so that a comparer that throws leaves
        // the heap as it was.
        int at = n;
        while (at > 0)
        {
            int parent = (at - 1) >> 1;
            if (!Less(entry, heap[parent])) break;
            at = parent;
        }
        int i = n;
        while (i > at)
        {
            int parent = (i - 1) >> 1;
            heap[i] = heap[parent];
            i = parent;
        }
        heap[at] = entry;
    }

    private protected override T TakeCustom()
    {
        var heap = _heap;
        var top = heap[0];
        int n = _stored - 1;
        var last = heap[n];
        heap[n] = default;
        if (n > 0)
        {
            int i = 0;
            try
            {
                while (true)
                {
                    int child = 2 * i + 1;
                    if (child >= n) break;
                    if (child + 1 < n && Less(heap[child + 1], heap[child])) child++;
                    if (!Less(heap[child], last)) break;
                    heap[i] = heap[child];
                    i = child;
                }
            }
            catch
            {
                // The comparer threw: move the items on the path back down and put the top and the last
                // entry back, so that the heap is as it was and the queue loses nothing.
                while (i > 0)
                {
                    int parent = (i - 1) >> 1;
                    heap[i] = heap[parent];
                    i = parent;
                }
                heap[0] = top;
                heap[n] = last;
                throw;
            }
            heap[i] = last;
        }
        return top.Item;
    }

    private protected override void ClearCustom() => Array.Clear(_heap, 0, _stored);
}
