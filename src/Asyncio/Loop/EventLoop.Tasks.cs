using System.Runtime.CompilerServices;
namespace Asyncio;

public sealed partial class EventLoop
{
    // The loop's strong references to its tasks: a list through AioTask.NextLive, oldest first. A task that
    // creates tasks while it is the list's tail becomes its anchor, and a task that ends right after the anchor
    // (or at the head, before there is one) is unlinked at once, touching only itself and the anchor: when a task
    // spawns a batch and the batch ends in the order it was made (W2's million tasks, a pool of workers), the
    // list never holds a finished task. One that ends elsewhere is not unlinked at once, which would mean
    // finding its neighbour (a walk, or a back link in every task): the finished ones are swept out as soon as
    // they outnumber the live ones, so the list holds at most twice the live tasks and the sweeping costs O(1)
    // per task. That alone kept a finished task the program had dropped for as long as the live tasks
    // outnumbered the finished ones - for ever, for the last task to fail in a program whose main task lives
    // on - so its exception was never reported as never retrieved. So the loop also sweeps when it is about to
    // wait with finished tasks in the list (LetGoOfFinishedWork): off the paths that run callbacks, at a moment
    // when it has nothing else to do, and bounded.
    int _taskIds;
    AioTask? _firstLive;
    AioTask? _lastLive;       // the list's tail (null when the list is empty)
    AioTask? _anchor;         // a task in the list (null: before its head) after which an ending task is unlinked at once
    int _liveCount;           // tasks not done
    int _finishedInList;      // done tasks still in the list
    AioTask? _sweepAfter;     // where the idle sweep resumes: after this task, which is in the list (null: at the head)
    long _lastIdleSweep;      // Stopwatch timestamp of the last idle sweep of a long list

    /// <summary>Links of the list of tasks that one idle sweep visits at most (<see cref="SweepWhileIdle"/>).</summary>
    internal const int IdleSweepLinks = 256;

    /// <summary>A list of tasks up to this long is swept at every wait that finds finished tasks in it; a longer one at most once per <see cref="s_idleSweepInterval"/>.</summary>
    internal const int ShortTaskList = 64;
    static readonly long s_idleSweepInterval = System.Diagnostics.Stopwatch.Frequency / 1000;   // 1 ms

    /// <summary>The task whose first step is running (innermost, for eager tasks), and that step's scope; see <see cref="AioTask.Start"/>.</summary>
    internal AioTask? StartingTask;
    internal CancelScope? StartingScope;

    ScopeSupply? _scopeSupply;   // made at the first burst of task starts (ScopeSupply.cs)

    /// <summary>The root scope for the first step of <paramref name="task"/>: made ahead on another thread during a burst of starts, else now.</summary>
    internal CancelScope NewTaskScope(AioTask task)
    {
        if (_ready.Count + _queuedStarts > ScopeSupply.BurstAbove && (_scopeSupply ??= new ScopeSupply()).Take(task) is { } made) return made;
        return new CancelScope(this, task, null);
    }

    /// <summary>The supply of task scopes, once a burst has made it (for tests).</summary>
    internal ScopeSupply? ScopeSupplyIfAny => _scopeSupply;

    /// <summary>Creates a pending future bound to this loop; asyncio's <c>create_future()</c>.</summary>
    public Future CreateFuture() => new(this);

    /// <summary>Creates a pending future with a value, bound to this loop.</summary>
    public Future<T> CreateFuture<T>() => new(this);

    /// <summary>
    /// Wraps <paramref name="coroutine"/> in a task and schedules it; asyncio's <c>create_task()</c>. The
    /// coroutine starts on a later iteration, or at once, up to its first suspension, when
    /// <see cref="EagerTasks"/> is on. Loop thread only.
    /// </summary>
    /// <param name="coroutine">The coroutine function: an async method or lambda returning <see cref="Task"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    public AioTask CreateTask(Func<Task> coroutine, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return Schedule(new AioTask(this, coroutine, name));
    }

    /// <summary>Wraps a coroutine with a result in a task and schedules it; see <see cref="CreateTask(Func{Task}, string?)"/>.</summary>
    public AioTask<T> CreateTask<T>(Func<Task<T>> coroutine, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return Schedule(new AioTask<T>(this, coroutine, name));
    }

    /// <summary>
    /// Wraps a <see cref="Coroutine"/> function in a task and schedules it; see <see cref="CreateTask(Func{Task}, string?)"/>.
    /// The task waits in the coroutine's own slot (no continuation object) and ends in the step that ends it.
    /// A plain async lambda (<c>CreateTask(async () =&gt; ...)</c>) takes this form: the compiler builds it as an
    /// <c>async Coroutine</c> lambda, which behaves as an <c>async Task</c> one and costs less.
    /// </summary>
    [OverloadResolutionPriority(CoroutinePriority.Value)]
    public AioTask CreateTask(Func<Coroutine> coroutine, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return Schedule(new AioTask(this, coroutine, name));
    }

    /// <summary>Wraps a <see cref="Coroutine{T}"/> function in a task and schedules it; see <see cref="CreateTask(Func{Coroutine}, string?)"/>.</summary>
    [OverloadResolutionPriority(CoroutinePriority.Value)]
    public AioTask<T> CreateTask<T>(Func<Coroutine<T>> coroutine, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return Schedule(new AioTask<T>(this, coroutine, name));
    }

    /// <summary>
    /// Wraps <paramref name="coroutine"/> applied to <paramref name="arg"/> in a task and schedules it: asyncio's
    /// <c>create_task(coro(arg))</c>, with the call made when the task starts. Unlike
    /// <c>CreateTask(() =&gt; F(arg))</c>, it allocates no closure and no delegate per task (88 bytes) when
    /// <paramref name="coroutine"/> is a static method or a cached delegate: the argument waits in the task,
    /// which lets it go once the coroutine has started. See <see cref="CreateTask(Func{Task}, string?)"/>.
    /// A method group with overloads of both shapes (<c>Fetch()</c> and <c>Fetch(string url)</c>) given a
    /// string takes this form: <c>CreateTask(Fetch, url)</c> calls <c>Fetch(url)</c>; name the task with
    /// <c>name:</c>.
    /// </summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    [OverloadResolutionPriority(CoroutinePriority.ArgTask)]
    public AioTask CreateTask<TArg>(Func<TArg, Task> coroutine, TArg arg, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return Schedule(new ArgTask<TArg>(this, coroutine, arg, name));
    }

    /// <summary>Wraps a coroutine with a result, applied to <paramref name="arg"/>, in a task; see <see cref="CreateTask{TArg}(Func{TArg, Task}, TArg, string?)"/>.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    [OverloadResolutionPriority(CoroutinePriority.ArgTask)]
    public AioTask<T> CreateTask<TArg, T>(Func<TArg, Task<T>> coroutine, TArg arg, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return Schedule(new ArgTask<TArg, T>(this, coroutine, arg, name));
    }

    /// <summary>Wraps a <see cref="Coroutine"/> function, applied to <paramref name="arg"/>, in a task; see <see cref="CreateTask{TArg}(Func{TArg, Task}, TArg, string?)"/>.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    [OverloadResolutionPriority(CoroutinePriority.ArgCoroutine)]
    public AioTask CreateTask<TArg>(Func<TArg, Coroutine> coroutine, TArg arg, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return Schedule(new ArgTask<TArg>(this, coroutine, arg, name));
    }

    /// <summary>Wraps a <see cref="Coroutine{T}"/> function, applied to <paramref name="arg"/>, in a task; see <see cref="CreateTask{TArg}(Func{TArg, Task}, TArg, string?)"/>.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    [OverloadResolutionPriority(CoroutinePriority.ArgCoroutine)]
    public AioTask<T> CreateTask<TArg, T>(Func<TArg, Coroutine<T>> coroutine, TArg arg, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return Schedule(new ArgTask<TArg, T>(this, coroutine, arg, name));
    }

    TTask Schedule<TTask>(TTask task) where TTask : AioTask
    {
        CheckThread(nameof(CreateTask));
        CheckNotClosed();
        var before = _lastLive;
        if (before == null) _firstLive = task;
        else
        {
            if (ReferenceEquals(before, _current.Task)) _anchor = before;   // a task spawning work behind itself
            before.NextLive = task;
        }
        _lastLive = task;
        _liveCount++;
        if (_trace != null) TraceTask(LoopTraceEventKind.TaskCreated, task);
        // The task enters its own scope when it starts (the scope is created then, not now, so that a
        // million created tasks do not hold a million scopes before they run), and runs in the execution
        // context current now, as asyncio's create_task copies the context (ContextFlow.cs).
        if (EagerTasks && IsLoopThread) task.Start();   // in the creator's context, as it is
        else if (ContextToHandOn() is { } context)
            _ready.Enqueue(AioTask.s_startInContext, Tuple.Create<AioTask, ExecutionContext>(task, context), _rootScope, ReadyFlags.None);
        else if (_openRun is { } run && before != null && run.LastId == before.Id && _ready.LastHasState(run) && !_instrumented)
        {
            run.LastId = task.Id;   // the id, not the task: an int stored costs no write barrier
            run.Count++;
            if (++_queuedStarts > ScopeSupply.BurstAbove && (_queuedStarts & 1023) == 0)
                (_scopeSupply ??= new ScopeSupply()).Anticipate();   // a burst: scopes made while it is queued (ScopeSupply.cs)
        }
        else if (!_instrumented && _shuffle == null) QueueRun(task);
        else _ready.Enqueue(AioTask.s_start, task, _rootScope, ReadyFlags.None);
        return task;
    }

    // Task starts queued in runs. Starts scheduled one after another, with nothing else queued in between, share
    // one ready item, which starts them in order: the order of separate items, without an item each (its
    // queue slot, its write barriers, its dispatch). The tasks of a run are consecutive in the list of tasks,
    // which the run walks; none of them can leave the list before it starts (a task leaves only once done, and
    // a task ends no sooner than its first step). A run closes when the loop takes it from the queue. In debug
    // mode, with a trace recording and with a schedule seed, every start stays an item of its own, so that
    // slow-callback reports, traces and shuffles see each task. Like a batch of separate items, a long run
    // resumes the sleeps that have ended every 64 starts (W4's burst of sleepers).

    /// <summary>Consecutive task starts queued as one ready item; see above.</summary>
    sealed class StartRun(EventLoop loop)
    {
        public readonly EventLoop Loop = loop;
        public AioTask? First;
        public int LastId;      // the id of the run's last task (ids are given in the order tasks join the list)
        public int Count;
        public StartRun? NextFree;

        public static readonly Action<object?> Run = static o => { var run = (StartRun)o!; run.Loop.RunStarts(run); };
    }

    StartRun? _openRun;      // the run the next start may join (while it is the last item queued)
    StartRun? _freeRuns;
    int _queuedStarts;       // tasks waiting in runs (each would be a ready item of its own otherwise)

    void QueueRun(AioTask task)
    {
        var run = _freeRuns ?? new StartRun(this);
        _freeRuns = run.NextFree;
        run.NextFree = null;
        run.First = task;
        run.LastId = task.Id;
        run.Count = 1;
        _queuedStarts++;
        _openRun = run;
        _ready.Enqueue(StartRun.Run, run, _rootScope, ReadyFlags.None);
    }

    void RunStarts(StartRun run)
    {
        if (ReferenceEquals(_openRun, run)) _openRun = null;
        var t = run.First!;
        int n = run.Count;
        run.First = null;
        run.NextFree = _freeRuns;
        _freeRuns = run;
        for (int i = 0; ; i++)
        {
            var next = t.NextLive;   // read first: a task that ends in its first step leaves the list
            _queuedStarts--;
            try { t.StartIn(null); }
            catch (Exception e) { ReportItemException(e, AioTask.s_start, t); }
            if (i + 1 == n) return;
            if (LookAtSleeps(i, n))
            {
                // As a batch of separate items would (RunOnce, step 5), so that a burst of sleepers is not late.
                RunSleepsDueNow();
                EnterScope(_rootScope);
            }
            t = next!;
        }
    }

    /// <summary>The first task of a run of starts, if <paramref name="state"/> is one (traces, debug reports).</summary>
    internal static AioTask? FirstOfRun(Action<object?> callback, object? state) =>
        ReferenceEquals(callback, StartRun.Run) && state is StartRun run ? run.First : null;

    internal int NextTaskId() => unchecked(++_taskIds);

    /// <summary>
    /// Debug mode, on <see cref="Close"/>: reports every task not done, which the loop drops unfinished (asyncio's
    /// "Task was destroyed but it is pending!"; a <see cref="Runner"/> cancels and waits for them before it closes).
    /// </summary>
    void ReportPendingTasks()
    {
        for (var t = _firstLive; t != null; t = t.NextLive)
            if (!t.IsDone) CallExceptionHandler(new ExceptionContext("Task was destroyed but it is pending!") { Task = t });
    }

    /// <summary>A task of this loop is done (called once, just before it is marked done).</summary>
    internal void TaskEnded(AioTask task)
    {
        if (_trace != null) TraceTask(LoopTraceEventKind.TaskDone, task);
        _liveCount--;
        if (ReferenceEquals(_anchor == null ? _firstLive : _anchor.NextLive, task)) UnlinkAfterAnchor(task);
        else if (++_finishedInList > _liveCount) SweepFinishedTasks(except: task);
    }

    /// <summary>Unlinks <paramref name="task"/>, which is ending right after <see cref="_anchor"/>.</summary>
    void UnlinkAfterAnchor(AioTask task)
    {
        var next = task.NextLive;
        task.NextLive = null;
        if (_anchor == null) _firstLive = next; else _anchor.NextLive = next;
        if (ReferenceEquals(_lastLive, task)) _lastLive = _anchor;
        if (ReferenceEquals(_sweepAfter, task)) _sweepAfter = _anchor;
    }

    /// <summary>
    /// The loop is about to wait (or, on virtual time, to jump its clock) and holds finished work: unlinks done tasks
    /// from the list, and leaves the scope of a finished task's last step, so that nothing of the loop keeps a task
    /// the program has dropped (its exception is then reported as never retrieved once it is collected).
    /// </summary>
    /// <remarks>
    /// The sweep resumes where the last one stopped, visits at most <see cref="IdleSweepLinks"/> links and stops as
    /// soon as no finished task is left, so a wait is never held up by a long list. A list of up to
    /// <see cref="ShortTaskList"/> tasks (most programs) is swept whole at the first wait after a task ends. A longer one
    /// is swept a part at a time, at most once a millisecond: its finished tasks are scattered through it (W4's
    /// 100,000 sleepers end in random order), so every sweep would visit its full <see cref="IdleSweepLinks"/>, and
    /// at every wait that cost a tenth of the loop's time in W4; this way at most a few microseconds a millisecond.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]   // its locals (a task) must end with it, not live on in RunOnce's frame
    void LetGoOfFinishedWork()
    {
        if (_finishedInList != 0 && IdleSweepDue()) SweepWhileIdle();
        // The scope of the last step stays current, and the thread's synchronisation context, until a callback
        // runs in another one: while the loop waits, a finished task's scope would keep the task.
        if (_current.Task is { IsDone: true } || SynchronizationContext.Current is CancelScope { Task.IsDone: true })
        {
            _current = _rootScope;
            SynchronizationContext.SetSynchronizationContext(_rootScope);
        }
    }

    /// <summary>Whether the idle sweep runs at this wait: always for a short list, else if the last one was a millisecond ago or more.</summary>
    bool IdleSweepDue()
    {
        if (_liveCount + _finishedInList <= ShortTaskList) return true;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        if (now - _lastIdleSweep < s_idleSweepInterval) return false;
        _lastIdleSweep = now;
        return true;
    }

    /// <summary>Unlinks done tasks, visiting up to <see cref="IdleSweepLinks"/> links from where the last idle sweep stopped (see <see cref="LetGoOfFinishedWork"/>).</summary>
    void SweepWhileIdle()
    {
        var kept = _sweepAfter;                       // the last live task visited: the link to rewrite
        var t = kept == null ? _firstLive : kept.NextLive;
        bool wrapped = kept == null;
        for (int visits = IdleSweepLinks; visits > 0; visits--)
        {
            if (t == null)
            {
                // The end of the list: go on from the head, once (the finished tasks left are before the start).
                if (wrapped) break;
                wrapped = true;
                kept = null;
                t = _firstLive;
                continue;
            }
            var next = t.NextLive;
            if (t.IsDone)
            {
                t.NextLive = null;
                if (kept == null) _firstLive = next; else kept.NextLive = next;
                if (ReferenceEquals(t, _lastLive)) _lastLive = kept;
                if (ReferenceEquals(t, _anchor)) _anchor = null;
                if (--_finishedInList == 0)
                {
                    t = next;
                    break;
                }
            }
            else kept = t;
            t = next;
        }
        // A live task marks the place (one that ends meanwhile stays in the list, and is swept when the sweep comes
        // round to it again); at the end of the list the next sweep starts from the head.
        _sweepAfter = t == null ? null : kept;
    }

    /// <summary>Unlinks the done tasks from the list of tasks (and <paramref name="except"/>, which is finishing).</summary>
    void SweepFinishedTasks(AioTask except)
    {
        _sweepAfter = null;
        AioTask? kept = null;
        for (var t = _firstLive; t != null;)
        {
            var next = t.NextLive;
            if (t.IsDone || ReferenceEquals(t, except))
            {
                t.NextLive = null;
                if (ReferenceEquals(t, _anchor)) _anchor = null;
                if (kept == null) _firstLive = next; else kept.NextLive = next;
            }
            else kept = t;
            t = next;
        }
        _lastLive = kept;
        _finishedInList = 0;
    }

    /// <summary>Tasks held by the list, done ones not yet swept included (for tests of the sweeping).</summary>
    internal int TasksHeld
    {
        get
        {
            int n = 0;
            for (var t = _firstLive; t != null; t = t.NextLive) n++;
            return n;
        }
    }

    /// <summary>Runs <paramref name="action"/> now with <paramref name="scope"/> as the current scope, then restores the previous one.</summary>
    internal void RunInScope(CancelScope scope, Action<object?> action, object? state)
    {
        var previous = _current;
        _current = scope;
        SynchronizationContext.SetSynchronizationContext(scope);
        try { action(state); }
        finally
        {
            _current = previous;
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    /// <summary>Makes <paramref name="scope"/> current and returns the previous scope (for scopes entered by code, such as timeouts).</summary>
    internal CancelScope EnterScope(CancelScope scope)
    {
        var previous = _current;
        _current = scope;
        SetSyncContext(scope);
        return previous;
    }

    /// <summary>The task whose code is running now, or <see langword="null"/> in a plain callback; asyncio's <c>current_task()</c>.</summary>
    public AioTask? CurrentTask => _current.Task;

    /// <summary>The tasks of this loop that are not done yet; asyncio's <c>all_tasks()</c>.</summary>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop runs (the list
    /// it walks changes on the loop thread); from there, ask the loop with <see cref="RunCoroutineThreadsafe{T}(Func{Task{T}}, CancellationToken)"/>.</exception>
    public IReadOnlyList<AioTask> AllTasks()
    {
        CheckThread(nameof(AllTasks));
        var list = new List<AioTask>(_liveCount);
        for (var t = _firstLive; t != null; t = t.NextLive)
            if (!t.IsDone) list.Add(t);
        return list;
    }
}
