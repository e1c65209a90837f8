using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Asyncio;

public sealed partial class EventLoop
{
    Action<EventLoop, ExceptionContext>? _exceptionHandler;

    /// <summary>
    /// Sets the handler for errors that no coroutine can receive (a callback that threw, a task whose
    /// exception was never retrieved); <see langword="null"/> restores the default, which writes to the
    /// standard error and keeps the loop running. asyncio's <c>set_exception_handler</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop runs.</exception>
    public void SetExceptionHandler(Action<EventLoop, ExceptionContext>? handler)
    {
        CheckThread(nameof(SetExceptionHandler));
        _exceptionHandler = handler;
    }

    /// <summary>The handler set by <see cref="SetExceptionHandler"/>, or <see langword="null"/> for the default.</summary>
    public Action<EventLoop, ExceptionContext>? GetExceptionHandler() => _exceptionHandler;

    /// <summary>
    /// Reports an error to the exception handler; asyncio's <c>call_exception_handler</c>. An exception
    /// thrown by a custom handler is reported by the default one instead of escaping, and one thrown while
    /// the default handler reports (an exception whose <c>ToString</c> throws) is reduced to a line on the
    /// standard error: reporting an error never stops the loop.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop runs (the handler
    /// runs on the loop thread); from there, use <see cref="CallSoonThreadsafe(Action)"/>.</exception>
    public void CallExceptionHandler(ExceptionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        CheckThread(nameof(CallExceptionHandler));
        var handler = _exceptionHandler;
        if (handler != null)
        {
            try
            {
                handler(this, context);
                return;
            }
            catch (Exception e)
            {
                GuardedDefaultExceptionHandler(new ExceptionContext("Unhandled error in the exception handler", e));
            }
        }
        GuardedDefaultExceptionHandler(context);
    }

    void GuardedDefaultExceptionHandler(ExceptionContext context)
    {
        try
        {
            DefaultExceptionHandler(context);
        }
        catch (Exception e)
        {
            try { Console.Error.WriteLine($"Exception in the default exception handler ({e.GetType().FullName}) while reporting: {context.Message}"); }
            catch (Exception) { /* nowhere left to report to */ }
        }
    }

    /// <summary>The default exception handler: writes the context to the standard error.</summary>
    public void DefaultExceptionHandler(ExceptionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try { Console.Error.WriteLine(context.ToString()); }
        catch (IOException) { }
    }

    internal void ReportCallbackException(Exception e, Delegate callback, Future? future = null) =>
        CallExceptionHandler(new ExceptionContext("Exception in callback", e) { Callback = callback, Future = future, Task = _current.Task });

    /// <summary>The delegate the caller scheduled: the <see cref="Action"/> behind the adapter that runs it, or the callback itself.</summary>
    internal static Delegate ScheduledCallback(Action<object?> callback, object? state) =>
        ReferenceEquals(callback, s_invokeAction) && state is Action action ? action : callback;

    /// <summary>
    /// The delegate the caller scheduled for a ready item (debug reports, traces, a callback's exception): looks through a
    /// handle's entry (CallSoon), a timer's entry (CallLater, CallAt), the <see cref="Action"/> adapter, a future's
    /// done-callback node and the delivery of executor work (named by the function given to RunInExecutor).
    /// </summary>
    internal static Delegate ScheduledItemCallback(Action<object?> callback, object? state)
    {
        if (ReferenceEquals(callback, CallbackEntry.Run) && state is CallbackEntry { Callback: { } inner } entry) (callback, state) = (inner, entry.State);
        else if (ReferenceEquals(callback, TimerEntry.Run) && state is TimerEntry { Callback: { } timed } timer) (callback, state) = (timed, timer.State);
        return ReferenceEquals(callback, DoneCallbackNode.Invoke) && state is DoneCallbackNode node ? node.Callback
            : ReferenceEquals(callback, ExecutorResult.Deliver) && state is ExecutorResult work ? work.Function
            : ScheduledCallback(callback, state);
    }

    /// <summary>
    /// Reports an exception that escaped a ready item (the loop's catch; off the hot path): names the delegate the
    /// program scheduled and, for a future's done callback, the future, as asyncio's context does.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    void ReportItemException(Exception e, Action<object?> callback, object? state) =>
        ReportCallbackException(e, ScheduledItemCallback(callback, state),
            ReferenceEquals(callback, DoneCallbackNode.Invoke) && state is DoneCallbackNode node ? node.Future : null);

    /// <summary>
    /// A delegate's <c>Type.Method</c> (reports, traces); a lambda or local function reads as the call graph names them,
    /// <c>Program.Main (lambda)</c>, <c>Program.Main.Local</c>, not as the compiler wrote them.
    /// </summary>
    internal static string CallbackName(Delegate? callback)
    {
        if (callback == null) return "?";
        var method = callback.Method;
        if (method.Name.StartsWith('<')) return CallGraphFrame.NameOf("<" + method.Name + ">d", method.DeclaringType);
        return method.DeclaringType is { } type ? $"{type.Name}.{method.Name}" : method.Name;
    }

    /// <summary>What ran, for a report: <c>task NAME</c> for a task's step, else <c>callback Type.Method</c>.</summary>
    static string DescribeRun(Delegate callback, AioTask? task) => task != null ? $"task {task.Name}" : $"callback {CallbackName(callback)}";

    void ReportSlowCallback(Delegate callback, AioTask? task, long ticks)
    {
        double seconds = (double)ticks / Stopwatch.Frequency;
        string what = DescribeRun(callback, task);
        DefaultExceptionHandler(new ExceptionContext($"Executing {what} took {seconds:F3} seconds"));
    }
}
