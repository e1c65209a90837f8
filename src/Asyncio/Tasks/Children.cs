using System.Runtime.CompilerServices;

namespace Asyncio;

// What the combinators (Gather, Wait, AsCompleted, Shield) need from the things they combine. A child
// is one of this loop's futures (and tasks), or a .NET Task: hot coroutines are Tasks. A .NET Task cannot
// be cancelled from outside; its awaits belong to the scope that started it, which is how cancellation
// reaches it.

/// <summary>Receives the completion of a watched child.</summary>
internal interface IChildObserver
{
    void ChildDone(int index);
}

/// <summary>Reads the state of a child (a <see cref="Future"/> or a <see cref="Task"/>).</summary>
internal static class Child
{
    public static bool IsDone(object child) => child is Future f ? f.IsDone : ((Task)child).IsCompleted;

    public static bool IsCancelled(object child) => child is Future f ? f.IsCancelled : ((Task)child).IsCanceled;

    /// <summary>The exception a finished child failed with (unwrapped), or <see langword="null"/>.</summary>
    public static Exception? GetException(object child)
    {
        if (child is Future f) return f.IsCancelled ? null : f.ExceptionCore;
        var t = (Task)child;
        if (!t.IsFaulted) return null;
        var agg = t.Exception!;
        return agg.InnerExceptions.Count == 1 ? agg.InnerExceptions[0] : agg;
    }

    /// <summary>The <see cref="CancelledError"/> to report for a cancelled child.</summary>
    public static CancelledError CancelledErrorOf(object child)
    {
        if (child is Future f) return f.MakeCancelledError();
        try { ((Task)child).GetAwaiter().GetResult(); }
        catch (CancelledError e) { return new CancelledError(e.CancelMessage, e); }
        catch (OperationCanceledException e) { return new CancelledError(null, e); }
        return new CancelledError();
    }

    /// <summary>The result of a child that succeeded.</summary>
    public static T GetResult<T>(object child) => child switch
    {
        IFutureResult<T> f => f.GetResultCore(),
        Task<T> t => t.Result,
        _ => default!,
    };

    /// <summary>Cancels a child future; a .NET Task cannot be cancelled from outside and returns <see langword="false"/>.</summary>
    public static bool TryCancel(object child, string? message) => child is Future f && f.Cancel(message);

    /// <summary>Throws unless every future child belongs to <paramref name="loop"/>.</summary>
    public static void CheckLoop(EventLoop loop, object child, string paramName)
    {
        if (child == null) throw new ArgumentException("The collection contains null.", paramName);
        if (child is Future f && !ReferenceEquals(f.Loop, loop))
            throw new ArgumentException("A future belongs to another event loop.", paramName);
    }

    /// <summary>Makes a child list from <paramref name="items"/>, checking each.</summary>
    public static object[] Collect<TItem>(EventLoop loop, IEnumerable<TItem> items, string paramName) where TItem : class
    {
        ArgumentNullException.ThrowIfNull(items, paramName);
        var list = items is ICollection<TItem> c ? new object[c.Count] : null;
        if (list != null)
        {
            int i = 0;
            foreach (var item in items) { CheckLoop(loop, item, paramName); list[i++] = item; }
            return list;
        }
        var grow = new List<object>();
        foreach (var item in items) { CheckLoop(loop, item, paramName); grow.Add(item); }
        return grow.ToArray();
    }
}

/// <summary>
/// A watch on one child: a node in a future's callback list, or a continuation of a .NET Task (marshalled
/// to the loop when the Task completes elsewhere). <see cref="Stop"/> ends the watch.
/// </summary>
internal sealed class ChildWatch : WaitNode
{
    readonly EventLoop _loop;
    readonly object _child;
    IChildObserver? _owner;
    readonly int _index;

    ChildWatch(EventLoop loop, object child, IChildObserver owner, int index)
    {
        _loop = loop;
        _child = child;
        _owner = owner;
        _index = index;
    }

    /// <summary>Watches <paramref name="child"/>; a child that is already done is reported on the next iteration.</summary>
    public static ChildWatch Start(EventLoop loop, object child, IChildObserver owner, int index)
    {
        var w = new ChildWatch(loop, child, owner, index);
        if (child is Future f)
        {
            if (f.IsDone) loop.EnqueueInternal(s_report, w);
            else f.Append(w);
        }
        else
        {
            var t = (Task)child;
            if (t.IsCompleted) loop.EnqueueInternal(s_report, w);
            else t.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(w.OnTaskCompleted);
        }
        return w;
    }

    static readonly Action<object?> s_report = static o => ((ChildWatch)o!).Report();

    void Report()
    {
        var owner = _owner;
        if (owner == null) return;
        _owner = null;
        owner.ChildDone(_index);
    }

    public override void NotifyDone() => Report();

    void OnTaskCompleted()
    {
        if (_loop.IsLoopThread) Report();
        else _loop.PostFromContext(static o => ((ChildWatch)o!).Report(), this, _loop.RootScope);
    }

    /// <summary>Stops reporting; a future child forgets the watch.</summary>
    public void Stop()
    {
        if (_owner == null) return;
        _owner = null;
        if (_child is Future f && !f.IsDone && (Prev != null || Next != null || f.HasOnlyNode(this))) f.Unlink(this);
    }
}
