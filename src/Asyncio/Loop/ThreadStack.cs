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
// a comparison. Only a "yes" is trusted: when the bounds are unknown (not Linux, or the query failed) or
// the address is outside them, the callers fall back to the thread-local test, so a wrong-thread call is
// still reported, with the same message.

/// <summary>The calling thread's stack bounds (Linux, through <c>pthread_getattr_np</c>).</summary>
internal static unsafe partial class ThreadStack
{
    // Read once per thread: for the main thread glibc parses /proc/self/maps.
    [ThreadStatic] static bool t_known;
    [ThreadStatic] static nuint t_low, t_size;

    /// <summary>The calling thread's stack as [<c>Low</c>, <c>Low + Size</c>); (0, 0) where it cannot be read.</summary>
    public static (nuint Low, nuint Size) Current()
    {
        if (!t_known)
        {
            (t_low, t_size) = Query();
            t_known = true;
        }
        return (t_low, t_size);
    }

    static (nuint Low, nuint Size) Query()
    {
        if (!OperatingSystem.IsLinux()) return (0, 0);
        try
        {
            // pthread_attr_t is 56 bytes on x64 glibc and 64 on arm64; musl's is smaller.
            byte* attr = stackalloc byte[256];
            if (pthread_getattr_np(pthread_self(), attr) != 0) return (0, 0);
            void* low;
            nuint size;
            int rc = pthread_attr_getstack(attr, &low, &size);
            pthread_attr_destroy(attr);
            return rc == 0 ? ((nuint)low, size) : (0, 0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return (0, 0);
        }
    }

    [LibraryImport("libc")] private static partial nuint pthread_self();
    [LibraryImport("libc")] private static partial int pthread_getattr_np(nuint thread, byte* attr);
    [LibraryImport("libc")] private static partial int pthread_attr_getstack(byte* attr, void** stackaddr, nuint* stacksize);
    [LibraryImport("libc")] private static partial int pthread_attr_destroy(byte* attr);
}
