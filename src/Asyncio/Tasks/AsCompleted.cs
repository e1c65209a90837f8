using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// Hands out the children of <c>AsCompleted</c> in the order they finish: each request is a future of
/// the next child to finish, failed with <see cref="TimeoutException"/> once the timeout has expired.
/// </summary>
internal sealed class CompletionOrder : IChildObserver
{
    readonly EventLoop _loop;
    readonly Queue<object> _finished = new();
    readonly Queue<Future<object>> _requests = new();
    readonly ChildSet _watch;
    int _remaining;
    TimerHandle? _timer;
    bool _timedOut;

    public CompletionOrder(EventLoop loop, object[] children, double? timeout)
    {
        _loop = loop;
        _remaining = children.Length;
        _watch = new ChildSet(loop, children, this);
        if (timeout is double t) _timer = loop.CallLater(t, static o => ((CompletionOrder)o!).TimeOut(), this);
    }

    public void ChildDone(object child)
    {
        _remaining--;
        while (_requests.Count > 0)
        {
            var r = _requests.Dequeue();
            if (r.IsDone) continue; // a request abandoned by a cancelled awaiter
            r.SetResult(child);
            MaybeStop();
            return;
        }
        _finished.Enqueue(child);
        MaybeStop();
    }

    void MaybeStop()
    {
        if (_remaining == 0) _timer?.Cancel();
    }

    void TimeOut()
    {
        _timedOut = true;
        _watch.Stop();
        while (_requests.Count > 0)
        {
            var r = _requests.Dequeue();
            if (!r.IsDone) r.SetException(new TimeoutException("AsCompleted timed out before every awaitable was done."));
        }
    }

    /// <summary>A future of the next child to finish.</summary>
    public Future<object> Next()
    {
        var f = new Future<object>(_loop);
        if (_finished.Count > 0) f.SetResult(_finished.Dequeue());
        else if (_timedOut) f.SetException(new TimeoutException("AsCompleted timed out before every awaitable was done."));
        else _requests.Enqueue(f);
        return f;
    }
}

public static partial class Aio
{
    /// <summary>
    /// Returns one awaitable per task, in the order the tasks finish: awaiting the k-th gives the result
    /// (or exception) of the k-th task to finish; asyncio's <c>as_completed()</c>. After
    /// <paramref name="timeout"/> seconds the awaitables not yet resolved throw <see cref="TimeoutException"/>.
    /// </summary>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<Task<T>> tasks, double? timeout = null) => AsCompletedCore<Task<T>, T>(tasks, timeout);

    /// <summary>Yields the tasks' results in the order they finish; see <see cref="AsCompleted{T}(IEnumerable{Task{T}}, double?)"/>.</summary>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<AioTask<T>> tasks, double? timeout = null) => AsCompletedCore<AioTask<T>, T>(tasks, timeout);

    /// <summary>Yields the futures' results in the order they finish; see <see cref="AsCompleted{T}(IEnumerable{Task{T}}, double?)"/>.</summary>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<Future<T>> futures, double? timeout = null) => AsCompletedCore<Future<T>, T>(futures, timeout);

    static IEnumerable<Future<T>> AsCompletedCore<TItem, T>(IEnumerable<TItem> items, double? timeout) where TItem : class
    {
        var loop = EventLoop.GetRunningLoop();
        var children = CollectAwaitables(loop, items, nameof(items));
        return Enumerate(loop, children, timeout);

        static IEnumerable<Future<T>> Enumerate(EventLoop loop, object[] children, double? timeout)
        {
            var order = new CompletionOrder(loop, children, timeout);
            for (int i = 0; i < children.Length; i++)
            {
                var next = order.Next();
                var result = new Future<T>(loop);
                next.AddDoneCallback(f =>
                {
                    if (result.IsDone) return;
                    var n = (Future<object>)f;
                    if (n.ExceptionCore is { } e) { result.SetException(e); return; }
                    var c = n.Result;
                    if (Child.IsCancelled(c)) result.SetException(Child.CancelledErrorOf(c));
                    else if (Child.GetException(c) is { } ce) result.SetException(ce);
                    else result.SetResult(Child.GetResult<T>(c));
                });
                yield return result;
            }
        }
    }

    /// <summary>
    /// Yields the awaitables themselves (futures, tasks or <see cref="Task"/>s), done, in the order they
    /// finish; asyncio 3.13's <c>async for t in as_completed(aws)</c>. Throws <see cref="TimeoutException"/>
    /// once <paramref name="timeout"/> seconds have passed with some still pending.
    /// </summary>
    public static async IAsyncEnumerable<T> AsCompletedAsync<T>(IEnumerable<T> awaitables, double? timeout = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default) where T : class
    {
        var loop = EventLoop.GetRunningLoop();
        var children = CollectAwaitables(loop, awaitables, nameof(awaitables));
        var order = new CompletionOrder(loop, children, timeout);
        for (int i = 0; i < children.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return (T)await order.Next();
        }
    }
}
