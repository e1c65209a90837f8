using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// The asyncio module: the functions a program calls from inside the running loop (<c>Sleep</c>,
/// <c>CreateTask</c>, <c>Gather</c>, <c>WaitFor</c>, ...) and <see cref="Run(Func{Task}, LoopOptions?)"/>
/// that starts one.
/// </summary>
public static partial class Aio
{
    /// <summary>The loop running on this thread; asyncio's <c>get_running_loop()</c>.</summary>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public static EventLoop GetRunningLoop() => EventLoop.GetRunningLoop();

    /// <summary>
    /// Suspends the current coroutine for <paramref name="seconds"/>; asyncio's <c>sleep()</c>. The deadline
    /// counts from this call and is never early. <c>Sleep(0)</c> (or a negative delay) yields to the loop
    /// for exactly one iteration.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="seconds"/> is NaN.</exception>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SleepAwaitable Sleep(double seconds)
    {
        var loop = EventLoop.GetRunningLoop();
        long delay = EventLoop.DelayToTicks(seconds, nameof(seconds));
        return new SleepAwaitable(loop, EventLoop.AddTicks(loop.NowTicks(), delay), delay);
    }

    /// <summary>
    /// Suspends the current coroutine for <paramref name="delay"/>; see <see cref="Sleep(double)"/>.
    /// <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> sleeps until cancelled, as <c>Task.Delay</c> does.
    /// </summary>
    public static SleepAwaitable Sleep(TimeSpan delay)
    {
        var loop = EventLoop.GetRunningLoop();
        long ticks = EventLoop.DelayToTicks(delay);
        return new SleepAwaitable(loop, EventLoop.AddTicks(loop.NowTicks(), ticks), ticks);
    }

    /// <summary>Sleeps for <paramref name="seconds"/> and returns <paramref name="result"/>; asyncio's <c>sleep(delay, result)</c>.</summary>
    public static async Task<T> Sleep<T>(double seconds, T result)
    {
        await Sleep(seconds);
        return result;
    }

    /// <summary>
    /// Wraps <paramref name="coroutine"/> in a task on the running loop; asyncio's <c>create_task()</c>.
    /// See <see cref="EventLoop.CreateTask(Func{Task}, string?)"/>.
    /// </summary>
    public static AioTask CreateTask(Func<Task> coroutine, string? name = null) => EventLoop.GetRunningLoop().CreateTask(coroutine, name);

    /// <summary>Wraps a coroutine with a result in a task on the running loop.</summary>
    public static AioTask<T> CreateTask<T>(Func<Task<T>> coroutine, string? name = null) => EventLoop.GetRunningLoop().CreateTask(coroutine, name);

    /// <summary>Wraps a <see cref="Coroutine"/> function in a task on the running loop; see <see cref="EventLoop.CreateTask(Func{Coroutine}, string?)"/>.</summary>
    [OverloadResolutionPriority(CoroutinePriority.Value)]
    public static AioTask CreateTask(Func<Coroutine> coroutine, string? name = null) => EventLoop.GetRunningLoop().CreateTask(coroutine, name);

    /// <summary>Wraps a <see cref="Coroutine{T}"/> function in a task on the running loop.</summary>
    [OverloadResolutionPriority(CoroutinePriority.Value)]
    public static AioTask<T> CreateTask<T>(Func<Coroutine<T>> coroutine, string? name = null) => EventLoop.GetRunningLoop().CreateTask(coroutine, name);

    /// <summary>
    /// Wraps <paramref name="coroutine"/> applied to <paramref name="arg"/> in a task on the running loop, with no
    /// closure per task: asyncio's <c>create_task(coro(arg))</c>. See <see cref="EventLoop.CreateTask{TArg}(Func{TArg, Task}, TArg, string?)"/>.
    /// </summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    [OverloadResolutionPriority(CoroutinePriority.ArgTask)]
    public static AioTask CreateTask<TArg>(Func<TArg, Task> coroutine, TArg arg, string? name = null) => EventLoop.GetRunningLoop().CreateTask(coroutine, arg, name);

    /// <summary>Wraps a coroutine with a result, applied to <paramref name="arg"/>, in a task on the running loop.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    [OverloadResolutionPriority(CoroutinePriority.ArgTask)]
    public static AioTask<T> CreateTask<TArg, T>(Func<TArg, Task<T>> coroutine, TArg arg, string? name = null) => EventLoop.GetRunningLoop().CreateTask(coroutine, arg, name);

    /// <summary>Wraps a <see cref="Coroutine"/> function, applied to <paramref name="arg"/>, in a task on the running loop.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    [OverloadResolutionPriority(CoroutinePriority.ArgCoroutine)]
    public static AioTask CreateTask<TArg>(Func<TArg, Coroutine> coroutine, TArg arg, string? name = null) => EventLoop.GetRunningLoop().CreateTask(coroutine, arg, name);

    /// <summary>Wraps a <see cref="Coroutine{T}"/> function, applied to <paramref name="arg"/>, in a task on the running loop.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    [OverloadResolutionPriority(CoroutinePriority.ArgCoroutine)]
    public static AioTask<T> CreateTask<TArg, T>(Func<TArg, Coroutine<T>> coroutine, TArg arg, string? name = null) => EventLoop.GetRunningLoop().CreateTask(coroutine, arg, name);

    /// <summary>
    /// The task running now, or <see langword="null"/> outside tasks; asyncio's <c>current_task()</c>. Also
    /// <see langword="null"/> when no loop runs on this thread (asyncio raises there; see docs/differences.md).
    /// </summary>
    public static AioTask? CurrentTask => EventLoop.TryGetRunningLoop()?.CurrentTask;

    /// <summary>The running loop's tasks that are not done; asyncio's <c>all_tasks()</c>.</summary>
    public static IReadOnlyList<AioTask> AllTasks() => EventLoop.GetRunningLoop().AllTasks();

    /// <summary>
    /// The token of the code running now: signalled when its task is cancelled, or when the innermost
    /// enclosing <see cref="Timeout(double?, Func{Task})"/> expires. <see cref="System.Threading.CancellationToken.None"/> outside the loop.
    /// Pass it to .NET APIs so that cancellation reaches them.
    /// </summary>
    public static CancellationToken CancellationToken
    {
        get
        {
            var loop = EventLoop.TryGetRunningLoop();
            if (loop == null) return System.Threading.CancellationToken.None;
            var scope = loop.CurrentScope;
            return scope.Task == null ? System.Threading.CancellationToken.None : scope.Token;
        }
    }

    /// <summary>Runs <paramref name="func"/> on the default executor (the thread pool) and awaits its result; asyncio's <c>to_thread()</c>.</summary>
    public static Future<T> ToThread<T>(Func<T> func) => EventLoop.GetRunningLoop().RunInExecutor(null, func);

    /// <summary>Runs <paramref name="action"/> on the default executor; asyncio's <c>to_thread()</c>.</summary>
    public static Future ToThread(Action action) => EventLoop.GetRunningLoop().RunInExecutor(null, action);
}
