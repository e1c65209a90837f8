using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace Asyncio;

/// <summary>
/// The lean return type for async methods that run on the loop: <c>async Coroutine Fetch() { ... }</c>.
/// A coroutine is an ordinary C# async method (it starts at once, as every async method does) whose
/// suspended state costs 32-40 bytes less than an <c>async Task</c> method's (64 bytes against 104 for a
/// method that awaits one sleep), and whose awaits of other coroutines resume without a loop iteration, as
/// <c>await coro()</c> does in Python.
/// </summary>
/// <remarks>
/// <para><b>When to use it.</b> <c>async Task</c> methods work everywhere in this library; a coroutine is
/// for code that keeps very many of them waiting at once (a million sleeping coroutines hold about 40 MB
/// less, which on a machine where fresh memory is slow is a tenth of a second), or that awaits nested
/// coroutines in a hot loop. Await it, gather it (<see cref="Aio.Gather(Coroutine[])"/>), or convert it
/// with <see cref="AsTask"/> for APIs that take a <see cref="Task"/>.</para>
/// <para><b>Semantics.</b> Calling the method runs it up to its first suspension, in the caller's task;
/// its awaits belong to that task and are cancelled with it (a coroutine is not a task and cannot be
/// cancelled on its own: make it a task for that). When it ends, an awaiter that awaited it in the cancel
/// scope where it ends (the same task, outside any narrower timeout scope: the usual case) resumes at once,
/// on the same stack, unless the stack is deep; any other awaiter (another task or scope, a thread, a
/// foreign synchronisation context) resumes through its context, as it would after a <see cref="Task"/>.
/// The <see cref="ExecutionContext"/> (and so <see cref="AsyncLocal{T}"/> values) flows across its awaits
/// as it does in any async method. (When execution-context flow is suppressed, a coroutine resumes in the
/// default context.)</para>
/// <para><b>Outcome.</b> A coroutine may be awaited any number of times, from any thread; each await
/// returns its result or rethrows its exception (the same exception object, its stack trace kept). A
/// coroutine ended by an <see cref="OperationCanceledException"/> (a <see cref="CancelledError"/>) is
/// <see cref="IsCancelled"/>. An exception nobody awaits is lost: nothing reports it (a <see cref="Task"/>'s
/// reaches <see cref="TaskScheduler.UnobservedTaskException"/> once collected, a failed task's the loop's
/// exception handler); run the coroutine as a task (<see cref="Aio.CreateTask(Func{Coroutine}, string?)"/>)
/// to have it reported. A coroutine has no <c>ConfigureAwait</c>: it belongs to the loop, and code after its
/// await runs there.</para>
/// </remarks>
[AsyncMethodBuilder(typeof(CoroutineMethodBuilder))]
[DebuggerDisplay("Coroutine ({StateName,nq})")]
public class Coroutine : IValueTaskSource
{
    // While pending: who waits, or null: a suspended coroutine (its box), an ICoroutineObserver (a gather,
    // a task), a ForeignWaiter (any other awaiter), or a WaiterList of them. Once done: a CoroutineOutcome.
    // Every write after creation is an Interlocked one, so that a coroutine may end on one thread while
    // another registers.
    private protected object? _slot;

    // Only a suspended box uses it (see CoroutineBuilding.SaveContexts): the execution context to resume in
    // and, while it awaits another coroutine, the synchronisation context to resume through.
    private protected object? _extra;

    /// <summary>The box's contexts field (see <see cref="CoroutineBuilding"/>).</summary>
    internal ref object? Extra => ref _extra;

    private protected Coroutine() { }

    private protected Coroutine(CoroutineOutcome outcome) => _slot = outcome;

    static readonly Coroutine s_completed = new(CoroutineOutcome.Success);

    /// <summary>A coroutine that has already finished successfully (as <see cref="Task.CompletedTask"/>).</summary>
    public static Coroutine CompletedCoroutine => s_completed;

    /// <summary>A coroutine that has already failed with <paramref name="exception"/> (as <see cref="Task.FromException(Exception)"/>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="exception"/> is null.</exception>
    public static Coroutine FromException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return new Coroutine(Failure(exception));
    }

    /// <summary>A coroutine that has already finished with <paramref name="result"/> (as <see cref="Task.FromResult{TResult}(TResult)"/>).</summary>
    public static Coroutine<T> FromResult<T>(T result) => new(result);

    /// <summary>Whether the coroutine has finished, successfully or not.</summary>
    public bool IsCompleted => Volatile.Read(ref _slot) is CoroutineOutcome;

    /// <summary>Whether the coroutine has finished without an exception.</summary>
    public bool IsCompletedSuccessfully => ReferenceEquals(Volatile.Read(ref _slot), CoroutineOutcome.Success);

    /// <summary>Whether the coroutine ended with an exception other than an <see cref="OperationCanceledException"/>.</summary>
    public bool IsFaulted => Volatile.Read(ref _slot) is CoroutineOutcome { Error: not null, IsCancellation: false };

    /// <summary>Whether the coroutine ended with an <see cref="OperationCanceledException"/> (such as <see cref="CancelledError"/>).</summary>
    public bool IsCancelled => Volatile.Read(ref _slot) is CoroutineOutcome { IsCancellation: true };

    /// <summary>
    /// The exception the coroutine ended with (a cancellation included), or <see langword="null"/> if it
    /// succeeded or has not finished.
    /// </summary>
    public Exception? GetException() => (Volatile.Read(ref _slot) as CoroutineOutcome)?.Error?.SourceException;

    /// <summary>Lets <c>await coroutine</c> wait for it and rethrow its exception.</summary>
    public CoroutineAwaiter GetAwaiter() => new(this);

    /// <summary>
    /// A <see cref="Task"/> that completes with the coroutine (allocates; for APIs that take a Task). A
    /// cancelled coroutine gives a cancelled Task.
    /// </summary>
    public Task AsTask() => IsCompletedSuccessfully ? Task.CompletedTask : new ValueTask(this, 0).AsTask();

    /// <summary>A <see cref="ValueTask"/> over the coroutine (allocates nothing).</summary>
    public ValueTask AsValueTask() => IsCompletedSuccessfully ? default : new ValueTask(this, 0);

    private protected string StateName => Volatile.Read(ref _slot) switch
    {
        CoroutineOutcome { Error: null } => "finished",
        CoroutineOutcome { IsCancellation: true } => "cancelled",
        CoroutineOutcome => "failed",
        _ => "pending",
    };

    // ---- outcome ----

    /// <summary>Rethrows the coroutine's exception; throws if it has not finished.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    [StackTraceHidden] // a rethrow shows the user's frames only, as a Task's awaiter does
    internal void ThrowIfFailed()
    {
        var slot = Volatile.Read(ref _slot);
        if (!ReferenceEquals(slot, CoroutineOutcome.Success)) ThrowFailure(slot);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    [StackTraceHidden]
    static void ThrowFailure(object? slot)
    {
        if (slot is CoroutineOutcome { Error: { } error }) error.Throw();
        throw new InvalidOperationException("The coroutine has not finished; await it instead of reading its result.");
    }

    /// <summary>Ends the coroutine and wakes whoever waits (on the thread that ends it).</summary>
    private protected void Finish(CoroutineOutcome outcome)
    {
        _extra = null;
        var waiting = Interlocked.Exchange(ref _slot, outcome);
        if (waiting is WaiterList list) WakeAll(list);
        else if (waiting != null) Wake(waiting);
    }

    /// <summary>Ends the coroutine with <paramref name="exception"/>.</summary>
    private protected void Fail(Exception exception) => Finish(Failure(exception));

    private protected static CoroutineOutcome Failure(Exception exception) => new(ExceptionDispatchInfo.Capture(exception));

    void Wake(object waiting)
    {
        switch (waiting)
        {
            case Coroutine box: box.ResumeAfterCoroutine(); break;
            case ICoroutineObserver observer: observer.CoroutineDone(this); break;
            default: ((ForeignWaiter)waiting).Run(); break;
        }
    }

    /// <summary>Wakes every waiter of a list, even if one of them throws (the first error is rethrown after).</summary>
    void WakeAll(WaiterList list)
    {
        var items = list.Close(out int count);
        ExceptionDispatchInfo? error = null;
        for (int i = 0; i < count; i++)
        {
            try { Wake(items[i]); }
            catch (Exception e) { error ??= ExceptionDispatchInfo.Capture(e); }
        }
        error?.Throw();
    }

    // ---- waiting ----

    /// <summary>Registers <paramref name="waiter"/>; false if the coroutine has already finished.</summary>
    internal bool AddWaiter(object waiter)
    {
        var current = Volatile.Read(ref _slot);
        while (true)
        {
            if (current is CoroutineOutcome) return false;
            // A list, once there, stays until the end; it refuses waiters once Finish has taken it.
            if (current is WaiterList list) return list.TryAdd(waiter);
            var next = current == null ? waiter : new WaiterList(current, waiter);
            var seen = Interlocked.CompareExchange(ref _slot, next, current);
            if (ReferenceEquals(seen, current)) return true;
            current = seen;
        }
    }

    /// <summary>Unregisters <paramref name="waiter"/> (a combinator that stopped watching); nothing if it is not there.</summary>
    internal void RemoveWaiter(object waiter)
    {
        var current = Volatile.Read(ref _slot);
        while (true)
        {
            if (current is WaiterList list)
            {
                list.Remove(waiter);
                return;
            }
            if (!ReferenceEquals(current, waiter)) return;
            var seen = Interlocked.CompareExchange(ref _slot, null, current);
            if (ReferenceEquals(seen, current)) return;
            current = seen;
        }
    }

    /// <summary>Registers a continuation from a foreign awaiter; runs it at once (on the pool) if the coroutine has finished.</summary>
    internal void AddForeign(ForeignWaiter waiter)
    {
        if (!AddWaiter(waiter)) ThreadPool.UnsafeQueueUserWorkItem(static w => w.Run(), waiter, preferLocal: true);
    }

    // ---- introspection (Diagnostics/CallGraph.cs) ----

    /// <summary>Whoever waits for the pending coroutine (a box, a task, a combinator, a foreign awaiter, or a list of them); none once done.</summary>
    internal object? Waiting => Volatile.Read(ref _slot) is var s && s is not CoroutineOutcome ? s : null;

    /// <summary>The compiler's state machine type of an <c>async Coroutine</c> method's box (names the method); <see langword="null"/> for other coroutines.</summary>
    internal virtual Type? StateMachineType => null;

    /// <summary>The waiters of a list of several (for <see cref="Waiting"/>).</summary>
    internal static object[] WaitersOf(object waiting) => waiting is WaiterList list ? list.Snapshot() : [waiting];

    // ---- a suspended box (overridden in CoroutineBox) ----

    internal static readonly Action<object?> s_runBox = static o => ((Coroutine)o!).RunBox();

    /// <summary>Resumes the suspended state machine (boxes only).</summary>
    internal virtual void RunBox() => throw new UnreachableException();

    /// <summary>The synchronisation context this box awaited a coroutine in (kept only for that await).</summary>
    SynchronizationContext? AwaitContext => _extra as SynchronizationContext ?? (_extra as BoxExtras)?.SyncContext;

    /// <summary>
    /// This box awaited a coroutine that has now ended: resume at once if the code that ends it runs in the
    /// context this box awaited in (the same scope of the same task, the usual case), else through it.
    /// </summary>
    internal void ResumeAfterCoroutine()
    {
        var context = AwaitContext;
        if (ResumeContext.CanRunInline(context)) RunBox();
        else ResumeContext.Post(context, s_runBox, this);
    }

    /// <summary>This box's await of a coroutine found it already ended (a race with another thread): resume later.</summary>
    internal void ResumeLater() => ResumeContext.Post(AwaitContext, s_runBox, this);

    // ---- IValueTaskSource (AsTask, AsValueTask) ----

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => GetStatusCore();

    private protected ValueTaskSourceStatus GetStatusCore() => Volatile.Read(ref _slot) switch
    {
        CoroutineOutcome { Error: null } => ValueTaskSourceStatus.Succeeded,
        CoroutineOutcome { IsCancellation: true } => ValueTaskSourceStatus.Canceled,
        CoroutineOutcome => ValueTaskSourceStatus.Faulted,
        _ => ValueTaskSourceStatus.Pending,
    };

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        AddForeign(new ForeignWaiter(continuation, state, flags));
    }

    void IValueTaskSource.GetResult(short token) => ThrowIfFailed();
}

/// <summary>A coroutine that returns a value: <c>async Coroutine&lt;int&gt; Count() { ... }</c>; see <see cref="Coroutine"/>.</summary>
/// <typeparam name="T">The type of the result.</typeparam>
[AsyncMethodBuilder(typeof(CoroutineMethodBuilder<>))]
[DebuggerDisplay("Coroutine<{typeof(T).Name,nq}> ({StateName,nq})")]
public class Coroutine<T> : Coroutine, IValueTaskSource<T>, IFutureResult<T>
{
    private protected T _result = default!;

    private protected Coroutine() { }

    internal Coroutine(T result) : base(CoroutineOutcome.Success) => _result = result;

    private Coroutine(CoroutineOutcome failure) : base(failure) { }

    /// <summary>A coroutine that has already failed (a method that threw before its first suspension).</summary>
    internal static Coroutine<T> Failed(Exception exception) => new(Failure(exception));

    /// <summary>The result of a coroutine that has finished successfully; rethrows its exception otherwise.</summary>
    /// <exception cref="InvalidOperationException">The coroutine has not finished.</exception>
    public T Result
    {
        [StackTraceHidden]
        get
        {
            ThrowIfFailed();
            return _result;
        }
    }

    T IFutureResult<T>.GetResultCore() => _result;

    /// <summary>Lets <c>await coroutine</c> return its result.</summary>
    public new CoroutineAwaiter<T> GetAwaiter() => new(this);

    /// <summary>A <see cref="Task{TResult}"/> that completes with the coroutine (allocates; for APIs that take a Task).</summary>
    public new Task<T> AsTask() => IsCompletedSuccessfully ? Task.FromResult(_result) : new ValueTask<T>(this, 0).AsTask();

    /// <summary>A <see cref="ValueTask{TResult}"/> over the coroutine (allocates nothing).</summary>
    public new ValueTask<T> AsValueTask() => IsCompletedSuccessfully ? new ValueTask<T>(_result) : new ValueTask<T>(this, 0);

    /// <summary>Ends the coroutine with <paramref name="result"/>.</summary>
    private protected void Succeed(T result)
    {
        _result = result;
        Finish(CoroutineOutcome.Success);
    }

    ValueTaskSourceStatus IValueTaskSource<T>.GetStatus(short token) => GetStatusCore();

    void IValueTaskSource<T>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        AddForeign(new ForeignWaiter(continuation, state, flags));
    }

    T IValueTaskSource<T>.GetResult(short token) => Result;
}

/// <summary>Awaits a <see cref="Coroutine"/>; returned by <see cref="Coroutine.GetAwaiter"/>.</summary>
public readonly struct CoroutineAwaiter : ICriticalNotifyCompletion, ICoroutineAwaiter
{
    // The only field, in this awaiter and in CoroutineAwaiter<T>: the builder reads it through Unsafe.As.
    readonly Coroutine _coroutine;

    internal CoroutineAwaiter(Coroutine coroutine) => _coroutine = coroutine;

    internal Coroutine Coroutine => _coroutine;

    /// <summary>Whether the coroutine has finished.</summary>
    public bool IsCompleted => _coroutine.IsCompleted;

    /// <summary>Rethrows the coroutine's exception, if any.</summary>
    /// <exception cref="InvalidOperationException">The coroutine has not finished.</exception>
    [StackTraceHidden]
    public void GetResult() => _coroutine.ThrowIfFailed();

    /// <summary>Runs <paramref name="continuation"/> when the coroutine finishes, in the current execution context.</summary>
    public void OnCompleted(Action continuation) => _coroutine.AddForeign(new ForeignWaiter(continuation, flowExecutionContext: true));

    /// <summary>Runs <paramref name="continuation"/> when the coroutine finishes.</summary>
    public void UnsafeOnCompleted(Action continuation) => _coroutine.AddForeign(new ForeignWaiter(continuation, flowExecutionContext: false));
}

/// <summary>Awaits a <see cref="Coroutine{T}"/>; returned by <see cref="Coroutine{T}.GetAwaiter"/>.</summary>
/// <typeparam name="T">The type of the result.</typeparam>
public readonly struct CoroutineAwaiter<T> : ICriticalNotifyCompletion, ICoroutineAwaiter
{
    readonly Coroutine<T> _coroutine;   // the only field (see CoroutineAwaiter)

    internal CoroutineAwaiter(Coroutine<T> coroutine) => _coroutine = coroutine;

    /// <summary>Whether the coroutine has finished.</summary>
    public bool IsCompleted => _coroutine.IsCompleted;

    /// <summary>Returns the coroutine's result or rethrows its exception.</summary>
    /// <exception cref="InvalidOperationException">The coroutine has not finished.</exception>
    [StackTraceHidden]
    public T GetResult() => _coroutine.Result;

    /// <summary>Runs <paramref name="continuation"/> when the coroutine finishes, in the current execution context.</summary>
    public void OnCompleted(Action continuation) => _coroutine.AddForeign(new ForeignWaiter(continuation, flowExecutionContext: true));

    /// <summary>Runs <paramref name="continuation"/> when the coroutine finishes.</summary>
    public void UnsafeOnCompleted(Action continuation) => _coroutine.AddForeign(new ForeignWaiter(continuation, flowExecutionContext: false));
}

/// <summary>Marks the coroutine awaiters, whose single field the builder reads directly.</summary>
internal interface ICoroutineAwaiter;

/// <summary>Receives the end of a coroutine it registered with (<see cref="Coroutine.AddWaiter"/>), on the thread that ends it.</summary>
internal interface ICoroutineObserver
{
    void CoroutineDone(Coroutine coroutine);
}

/// <summary>How a coroutine ended. <see cref="Success"/> is shared; a failure carries its exception.</summary>
internal sealed class CoroutineOutcome(ExceptionDispatchInfo? error)
{
    public static readonly CoroutineOutcome Success = new(null);

    public readonly ExceptionDispatchInfo? Error = error;

    public bool IsCancellation => Error?.SourceException is OperationCanceledException;
}

/// <summary>
/// Three or more waiters of one coroutine: a growable list under its own lock, which <see cref="Coroutine"/>
/// closes when it ends (after which it refuses waiters, so that none is added to a list already woken).
/// </summary>
internal sealed class WaiterList
{
    object[] _items;
    int _count;
    bool _closed;

    public WaiterList(object first, object second)
    {
        _items = [first, second, null!, null!];
        _count = 2;
    }

    /// <summary>Adds <paramref name="waiter"/>; false once the coroutine has ended.</summary>
    public bool TryAdd(object waiter)
    {
        lock (this)
        {
            if (_closed) return false;
            if (_count == _items.Length) Array.Resize(ref _items, _count * 2);
            _items[_count++] = waiter;
            return true;
        }
    }

    public void Remove(object waiter)
    {
        lock (this)
        {
            if (_closed) return;
            int i = Array.IndexOf(_items, waiter, 0, _count);
            if (i < 0) return;
            Array.Copy(_items, i + 1, _items, i, _count - i - 1);
            _items[--_count] = null!;
        }
    }

    /// <summary>A copy of the waiters (for introspection).</summary>
    public object[] Snapshot()
    {
        lock (this) return _items[.._count];
    }

    /// <summary>Closes the list and returns its waiters (the first <paramref name="count"/> items).</summary>
    public object[] Close(out int count)
    {
        lock (this)
        {
            _closed = true;
            count = _count;
            return _items;
        }
    }
}

/// <summary>
/// A continuation from outside this library's builders (an <c>async Task</c> method, <see cref="Coroutine.AsTask"/>):
/// it runs in the synchronisation context it was registered in, as a <see cref="Task"/>'s await continuation
/// does, or wherever the coroutine ends if it asked for no context (a <see cref="ValueTask"/>'s conversion to a Task).
/// </summary>
internal sealed class ForeignWaiter
{
    readonly Action<object?> _continuation;
    readonly object? _state;
    readonly SynchronizationContext? _context;
    readonly ExecutionContext? _executionContext;
    readonly bool _anywhere;

    public ForeignWaiter(Action continuation, bool flowExecutionContext)
        : this(s_invokeAction, continuation ?? throw new ArgumentNullException(nameof(continuation)), ResumeContext.Capture(), flowExecutionContext, anywhere: false) { }

    public ForeignWaiter(Action<object?> continuation, object? state, ValueTaskSourceOnCompletedFlags flags)
        : this(continuation, state,
               (flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0 ? ResumeContext.Capture() : null,
               (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0,
               anywhere: (flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) == 0) { }

    ForeignWaiter(Action<object?> continuation, object? state, SynchronizationContext? context, bool flowExecutionContext, bool anywhere)
    {
        _continuation = continuation;
        _state = state;
        _context = context;
        _anywhere = anywhere;
        if (flowExecutionContext) _executionContext = ExecutionContext.Capture();
    }

    static readonly Action<object?> s_invokeAction = static a => ((Action)a!)();
    static readonly ContextCallback s_invokeInContext = static w => ((ForeignWaiter)w!).Invoke();
    static readonly Action<object?> s_runHere = static w => ((ForeignWaiter)w!).RunHere();

    /// <summary>The coroutine ended: run here if this is the context it was registered in (or it asked for none), else post it there.</summary>
    public void Run()
    {
        if (_anywhere || ResumeContext.CanRunInline(_context)) RunHere();
        else ResumeContext.Post(_context, s_runHere, this);
    }

    void RunHere()
    {
        if (_executionContext == null) Invoke();
        else ExecutionContext.Run(_executionContext, s_invokeInContext, this);
    }

    void Invoke() => _continuation(_state);
}

/// <summary>Where an awaiter of a coroutine is resumed.</summary>
internal static class ResumeContext
{
    /// <summary>
    /// The synchronisation context of the code running now; on a loop's thread, the loop's current scope (which
    /// the thread's context may lag behind, after the runtime restored it on its way out of an await).
    /// </summary>
    public static SynchronizationContext? Capture()
    {
        var context = SynchronizationContext.Current;
        return context is CancelScope scope && scope.Loop.IsLoopThread ? scope.Loop.CurrentScope : context;
    }

    /// <summary>
    /// Whether an awaiter registered in <paramref name="context"/> may run here and now, on the stack of the
    /// code that ended what it awaited: it is the same scope of the same loop (or the same foreign context, or
    /// none on either side), and the stack has room (a long chain of coroutines ending one after the other would
    /// otherwise nest as deep as the chain is long).
    /// </summary>
    public static bool CanRunInline(SynchronizationContext? context)
    {
        bool same = context is CancelScope scope
            ? scope.Loop.IsLoopThread && ReferenceEquals(scope.Loop.CurrentScope, scope)
            : ReferenceEquals(context, SynchronizationContext.Current);
        return same && RuntimeHelpers.TryEnsureSufficientExecutionStack();
    }

    /// <summary>
    /// Runs <paramref name="callback"/> later in <paramref name="context"/>: a loop's scope queues it on its
    /// loop (from any thread, no allocation), another context gets it posted (a delegate made for the post), and
    /// no context means the thread pool.
    /// </summary>
    public static void Post(SynchronizationContext? context, Action<object?> callback, object state)
    {
        if (context is CancelScope scope) scope.Loop.PostInScope(callback, state, scope);
        else if (context != null) context.Post(new SendOrPostCallback(callback), state);
        else ThreadPool.UnsafeQueueUserWorkItem(callback, state, preferLocal: true);
    }
}
