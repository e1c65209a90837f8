using System.Runtime.CompilerServices;

namespace Asyncio;

// What the combinators (Gather, Wait, AsCompleted, Shield) need from the things they combine. A child
// is one of this loop's futures (and tasks), a running Coroutine, or a .NET Task (a running async Task
// method). Neither a Coroutine nor a .NET Task can be cancelled from outside; their awaits belong to the
// scope that started them, which is how cancellation reaches them.

/// <summary>Receives the completion of a watched child (on the loop thread).</summary>
internal interface IChildObserver
{
    void ChildDone(object child);
}

/// <summary>Reads the state of a child (a <see cref="Future"/> or a <see cref="Task"/>).</summary>
internal static class Child
{
    public static bool IsDone(object child) => child switch
    {
        Future f => f.IsDone,
        Coroutine c => c.IsCompleted,
        _ => ((Task)child).IsCompleted,
    };

    /// <summary>Whether a finished child ended with neither an exception nor a cancellation.</summary>
    public static bool Succeeded(object child) => child switch
    {
        Future f => f.SucceededCore,
        Coroutine c => c.IsCompletedSuccessfully,
        _ => ((Task)child).IsCompletedSuccessfully,
    };

    public static bool IsCancelled(object child) => child switch
    {
        Future f => f.IsCancelled,
        Coroutine c => c.IsCancelled,
        _ => ((Task)child).IsCanceled,
    };

    /// <summary>The exception a finished child failed with (unwrapped), or <see langword="null"/>.</summary>
    public static Exception? GetException(object child)
    {
        if (child is Future f) return f.IsCancelled ? null : f.ExceptionCore;
        if (child is Coroutine c) return c.IsCancelled ? null : c.GetException();
        var t = (Task)child;
        if (!t.IsFaulted) return null;
        var agg = t.Exception!;
        return agg.InnerExceptions.Count == 1 ? agg.InnerExceptions[0] : agg;
    }

    /// <summary>
    /// <see cref="GetException"/> for a combinator that takes the child's outcome over: a future child's
    /// exception is marked retrieved, so it is not reported as never retrieved (asyncio calls
    /// <c>exception()</c> there).
    /// </summary>
    public static Exception? RetrieveException(object child) =>
        child is Future f ? (f.IsCancelled ? null : f.RetrieveException()) : GetException(child);

    /// <summary>The <see cref="CancelledError"/> to report for a cancelled child.</summary>
    public static CancelledError CancelledErrorOf(object child)
    {
        if (child is Future f) return f.MakeCancelledError();
        try
        {
            if (child is Coroutine c) c.ThrowIfFailed();
            else ((Task)child).GetAwaiter().GetResult();
        }
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

    /// <summary>Cancels a child future; a coroutine or .NET Task cannot be cancelled from outside and returns <see langword="false"/>.</summary>
    public static bool TryCancel(object child, string? message) => child is Future f && f.Cancel(message);

    /// <summary>Throws unless every future child belongs to <paramref name="loop"/>.</summary>
    public static void CheckLoop(EventLoop loop, object child, string paramName)
    {
        if (child == null) ThrowNull(paramName);
        if (child is Future f && !ReferenceEquals(f.Loop, loop)) ThrowOtherLoop(paramName);
    }

    /// <summary><see cref="CheckLoop"/> for a child known to be a future or null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CheckFuture(EventLoop loop, [System.Diagnostics.CodeAnalysis.NotNull] Future? f, string paramName)
    {
        if (f == null) ThrowNull(paramName);
        if (!ReferenceEquals(f.Loop, loop)) ThrowOtherLoop(paramName);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    static void ThrowNull(string paramName) => throw new ArgumentException("The collection contains null.", paramName);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    static void ThrowOtherLoop(string paramName) => throw new ArgumentException("A future belongs to another event loop.", paramName);

    /// <summary>
    /// Makes a child list from <paramref name="items"/>, checking each. An array of Tasks is used as it
    /// is (array covariance; it is only read), so that a million children are not copied.
    /// </summary>
    /// <remarks>With <c>checkFutures</c> <see langword="false"/>, an array of futures is copied unchecked: the caller's
    /// <see cref="ChildSet"/> checks each future as it watches it (one pass over a million children instead of two).</remarks>
    public static object[] Collect<TItem>(EventLoop loop, IEnumerable<TItem> items, string paramName, bool checkFutures = true) where TItem : class
    {
        ArgumentNullException.ThrowIfNull(items, paramName);
        if (items is Task[] or Coroutine[])
        {
            var array = (object[])(object)items;
            foreach (var t in array)
                if (t == null) throw new ArgumentException("The collection contains null.", paramName);
            return array;
        }
        if (items is Future[] futures)
        {
            // Futures and tasks (AioTask<T>[] is a Future[]): checked and copied without a type test or an
            // enumerator each (W2 gathers a million tasks), into an array ChildSet knows holds only futures.
            if (checkFutures)
                foreach (var f in futures) CheckFuture(loop, f, paramName);
            var copy = new Future[futures.Length];
            Array.Copy(futures, copy, futures.Length);
            return copy;
        }
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
/// Watches a set of children for one observer, on the loop thread, until <see cref="Stop"/>.
/// </summary>
/// <remarks>
/// <para>A future child gets a node in its callback list (no delegate). A child already done is
/// reported on the next iteration, as asyncio's done callbacks are, never from inside the constructor.</para>
/// <para>A pending .NET Task child is watched in one of two ways:</para>
/// <list type="bullet">
/// <item>One by one: each gets an awaiter continuation that captures the current scope. It runs at the
/// moment the Task completes when that happens on the loop thread in that scope (a coroutine's last step
/// usually does), and is posted to the loop otherwise. The combinator therefore learns of the child at a
/// moment fixed by the program alone, and no other thread takes part. This costs a delegate, a node and
/// a continuation object per child (about 150 bytes and 100 ns to register). Used on virtual time, and on
/// the real clock for up to <see cref="WatchEachLimit"/> Tasks (an array of Tasks longer than that, or more
/// pending Tasks in a mixed list, take the pump): the gathers most programs write
/// (<c>await Aio.Gather(A(), B())</c>).</item>
/// <item>Together, through <see cref="Task.WhenEach(Task[])"/>, on the real clock for more:
/// its one completion action serves every Task, so that gathering a million running coroutines costs a
/// slot in an array each, and registering them takes a fraction of a millisecond instead of a hundred.
/// WhenEach hands each batch of completions to the thread pool, which posts it back to the loop: the
/// combinator learns of a child a few microseconds late, at a moment that depends on thread timing. On
/// virtual time that would let the clock jump past the completion (a gather failing at t=10 instead of
/// t=1, a <c>WaitFor</c> timing out on a Task that had finished), hence one by one there.</item>
/// </list>
/// <para>(An awaiter continuation with <c>ConfigureAwait(false)</c> would be cheaper, but .NET never runs
/// one inline while a custom synchronisation context is current, and the loop thread always has one.)</para>
/// </remarks>
internal sealed class ChildSet : IFutureObserver, ICoroutineObserver
{
    /// <summary>
    /// On the real clock, up to this many Task children (an array of Tasks), or pending Task children (a mixed
    /// list), are watched one by one; more through one <see cref="Task.WhenEach(Task[])"/> pump (see the remarks).
    /// </summary>
    internal const int WatchEachLimit = 64;

    readonly EventLoop _loop;
    readonly IChildObserver _owner;
    List<FutureNode>? _nodes;
    List<TaskNode>? _taskNodes;
    object[]? _observedAmong;  // the children, when some are watched through their observer slot (no node, no allocation each)
    PumpLink? _pump;
    Task[]? _pumpTasks;
    bool _stopped;

    /// <summary>Watches <paramref name="children"/> for <paramref name="owner"/>.</summary>
    /// <remarks><c>checkParam</c> is given when the children are an array of futures not checked yet
    /// (<see cref="Child.Collect"/>): each is checked as it is watched, and a bad one undoes the set and throws
    /// <see cref="ArgumentException"/> for that parameter.</remarks>
    public ChildSet(EventLoop loop, object[] children, IChildObserver owner, string? checkParam = null)
    {
        _loop = loop;
        _owner = owner;
        bool hook = loop.IsVirtualTime;
        if (!hook && children is Task[] allTasks)
        {
            if (allTasks.Length > WatchEachLimit)
            {
                // Completed ones come out of the first MoveNext of the pump, which starts on the next iteration.
                StartPumpLater(allTasks);
                return;
            }
            hook = true;
        }
        if (children is Future[] futures)
        {
            _observedAmong = children;   // before any is watched: Stop, if a check fails, looks at them all
            if (checkParam == null)
                foreach (var f in futures) WatchFuture(loop, f);
            else
                foreach (var f in futures)
                {
                    if (f == null || !ReferenceEquals(f.Loop, loop))
                    {
                        Stop();
                        Child.CheckFuture(loop, f, checkParam);
                    }
                    WatchFuture(loop, f);
                }
            return;
        }
        List<Task>? pumped = null;
        foreach (var child in children)
        {
            if (child is Future f)
            {
                if (WatchFuture(loop, f)) _observedAmong = children;
                continue;
            }
            if (child is Coroutine c)
            {
                // No node: the set itself waits in the coroutine's slot, and hears of its end in the step that ends it.
                _observedAmong = children;
                if (!c.AddWaiter(this)) loop.EnqueueInternal(static o => ((CoroutineReport)o!).Run(), new CoroutineReport(this, c));
                continue;
            }
            var t = (Task)child;
            if (t.IsCompleted) loop.EnqueueInternal(static o => ((TaskNode)o!).Run(), new TaskNode(this, t));
            else if (hook) Watch(t);
            else (pumped ??= new List<Task>()).Add(t);
        }
        if (pumped == null) return;
        if (pumped.Count > WatchEachLimit) StartPumpLater(pumped.ToArray());
        else foreach (var t in pumped) Watch(t);
    }

    /// <summary>Watches a future child: through its observer slot if free (returns <see langword="true"/>), else with a node in its list.</summary>
    bool WatchFuture(EventLoop loop, Future f)
    {
        if (f.TryObserve(this)) return true;
        var node = new FutureNode(this, f);
        (_nodes ??= new List<FutureNode>()).Add(node);
        if (f.IsDone) loop.EnqueueInternal(static o => ((FutureNode)o!).NotifyDone(), node);
        else f.Append(node);
        return false;
    }

    /// <summary>Watches a pending Task one by one (see the remarks).</summary>
    void Watch(Task t)
    {
        var node = new TaskNode(this, t);
        (_taskNodes ??= new List<TaskNode>()).Add(node);
        t.GetAwaiter().UnsafeOnCompleted(node.Run);
    }

    void StartPumpLater(Task[] tasks)
    {
        _pumpTasks = tasks;
        _pump = new PumpLink(_loop, this);
        _loop.EnqueueInternal(static o =>
        {
            var set = (ChildSet)o!;
            var tasks = set._pumpTasks!;
            set._pumpTasks = null;
            if (!set._stopped) set._pump!.Start(Task.WhenEach(tasks));
        }, this);
    }

    /// <summary>
    /// The pump: reads WhenEach's completions on the loop thread and reports them to its set until the set
    /// is cut (<see cref="Stop"/>). What WhenEach has ready is read at once; when it has to wait, the wait ends
    /// on whichever thread WhenEach resumes it and only posts the next read back to the loop, with delegates
    /// made once per pump (an <c>await foreach</c> posting through the loop's synchronisation context
    /// allocated about 100 bytes per wait).
    /// </summary>
    /// <remarks>
    /// The enumeration takes no cancellation token: with one, every wait for the next completion would
    /// allocate a cancellable wrapper (about 200 bytes each, several per millisecond while a gather's
    /// children finish). A stopped pump instead ends at the next completion; until then it holds WhenEach's
    /// enumeration (which holds the children until they complete) but nothing that leads to the set or its
    /// observer. Everything here but the end of a wait runs on the loop thread, <see cref="Stop"/> included.
    /// </remarks>
    sealed class PumpLink
    {
        public ChildSet? Set;
        readonly EventLoop _loop;
        readonly Action _onWaitEnded;
        IAsyncEnumerator<Task>? _completions;
        ValueTask<bool> _waiting;

        static readonly Action<object?> s_resume = static o => ((PumpLink)o!).Resume();

        public PumpLink(EventLoop loop, ChildSet set)
        {
            _loop = loop;
            Set = set;
            _onWaitEnded = () => _loop.PostInternal(s_resume, this);
        }

        /// <summary>Starts reading (loop thread).</summary>
        public void Start(IAsyncEnumerable<Task> completions)
        {
            _completions = completions.GetAsyncEnumerator();
            Read();
        }

        void Read()
        {
            while (Set != null)
            {
                var next = _completions!.MoveNextAsync();
                if (!next.IsCompleted)
                {
                    _waiting = next;
                    next.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onWaitEnded);
                    return;
                }
                if (!next.Result || !Report()) return;
            }
        }

        void Resume()
        {
            var next = _waiting;
            _waiting = default;
            if (next.Result && Report()) Read();
        }

        /// <summary>Hands the current completion to the set; false once the set is cut.</summary>
        bool Report()
        {
            if (Set is not { } set) return false;
            set.Report(_completions!.Current);
            return true;
        }
    }

    /// <summary>The combinator this set reports to, when it is a future (a gather, a shield, a wait); for the call graph.</summary>
    internal Future? OwnerFuture => _owner as Future;

    void Report(object child)
    {
        if (!_stopped) _owner.ChildDone(child);
    }

    /// <summary>A future watched through its observer slot is done (called synchronously as it completes).</summary>
    public void FutureDone(Future future) => Report(future);

    /// <summary>A watched coroutine ended: reported at once on the loop thread, posted there from any other.</summary>
    public void CoroutineDone(Coroutine coroutine)
    {
        if (_loop.IsLoopThread) Report(coroutine);
        else _loop.PostInternal(static o => ((CoroutineReport)o!).Run(), new CoroutineReport(this, coroutine));
    }

    /// <summary>A coroutine's end to report on a later iteration (it ended before the set watched it, or on another thread).</summary>
    sealed class CoroutineReport(ChildSet set, Coroutine child)
    {
        public void Run() => set.Report(child);
    }

    /// <summary>
    /// Stops reporting; futures forget their nodes. A Task's continuation stays until the Task completes, and
    /// then does nothing: it no longer leads to the set, its observer or the other children.
    /// </summary>
    public void Stop()
    {
        if (_stopped) return;
        _stopped = true;
        if (_nodes != null)
            foreach (var n in _nodes) n.Detach();
        if (_observedAmong != null)
            foreach (var child in _observedAmong)
                if (child is Future f) f.StopObserving(this);
                else if (child is Coroutine c) c.RemoveWaiter(this);
        if (_taskNodes != null)
            foreach (var n in _taskNodes) n.Detach();
        if (_pump != null) _pump.Set = null;
    }

    /// <summary>Reports a Task child; brings the report to the loop thread when it completed elsewhere.</summary>
    sealed class TaskNode(ChildSet set, Task child)
    {
        ChildSet? _set = set;  // cut by Stop, so that a continuation left on a pending Task holds nothing

        public void Detach() => _set = null;

        public void Run()
        {
            if (_set is not { } set) return;
            var loop = set._loop;
            if (loop.IsLoopThread) set.Report(child);
            else loop.PostFromContext(static o => ((TaskNode)o!).Run(), this, loop.RootScope);
        }
    }

    sealed class FutureNode(ChildSet set, Future future) : WaitNode
    {
        bool _done;

        public override void NotifyDone()
        {
            if (_done) return;
            _done = true;
            set.Report(future);
        }

        internal override object? AwaitingParty => set.OwnerFuture;

        public void Detach()
        {
            if (_done) return;
            _done = true;
            if (!future.IsDone && Prev != null) future.Unlink(this); // a linked node's Prev is never null
        }
    }
}
