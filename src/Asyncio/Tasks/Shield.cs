namespace Asyncio;

/// <summary>
/// The outer future of <c>Aio.Shield</c>: mirrors the inner awaitable's outcome unless it is cancelled
/// itself; asyncio's <c>shield()</c>.
/// </summary>
internal sealed class MirrorFuture<T> : Future<T>, IChildObserver
{
    readonly object _inner;

    public MirrorFuture(EventLoop loop, object inner) : base(loop)
    {
        _inner = inner;
        // Done already: this future is done at once, as asyncio's shield() returns a done inner as it is.
        if (Child.IsDone(inner)) ChildDone(inner);
        // Watched until it is done, even once this future is cancelled (which cancels only this future).
        else new ChildSet(loop, [inner], this);
    }

    public void ChildDone(object child)
    {
        // Once this future is cancelled, the inner outcome has nobody to go to: asyncio marks its exception
        // retrieved rather than reporting it.
        var error = Child.RetrieveException(_inner);
        if (IsDone) return;
        if (Child.IsCancelled(_inner)) SetCancelledCore(Child.CancelledErrorOf(_inner).CancelMessage);
        else if (error != null) SetExceptionCore(error);
        else SetResult(Child.GetResult<T>(_inner));
    }
}

public static partial class Aio
{
    /// <summary>
    /// Protects <paramref name="task"/> from cancellation; asyncio's <c>shield()</c>. Returns a future that
    /// mirrors the task's outcome (done at once if the task is); cancelling that future (or the task
    /// awaiting it) cancels only the future, and the task runs on.
    /// </summary>
    public static Future<T> Shield<T>(AioTask<T> task) => Mirror<T>(task);

    /// <summary>Protects a future with a value from cancellation; see <see cref="Shield{T}(AioTask{T})"/>.</summary>
    public static Future<T> Shield<T>(Future<T> future) => Mirror<T>(future);

    /// <summary>Protects a future or task from cancellation; see <see cref="Shield{T}(AioTask{T})"/>.</summary>
    public static Future Shield(Future future) => Mirror<object?>(future);

    /// <summary>
    /// Starts <paramref name="coroutine"/> as a task and protects it from cancellation; see
    /// <see cref="Shield{T}(AioTask{T})"/>.
    /// </summary>
    public static Future<T> Shield<T>(Func<Task<T>> coroutine) => Mirror<T>(CreateTask(coroutine));

    /// <summary>Starts <paramref name="coroutine"/> as a task and protects it from cancellation.</summary>
    public static Future Shield(Func<Task> coroutine) => Mirror<object?>(CreateTask(coroutine));

    static Future<T> Mirror<T>(object inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        var loop = EventLoop.GetRunningLoop();
        Child.CheckLoop(loop, inner, nameof(inner));
        return new MirrorFuture<T>(loop, inner);
    }

    /// <summary>
    /// A future of a running .NET Task (asyncio's <c>ensure_future</c> for a foreign awaitable): awaiting it
    /// can be cancelled, although the Task itself runs on.
    /// </summary>
    internal static Future<T> FutureOf<T>(Task task) => Mirror<T>(task);
}
