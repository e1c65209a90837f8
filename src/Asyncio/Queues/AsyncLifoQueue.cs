using System.Diagnostics;

namespace Asyncio;

/// <summary>
/// A last-in, first-out queue (a stack) for the tasks of one event loop; asyncio's <c>LifoQueue</c>.
/// Everything but the order is as in <see cref="AsyncQueue{T}"/>.
/// </summary>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class AsyncLifoQueue<T> : AsyncQueue<T>
{
    T[] _stack = [];

    /// <summary>Creates a LIFO queue holding at most <paramref name="maxSize"/> items (zero or less: unbounded).</summary>
    public AsyncLifoQueue(int maxSize = 0) : base(maxSize, customStorage: true) { }

    private protected override void PutCustom(T item)
    {
        if (_stored == _stack.Length) Array.Resize(ref _stack, Math.Max(4, _stack.Length * 2));
        _stack[_stored] = item;
    }

    private protected override T TakeCustom()
    {
        ref var slot = ref _stack[_stored - 1];
        var item = slot;
        slot = default!;
        return item;
    }

    private protected override void ClearCustom() => Array.Clear(_stack, 0, _stored);
}
