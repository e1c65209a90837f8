using System.Runtime.CompilerServices;

namespace Asyncio;

// How the ExecutionContext (the values of AsyncLocal<T>) flows through the loop, as contextvars do through
// asyncio:
//
//  * A task runs in the context that was current when it was created (create_task copies the context);
//    in eager mode its first step simply runs there, inside CreateTask.
//  * A callback scheduled with CallSoon, CallLater or CallAt, and a future's done callback, run in the
//    context that was current when they were scheduled (asyncio's Handle(context=copy_context())).
//  * Whatever such a callback or a task's first step leaves on the loop's thread is put back after it
//    (Enter/Leave around each), so that an AsyncLocal value set by one never leaks into the next.
//  * A coroutine resumes in the context it suspended in: the runtime's builders do it for async Task
//    methods, CoroutineBuilding for async Coroutine ones.
//
// Work scheduled from the loop's own context (the one RunForever was called in) or from the default one
// (no AsyncLocal set) records nothing and runs in the loop's context, so the common case stores and
// switches nothing: one read of the thread's context when work is scheduled, two when it runs. Other ready
// items (resumptions of awaits) do not pay even that: the builders restore the context themselves.

/// <summary>The execution contexts the loop hands on; see the file's opening comment.</summary>
internal static class ContextFlow
{
    /// <summary>The runtime's default execution context (what <see cref="ExecutionContext.Capture"/> returns when no <see cref="AsyncLocal{T}"/> is set).</summary>
    public static readonly ExecutionContext? Default = ReadDefault();

    static ExecutionContext? ReadDefault()
    {
        try { return DefaultField(null); }
        catch (MissingFieldException) { return null; }   // then contexts are compared with the loop's only
    }

    [UnsafeAccessor(UnsafeAccessorKind.StaticField, Name = "Default")]
    static extern ref ExecutionContext DefaultField(ExecutionContext? unused);

    /// <summary>
    /// The context to run work scheduled now in, given the thread's <paramref name="current"/> one (what
    /// <see cref="ExecutionContext.Capture"/> returns); <see langword="null"/> when it is <paramref name="loopContext"/>
    /// or the default one (and when flow is suppressed on this thread).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ExecutionContext? ToHandOn(ExecutionContext? current, ExecutionContext? loopContext) =>
        current == null || ReferenceEquals(current, loopContext) || ReferenceEquals(current, Default) ? null : current;

    /// <summary>
    /// Switches the thread to <paramref name="context"/> if one was handed on, and returns the context to put
    /// back with <see cref="Leave(EventLoop, ExecutionContext?)"/> once the callback has run (also when it changed the context itself).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ExecutionContext? Enter(EventLoop loop, ExecutionContext? context)
    {
        var before = loop.CaptureExecutionContext();
        if (context != null && !ReferenceEquals(before, context)) ExecutionContext.Restore(context);
        return before;
    }

    /// <summary>Puts back the context <see cref="Enter"/> returned, if the thread has another now.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Leave(EventLoop loop, ExecutionContext? before)
    {
        if (before != null && !ReferenceEquals(loop.CaptureExecutionContext(), before)) ExecutionContext.Restore(before);
    }

    /// <summary>Puts back the context <paramref name="before"/> on this thread (when the loop is not known).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Leave(ExecutionContext? before)
    {
        if (before != null && !ReferenceEquals(ExecutionContext.Capture(), before)) ExecutionContext.Restore(before);
    }
}
