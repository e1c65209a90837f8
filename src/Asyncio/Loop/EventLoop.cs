using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Asyncio;

/// <summary>
/// The event loop: one thread that runs callbacks, resumes awaiting coroutines, fires timers and waits
/// for I/O; asyncio's <c>AbstractEventLoop</c>.
/// </summary>
/// <remarks>
/// <para>Every continuation of code running in the loop comes back to the loop's thread: awaits of loop
/// primitives resume through the ready queue, and foreign awaits (<see cref="Task.Delay(int)"/>,
/// <c>HttpClient</c>) through the loop's <see cref="SynchronizationContext"/>. Code therefore interleaves
/// only at <c>await</c>, as in asyncio.</para>
/// <para>Thread affinity: while the loop runs, its methods may be called only from its thread, and throw
/// <see cref="InvalidOperationException"/> elsewhere; <see cref="CallSoonThreadsafe(Action)"/> and
/// <see cref="RunCoroutineThreadsafe{T}(Func{Task{T}}, CancellationToken)"/> are the thread-safe entry points.</para>
/// <para>Most programs never touch the loop directly: <see cref="Aio.Run(Func{Task}, LoopOptions?)"/>
/// creates one, runs the main coroutine and closes it.</para>
/// </remarks>
public sealed partial class EventLoop : IDisposable
{
    [ThreadStatic] static EventLoop? t_running;

    readonly ReadyQueue _ready = new();
    readonly TimerQueue _timers = new(ContinuationBox.Run);
    readonly IReactor _reactor;
    readonly CancelScope _rootScope;
    readonly Random? _shuffle;

    enum LoopState : byte { Idle, Running, Closed }
    LoopState _state;
    bool _stopping;
    int _threadId;                 // the thread running the loop; 0 when it is not running
    Thread? _thread;               // the same thread, whose contexts the loop reads through it (ThreadContexts.cs)
    ulong _stack;                  // the running thread's stack, packed (ThreadStack.cs); 0 when not running or unknown
    CancelScope _current;          // the scope of the code running now
    ReadyFlags _resumeFlags;       // flags of the callback running now (read by sleep awaiters)
    int _seq;                      // timer sequence numbers
    int _busyCallbacks;            // callbacks run since the reactor was last polled

    /// <summary>Scopes holding a "must cancel" mark; lets awaits skip the scope walk when zero.</summary>
    internal int MustCancelCount;

    /// <summary>While work is ready, the reactor is polled after this many callbacks...</summary>
    const int PollEvery = 64;
    /// <summary>...provided this much time has passed since the last poll (a system call is not free).</summary>
    static readonly long s_busyPollInterval = Stopwatch.Frequency / 20_000; // 50 us
    long _lastPoll;                // Stopwatch timestamp of the last reactor poll
    IdleSpinPolicy _idleSpin;      // LoopOptions.IdleSpin
    int _blockingPolls;            // waits that blocked (tests of IdleSpin)
    int _idleSpins;                // spins before blocking (tests of IdleSpin)

    /// <summary>The environment variable that turns debug mode on for every loop (<see cref="LoopOptions.Debug"/>).</summary>
    internal const string DebugVariable = "ASYNCIO_DEBUG";

    /// <summary>Stands in for <see cref="DebugVariable"/>'s value on this thread (tests: the process's environment is shared).</summary>
    [ThreadStatic] internal static string? t_debugVariableForTests;

    /// <summary>Whether <paramref name="value"/> of <see cref="DebugVariable"/> turns debug mode on: set, and not <c>0</c> or <c>false</c>.</summary>
    internal static bool IsDebugSetting(string? value) =>
        !string.IsNullOrWhiteSpace(value) && value.Trim() != "0" && !value.Trim().Equals("false", StringComparison.OrdinalIgnoreCase);

    /// <summary>Creates an event loop with the given options (defaults when <see langword="null"/>).</summary>
    public EventLoop(LoopOptions? options = null)
    {
        options ??= new LoopOptions();
        if (options.IdleSpin is { } spin && (spin < TimeSpan.Zero || spin >= TimeSpan.FromSeconds(1)))
            throw new ArgumentOutOfRangeException(nameof(options), spin, "IdleSpin must be at least zero and under a second.");
        IsVirtualTime = options.VirtualTime;
        _idleSpin = options.IdleSpin is { } fixedSpin
            ? (fixedSpin == TimeSpan.Zero ? IdleSpinPolicy.Never : IdleSpinPolicy.Fixed(fixedSpin.Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond))
            : (options.VirtualTime ? IdleSpinPolicy.Never : IdleSpinPolicy.Adaptive()); // virtual time does not block
        _autojumpTicks = options.AutojumpThreshold.Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond;
        Debug = options.Debug || IsDebugSetting(t_debugVariableForTests ?? Environment.GetEnvironmentVariable(DebugVariable));
        SlowCallbackDuration = options.SlowCallbackDuration;
        BlockedLoopThreshold = options.BlockedLoopThreshold;
        EagerTasks = options.EagerTasks;
        if (options.ScheduleSeed is int seed) _shuffle = new Random(seed);
        _reactor = !options.PortableReactor && EpollReactor.IsSupported ? new EpollReactor() : new PortableReactor();
        _rootScope = new CancelScope(this, null, null);
        _current = _rootScope;
        _defaultExecutor = TaskScheduler.Default;
        TimeProvider = new LoopTimeProvider(this);
        _sleepSource = new SleepSource(this);
    }

    // ---- the running loop ----

    /// <summary>The loop running on the calling thread; asyncio's <c>get_running_loop()</c>.</summary>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public static EventLoop GetRunningLoop() => t_running ?? ThrowNoRunningLoop();

    /// <summary>The loop running on the calling thread, or <see langword="null"/> when there is none.</summary>
    public static EventLoop? TryGetRunningLoop() => t_running;

    [MethodImpl(MethodImplOptions.NoInlining)]
    static EventLoop ThrowNoRunningLoop() =>
        throw new InvalidOperationException(
            "No event loop is running on this thread. Start one with Aio.Run(main), or call loop APIs from code that the loop runs " +
            "(an earlier await with ConfigureAwait(false) moves the rest of a method off the loop: inside the loop's code, leave it out).");

    /// <summary>Whether the loop is running (inside <see cref="RunForever"/> or <see cref="RunUntilComplete(Future)"/>).</summary>
    public bool IsRunning => _state == LoopState.Running;

    /// <summary>Whether <see cref="Close"/> has been called.</summary>
    public bool IsClosed => _state == LoopState.Closed;

    /// <summary>Whether the loop runs on virtual time (<see cref="LoopOptions.VirtualTime"/>).</summary>
    public bool IsVirtualTime { get; }

    /// <summary>
    /// Debug mode (asyncio's <c>get_debug()</c>/<c>set_debug()</c>): reports callbacks slower than
    /// <see cref="SlowCallbackDuration"/>, callbacks still running after <see cref="BlockedLoopThreshold"/> (while
    /// they run), tasks still pending when the loop closes, and tasks whose coroutine ended off the loop's thread
    /// (code after an await with <c>ConfigureAwait(false)</c> escaped the loop).
    /// </summary>
    public bool Debug
    {
        get => _debug;
        set
        {
            _debug = value;
            UpdateInstrumented();
        }
    }
    bool _debug;

    /// <summary>The duration above which a callback is reported in debug mode; asyncio's <c>slow_callback_duration</c>.</summary>
    public TimeSpan SlowCallbackDuration { get; set; }

    /// <summary>Whether <c>CreateTask</c> starts coroutines at once (asyncio's eager task factory).</summary>
    public bool EagerTasks { get; set; }

    /// <summary>Whether the calling thread is the thread running this loop.</summary>
    internal bool IsLoopThread
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => OnLoopStack() || _threadId == Environment.CurrentManagedThreadId;
    }

    /// <summary>Items in the ready queue (for tests).</summary>
    internal int ReadyCount => _ready.Count;

    /// <summary>The cancel scope of the code running now (the loop's own scope in plain callbacks).</summary>
    internal CancelScope CurrentScope => _current;

    // ---- scheduling ----

    /// <summary>
    /// Schedules <paramref name="callback"/> to run on the next iteration of the loop, after the callbacks
    /// already scheduled; asyncio's <c>call_soon</c>. Loop thread only.
    /// </summary>
    /// <returns>A handle that can cancel the callback.</returns>
    public Handle CallSoon(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return CallSoon(s_invokeAction, callback);
    }

    /// <summary>
    /// Schedules <paramref name="callback"/> with <paramref name="state"/>; allocates nothing when the
    /// delegate is cached. Otherwise as <see cref="CallSoon(Action)"/>.
    /// </summary>
    public Handle CallSoon(Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckThread(nameof(CallSoon));
        CheckNotClosed();
        // Callbacks already posted with CallSoonThreadsafe go first: asyncio appends them to the ready queue
        // as they arrive, so a thread-safe call followed by a CallSoon runs in that order (same thread or not).
        if (Volatile.Read(ref _threadsafeCount) != 0) DrainThreadsafe();
        var e = RentEntry();
        e.Callback = callback;
        e.State = state;
        e.Context = ContextToHandOn();
        _ready.Enqueue(CallbackEntry.Run, e, _rootScope, ReadyFlags.None);
        return new Handle(e, e.Version);
    }

    static readonly Action<object?> s_invokeAction = static a => ((Action)a!)();

    CallbackEntry? _freeEntries;

    CallbackEntry RentEntry()
    {
        var e = _freeEntries;
        if (e == null) return new CallbackEntry(this);
        _freeEntries = e.NextFree;
        e.NextFree = null;
        return e;
    }

    internal void RecycleEntry(CallbackEntry e)
    {
        e.Version++;              // its handle no longer refers to a pending callback
        e.Callback = null;
        e.State = null;
        e.Context = null;
        if (!e.Pooled) return;    // made on another thread (CallSoonThreadsafe): left to the GC
        e.NextFree = _freeEntries;
        _freeEntries = e;
    }

    /// <summary>Queues the resumption of an awaiter (loop thread; no checks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void EnqueueResume(Action<object?> continuation, object? state, CancelScope scope, ReadyFlags flags) =>
        _ready.Enqueue(continuation, state, scope, flags);

    /// <summary>Queues an internal callback in the loop's own scope (loop thread; no checks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void EnqueueInternal(Action<object?> callback, object? state) =>
        _ready.Enqueue(callback, state, _rootScope, ReadyFlags.None);

    /// <summary>Queues an internal callback that runs in <paramref name="scope"/> (loop thread; no checks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void EnqueueInScope(Action<object?> callback, object? state, CancelScope scope) =>
        _ready.Enqueue(callback, state, scope, ReadyFlags.None);

    // ---- running ----

    /// <summary>
    /// Runs the loop until <see cref="Stop"/> is called; asyncio's <c>run_forever()</c>. Callbacks scheduled
    /// before the stop request finish their iteration first.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop is closed or already running, or another loop runs on this thread.</exception>
    public void RunForever()
    {
        CheckCanRun();
        var savedContext = SynchronizationContext.Current;
        lock (_threadsafeLock) _state = LoopState.Running; // RunOrPostThreadsafe may be touching the idle loop
        _threadId = Environment.CurrentManagedThreadId;
        t_running = this;
        _thread = Thread.CurrentThread;
        Volatile.Write(ref _stack, ThreadStack.Current());
        _current = _rootScope;
        SynchronizationContext.SetSynchronizationContext(_rootScope);
        _loopContext = ExecutionContext.Capture();
        try
        {
            while (true)
            {
                RunOnce();
                if (_stopping) break;
            }
        }
        finally
        {
            _stopping = false;
            StopWatchdog();
            // _thread first: once _threadId is 0 any thread may schedule (the loop is not running), and such a
            // call must read its own thread's contexts, not the loop thread's (ThreadContexts.cs).
            _thread = null;
            Volatile.Write(ref _stack, 0);
            Volatile.Write(ref _threadId, 0);
            t_running = null;
            if (_state == LoopState.Running) _state = LoopState.Idle;
            _current = _rootScope;
            SynchronizationContext.SetSynchronizationContext(savedContext);
        }
    }

    /// <summary>
    /// Runs the loop until <paramref name="future"/> is done and returns (or rethrows) its outcome;
    /// asyncio's <c>run_until_complete()</c>. A future already done still runs one iteration, as in asyncio:
    /// callbacks already ready run, and a <see cref="Stop"/> made before the call is used up.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop stopped before the future was done, or the loop
    /// cannot run (closed, already running, or another loop runs on this thread), even when the future is done.</exception>
    /// <exception cref="ArgumentException">The future belongs to another loop.</exception>
    public void RunUntilComplete(Future future)
    {
        ArgumentNullException.ThrowIfNull(future);
        RunUntilDone(future);
        future.GetResult();
    }

    /// <summary>Runs the loop until <paramref name="future"/> is done and returns its result.</summary>
    public T RunUntilComplete<T>(Future<T> future)
    {
        ArgumentNullException.ThrowIfNull(future);
        RunUntilDone(future);
        return future.Result;
    }

    /// <summary>Runs the loop until <paramref name="task"/> is done and returns its result.</summary>
    public T RunUntilComplete<T>(AioTask<T> task)
    {
        ArgumentNullException.ThrowIfNull(task);
        RunUntilDone(task);
        return task.Result;
    }

    /// <summary>Runs <paramref name="coroutine"/> as a task until it is done and rethrows its failure.</summary>
    public void RunUntilComplete(Func<Task> coroutine)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckCanRun();
        RunUntilComplete(CreateTask(coroutine));
    }

    /// <summary>Runs <paramref name="coroutine"/> as a task until it is done and returns its result.</summary>
    public T RunUntilComplete<T>(Func<Task<T>> coroutine)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckCanRun();
        return RunUntilComplete(CreateTask(coroutine));
    }

    void RunUntilDone(Future future)
    {
        CheckCanRun();
        if (!ReferenceEquals(future.Loop, this))
            throw new ArgumentException("The future belongs to another event loop.", nameof(future));
        // Even a future already done runs the loop once, as asyncio does: its done callback is queued for the
        // next iteration, so what is already ready runs and a pending Stop is used up.
        future.AddDoneCallback(s_stopLoop);
        try { RunForever(); }
        finally { future.RemoveDoneCallback(s_stopLoop); }
        if (!future.IsDone) throw new InvalidOperationException("The event loop stopped before the future completed.");
    }

    static readonly Action<Future> s_stopLoop = static f => f.Loop.Stop();

    /// <summary>
    /// Throws unless the loop can start running here: it is not closed, not running, and no other loop runs
    /// on this thread. Checked before anything else, as asyncio does, so that a refused
    /// <c>RunUntilComplete</c> neither creates a task nor returns the result of a future already done.
    /// </summary>
    void CheckCanRun()
    {
        CheckNotClosed();
        if (_state == LoopState.Running) throw new InvalidOperationException("This event loop is already running.");
        if (t_running != null)
            throw new InvalidOperationException("Cannot run an event loop while another loop is running on this thread; await the coroutine instead.");
    }

    /// <summary>
    /// Asks the loop to stop after the current iteration; asyncio's <c>stop()</c>. Loop thread only (use
    /// <see cref="CallSoonThreadsafe(Action)"/> to stop from elsewhere).
    /// </summary>
    public void Stop()
    {
        CheckThread(nameof(Stop));
        _stopping = true;
    }

    /// <summary>
    /// Closes the loop: drops pending callbacks and timers and releases the reactor; asyncio's <c>close()</c>.
    /// A coroutine submitted with <see cref="RunCoroutineThreadsafe{T}(Func{Task{T}}, CancellationToken)"/> that
    /// has not started yet is not run, and one still suspended is abandoned: its <see cref="Task{TResult}"/> fails
    /// with <see cref="InvalidOperationException"/> (in asyncio its future would never complete). Idempotent. Does not wait for the executor
    /// (<see cref="ShutdownDefaultExecutor"/> does).
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop is running.</exception>
    public void Close()
    {
        if (_state == LoopState.Running) throw new InvalidOperationException("Cannot close a running event loop.");
        if (_state == LoopState.Closed) return;
        if (Debug) ReportPendingTasks();
        _trace?.StopWithLoop();
        List<ReadyItem> dropped;
        lock (_threadsafeLock)
        {
            _state = LoopState.Closed;
            dropped = _threadsafeIncoming;
            _threadsafeIncoming = new List<ReadyItem>();
            _threadsafeCount = 0;
        }
        foreach (var item in dropped) Drop(item);
        while (_ready.Count != 0)
        {
            _ready.Dequeue(out var item);
            Drop(item);
        }
        FailRunningSubmissions();
        CloseSubprocesses();
        ClosePipes();
        RemoveSignalHandlers();
        StopWatchdog();
        _timers.Clear();
        _reactor.Dispose();

        static void Drop(in ReadyItem item)
        {
            if (item.State is IDroppedOnClose d) d.LoopClosed();
        }
    }

    /// <summary>Closes the loop (<see cref="Close"/>).</summary>
    public void Dispose() => Close();

    /// <summary>
    /// Runs one iteration of the loop. The order, which is the loop's specification:
    /// <list type="number">
    /// <item>Work out how long to wait: not at all if callbacks are ready, the loop is stopping or
    /// thread-safe callbacks have arrived; otherwise until the earliest timer (forever if there is none).
    /// On virtual time, instead of waiting the clock jumps to that timer.</item>
    /// <item>Poll the reactor with that timeout (I/O readiness and thread-safe wake-ups). While callbacks
    /// are ready the poll is skipped unless 64 callbacks and 50 microseconds have passed since the last
    /// one, so that a busy loop does not pay a system call per iteration while I/O is still checked
    /// regularly.</item>
    /// <item>Move thread-safe callbacks (<see cref="CallSoonThreadsafe(Action)"/>, continuations posted to
    /// the loop's synchronisation context) to the ready queue, in arrival order.</item>
    /// <item>Move every timer whose deadline has been reached (<c>Time() &gt;= when</c>) to the ready
    /// queue, by deadline and then by order of scheduling. A timer never fires early.</item>
    /// <item>Run exactly the callbacks that are ready now, in FIFO order. Callbacks they schedule run
    /// in the next iteration. A long batch does not hold sleeps back: after every 64 of its callbacks, if
    /// more remain (on the real clock), the loop reads the clock and resumes the <see cref="Aio.Sleep(double)"/>s
    /// that have ended by then, by deadline and then by order of scheduling, before the rest of the batch
    /// (Tokio looks at its timers every 61 tasks for the same reason). Timers with a callback (<see cref="CallLater(double, Action)"/>,
    /// <see cref="CallAt(double, Action)"/>, timeouts) keep to step 4. This step is the only place where callbacks run.</item>
    /// </list>
    /// </summary>
    internal void RunOnce()
    {
        long timeout = 0;
        bool poll;
        if (_ready.Count != 0 || _stopping || Volatile.Read(ref _threadsafeCount) != 0)
        {
            poll = false;
            if (_busyCallbacks >= PollEvery)
            {
                if (Stopwatch.GetTimestamp() - _lastPoll >= s_busyPollInterval) poll = true;
                else _busyCallbacks = 0; // look again after another PollEvery callbacks
            }
        }
        else
        {
            poll = true;
            long next = _timers.NextDue();
            if (next >= NeverTicks) timeout = -1;   // no timer, or only ones that never fire
            else
            {
                long now = NowTicks();
                timeout = next > now ? next - now : 0;
            }
            // About to wait (or jump the clock) with nothing to run: let go of what finished work left behind.
            // Here rather than where tasks end or callbacks run, which are the hot paths. (Nothing here may read a
            // task into a local: this frame lives on through the iteration that follows the wait, and would hold it.)
            if (timeout != 0 && (_finishedInList != 0 || !ReferenceEquals(_current, _rootScope))) LetGoOfFinishedWork();
            if (timeout != 0 && _scopeSupply != null) _scopeSupply.DropLeftovers();   // a burst's leftovers (nothing is queued now)
            if (timeout > 0 && IsVirtualTime)
            {
                if (AwaitOutsideEvents()) _virtualNow = next;
                poll = false;
            }
        }
        if (poll) PollReactor(timeout);

        if (Volatile.Read(ref _threadsafeCount) != 0) DrainThreadsafe();

        if (_timers.HeldCount != 0)
        {
            long now = NowTicks();
            while (_timers.TryPopDue(now, out var slot)) FireTimer(in slot);
        }

        int n = _ready.Count;
        if (_shuffle != null && n > 1) _ready.Shuffle(n, _shuffle);
        if (_instrumented) { RunReadyInstrumented(n); return; }
        for (int i = 0; i < n; i++)
        {
            _ready.Dequeue(out var item);
            RunItem(ref item);
            if (LookAtSleeps(i, n)) RunSleepsDueNow();
        }
        _busyCallbacks += n;
    }

    /// <summary>
    /// Whether a batch of <paramref name="n"/> callbacks looks at its sleeps after its callback <paramref name="i"/>:
    /// after every 64th, if more remain and a timer is held, on the real clock (<see cref="RunOnce"/>, step 5).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    bool LookAtSleeps(int i, int n) => (i & 63) == 63 && i + 1 < n && _timers.HeldCount != 0 && !IsVirtualTime;

    /// <summary>
    /// Resumes the sleeps that have ended while a long batch of ready callbacks runs, ahead of the rest of
    /// the batch (step 5 of <see cref="RunOnce"/>). Only sleeps: a resumed sleep acts on nothing but its own
    /// coroutine, while a timer's callback (a timeout's above all) could overtake a wake-up that a callback
    /// of the batch queued before the timer came due, and win a race that asyncio gives to the wake-up.
    /// The pass stops at the first due timer with a callback, which step 4 of the next iteration fires.
    /// Real clock only: on virtual time no time passes inside an iteration, so no sleep can end there. The
    /// clock is read once: a sleep begun during the pass ends after it.
    /// </summary>
    void RunSleepsDueNow()
    {
        long now = NowTicks();
        while (_timers.TryPopDueSleep(now, out var slot))
        {
            var item = TimerItem(in slot);
            if (_instrumented) RunItemTimed(ref item);
            else RunItem(ref item);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void RunItem(ref ReadyItem item)
    {
        var scope = item.Scope!;
        // The thread's context is compared too: the runtime puts back the context a step of an async Task
        // method began in when the step ends, which can leave the context of a scope left during the step
        // (a timeout body's) on the thread while the loop's current scope is already its parent.
        if (!ReferenceEquals(scope, _current) || !ReferenceEquals(CurrentSyncContext(), scope))
        {
            _current = scope;
            SetSyncContext(scope);
        }
        _resumeFlags = item.Flags;
        try
        {
            item.Callback(item.State);
        }
        catch (Exception e)
        {
            ReportItemException(e, item.Callback, item.State);
        }
        _resumeFlags = ReadyFlags.None;
    }

    /// <summary>The execution context <see cref="RunForever"/> was called in, which callbacks run in unless they were handed another (ContextFlow.cs).</summary>
    ExecutionContext? _loopContext;

    /// <summary>The context to run work scheduled now in, or <see langword="null"/> for the loop's own (ContextFlow.cs).</summary>
    internal ExecutionContext? ContextToHandOn() => ContextFlow.ToHandOn(CaptureExecutionContext(), _loopContext);

    /// <summary>
    /// <see cref="ExecutionContext.Capture"/>, read through the loop's thread while it runs (no thread-local
    /// storage); callers are on the loop's thread whenever it runs (ThreadContexts.cs).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ExecutionContext? CaptureExecutionContext() =>
        ThreadContexts.Direct && _thread is { } thread ? ThreadContexts.Capture(thread) : ExecutionContext.Capture();

    /// <summary><see cref="SynchronizationContext.Current"/>, read through the loop's thread while it runs (loop thread only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal SynchronizationContext? CurrentSyncContext() =>
        ThreadContexts.Direct && _thread is { } thread ? ThreadContexts.GetSync(thread) : SynchronizationContext.Current;

    /// <summary><see cref="SynchronizationContext.SetSynchronizationContext"/>, through the loop's thread while it runs (loop thread only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetSyncContext(SynchronizationContext? context)
    {
        if (ThreadContexts.Direct && _thread is { } thread) ThreadContexts.SetSync(thread, context);
        else SynchronizationContext.SetSynchronizationContext(context);
    }

    /// <summary>Runs the iteration's <paramref name="n"/> ready callbacks through <see cref="RunItemTimed"/> (debug mode, or a trace recording).</summary>
    void RunReadyInstrumented(int n)
    {
        for (int i = 0; i < n; i++)
        {
            _ready.Dequeue(out var item);
            RunItemTimed(ref item);
            if (LookAtSleeps(i, n)) RunSleepsDueNow();
        }
        _busyCallbacks += n;
    }

    /// <summary>
    /// Runs one callback on the instrumented path: in debug mode, watched by the watchdog and reported if it took
    /// <see cref="SlowCallbackDuration"/> or longer; with a trace recording, noted in it.
    /// </summary>
    void RunItemTimed(ref ReadyItem item)
    {
        // Both read before the callback runs: a handle's entry is reused once it has run, and the callback may
        // turn debug mode or the trace on or off.
        var cb = ScheduledItemCallback(item.Callback, item.State);
        var task = TaskOfItem(in item);
        bool debug = _debug;
        var trace = _trace;
        long start = Stopwatch.GetTimestamp();
        if (debug) WatchdogEnter(cb, task, start);
        try { RunItem(ref item); }
        finally { if (debug) WatchdogLeave(); }
        long end = Stopwatch.GetTimestamp();
        if (trace != null && trace.IsRecording)
            trace.Add(task != null ? LoopTraceEventKind.Step : LoopTraceEventKind.Callback, start, end, (object?)task ?? cb);
        if (debug && end - start >= SlowCallbackDuration.Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond) ReportSlowCallback(cb, task, end - start);
    }

    /// <summary>
    /// Virtual time, nothing ready, a timer pending: gives outside events (I/O, thread-safe callbacks) the
    /// autojump threshold of real time to arrive, and executor work all the time it needs to report back.
    /// </summary>
    /// <returns>Whether the loop stayed idle throughout, so that the clock may jump to the next deadline.</returns>
    /// <remarks>
    /// Only something to run ends the wait early. A poll can return with nothing to run - a signal
    /// interrupted the wait (the runtime suspends threads that way for a collection), a wake-up whose
    /// callback an earlier iteration already ran, readiness of a watch no longer active - and the wait then
    /// goes on for the rest of the threshold: jumping there would fire timers (a TLS handshake's time
    /// limit, say) while I/O is still under way.
    /// </remarks>
    bool AwaitOutsideEvents()
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            bool executorBusy = Volatile.Read(ref _externalPending) != 0;
            PollReactor(executorBusy ? -1 : Math.Max(0, _autojumpTicks - (Stopwatch.GetTimestamp() - start)));
            if (_ready.Count != 0 || Volatile.Read(ref _threadsafeCount) != 0) return false;
            if (Volatile.Read(ref _externalPending) == 0 && Stopwatch.GetTimestamp() - start >= _autojumpTicks) return true;
        }
    }

    void PollReactor(long timeout)
    {
        _busyCallbacks = 0;
        _lastPoll = Stopwatch.GetTimestamp();
        if (timeout == 0)
        {
            _reactor.Poll(0);
            Volatile.Write(ref _wakeSignalled, 0);
        }
        else if (_trace is not { } trace) WaitForEvents(timeout);
        else
        {
            long start = _lastPoll;
            WaitForEvents(timeout);
            if (trace.IsRecording) trace.Add(LoopTraceEventKind.Idle, start, Stopwatch.GetTimestamp(), null);
        }
    }

    /// <summary>The part of <see cref="PollReactor"/> that may block: an idle spin first if the policy says so, then the reactor's wait.</summary>
    void WaitForEvents(long timeout)
    {
        if (_idleSpin.Enabled && _idleSpin.ShouldSpin() && SpinBeforeBlocking(ref timeout)) return;
        _blockingPolls++;
        Volatile.Write(ref _blocked, 1);
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _threadsafeCount) != 0) timeout = 0;
        _reactor.Poll(timeout);
        Volatile.Write(ref _blocked, 0);
        if (_idleSpin.Enabled) _idleSpin.Blocked(Stopwatch.GetTimestamp() - _lastPoll);
        Volatile.Write(ref _wakeSignalled, 0);
    }

    /// <summary>
    /// Polls without blocking for up to the idle spin (<see cref="IdleSpinPolicy"/>), and never past the wait's
    /// timeout: <see langword="true"/> once I/O or a thread-safe callback has arrived, or the wait's timeout
    /// (the next timer) is reached, the spin having replaced a short blocking wait; otherwise shortens
    /// <paramref name="timeout"/> by the time spent. Thread-safe callbacks are seen by their count (while the
    /// loop spins it is not marked blocked, so they do not write the wake-up descriptor).
    /// </summary>
    bool SpinBeforeBlocking(ref long timeout)
    {
        _idleSpins++;
        long start = _lastPoll;
        long spin = _idleSpin.SpinTicks;
        bool untilTimer = timeout > 0 && timeout <= spin;
        long end = start + (untilTimer ? timeout : spin);
        long now;
        bool arrived;
        do
        {
            _reactor.Poll(0);
            arrived = _ready.Count != 0 || Volatile.Read(ref _threadsafeCount) != 0;
            now = Stopwatch.GetTimestamp();
        } while (!arrived && now < end);
        // Reset whatever the spin found: its polls read the wake-up descriptor too. A poster that saw the loop
        // blocked in the previous wait may set the flag and write the descriptor only after that wait ended;
        // a spin that then read the write and caught nothing used to leave the flag set, so that the next
        // poster, finding it set, did not wake the blocking wait that followed (a lost wake-up: its callback
        // waited for the next timer or I/O; a TLS handshake, whose SslStream continues on the thread pool,
        // stalled until its time limit).
        Volatile.Write(ref _wakeSignalled, 0);
        if (arrived || untilTimer)
        {
            _idleSpin.Caught();
            return true;
        }
        _idleSpin.Missed();
        if (timeout > 0) timeout = Math.Max(1, start + timeout - now);
        return false;
    }

    /// <summary>Waits of the reactor that blocked (tests of <see cref="LoopOptions.IdleSpin"/>).</summary>
    internal int BlockingPolls => _blockingPolls;

    /// <summary>Spins before a blocking wait, caught or not (tests of <see cref="LoopOptions.IdleSpin"/>).</summary>
    internal int IdleSpins => _idleSpins;

    /// <summary>Makes the reactor's current or next wait return with nothing to run (tests of spurious wake-ups).</summary>
    internal void WakeReactorWithNothingToRun() => _reactor.Wake();

    void FireTimer(in TimerSlot slot)
    {
        var item = TimerItem(in slot);
        _ready.Enqueue(item.Callback, item.State, item.Scope!, item.Flags);
    }

    /// <summary>What a timer that fires runs: a handle's callback, or a sleep's continuation in its scope.</summary>
    ReadyItem TimerItem(in TimerSlot slot)
    {
        if (slot.Kind == 0)
        {
            var entry = (TimerEntry)slot.State!;
            entry.Queued = false;
            return new ReadyItem { Callback = TimerEntry.Run, State = entry, Scope = _rootScope, Flags = ReadyFlags.None };
        }
        var scope = slot.Scope!;
        scope.SleepEnded(slot.Seq);
        return new ReadyItem { Callback = _timers.ContinuationOf(slot.Kind), State = slot.State, Scope = scope, Flags = ReadyFlags.Resume };
    }

    // ---- checks ----

    /// <summary>Throws unless called on the loop's thread (or the loop is not running); for the loop's own members.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckThread(string member) => CheckThread(nameof(EventLoop), member);

    /// <summary>
    /// Throws unless called on the loop's thread (or the loop is not running); for a member of an object of
    /// the loop, named in the error as <paramref name="type"/>.<paramref name="member"/> (the public type a
    /// user calls, e.g. <c>AioTask.Cancel</c>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckThread(string type, string member)
    {
        if (OnLoopStack()) return;
        int id = _threadId;
        if (id != 0 && id != Environment.CurrentManagedThreadId) ThrowWrongThread(type, member);
    }

    /// <summary>
    /// Whether the caller certainly runs on the thread of this running loop: a local's address lies in that
    /// thread's stack (ThreadStack.cs). <see langword="false"/> also when the stack's bounds are unknown, so
    /// callers fall back to the thread-local test.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal unsafe bool OnLoopStack()
    {
        byte probe;
        return ThreadStack.Contains(Volatile.Read(ref _stack), (ulong)&probe);
    }

    /// <summary>Whether the calling code may suspend on this loop's primitives: it runs on this loop, which is running.</summary>
    internal bool IsAwaitableHere
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => OnLoopStack() || ReferenceEquals(t_running, this);
    }

    /// <summary>
    /// Throws unless the calling code runs in this loop. Call it where an awaitable is created or its
    /// awaiter obtained, never in OnCompleted (an exception there would crash the process).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckAwaitThread()
    {
        if (!OnLoopStack() && !ReferenceEquals(t_running, this)) throw MakeBadAwaitError();
    }

    /// <summary>
    /// Throws if <paramref name="future"/> is the task whose code is running: a task awaiting itself would
    /// never finish (asyncio raises <c>RuntimeError</c> at that await). Called when an await suspends.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckNotSelfAwait(Future future)
    {
        if (ReferenceEquals(_current.Owner, future)) ThrowSelfAwait(future);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowSelfAwait(Future task) =>
        throw new InvalidOperationException($"A task cannot await itself: {task}.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal InvalidOperationException MakeBadAwaitError()
    {
        if (t_running != null)
            return new InvalidOperationException("This object belongs to another event loop; it can only be awaited by code running in the loop that created it.");
        return new InvalidOperationException(
            $"A loop primitive was awaited on thread {Environment.CurrentManagedThreadId}, outside its event loop " +
            $"(which runs on thread {_threadId}). Await it from code the loop runs, or bridge with RunCoroutineThreadsafe. " +
            "(An earlier await with ConfigureAwait(false) moves the rest of a method off the loop: inside the loop's code, leave it out.)");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    void ThrowWrongThread(string type, string member) =>
        throw new InvalidOperationException(
            $"{type}.{member} was called from thread {Environment.CurrentManagedThreadId}, but {(type == nameof(EventLoop) ? "the loop" : "its event loop")} is running on thread {_threadId}. " +
            "The loop and its objects are not thread-safe: use CallSoonThreadsafe or RunCoroutineThreadsafe from other threads.");

    internal void CheckNotClosed()
    {
        if (_state == LoopState.Closed) ThrowClosed();
    }

    [DoesNotReturn]
    static void ThrowClosed() => throw new InvalidOperationException("The event loop is closed.");

    // ---- waiter pools ----

    /// <summary>One free list of waiters of one type (see <see cref="WaiterPool{TWaiter}"/>).</summary>
    internal struct WaiterFreeList
    {
        public WaitNode? Head;
        public int Count;
    }

    static int s_waiterPoolSlots;
    WaiterFreeList[] _waiterPools = new WaiterFreeList[16];

    /// <summary>Gives a waiter type its slot number (once per type, any thread).</summary>
    internal static int NewWaiterPoolSlot() => Interlocked.Increment(ref s_waiterPoolSlots) - 1;

    /// <summary>The free list of waiter type slot <paramref name="slot"/> (loop thread only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref WaiterFreeList WaiterPool(int slot)
    {
        var pools = _waiterPools;
        if ((uint)slot < (uint)pools.Length) return ref pools[slot];
        return ref GrowWaiterPools(slot);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    ref WaiterFreeList GrowWaiterPools(int slot)
    {
        Array.Resize(ref _waiterPools, Math.Max(slot + 1, _waiterPools.Length * 2));
        return ref _waiterPools[slot];
    }

    // ---- small shared buffers ----

    List<Waiter>? _waiterList;

    internal List<Waiter> RentWaiterList()
    {
        var l = _waiterList ?? new List<Waiter>();
        _waiterList = null;
        return l;
    }

    internal void ReturnWaiterList(List<Waiter> list)
    {
        list.Clear();
        _waiterList = list;
    }

    /// <summary>Rethrows an exception with its original stack.</summary>
    [DoesNotReturn]
    internal static void Rethrow(Exception e) => ExceptionDispatchInfo.Throw(e);
}
