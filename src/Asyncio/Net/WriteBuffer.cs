using System.Buffers;
using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// A transport's pending output: one contiguous pooled array with a start and an end. Appends go to the
/// end (compacting or growing as needed), sends take from the start. Contiguous so that one send call
/// can take everything pending, as asyncio's <c>sock.send(self._buffer)</c> of a joined buffer does.
/// </summary>
internal struct WriteBuffer
{
    byte[]? _array;
    int _start, _end;

    public readonly int Count => _end - _start;

    public readonly ReadOnlySpan<byte> Pending => _array.AsSpan(_start, _end - _start);

    public void Append(ReadOnlySpan<byte> data)
    {
        var a = _array;
        if (a == null || a.Length - _end < data.Length) a = MakeRoom(data.Length);
        data.CopyTo(a.AsSpan(_end));
        _end += data.Length;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    byte[] MakeRoom(int extra)
    {
        int count = Count;
        var a = _array;
        if (a != null && a.Length >= count + extra && _start >= a.Length / 2)
        {
            // Enough room once the sent prefix is dropped: slide the pending bytes down.
            Buffer.BlockCopy(a, _start, a, 0, count);
        }
        else
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(count + extra, Math.Max(4096, (a?.Length ?? 0) * 2)));
            if (a != null)
            {
                Buffer.BlockCopy(a, _start, bigger, 0, count);
                ArrayPool<byte>.Shared.Return(a);
            }
            a = _array = bigger;
        }
        _start = 0;
        _end = count;
        return a;
    }

    /// <summary>Drops <paramref name="n"/> bytes that were sent.</summary>
    public void Consume(int n)
    {
        _start += n;
        if (_start == _end) _start = _end = 0;
    }

    /// <summary>Drops everything pending and returns the array to the pool.</summary>
    public void Release()
    {
        if (_array != null) ArrayPool<byte>.Shared.Return(_array);
        _array = null;
        _start = _end = 0;
    }
}
