using System.Runtime.CompilerServices;

namespace Asyncio.Tests;

/// <summary>Settings of the test process itself, applied before any test runs.</summary>
internal static class TestHost
{
    /// <summary>
    /// Raises the thread pool's minimum number of threads. The suite runs many test classes at once, and each
    /// running loop blocks the thread it runs on in its reactor's wait; when those are pool threads, work that
    /// a test hands to the pool (a name lookup through the executor, a TLS handshake's steps, a thread bridge)
    /// waits for the pool to add a thread, which it does about twice a second. Measured in session 11: TLS
    /// connections on a fresh test process took 0.5-0.8 s instead of 10 ms until the pool had grown, longer
    /// than the second of real time a virtual-time TLS test gives I/O before its clock jumps. With the
    /// minimum raised those delays were gone. The library itself needs no pool thread to run a loop.
    /// </summary>
#pragma warning disable CA2255 // a test assembly's process-wide setting, which is what a module initializer is for
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RaiseThreadPoolMinimum()
    {
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }
}
