using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Asyncio;

// Which thread is this? The loop asks on every hop of a task: a queue's wake-up, a primitive's wait and
// the await's OnCompleted each check that they run on the loop's thread, because a loop primitive used
// from another thread would corrupt the loop silently. The natural test reads thread-local storage (the
// running loop, or the managed thread id), and on Linux every such read is a call to __tls_get_addr: three
// of them per hop were 5 % of the queue ping-pong (W3, docs/design/performance.md).
//
// A thread's stack answers the same question without thread-local storage. While a loop runs, its thread
// is alive, and the stacks of live threads never overlap; so the address of a local variable lies inside
// the loop thread's stack exactly when the code runs on that thread. The loop reads its thread's stack
// bounds once when it starts running and forgets them when it stops; the check is then a subtraction and
// a comparison, of one word read at once. Only a "yes" is trusted: when the bounds are unknown (not Linux,
// or the query failed) or the address is outside them, the callers fall back to the thread-local test, so a
// wrong-thread call is still reported, with the same message.

/// <summary>The calling thread's stack bounds (Linux, through <c>pthread_getattr_np</c>), packed into one word.</summary>
/// <remarks>
/// One word so that a thread reading the loop's bounds while the loop starts or stops sees either the old
/// value or the new one, never a low bound of one run with the size of another: the low bound's page number
/// in the upper 44 bits, the size in pages in the lower 20 (at most 4 GiB: of a larger stack only the top 4 GiB
/// count, where the frames are, as the stack grows down; deeper frames use the thread-local test). Zero means
/// unknown.
/// </remarks>
internal static unsafe partial class ThreadStack
{
    const int PageShift = 12, SizeBits = 20;
    const ulong SizeMask = (1UL << SizeBits) - 1;

    // Read once per thread: for the main thread glibc parses /proc/self/maps.
    [ThreadStatic] static bool t_known;
    [ThreadStatic] static ulong t_range;

    /// <summary>The calling thread's stack, packed (see the remarks); 0 where it cannot be read.</summary>
    public static ulong Current()
    {
        if (!t_known)
        {
            t_range = Query();
            t_known = true;
        }
        return t_range;
    }

    /// <summary>Whether <paramref name="address"/> lies in the packed <paramref name="range"/> (false for 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Contains(ulong range, ulong address) =>
        address - ((range >> SizeBits) << PageShift) < ((range & SizeMask) << PageShift);

    /// <summary>Packs [<paramref name="low"/>, <paramref name="low"/> + <paramref name="size"/>), shrunk to whole pages.</summary>
    internal static ulong Pack(ulong low, ulong size)
    {
        ulong first = (low + (1UL << PageShift) - 1) >> PageShift;   // round the bounds inwards
        ulong end = (low + size) >> PageShift;
        if (end <= first) return 0;
        if (end - first > SizeMask) first = end - SizeMask;            // keep the top: the stack grows down
        if (first >> (64 - SizeBits) != 0) return 0;
        return (first << SizeBits) | (end - first);
    }

    static ulong Query()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        try
        {
            // pthread_attr_t is 56 bytes on x64 glibc and 64 on arm64; musl's is smaller.
            byte* attr = stackalloc byte[256];
            if (pthread_getattr_np(pthread_self(), attr) != 0) return 0;
            void* low;
            nuint size;
            int rc = pthread_attr_getstack(attr, &low, &size);
            pthread_attr_destroy(attr);
            return rc == 0 ? Pack((ulong)low, size) : 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 0;
        }
    }

    [LibraryImport("libc")] private static partial nuint pthread_self();
    [LibraryImport("libc")] private static partial int pthread_getattr_np(nuint thread, byte* attr);
    [LibraryImport("libc")] private static partial int pthread_attr_getstack(byte* attr, void** stackaddr, nuint* stacksize);
    [LibraryImport("libc")] private static partial int pthread_attr_destroy(byte* attr);
}
