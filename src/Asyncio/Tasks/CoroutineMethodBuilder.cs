using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Asyncio;

// How a coroutine is built (the compiler calls the builder; user code never does).
//
// The method runs on the caller's stack until its first await that has to wait. There the builder copies the
// compiler's state machine into a box, which is the Coroutine the caller gets back: one object holding the
// state machine, the slot for whoever waits, and one field for the contexts to resume in. An async Task
// method's box also carries a Task's bookkeeping (an id, flags, a contingent-properties slot, a cached
// delegate, the execution context): about 40 bytes more for a method that awaits one sleep.
//
// Where the awaited thing lets us, the box is its own continuation and no delegate is made:
// - another coroutine: the box goes into its waiter slot (and is resumed directly when it ends, see
//   Coroutine.ResumeAfterCoroutine);
// - a ValueTask or ValueTask<T> over an IValueTaskSource (every loop primitive: sleeps, futures, tasks, locks,
//   queues, streams): the source is handed a static delegate and the box, as the runtime's own builder does
//   for its boxes;
// - anything else (a Task, a custom awaiter): the awaiter gets a delegate made once per box.

/// <summary>Builds <c>async Coroutine</c> methods; used by the compiler.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct CoroutineMethodBuilder
{
    Coroutine? _coroutine;   // the box once the method has suspended; the outcome if it ended before that

    /// <summary>Creates a builder (compiler use).</summary>
    public static CoroutineMethodBuilder Create() => default;

    /// <summary>Runs the method up to its first suspension (compiler use).</summary>
    public void Start<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine =>
        CoroutineBuilding.Start(ref stateMachine);

    /// <summary>Not used (compiler use).</summary>
    public void SetStateMachine(IAsyncStateMachine stateMachine) { }

    /// <summary>The coroutine the method returns (compiler use).</summary>
    public Coroutine Task => _coroutine ?? Coroutine.CompletedCoroutine;

    /// <summary>Ends the coroutine (compiler use).</summary>
    public void SetResult()
    {
        if (_coroutine == null) _coroutine = Coroutine.CompletedCoroutine;
        else ((ICoroutineBox)_coroutine).SetResult();
    }

    /// <summary>Ends the coroutine with an exception (compiler use).</summary>
    public void SetException(Exception exception)
    {
        if (_coroutine == null) _coroutine = Coroutine.FromException(exception);
        else ((ICoroutineBox)_coroutine).SetException(exception);
    }

    /// <summary>Suspends the method on <paramref name="awaiter"/> (compiler use).</summary>
    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion where TStateMachine : IAsyncStateMachine =>
        CoroutineBuilding.Suspend(ref awaiter, GetBox(ref stateMachine));

    /// <summary>Suspends the method on <paramref name="awaiter"/> (compiler use).</summary>
    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion where TStateMachine : IAsyncStateMachine =>
        CoroutineBuilding.SuspendUnsafe(ref awaiter, GetBox(ref stateMachine));

    Coroutine GetBox<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine
    {
        if (_coroutine != null) return _coroutine;
        var box = new CoroutineBox<TStateMachine>();
        _coroutine = box;                     // before the copy, so that the box's builder knows its box
        box.StateMachine = stateMachine;
        return box;
    }
}

/// <summary>Builds <c>async Coroutine&lt;T&gt;</c> methods; used by the compiler.</summary>
/// <typeparam name="T">The method's result type.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct CoroutineMethodBuilder<T>
{
    Coroutine<T>? _coroutine;

    /// <summary>Creates a builder (compiler use).</summary>
    public static CoroutineMethodBuilder<T> Create() => default;

    /// <summary>Runs the method up to its first suspension (compiler use).</summary>
    public void Start<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine =>
        CoroutineBuilding.Start(ref stateMachine);

    /// <summary>Not used (compiler use).</summary>
    public void SetStateMachine(IAsyncStateMachine stateMachine) { }

    /// <summary>The coroutine the method returns (compiler use).</summary>
    public Coroutine<T> Task => _coroutine!;

    /// <summary>Ends the coroutine with its result (compiler use).</summary>
    public void SetResult(T result)
    {
        if (_coroutine == null) _coroutine = new Coroutine<T>(result);
        else ((CoroutineBoxBase<T>)_coroutine).SetResult(result);
    }

    /// <summary>Ends the coroutine with an exception (compiler use).</summary>
    public void SetException(Exception exception)
    {
        if (_coroutine == null) _coroutine = CoroutineBoxBase<T>.Failed(exception);
        else ((CoroutineBoxBase<T>)_coroutine).SetException(exception);
    }

    /// <summary>Suspends the method on <paramref name="awaiter"/> (compiler use).</summary>
    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion where TStateMachine : IAsyncStateMachine =>
        CoroutineBuilding.Suspend(ref awaiter, GetBox(ref stateMachine));

    /// <summary>Suspends the method on <paramref name="awaiter"/> (compiler use).</summary>
    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion where TStateMachine : IAsyncStateMachine =>
        CoroutineBuilding.SuspendUnsafe(ref awaiter, GetBox(ref stateMachine));

    Coroutine GetBox<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine
    {
        if (_coroutine != null) return _coroutine;
        var box = new CoroutineBox<TStateMachine, T>();
        _coroutine = box;
        box.StateMachine = stateMachine;
        return box;
    }
}

/// <summary>What both builders do with a box.</summary>
internal interface ICoroutineBox
{
    void SetResult();
    void SetException(Exception exception);
}

/// <summary>The box of an <c>async Coroutine</c> method: the coroutine and its state machine in one object.</summary>
internal sealed class CoroutineBox<TStateMachine> : Coroutine, ICoroutineBox where TStateMachine : IAsyncStateMachine
{
    public TStateMachine StateMachine = default!;

    internal override void RunBox() => CoroutineBuilding.Resume(ref StateMachine, _extra);

    public void SetResult()
    {
        StateMachine = default!;   // let go of the locals
        Finish(CoroutineOutcome.Success);
    }

    public void SetException(Exception exception)
    {
        StateMachine = default!;
        Fail(exception);
    }
}

/// <summary>What the result-carrying boxes share.</summary>
internal abstract class CoroutineBoxBase<T> : Coroutine<T>
{
    public abstract void SetResult(T result);

    public abstract void SetException(Exception exception);

    public static Coroutine<T> Failed(Exception exception)
    {
        var c = new FailedCoroutine();
        c.SetException(exception);
        return c;
    }

    sealed class FailedCoroutine : CoroutineBoxBase<T>
    {
        public override void SetResult(T result) => Succeed(result);
        public override void SetException(Exception exception) => Fail(exception);
    }
}

/// <summary>The box of an <c>async Coroutine&lt;T&gt;</c> method.</summary>
internal sealed class CoroutineBox<TStateMachine, T> : CoroutineBoxBase<T> where TStateMachine : IAsyncStateMachine
{
    public TStateMachine StateMachine = default!;

    internal override void RunBox() => CoroutineBuilding.Resume(ref StateMachine, _extra);

    public override void SetResult(T result)
    {
        StateMachine = default!;
        Succeed(result);
    }

    public override void SetException(Exception exception)
    {
        StateMachine = default!;
        Fail(exception);
    }
}

/// <summary>
/// A box's contexts when it needs more than one (an execution context that is not the default one and a
/// synchronisation context), and the delegate it gives awaiters it has no cheaper way to resume through.
/// Made at most once per box.
/// </summary>
internal sealed class BoxExtras
{
    public ExecutionContext? ExecutionContext;
    public SynchronizationContext? SyncContext;
    public Action? MoveNext;
}

/// <summary>The builders' shared steps.</summary>
internal static class CoroutineBuilding
{
    /// <summary>As the runtime's builders: the method's synchronous part cannot change its caller's contexts.</summary>
    public static void Start<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine
    {
        var executionContext = ExecutionContext.Capture();
        var syncContext = SynchronizationContext.Current;
        try
        {
            stateMachine.MoveNext();
        }
        finally
        {
            if (!ReferenceEquals(SynchronizationContext.Current, syncContext)) SynchronizationContext.SetSynchronizationContext(syncContext);
            if (executionContext != null && !ReferenceEquals(ExecutionContext.Capture(), executionContext)) ExecutionContext.Restore(executionContext);
        }
    }

    /// <summary>Suspends <paramref name="box"/> on <paramref name="awaiter"/> (the builders' <c>AwaitOnCompleted</c>).</summary>
    public static void Suspend<TAwaiter>(ref TAwaiter awaiter, Coroutine box) where TAwaiter : INotifyCompletion
    {
        if (!TrySuspend(ref awaiter, box)) awaiter.OnCompleted(MoveNextOf(box));
    }

    /// <summary>Suspends <paramref name="box"/> on <paramref name="awaiter"/> (the builders' <c>AwaitUnsafeOnCompleted</c>).</summary>
    public static void SuspendUnsafe<TAwaiter>(ref TAwaiter awaiter, Coroutine box) where TAwaiter : ICriticalNotifyCompletion
    {
        if (!TrySuspend(ref awaiter, box)) awaiter.UnsafeOnCompleted(MoveNextOf(box));
    }

    /// <summary>
    /// Suspends <paramref name="box"/> on <paramref name="awaiter"/> without a delegate if the awaiter allows
    /// it (see the file's opening comment); false if the caller must hand it <see cref="MoveNextOf"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool TrySuspend<TAwaiter>(ref TAwaiter awaiter, Coroutine box)
    {
        if (awaiter is ICoroutineAwaiter)
        {
            var target = Unsafe.As<TAwaiter, CoroutineAwaiter>(ref awaiter).Coroutine;
            SaveContexts(box, ResumeContext.Capture());
            if (!target.AddWaiter(box)) box.ResumeLater();
            return true;
        }
        SaveContexts(box, null);
        if (typeof(TAwaiter) == typeof(ValueTaskAwaiter))
        {
            if (!ValueTaskFields.Readable) return false;
            ref var task = ref ValueTaskFields.Task(ref Unsafe.As<TAwaiter, ValueTaskAwaiter>(ref awaiter));
            if (ValueTaskFields.Source(ref task) is not IValueTaskSource source) return false;
            source.OnCompleted(Coroutine.s_runBox, box, ValueTaskFields.Token(ref task), ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
            return true;
        }
        return GenericAwaiter<TAwaiter>.Instance is { } generic && generic.TrySuspend(ref awaiter, box);
    }

    /// <summary>
    /// Records in the box the execution context to resume in (none when it is the default one) and the
    /// synchronisation context it awaits in (only for an await of a coroutine). Writes nothing when unchanged.
    /// </summary>
    static void SaveContexts(Coroutine box, SynchronizationContext? syncContext)
    {
        var executionContext = ExecutionContext.Capture();
        if (ReferenceEquals(executionContext, s_defaultContext)) executionContext = null;
        ref var extra = ref box.Extra;
        if (extra is BoxExtras extras)
        {
            extras.ExecutionContext = executionContext;
            extras.SyncContext = syncContext;
            return;
        }
        object? value = executionContext == null ? syncContext
            : syncContext == null ? executionContext
            : new BoxExtras { ExecutionContext = executionContext, SyncContext = syncContext };
        if (!ReferenceEquals(extra, value)) extra = value;
    }

    /// <summary>The delegate that resumes <paramref name="box"/>, made once.</summary>
    static Action MoveNextOf(Coroutine box)
    {
        ref var extra = ref box.Extra;
        if (extra is BoxExtras { MoveNext: { } existing }) return existing;
        var extras = extra as BoxExtras ?? new BoxExtras
        {
            ExecutionContext = extra as ExecutionContext,
            SyncContext = extra as SynchronizationContext,
        };
        extras.MoveNext = box.RunBox;
        extra = extras;
        return extras.MoveNext;
    }

    /// <summary>
    /// Runs a box's next step in the execution context it suspended in (the default one when none was kept),
    /// and puts the thread's context back afterwards, so that an <see cref="AsyncLocal{T}"/> value the step
    /// sets does not stay on the loop's thread for the code that runs after it. (With flow suppressed on this
    /// thread, or the default context unknown, the step runs in the thread's context as it is.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Resume<TStateMachine>(ref TStateMachine stateMachine, object? extra) where TStateMachine : IAsyncStateMachine
    {
        var before = ExecutionContext.Capture();
        var wanted = extra as ExecutionContext ?? (extra as BoxExtras)?.ExecutionContext ?? s_defaultContext;
        if (before == null || wanted == null)
        {
            stateMachine.MoveNext();
            return;
        }
        if (!ReferenceEquals(before, wanted)) ExecutionContext.Restore(wanted);
        try
        {
            stateMachine.MoveNext();
        }
        finally
        {
            if (!ReferenceEquals(ExecutionContext.Capture(), before)) ExecutionContext.Restore(before);
        }
    }

    /// <summary>The runtime's default execution context (what <see cref="ExecutionContext.Capture"/> returns when no <see cref="AsyncLocal{T}"/> is set).</summary>
    static readonly ExecutionContext? s_defaultContext = ReadDefaultContext();

    static ExecutionContext? ReadDefaultContext()
    {
        try { return DefaultContext(null); }
        catch (MissingFieldException) { return null; }   // then every resumption runs in its captured context
    }

    [UnsafeAccessor(UnsafeAccessorKind.StaticField, Name = "Default")]
    static extern ref ExecutionContext DefaultContext(ExecutionContext? unused);
}

/// <summary>
/// How a box suspends on a generic awaiter type without a delegate, if it can: made once per awaiter type.
/// Only <see cref="ValueTaskAwaiter{TResult}"/> has a way (<see cref="ValueTaskAwaiterOf{T}"/>); it is made by
/// reflection, so without dynamic code (native AOT) such awaits take the delegate path.
/// </summary>
internal abstract class GenericAwaiter<TAwaiter>
{
    public static readonly GenericAwaiter<TAwaiter>? Instance = Create();

    public abstract bool TrySuspend(ref TAwaiter awaiter, Coroutine box);

    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Used only where dynamic code is supported; the delegate path otherwise.")]
    [UnconditionalSuppressMessage("Trimming", "IL2055", Justification = "ValueTaskAwaiterOf<T> is referenced statically; T comes from a live awaiter type.")]
    [UnconditionalSuppressMessage("Trimming", "IL2077", Justification = "ValueTaskAwaiterOf<T> has a public parameterless constructor that is referenced statically.")]
    static GenericAwaiter<TAwaiter>? Create()
    {
        var type = typeof(TAwaiter);
        if (!type.IsGenericType || type.GetGenericTypeDefinition() != typeof(ValueTaskAwaiter<>) || !RuntimeFeature.IsDynamicCodeSupported)
            return null;
        try
        {
            var handler = (GenericAwaiter<TAwaiter>)Activator.CreateInstance(typeof(ValueTaskAwaiterOf<>).MakeGenericType(type.GetGenericArguments()))!;
            return handler.Works() ? handler : null;
        }
        catch (Exception e) when (e is MissingMemberException or NotSupportedException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Whether the fields it reads are there (checked once).</summary>
    private protected abstract bool Works();
}

/// <summary>Suspends a box on a <see cref="ValueTaskAwaiter{TResult}"/> (see <see cref="ValueTaskFields"/>).</summary>
internal sealed class ValueTaskAwaiterOf<T> : GenericAwaiter<ValueTaskAwaiter<T>>
{
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_value")]
    static extern ref ValueTask<T> Task(ref ValueTaskAwaiter<T> awaiter);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_obj")]
    static extern ref object? Source(ref ValueTask<T> task);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_token")]
    static extern ref short Token(ref ValueTask<T> task);

    public override bool TrySuspend(ref ValueTaskAwaiter<T> awaiter, Coroutine box)
    {
        ref var task = ref Task(ref awaiter);
        if (Source(ref task) is not IValueTaskSource<T> source) return false;
        source.OnCompleted(Coroutine.s_runBox, box, Token(ref task), ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
        return true;
    }

    private protected override bool Works()
    {
        var probe = new Probe();
        var awaiter = new ValueTask<T>(probe, 12345).GetAwaiter();
        ref var task = ref Task(ref awaiter);
        return ReferenceEquals(Source(ref task), probe) && Token(ref task) == 12345;
    }

    sealed class Probe : IValueTaskSource<T>
    {
        public ValueTaskSourceStatus GetStatus(short token) => ValueTaskSourceStatus.Pending;
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) { }
        public T GetResult(short token) => default!;
    }
}

/// <summary>
/// Reads the source and token of the <see cref="ValueTask"/> inside a <see cref="ValueTaskAwaiter"/>, which
/// the runtime reads for its own builders; checked once against a known value, and unused if that fails.
/// </summary>
internal static class ValueTaskFields
{
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_value")]
    public static extern ref ValueTask Task(ref ValueTaskAwaiter awaiter);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_obj")]
    public static extern ref object? Source(ref ValueTask task);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_token")]
    public static extern ref short Token(ref ValueTask task);

    public static readonly bool Readable = Check();

    static bool Check()
    {
        try
        {
            var probe = new ProbeSource();
            var awaiter = new ValueTask(probe, 12345).GetAwaiter();
            ref var task = ref Task(ref awaiter);
            return ReferenceEquals(Source(ref task), probe) && Token(ref task) == 12345;
        }
        catch (MissingMemberException)
        {
            return false;
        }
    }

    sealed class ProbeSource : IValueTaskSource
    {
        public ValueTaskSourceStatus GetStatus(short token) => ValueTaskSourceStatus.Pending;
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) { }
        public void GetResult(short token) { }
    }
}

/// <summary>
/// The overload priority of the <c>CreateTask(Func&lt;Coroutine&gt;)</c> forms: above the
/// <c>Func&lt;Task&gt;</c> ones, so that a plain async lambda given to <c>CreateTask</c> (which converts to
/// both) is compiled as an <c>async Coroutine</c> lambda: the task's coroutine is then the smaller box, the
/// task waits in its slot without a continuation object, and each await in it costs less (W3, two tasks
/// that ping-pong through queues: 9.4-10.2 -> 10.9-12.0 M round trips/s, pinned, interleaved). A method
/// group or a delegate typed <c>Func&lt;Task&gt;</c> still takes the <c>Task</c> form.
/// </summary>
internal static class CoroutinePriority
{
    public const int Value = 1;
}
