using System.Runtime.CompilerServices;

namespace Asyncio;

// Debug mode's report of code that escaped the loop's thread.
//
// Inside a task, every await comes back to the loop's thread by itself: loop primitives resume on the loop, and a
// .NET Task's await captures the task's scope as its SynchronizationContext and is posted back. An await with
// ConfigureAwait(false) opts out: the rest of the method runs on whichever thread completed the awaited Task, at
// the same time as the loop, and touches the program's state without the loop's one-thread guarantee. A loop
// primitive awaited there, or a loop API called there, throws; plain code does not, and races silently.
//
// What the loop can see without a hook in every await is where a task's coroutine ends: the thread that runs its
// last step. In debug mode a task's coroutine that ends off the loop's thread is reported, with the task, through
// the loop's exception handler. A Coroutine tells its task on the thread that ends it (AioTask.CoroutineDone); an
// async Task method is watched with a continuation that runs where it completes (WatchWhereItEnds). Only async
// methods are watched: a task whose coroutine function returns some other Task (`CreateTask(() => Task.Delay(10))`)
// legitimately completes on the thread of whatever completed it, and no code of the program ran there.

public sealed partial class EventLoop
{
    /// <summary>Debug mode: reports <paramref name="task"/> if <paramref name="inner"/>, an async method's Task, completes off the loop's thread.</summary>
    internal void WatchWhereItEnds(AioTask task, Task inner)
    {
        if (!IsAsyncMethodTask(inner)) return;
        inner.ContinueWith(static (_, t) =>
        {
            var task = (AioTask)t!;
            if (!task.Loop.IsLoopThread) task.Loop.ReportEscapedTask(task);
        }, task, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Whether <paramref name="task"/> is the Task of an <c>async</c> method (its type is the runtime's box around a compiler-made state machine).</summary>
    static bool IsAsyncMethodTask(Task task)
    {
        var type = task.GetType();
        if (!type.IsGenericType) return false;
        foreach (var argument in type.GetGenericArguments())
            if (typeof(IAsyncStateMachine).IsAssignableFrom(argument)) return true;
        return false;
    }

    /// <summary>On the thread where <paramref name="task"/>'s coroutine ended, off the loop's: reports it through the loop's exception handler.</summary>
    internal void ReportEscapedTask(AioTask task)
    {
        int loopThread = _threadId;
        string where = loopThread != 0 ? $"its event loop's thread {loopThread}" : "its event loop's thread";
        var context = new ExceptionContext(
            $"Task {task.Name}'s coroutine ended on thread {Environment.CurrentManagedThreadId}, not on {where}: its code after an " +
            "await with ConfigureAwait(false) ran there, at the same time as the loop. Inside a task, leave ConfigureAwait(false) out: " +
            "awaits come back to the loop by themselves.") { Task = task };
        // Refused by a closed loop (also one that closes between a check and the post, which a check first would
        // miss: the post would be dropped in silence), the report goes to the standard error.
        try { PostInScope(static r => ((EscapeReport)r!).Deliver(), new EscapeReport(this, context), RootScope, throwIfClosed: true); }
        catch (InvalidOperationException) { DefaultExceptionHandler(context); }
    }

    /// <summary>The report, posted to the loop; if the loop closes before it runs, it goes to the standard error instead of being lost.</summary>
    sealed class EscapeReport(EventLoop loop, ExceptionContext context) : IDroppedOnClose
    {
        public void Deliver() => loop.CallExceptionHandler(context);
        public void LoopClosed() => loop.DefaultExceptionHandler(context);
    }
}
