namespace Asyncio;

/// <summary>When <see cref="Aio.Wait{T}(IEnumerable{T}, double?, ReturnWhen)"/> returns; asyncio's <c>FIRST_COMPLETED</c> and friends.</summary>
public enum ReturnWhen
{
    /// <summary>When every awaitable is done (or the timeout expires).</summary>
    AllCompleted,
    /// <summary>When any awaitable is done.</summary>
    FirstCompleted,
    /// <summary>When any awaitable fails with an exception (cancellation does not count), else when all are done.</summary>
    FirstException,
}

/// <summary>
/// The future returned by <c>Aio.Wait</c>: once its condition is met (or the timeout expires) it sorts the
/// children into done and pending.
/// </summary>
/// <remarks>
/// The sorting happens on the next iteration, not in the completion that met the condition, so that
/// children finishing in the same iteration count as done, as in asyncio, whose <c>wait()</c> sorts them
/// when the waiting task resumes.
/// </remarks>
internal sealed class WaitFuture<T> : Future<(IReadOnlySet<T> Done, IReadOnlySet<T> Pending)>, IChildObserver where T : class
{
    readonly object[] _children;
    readonly ChildSet _watch;
    readonly ReturnWhen _when;
    int _remaining;
    TimerHandle? _timer;
    bool _finishing;

    public WaitFuture(EventLoop loop, object[] children, double? timeout, ReturnWhen when) : base(loop)
    {
        _children = children;
        _when = when;
        _remaining = children.Length;
        _watch = new ChildSet(loop, children, this);
        if (timeout is double t) _timer = loop.CallLater(t, static o => ((WaitFuture<T>)o!).Finish(), this);
    }

    public void ChildDone(object c)
    {
        _remaining--;
        if (_finishing) return;
        if (_remaining == 0
            || _when == ReturnWhen.FirstCompleted
            || (_when == ReturnWhen.FirstException && !Child.IsCancelled(c) && Child.GetException(c) != null))
            Finish();
    }

    void Finish()
    {
        if (_finishing) return;
        _finishing = true;
        _timer?.Cancel();
        _watch.Stop();
        Loop.EnqueueInternal(static o => ((WaitFuture<T>)o!).Publish(), this);
    }

    void Publish()
    {
        if (IsDone) return; // cancelled meanwhile
        var done = new HashSet<T>(ReferenceEqualityComparer.Instance);
        var pending = new HashSet<T>(ReferenceEqualityComparer.Instance);
        foreach (var c in _children) (Child.IsDone(c) ? done : pending).Add((T)c);
        SetResult((done, pending));
    }

    /// <summary>Cancels only the wait; the children run on, as asyncio's <c>wait()</c> never cancels them.</summary>
    public override bool Cancel(string? message = null)
    {
        if (!base.Cancel(message)) return false;
        _finishing = true;
        _timer?.Cancel();
        _watch.Stop();
        return true;
    }
}

public static partial class Aio
{
    /// <summary>
    /// Waits for futures, tasks or running coroutines (<see cref="Coroutine"/>s or <see cref="Task"/>s) until <paramref name="returnWhen"/>
    /// is met or <paramref name="timeout"/> seconds pass, and returns the sets of those done and those
    /// pending; asyncio's <c>wait()</c>. Nothing is cancelled on timeout.
    /// </summary>
    /// <typeparam name="T">The element type: a <see cref="Future"/> (or task) type, a <see cref="Coroutine"/> type or a <see cref="Task"/> type.</typeparam>
    /// <exception cref="ArgumentException">The collection is empty, contains null, or contains something that is neither a future, a coroutine nor a Task.</exception>
    public static Future<(IReadOnlySet<T> Done, IReadOnlySet<T> Pending)> Wait<T>(IEnumerable<T> awaitables, double? timeout = null, ReturnWhen returnWhen = ReturnWhen.AllCompleted)
        where T : class
    {
        var loop = EventLoop.GetRunningLoop();
        loop.CheckThread(nameof(Aio), nameof(Wait));
        var children = CollectAwaitables(loop, awaitables, nameof(awaitables));
        if (children.Length == 0) throw new ArgumentException("The set of awaitables must not be empty.", nameof(awaitables));
        if (!Enum.IsDefined(returnWhen)) throw new ArgumentOutOfRangeException(nameof(returnWhen));
        if (timeout is double t && double.IsNaN(t)) throw new ArgumentException("The timeout cannot be NaN.", nameof(timeout));
        return new WaitFuture<T>(loop, children, timeout, returnWhen);
    }

    /// <summary>
    /// Waits as <see cref="Wait{T}(IEnumerable{T}, double?, ReturnWhen)"/> with a <see cref="TimeSpan"/> timeout
    /// (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: none).
    /// </summary>
    public static Future<(IReadOnlySet<T> Done, IReadOnlySet<T> Pending)> Wait<T>(IEnumerable<T> awaitables, TimeSpan timeout, ReturnWhen returnWhen = ReturnWhen.AllCompleted)
        where T : class => Wait(awaitables, Seconds(timeout), returnWhen);

    static object[] CollectAwaitables<T>(EventLoop loop, IEnumerable<T> items, string paramName) where T : class
    {
        var children = Child.Collect(loop, items, paramName);
        foreach (var c in children)
            if (c is not (Future or Task or Coroutine))
                throw new ArgumentException($"Expected futures, tasks, coroutines or Tasks, got {c.GetType().Name}.", paramName);
        return children;
    }
}
