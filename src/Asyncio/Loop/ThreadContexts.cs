using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// The loop thread's synchronisation and execution contexts, read and written through its <see cref="Thread"/>
/// object instead of thread-local storage.
/// </summary>
/// <remarks>
/// <para><see cref="SynchronizationContext.Current"/> and <see cref="ExecutionContext.Capture"/> each find the
/// current thread through thread-local storage, which on Linux is a call into the C library
/// (<c>__tls_get_addr</c>) because the runtime is a library loaded at run time. A task's first step needs seven
/// such reads and writes (scheduling, the loop's scope check, entering and leaving the task's scope and execution
/// context); the loop knows its thread, so it reads the same two fields of it directly. W2 (a million trivial
/// tasks) went from 2.82-2.88 to 3.00 M tasks/s with this alone (docs/design/performance.md, "Session 27").</para>
/// <para>The fields are the runtime's private ones, reached with <see cref="UnsafeAccessorAttribute"/> (which
/// trimming and native AOT understand). <see cref="Direct"/> checks once that they exist and agree with the public
/// API on this thread; if a runtime renames them, the loop falls back to the public API, and
/// <c>ContextFlowTests</c> fails so that the change is seen.</para>
/// </remarks>
internal static class ThreadContexts
{
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_synchronizationContext")]
    static extern ref SynchronizationContext? SyncContextField(Thread thread);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_executionContext")]
    static extern ref ExecutionContext? ExecutionContextField(Thread thread);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "m_isFlowSuppressed")]
    static extern ref bool FlowSuppressedField(ExecutionContext context);

    /// <summary>Whether the fields are there (and mean what they meant when this was written).</summary>
    public static readonly bool Direct = Probe();

    static bool Probe()
    {
        try
        {
            var thread = Thread.CurrentThread;
            var ec = ExecutionContextField(thread);
            if (ec != null) _ = FlowSuppressedField(ec);
            return ReferenceEquals(SyncContextField(thread), SynchronizationContext.Current)
                && ReferenceEquals(ec ?? ContextFlow.Default, ExecutionContext.Capture());
        }
        catch (MissingFieldException) { return false; }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SynchronizationContext? GetSync(Thread thread) => SyncContextField(thread);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetSync(Thread thread, SynchronizationContext? context) => SyncContextField(thread) = context;

    /// <summary><see cref="ExecutionContext.Capture"/> on <paramref name="thread"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ExecutionContext? Capture(Thread thread)
    {
        var ec = ExecutionContextField(thread);
        return ec == null ? ContextFlow.Default : FlowSuppressedField(ec) ? null : ec;
    }
}
