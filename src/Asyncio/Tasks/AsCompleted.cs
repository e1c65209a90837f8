using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>One awaitable handed out by <c>AsCompleted</c>, waiting for the next child to finish.</summary>
internal interface ICompletionRequest
{
    /// <summary>Resolves the request from <paramref name="child"/>; <see langword="false"/> if it was abandoned (cancelled).</summary>
    bool TryDeliver(object child);

    /// <summary>Fails the request (the timeout expired), unless it is already done.</summary>
    void Fail(Exception e);
}

/// <summary>
/// Hands out the children of <c>AsCompleted</c> in the order they finish: each request receives the next
/// child to finish, or a <see cref="TimeoutException"/> once the timeout has expired. A request whose
/// awaiter was cancelled is skipped and its child goes to the next request, as a cancelled
/// <c>Queue.get()</c> in asyncio's iterator leaves the item for the next one.
/// </summary>
internal sealed class CompletionOrder : IChildObserver
{
    readonly Queue<object> _finished = new();
    readonly Queue<ICompletionRequest> _requests = new();
    readonly ChildSet _watch;
    readonly int _count;
    int _remaining;
    int _handedOut;            // requests submitted: an enumeration resumed after a break goes on from here
    TimerHandle? _timer;
    bool _timedOut;

    /// <summary>Starts watching at once: the timeout counts from here, as asyncio's does from the call.</summary>
    public CompletionOrder(EventLoop loop, object[] children, double? timeout)
    {
        _count = children.Length;
        _remaining = children.Length;
        _watch = new ChildSet(loop, children, this);
        if (timeout is double t && children.Length > 0) _timer = loop.CallLater(t, static o => ((CompletionOrder)o!).TimeOut(), this);
    }

    public void ChildDone(object child)
    {
        if (--_remaining == 0) _timer?.Cancel();
        while (_requests.Count > 0)
            if (_requests.Dequeue().TryDeliver(child)) return;
        _finished.Enqueue(child);
    }

    void TimeOut()
    {
        _timedOut = true;
        _watch.Stop();
        while (_requests.Count > 0) _requests.Dequeue().Fail(NewTimeout());
    }

    static TimeoutException NewTimeout() => new("AsCompleted timed out before every awaitable was done.");

    /// <summary>
    /// Whether every child has had its request. Enumerating again after a <c>break</c> goes on with the children
    /// left, as asyncio's <c>as_completed</c> iterator resumes, rather than ask for more than there are.
    /// </summary>
    public bool AllHandedOut => _handedOut >= _count;

    /// <summary>Queues a fresh request: resolved at once by a child already finished, else by the next one.</summary>
    public void Submit(ICompletionRequest request)
    {
        _handedOut++;
        if (_finished.Count > 0) request.TryDeliver(_finished.Dequeue());
        else if (_timedOut) request.Fail(NewTimeout());
        else _requests.Enqueue(request);
    }
}

/// <summary>A request of the typed <c>AsCompleted</c>: resolves with the child's result or exception.</summary>
internal sealed class ResultRequest<T>(EventLoop loop) : Future<T>(loop), ICompletionRequest
{
    public bool TryDeliver(object child)
    {
        if (IsDone) return false;
        if (Child.IsCancelled(child)) SetExceptionCore(Child.CancelledErrorOf(child));
        else if (Child.RetrieveException(child) is { } e) SetExceptionCore(e);
        else SetResult(Child.GetResult<T>(child));
        return true;
    }

    public void Fail(Exception e)
    {
        if (!IsDone) SetExceptionCore(e);
    }
}

/// <summary>A request of <c>AsCompletedAsync</c>: resolves with the child itself.</summary>
internal sealed class ChildRequest(EventLoop loop) : Future<object>(loop), ICompletionRequest
{
    public bool TryDeliver(object child)
    {
        if (IsDone) return false;
        SetResult(child);
        return true;
    }

    public void Fail(Exception e)
    {
        if (!IsDone) SetExceptionCore(e);
    }

    /// <summary>
    /// The token's callback (any thread): cancels the request on its loop. A loop closed meanwhile has nothing left
    /// to cancel: the post is dropped, and nothing escapes into <see cref="CancellationTokenSource.Cancel()"/>'s caller.
    /// </summary>
    public static readonly Action<object?> s_cancelOnLoop = static r =>
        ((Future)r!).GetLoop().PostInternal(static f => ((Future)f!).Cancel(), r);
}

public static partial class Aio
{
    /// <summary>
    /// Returns one awaitable per task, in the order the tasks finish: awaiting the k-th gives the result
    /// (or exception) of the k-th task to finish; asyncio's <c>as_completed()</c>. After
    /// <paramref name="timeout"/> seconds (counted from this call) the awaitables not yet resolved throw
    /// <see cref="TimeoutException"/>. Nothing is cancelled.
    /// </summary>
    /// <remarks>
    /// The tasks are watched from this call on. Enumerating the result again (after a <c>break</c>) goes on
    /// with the awaitables not handed out yet, as asyncio's iterator resumes. A task given more than once
    /// counts once, as in asyncio (which takes a set). An awaitable whose awaiter is cancelled gives up its
    /// place: the task it would have received goes to the next one.
    /// <para>Differences from asyncio: the awaitables are futures, resolved in the order they were
    /// enumerated, not coroutines that take the next result when they are first awaited; the two agree
    /// when they are awaited in order.</para>
    /// </remarks>
    /// <exception cref="ArgumentException">The collection contains null or a future of another loop.</exception>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<Task<T>> tasks, double? timeout = null) => AsCompletedCore<Task<T>, T>(tasks, timeout);

    /// <summary>Yields the tasks' results in the order they finish; see <see cref="AsCompleted{T}(IEnumerable{Task{T}}, double?)"/>.</summary>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<AioTask<T>> tasks, double? timeout = null) => AsCompletedCore<AioTask<T>, T>(tasks, timeout);

    /// <summary>Yields the futures' results in the order they finish; see <see cref="AsCompleted{T}(IEnumerable{Task{T}}, double?)"/>.</summary>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<Future<T>> futures, double? timeout = null) => AsCompletedCore<Future<T>, T>(futures, timeout);

    /// <summary>Yields the tasks' results in the order they finish, with a <see cref="TimeSpan"/> timeout; see <see cref="AsCompleted{T}(IEnumerable{Task{T}}, double?)"/>.</summary>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<Task<T>> tasks, TimeSpan timeout) => AsCompleted(tasks, Seconds(timeout));

    /// <summary>Yields the tasks' results in the order they finish, with a <see cref="TimeSpan"/> timeout; see <see cref="AsCompleted{T}(IEnumerable{Task{T}}, double?)"/>.</summary>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<AioTask<T>> tasks, TimeSpan timeout) => AsCompleted(tasks, Seconds(timeout));

    /// <summary>Yields the futures' results in the order they finish, with a <see cref="TimeSpan"/> timeout; see <see cref="AsCompleted{T}(IEnumerable{Task{T}}, double?)"/>.</summary>
    public static IEnumerable<Future<T>> AsCompleted<T>(IEnumerable<Future<T>> futures, TimeSpan timeout) => AsCompleted(futures, Seconds(timeout));

    static IEnumerable<Future<T>> AsCompletedCore<TItem, T>(IEnumerable<TItem> items, double? timeout) where TItem : class
    {
        var (loop, order) = StartCompletionOrder(items, timeout);
        return Enumerate(loop, order);

        static IEnumerable<Future<T>> Enumerate(EventLoop loop, CompletionOrder order)
        {
            while (!order.AllHandedOut)
            {
                var request = new ResultRequest<T>(loop);
                order.Submit(request);
                yield return request;
            }
        }
    }

    /// <summary>Yields the awaitables in the order they finish, with a <see cref="TimeSpan"/> timeout; see <see cref="AsCompletedAsync{T}(IEnumerable{T}, double?, CancellationToken)"/>.</summary>
    public static IAsyncEnumerable<T> AsCompletedAsync<T>(IEnumerable<T> awaitables, TimeSpan timeout, CancellationToken cancellationToken = default)
        where T : class => AsCompletedAsync(awaitables, Seconds(timeout), cancellationToken);

    static (EventLoop, CompletionOrder) StartCompletionOrder<TItem>(IEnumerable<TItem> items, double? timeout) where TItem : class
    {
        var loop = EventLoop.GetRunningLoop();
        loop.CheckThread(nameof(Aio), nameof(AsCompleted));
        var children = Distinct(CollectAwaitables(loop, items, nameof(items)));
        if (timeout is double t && double.IsNaN(t)) throw new ArgumentException("The timeout cannot be NaN.", nameof(timeout));
        return (loop, new CompletionOrder(loop, children, timeout));
    }

    /// <summary>
    /// The children without repeats, in order of first appearance (asyncio's <c>as_completed</c> takes a set:
    /// an awaitable given twice is yielded once); the array itself when nothing repeats.
    /// </summary>
    static object[] Distinct(object[] children)
    {
        if (children.Length < 2) return children;
        var seen = new HashSet<object>(children.Length, ReferenceEqualityComparer.Instance);
        List<object>? unique = null;
        for (int i = 0; i < children.Length; i++)
        {
            var c = children[i];
            if (seen.Add(c)) unique?.Add(c);
            else if (unique == null)
            {
                unique = new List<object>(children.Length);
                for (int j = 0; j < i; j++) unique.Add(children[j]);
            }
        }
        return unique == null ? children : unique.ToArray();
    }

    /// <summary>
    /// Yields the awaitables themselves (futures, tasks, <see cref="Coroutine"/>s or <see cref="Task"/>s), done, in the order they
    /// finish, each once (even if given twice); asyncio 3.13's <c>async for t in as_completed(aws)</c>. Throws <see cref="TimeoutException"/>
    /// once <paramref name="timeout"/> seconds (counted from this call) have passed with some still pending.
    /// Cancelling <paramref name="cancellationToken"/> (or the task that enumerates) ends the wait with
    /// <see cref="CancelledError"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The collection contains null, a future of another loop, or something that is not awaitable.</exception>
    public static IAsyncEnumerable<T> AsCompletedAsync<T>(IEnumerable<T> awaitables, double? timeout = null,
        CancellationToken cancellationToken = default) where T : class
    {
        var (loop, order) = StartCompletionOrder(awaitables, timeout);
        return Enumerate(loop, order, cancellationToken);

        static async IAsyncEnumerable<T> Enumerate(EventLoop loop, CompletionOrder order,
            [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            while (!order.AllHandedOut)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var request = new ChildRequest(loop);
                order.Submit(request);
                object child;
                using (cancellationToken.CanBeCanceled
                    ? cancellationToken.Register(ChildRequest.s_cancelOnLoop, request)
                    : default)
                {
                    child = await request;
                }
                yield return (T)child;
            }
        }
    }
}
