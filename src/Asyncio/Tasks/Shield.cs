using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// The outer future of <c>Aio.Shield</c>: mirrors the inner awaitable's outcome unless it is cancelled
/// itself; asyncio's <c>shield()</c>.
/// </summary>
internal sealed class MirrorFuture<T> : Future<T>, IChildObserver
{
    // The shielded futures whose failure was already reported as lost, so that several cancelled shields of
    // one future report it once (asyncio 3.14 keeps one logging callback per inner future).
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Future, object> s_reported = new();

    readonly object _inner;
    readonly bool _reportLost;

    /// <param name="loop">The loop of both futures.</param>
    /// <param name="inner">The awaitable mirrored.</param>
    /// <param name="reportLost">
    /// Whether a failure of <paramref name="inner"/> that arrives once this future is cancelled goes to the
    /// loop's exception handler (<c>Aio.Shield</c>; not a wait on a .NET Task, whose owner still holds it).
    /// </param>
    public MirrorFuture(EventLoop loop, object inner, bool reportLost) : base(loop)
    {
        _inner = inner;
        _reportLost = reportLost;
        // Done already: this future is done at once, as asyncio's shield() returns a done inner as it is.
        if (Child.IsDone(inner)) ChildDone(inner);
        // Watched until it is done, even once this future is cancelled (which cancels only this future).
        else new ChildSet(loop, [inner], this);
    }

    public void ChildDone(object child)
    {
        var error = Child.RetrieveException(_inner);
        if (IsDone)
        {
            // This future was cancelled first: the inner failure has nobody to go to. asyncio 3.14 reports it
            // to the loop's exception handler ("... exception in shielded future") rather than lose it.
            if (error != null && _reportLost && _inner is Future f && s_reported.TryAdd(f, f))
                Loop.CallExceptionHandler(new ExceptionContext($"{error.GetType().Name} exception in shielded future", error)
                {
                    Future = f,
                    Task = f as AioTask,
                });
            return;
        }
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
    /// awaiting it) cancels only the future, and the task runs on. If the task then fails, its exception
    /// is reported to the loop's exception handler, as asyncio 3.14 does, since the shield's awaiter is gone.
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

    static Future<T> Mirror<T>(object inner, bool reportLost = true, [CallerArgumentExpression(nameof(inner))] string paramName = "")
    {
        ArgumentNullException.ThrowIfNull(inner, paramName);   // the caller's parameter (task, future)
        var loop = EventLoop.GetRunningLoop();
        Child.CheckLoop(loop, inner, paramName);
        return new MirrorFuture<T>(loop, inner, reportLost);
    }

    /// <summary>
    /// <see cref="Shield{T}(Future{T})"/> without the report of a failure that arrives once the shield is
    /// cancelled: for library code that takes the late outcome over itself.
    /// </summary>
    internal static Future<T> ShieldQuietly<T>(Future<T> future) => Mirror<T>(future, reportLost: false);

    /// <summary>
    /// A future of a running .NET Task (asyncio's <c>ensure_future</c> for a foreign awaitable): awaiting it
    /// can be cancelled, although the Task itself runs on.
    /// </summary>
    internal static Future<T> FutureOf<T>(Task task) => Mirror<T>(task, reportLost: false);
}
