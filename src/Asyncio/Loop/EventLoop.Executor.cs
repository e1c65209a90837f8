namespace Asyncio;

public sealed partial class EventLoop
{
    TaskScheduler _defaultExecutor;
    int _externalPending;          // executor work not yet reported back (holds virtual time)
    int _defaultPending;           // default-executor work whose result has not run on the loop yet (ShutdownDefaultExecutor waits for it)
    List<Future>? _executorDrained; // ShutdownDefaultExecutor futures waiting for the default executor's work
    bool _executorShutdown;        // ShutdownDefaultExecutor was called: the default executor takes no more work

    /// <summary>
    /// Sets the scheduler that <see cref="RunInExecutor{T}(TaskScheduler?, Func{T})"/> and
    /// <see cref="Aio.ToThread{T}(Func{T})"/> use when none is given; asyncio's <c>set_default_executor</c>.
    /// The default is <see cref="TaskScheduler.Default"/>, the thread pool.
    /// </summary>
    public void SetDefaultExecutor(TaskScheduler executor)
    {
        ArgumentNullException.ThrowIfNull(executor);
        CheckThread(nameof(SetDefaultExecutor));
        _defaultExecutor = executor;
    }

    /// <summary>
    /// Runs <paramref name="func"/> on <paramref name="executor"/> (the default executor when
    /// <see langword="null"/>) and returns a future of its result, completed on the loop; asyncio's
    /// <c>run_in_executor</c>. Cancelling the future does not stop the function, as in asyncio.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop is closed, or <paramref name="executor"/> is
    /// <see langword="null"/> and <see cref="ShutdownDefaultExecutor"/> has been called.</exception>
    /// <exception cref="TaskSchedulerException">The executor refused the work; nothing was started.</exception>
    public Future<T> RunInExecutor<T>(TaskScheduler? executor, Func<T> func) => RunInExecutorCore(executor, func, func);

    /// <summary>Runs <paramref name="action"/> on <paramref name="executor"/>; see <see cref="RunInExecutor{T}(TaskScheduler?, Func{T})"/>.</summary>
    public Future RunInExecutor(TaskScheduler? executor, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        return RunInExecutorCore<bool>(executor, () => { action(); return true; }, action);
    }

    /// <summary>
    /// <see cref="RunInExecutor{T}(TaskScheduler?, Func{T})"/>; <paramref name="shown"/> is the delegate the program gave,
    /// which traces and debug reports name for the delivery of the result (<see cref="ExecutorResult.Function"/>).
    /// </summary>
    Future<T> RunInExecutorCore<T>(TaskScheduler? executor, Func<T> func, Delegate shown)
    {
        ArgumentNullException.ThrowIfNull(func);
        CheckThread(nameof(RunInExecutor));
        CheckNotClosed();
        if (executor == null && _executorShutdown)
            throw new InvalidOperationException("The default executor has been shut down (ShutdownDefaultExecutor was called); pass an executor explicitly.");
        var future = new Future<T>(this);
        bool onDefault = executor == null;
        Interlocked.Increment(ref _externalPending);
        if (onDefault) Interlocked.Increment(ref _defaultPending);
        try
        {
            Task.Factory.StartNew(ExecutorResult<T>.Work, new ExecutorResult<T>(this, future, func, shown, onDefault),
                CancellationToken.None, TaskCreationOptions.DenyChildAttach, executor ?? _defaultExecutor);
        }
        catch
        {
            // The executor refused the work (its QueueTask threw): nothing will report back, so the work must
            // not hold virtual time or ShutdownDefaultExecutor; the caller gets the error, as from asyncio's submit().
            Interlocked.Decrement(ref _externalPending);
            if (onDefault && Interlocked.Decrement(ref _defaultPending) == 0) CheckExecutorDrained();
            throw;
        }
        return future;
    }

    /// <summary>
    /// Executor work and its outcome: runs the function on the executor (<see cref="ExecutorResult{T}.Work"/>), then is
    /// posted to the loop, where <see cref="Deliver"/> completes the future. Traces and debug reports name the delivery
    /// by <see cref="Function"/> (EventLoop.ScheduledItemCallback).
    /// </summary>
    internal abstract class ExecutorResult
    {
        /// <summary>Completes the future on the loop with the outcome.</summary>
        public static readonly Action<object?> Deliver = static o => ((ExecutorResult)o!).Complete();

        /// <summary>The delegate the program gave to RunInExecutor.</summary>
        public abstract Delegate Function { get; }

        private protected abstract void Complete();
    }

    sealed class ExecutorResult<T> : ExecutorResult
    {
        readonly EventLoop _loop;
        readonly Future<T> _future;
        Func<T>? _func;
        readonly Delegate _shown;
        readonly bool _onDefault;
        T _value = default!;
        Exception? _error;

        public ExecutorResult(EventLoop loop, Future<T> future, Func<T> func, Delegate shown, bool onDefault)
        {
            _loop = loop;
            _future = future;
            _func = func;
            _shown = shown;
            _onDefault = onDefault;
        }

        public override Delegate Function => _shown;

        /// <summary>Runs on the executor: calls the function, keeps its outcome and posts the delivery to the loop.</summary>
        public static readonly Action<object?> Work = static o =>
        {
            var r = (ExecutorResult<T>)o!;
            try { r._value = r._func!(); }
            catch (Exception e) { r._error = e; }
            r._func = null;
            r._loop.ReportFromExecutor(Deliver, r);
        };

        private protected override void Complete()
        {
            if (!_future.IsDone)
            {
                if (_error != null) _future.SetException(_error);
                else _future.SetResult(_value);
            }
            _value = default!;
            _error = null;
            _loop.ReportedOnLoop(_onDefault);
        }
    }

    void ReportFromExecutor(Action<object?> report, object? arg)
    {
        // Post first, then release the clock: virtual time never sees a moment with neither. The last release
        // posts too, which wakes the loop: one that has run the report already and found the clock still held
        // waits for outside events, and would otherwise wait for ever with a sleep due.
        Post(report, arg, null, throwIfClosed: false);
        if (Interlocked.Decrement(ref _externalPending) == 0)
            Post(s_checkExecutorDrained, this, null, throwIfClosed: false);
    }

    /// <summary>Posted when the last executor work has reported back; a method, so that traces name it (<c>EventLoop.CheckExecutorDrainedOnLoop</c>).</summary>
    static readonly Action<object?> s_checkExecutorDrained = CheckExecutorDrainedOnLoop;

    static void CheckExecutorDrainedOnLoop(object? loop) => ((EventLoop)loop!).CheckExecutorDrained();

    /// <summary>
    /// A report from the executor has run on the loop. Default-executor work counts as done only now, not when its
    /// worker posted the report: a ShutdownDefaultExecutor between the two found nothing pending and completed
    /// before the result ran, as asyncio's never does (its results are posted before the shutdown's).
    /// </summary>
    void ReportedOnLoop(bool onDefault)
    {
        if (onDefault && Interlocked.Decrement(ref _defaultPending) == 0) CheckExecutorDrained();
    }

    void CheckExecutorDrained()
    {
        if (Volatile.Read(ref _defaultPending) != 0 || _executorDrained is not { } waiting) return;
        _executorDrained = null;
        foreach (var f in waiting)
            if (!f.IsDone) f.SetResult();
    }

    /// <summary>
    /// Returns a future that completes once every function handed to the default executor has finished;
    /// asyncio's <c>shutdown_default_executor()</c> (the thread pool itself is shared and is not shut down).
    /// Work given to an explicit executor is not waited for, as in asyncio.
    /// From then on the default executor takes no more work: <see cref="RunInExecutor{T}(TaskScheduler?, Func{T})"/>
    /// without an executor and <see cref="Aio.ToThread{T}(Func{T})"/> throw, as in asyncio. asyncio's
    /// <c>timeout</c> argument is <see cref="Aio.WaitFor(Future, double?)"/> here (on real time: executor
    /// work holds virtual time).
    /// </summary>
    public Future ShutdownDefaultExecutor()
    {
        CheckThread(nameof(ShutdownDefaultExecutor));
        _executorShutdown = true;
        var f = new Future(this);
        if (Volatile.Read(ref _defaultPending) == 0) f.SetResult();
        else (_executorDrained ??= new List<Future>()).Add(f);
        return f;
    }

    /// <summary>
    /// Submits <paramref name="coroutine"/> to this loop from any thread and returns a <see cref="Task{TResult}"/>
    /// that the calling thread can wait on; asyncio's <c>run_coroutine_threadsafe</c>. Cancelling
    /// <paramref name="cancellationToken"/> cancels the task in the loop, and the returned task completes, cancelled,
    /// once the coroutine has ended (its clean-up included), whatever the coroutine returned or threw after the
    /// cancellation, as asyncio's cancelled <c>concurrent.futures.Future</c> drops the outcome. If the loop is closed before the coroutine has
    /// ended (not started yet, or suspended when the loop stopped), the returned task fails with
    /// <see cref="InvalidOperationException"/> instead of never completing. Do not block on the result
    /// from the loop's own thread: the loop could not run the task.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    public Task<T> RunCoroutineThreadsafe<T>(Func<Task<T>> coroutine, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        var submission = new ThreadsafeSubmission<T>(this, coroutine, cancellationToken);
        PostThreadsafe(ThreadsafeSubmission<T>.s_start, submission);
        return submission.Completion.Task;
    }

    /// <summary>Submits a coroutine without a result; see <see cref="RunCoroutineThreadsafe{T}(Func{Task{T}}, CancellationToken)"/>.</summary>
    public Task RunCoroutineThreadsafe(Func<Task> coroutine, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return RunCoroutineThreadsafe<bool>(async () => { await coroutine().ConfigureAwait(true); return true; }, cancellationToken);
    }

    /// <summary>Submitted coroutines started and not yet reported back (loop thread; <see cref="Close"/> fails them).</summary>
    HashSet<IDroppedOnClose>? _runningSubmissions;

    /// <summary>Tells the submitters of coroutines still running that the loop closed (from <see cref="Close"/>).</summary>
    void FailRunningSubmissions()
    {
        if (_runningSubmissions is not { } running) return;
        _runningSubmissions = null;
        foreach (var s in running) s.LoopClosed();
    }

    /// <summary>
    /// A coroutine submitted from another thread: started as a task once the loop takes the post, its outcome
    /// copied to <see cref="Completion"/>. If the loop closes first, before the task starts or while it is still
    /// running, <see cref="LoopClosed"/> fails the completion instead of leaving the submitter waiting for ever
    /// (and copies the outcome of a task that ended in the loop's last iteration, whose report was still queued).
    /// </summary>
    sealed class ThreadsafeSubmission<T>(EventLoop loop, Func<Task<T>> coroutine, CancellationToken cancellationToken) : IDroppedOnClose
    {
        public readonly TaskCompletionSource<T> Completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static readonly Action<object?> s_start = static o => ((ThreadsafeSubmission<T>)o!).Start();

        AioTask<T>? _task;                        // set once the loop has taken the submission
        CancellationTokenRegistration _cancelReg;

        void Start()
        {
            var task = _task = loop.CreateTask(coroutine);
            (loop._runningSubmissions ??= new HashSet<IDroppedOnClose>()).Add(this);
            task.AddDoneCallback(_ => Finish());
            if (cancellationToken.CanBeCanceled)
                _cancelReg = cancellationToken.Register(() => loop.PostInternal(static t => ((AioTask)t!).Cancel(), task));   // dropped if the loop is closed
        }

        void Finish()
        {
            loop._runningSubmissions?.Remove(this);
            _cancelReg.Dispose();
            var t = _task!;
            // A token cancelled before the outcome is copied wins, whatever the coroutine made of the
            // cancellation (caught it and returned, or failed in its clean-up), as a cancelled
            // concurrent.futures.Future drops the task's outcome in asyncio.
            if (cancellationToken.IsCancellationRequested)
            {
                if (!t.IsCancelled) t.RetrieveException();   // dropped on purpose: not "never retrieved"
                Completion.TrySetCanceled(cancellationToken);
            }
            else if (t.IsCancelled) Completion.TrySetCanceled();
            else if (t.RetrieveException() is { } e) Completion.TrySetException(e);
            else Completion.TrySetResult(t.Result);
        }

        public void LoopClosed()
        {
            if (_task is { IsDone: true }) { Finish(); return; }
            _cancelReg.Dispose();
            Completion.TrySetException(new InvalidOperationException(_task == null
                ? "The event loop was closed before the submitted coroutine started."
                : "The event loop was closed before the submitted coroutine finished."));
        }
    }
}
