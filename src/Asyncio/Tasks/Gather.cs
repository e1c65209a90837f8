using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// The future returned by <c>Aio.Gather</c>: completes with the children's results in order, or with the
/// first failure; asyncio's <c>_GatheringFuture</c>.
/// </summary>
/// <remarks>
/// Semantics, as asyncio documents them: the first child that fails (or is cancelled) completes the
/// gather with that exception at once, and the other children keep running. Cancelling the gather
/// cancels every child that is not done; the gather then ends with <see cref="CancelledError"/> once they
/// have finished. A cancelled child counts as a failure with <see cref="CancelledError"/>. With outcomes
/// (<c>return_exceptions=True</c>) every child's ending is reported instead.
/// </remarks>
internal sealed class GatheringFuture<TResult> : Future<TResult[]>, IChildObserver
{
    readonly GatherCore _core;
    readonly Func<object, TResult> _read;

    public GatheringFuture(EventLoop loop, object[] children, bool outcomes, Func<object, TResult> read, string? checkParam) : base(loop)
    {
        _read = read;
        _core = new GatherCore(loop, children, outcomes, this, checkParam);
    }

    public void ChildDone(object child)
    {
        switch (_core.OnChildDone(child, IsDone, out var failure))
        {
            case GatherCore.Step.Fail: SetExceptionCore(failure!); break;
            case GatherCore.Step.Succeed:
                var children = _core.Children;
                var results = new TResult[children.Length];
                for (int i = 0; i < results.Length; i++) results[i] = _read(children[i]);
                SetResult(results);
                break;
        }
    }

    /// <summary>Cancels the children that are not done; the gather ends once they have.</summary>
    public override bool Cancel(string? message = null)
    {
        Loop.CheckThread(nameof(Future), nameof(Cancel));
        return !IsDone && _core.CancelChildren(message);
    }
}

/// <summary>The result-less gather (children without values); see <see cref="GatheringFuture{TResult}"/>.</summary>
internal sealed class GatheringFuture : Future, IChildObserver
{
    readonly GatherCore _core;

    public GatheringFuture(EventLoop loop, object[] children, string? checkParam) : base(loop) => _core = new GatherCore(loop, children, false, this, checkParam);

    public void ChildDone(object child)
    {
        switch (_core.OnChildDone(child, IsDone, out var failure))
        {
            case GatherCore.Step.Fail: SetExceptionCore(failure!); break;
            case GatherCore.Step.Succeed: SetResult(); break;
        }
    }

    public override bool Cancel(string? message = null)
    {
        Loop.CheckThread(nameof(Future), nameof(Cancel));
        return !IsDone && _core.CancelChildren(message);
    }
}

/// <summary>The counting and cancellation shared by both gathers.</summary>
internal sealed class GatherCore
{
    public readonly object[] Children;
    readonly bool _outcomes;
    readonly bool _allFutures;   // the children are a Future[] (Child.Collect's copy of an array of futures)
    int _finished;
    bool _cancelRequested;
    string? _message;

    public enum Step { Wait, Fail, Succeed }

    /// <summary>Counts for <paramref name="owner"/>; <c>checkParam</c> as in <see cref="ChildSet(EventLoop, object[], IChildObserver, string?)"/>.</summary>
    public GatherCore(EventLoop loop, object[] children, bool outcomes, IChildObserver owner, string? checkParam)
    {
        Children = children;
        _outcomes = outcomes;
        _allFutures = children is Future[];
        new ChildSet(loop, children, owner, checkParam);
    }

    /// <summary>
    /// What the gather must do now that <paramref name="child"/> is done: nothing once the gather itself is
    /// (<paramref name="gatherDone"/>), beyond retrieving the child's exception, as asyncio's gather does.
    /// </summary>
    public Step OnChildDone(object child, bool gatherDone, out Exception? failure)
    {
        failure = null;
        // The common case, told apart with one type test, or none for an array of futures (W2).
        bool succeeded = _allFutures ? Unsafe.As<Future>(child).SucceededCore : Child.Succeeded(child);
        if (!succeeded) Child.RetrieveException(child);
        if (gatherDone) return Step.Wait;
        _finished++;
        if (!succeeded && !_outcomes)
        {
            if (Child.IsCancelled(child)) { failure = Child.CancelledErrorOf(child); return Step.Fail; }
            if (Child.GetException(child) is { } e) { failure = e; return Step.Fail; }
        }
        if (_finished < Children.Length) return Step.Wait;
        if (_cancelRequested) { failure = new CancelledError(_message); return Step.Fail; }
        return Step.Succeed;
    }

    /// <summary>
    /// Cancels the children that are not done; whether any accepted. A running coroutine (a .NET Task)
    /// cannot be cancelled from here, but counts as accepting: its awaits are cancelled with the scope that
    /// started it (which is how a cancelled awaiting task reaches it), and the gather ends with
    /// <see cref="CancelledError"/> even if it swallows the cancellation, as asyncio's does (bpo-32684).
    /// </summary>
    public bool CancelChildren(string? message)
    {
        bool any = false;
        foreach (var c in Children)
            if (!Child.IsDone(c) && (c is Task or Coroutine || Child.TryCancel(c, message))) any = true;
        if (any)
        {
            _cancelRequested = true;
            _message = message;
        }
        return any;
    }
}

public static partial class Aio
{
    // ---- typed gathers: results in order ----

    /// <summary>
    /// Runs the tasks concurrently and returns their results in order; asyncio's <c>gather()</c>. The first
    /// failure (or cancellation) of a task completes the gather with that exception at once; the other
    /// tasks keep running. Cancelling the gather (or the task that awaits it) cancels the tasks.
    /// </summary>
    public static Future<T[]> Gather<T>(params AioTask<T>[] tasks) => Gather((IEnumerable<AioTask<T>>)tasks);

    /// <summary>Gathers tasks with results; see <see cref="Gather{T}(AioTask{T}[])"/>.</summary>
    public static Future<T[]> Gather<T>(IEnumerable<AioTask<T>> tasks) => GatherTyped<AioTask<T>, T>(tasks, false, Child.GetResult<T>);

    /// <summary>Gathers futures with results; see <see cref="Gather{T}(AioTask{T}[])"/>.</summary>
    public static Future<T[]> Gather<T>(params Future<T>[] futures) => Gather((IEnumerable<Future<T>>)futures);

    /// <summary>Gathers futures with results; see <see cref="Gather{T}(AioTask{T}[])"/>.</summary>
    public static Future<T[]> Gather<T>(IEnumerable<Future<T>> futures) => GatherTyped<Future<T>, T>(futures, false, Child.GetResult<T>);

    /// <summary>
    /// Gathers coroutines that are already running (calls of async methods); see
    /// <see cref="Gather{T}(AioTask{T}[])"/>. A <see cref="Task"/> cannot be cancelled from outside: its
    /// awaits belong to the task that started it and are cancelled with that task. Cancelling the gather
    /// therefore does not stop them; it ends with <see cref="CancelledError"/> once they are done.
    /// <para>The gather learns of each Task's end in the loop step that ends it. Past 64 Tasks on the
    /// real clock it watches them all through one <see cref="Task.WhenEach(Task[])"/> instead, which costs a
    /// few bytes each rather than a continuation each, and hears of their ends through the thread pool, a few
    /// microseconds late (or later, if the pool is starved). To keep a large gather on the loop alone, gather
    /// <see cref="AioTask{T}"/>s (<see cref="CreateTask{T}(Func{Task{T}}, string?)"/>).</para>
    /// </summary>
    public static Future<T[]> Gather<T>(params Task<T>[] tasks) => Gather((IEnumerable<Task<T>>)tasks);

    /// <summary>Gathers running coroutines with results; see <see cref="Gather{T}(Task{T}[])"/>.</summary>
    public static Future<T[]> Gather<T>(IEnumerable<Task<T>> tasks) => GatherTyped<Task<T>, T>(tasks, false, Child.GetResult<T>);

    /// <summary>
    /// Gathers running <see cref="Coroutine{T}"/>s (calls of <c>async Coroutine&lt;T&gt;</c> methods) and returns
    /// their results in order; see <see cref="Gather{T}(AioTask{T}[])"/>. As with <see cref="Task"/>s, a
    /// coroutine cannot be cancelled from outside: cancelling the gather ends it with
    /// <see cref="CancelledError"/> once they are done. The gather waits in each coroutine's own slot and
    /// hears of its end in the step that ends it, at any size, with no allocation per pending coroutine.
    /// </summary>
    public static Future<T[]> Gather<T>(params Coroutine<T>[] coroutines) => Gather((IEnumerable<Coroutine<T>>)coroutines);

    /// <summary>Gathers running coroutines with results; see <see cref="Gather{T}(Coroutine{T}[])"/>.</summary>
    public static Future<T[]> Gather<T>(IEnumerable<Coroutine<T>> coroutines) => GatherTyped<Coroutine<T>, T>(coroutines, false, Child.GetResult<T>);

    // ---- result-less gathers ----

    /// <summary>Gathers futures and tasks of any kind, without collecting values; see <see cref="Gather{T}(AioTask{T}[])"/>.</summary>
    public static Future Gather(params Future[] futures) => Gather((IEnumerable<Future>)futures);

    /// <summary>Gathers futures and tasks without collecting values.</summary>
    public static Future Gather(IEnumerable<Future> futures) => GatherUntyped(futures);

    /// <summary>Gathers running coroutines without values; see <see cref="Gather{T}(Task{T}[])"/>.</summary>
    public static Future Gather(params Task[] tasks) => Gather((IEnumerable<Task>)tasks);

    /// <summary>Gathers running coroutines without values.</summary>
    public static Future Gather(IEnumerable<Task> tasks) => GatherUntyped(tasks);

    /// <summary>Gathers running <see cref="Coroutine"/>s without values; see <see cref="Gather{T}(Coroutine{T}[])"/>.</summary>
    public static Future Gather(params Coroutine[] coroutines) => Gather((IEnumerable<Coroutine>)coroutines);

    /// <summary>Gathers running <see cref="Coroutine"/>s without values; see <see cref="Gather{T}(Coroutine{T}[])"/>.</summary>
    public static Future Gather(IEnumerable<Coroutine> coroutines) => GatherUntyped(coroutines);

    // ---- outcomes (return_exceptions=True) ----

    /// <summary>
    /// Like <see cref="Gather{T}(Task{T}[])"/>, but waits for every child and reports how each ended
    /// instead of failing; asyncio's <c>gather(..., return_exceptions=True)</c>.
    /// </summary>
    public static Future<Outcome<T>[]> GatherOutcomes<T>(params IEnumerable<Task<T>> tasks) => GatherTyped<Task<T>, Outcome<T>>(tasks, true, ReadOutcome<T>);

    /// <summary>Reports how each task ended; see <see cref="GatherOutcomes{T}(IEnumerable{Task{T}})"/>.</summary>
    public static Future<Outcome<T>[]> GatherOutcomes<T>(params IEnumerable<AioTask<T>> tasks) => GatherTyped<AioTask<T>, Outcome<T>>(tasks, true, ReadOutcome<T>);

    /// <summary>Reports how each future ended; see <see cref="GatherOutcomes{T}(IEnumerable{Task{T}})"/>.</summary>
    public static Future<Outcome<T>[]> GatherOutcomes<T>(params IEnumerable<Future<T>> futures) => GatherTyped<Future<T>, Outcome<T>>(futures, true, ReadOutcome<T>);

    /// <summary>Reports how each future or task ended (values are not collected).</summary>
    public static Future<Outcome<object?>[]> GatherOutcomes(params IEnumerable<Future> futures) => GatherTyped<Future, Outcome<object?>>(futures, true, ReadOutcome<object?>);

    /// <summary>Reports how each running coroutine ended (values are not collected).</summary>
    public static Future<Outcome<object?>[]> GatherOutcomes(params IEnumerable<Task> tasks) => GatherTyped<Task, Outcome<object?>>(tasks, true, ReadOutcome<object?>);

    /// <summary>Reports how each <see cref="Coroutine{T}"/> ended; see <see cref="GatherOutcomes{T}(IEnumerable{Task{T}})"/>.</summary>
    public static Future<Outcome<T>[]> GatherOutcomes<T>(params IEnumerable<Coroutine<T>> coroutines) => GatherTyped<Coroutine<T>, Outcome<T>>(coroutines, true, ReadOutcome<T>);

    /// <summary>Reports how each <see cref="Coroutine"/> ended (values are not collected).</summary>
    public static Future<Outcome<object?>[]> GatherOutcomes(params IEnumerable<Coroutine> coroutines) => GatherTyped<Coroutine, Outcome<object?>>(coroutines, true, ReadOutcome<object?>);

    static Outcome<T> ReadOutcome<T>(object child)
    {
        if (Child.IsCancelled(child)) return new Outcome<T>(default!, Child.CancelledErrorOf(child));
        if (Child.GetException(child) is { } e) return new Outcome<T>(default!, e);
        return new Outcome<T>(Child.GetResult<T>(child), null);
    }

    static Future<TResult[]> GatherTyped<TItem, TResult>(IEnumerable<TItem> items, bool outcomes, Func<object, TResult> read,
        [CallerArgumentExpression(nameof(items))] string paramName = "") where TItem : class
    {
        var loop = EventLoop.GetRunningLoop();
        loop.CheckThread(nameof(Aio), "Gather");
        // The caller's parameter names the ArgumentException; an array of futures is checked as it is watched.
        var children = Child.Collect(loop, items, paramName, checkFutures: false);
        if (children.Length == 0)
        {
            var empty = new Future<TResult[]>(loop);
            empty.SetResult([]);
            return empty;
        }
        return new GatheringFuture<TResult>(loop, children, outcomes, read, paramName);
    }

    static Future GatherUntyped<TItem>(IEnumerable<TItem> items, [CallerArgumentExpression(nameof(items))] string paramName = "") where TItem : class
    {
        var loop = EventLoop.GetRunningLoop();
        loop.CheckThread(nameof(Aio), "Gather");
        var children = Child.Collect(loop, items, paramName, checkFutures: false);
        if (children.Length == 0)
        {
            var empty = new Future(loop);
            empty.SetResult();
            return empty;
        }
        return new GatheringFuture(loop, children, paramName);
    }
}
