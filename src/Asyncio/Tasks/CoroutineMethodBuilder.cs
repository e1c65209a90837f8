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
        if (_coroutine == null) _coroutine = Coroutine<T>.Failed(exception);
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

    internal override Type StateMachineType => typeof(TStateMachine);

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
}

/// <summary>The box of an <c>async Coroutine&lt;T&gt;</c> method.</summary>
internal sealed class CoroutineBox<TStateMachine, T> : CoroutineBoxBase<T> where TStateMachine : IAsyncStateMachine
{
    public TStateMachine StateMachine = default!;

    internal override void RunBox() => CoroutineBuilding.Resume(ref StateMachine, _extra);

    internal override Type StateMachineType => typeof(TStateMachine);

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
        return SourceAwaiter<TAwaiter>.Instance is { } reader && reader.TrySuspend(ref awaiter, box);
    }

    /// <summary>
    /// Records in the box the execution context to resume in (none when it is the default one) and the
    /// synchronisation context it awaits in (only for an await of a coroutine). Writes nothing when unchanged.
    /// </summary>
    static void SaveContexts(Coroutine box, SynchronizationContext? syncContext)
    {
        var executionContext = ExecutionContext.Capture();
        if (ReferenceEquals(executionContext, ContextFlow.Default)) executionContext = null;
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
        var wanted = extra as ExecutionContext ?? (extra as BoxExtras)?.ExecutionContext ?? ContextFlow.Default;
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
            ContextFlow.Leave(before);
        }
    }
}

/// <summary>
/// How a box suspends without a delegate on an awaiter over an <see cref="IValueTaskSource"/>: made once per
/// awaiter type, <see langword="null"/> for the others. <see cref="ValueTaskAwaiter"/> and
/// <see cref="ValueTaskAwaiter{TResult}"/> keep their <see cref="ValueTask"/> private, as the runtime reads it for
/// its own builders; the readers below read it by <see cref="UnsafeAccessorAttribute"/>, checked once against a
/// known value, and are left unused if that fails. The reader of a <see cref="ValueTaskAwaiter{TResult}"/> is
/// made by reflection, so without dynamic code (native AOT) such awaits take the delegate path.
/// </summary>
internal abstract class SourceAwaiter<TAwaiter>
{
    public static readonly SourceAwaiter<TAwaiter>? Instance = Create();

    public abstract bool TrySuspend(ref TAwaiter awaiter, Coroutine box);

    /// <summary>Whether the fields it reads are there.</summary>
    private protected abstract bool Works();

    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Used only where dynamic code is supported; the delegate path otherwise.")]
    [UnconditionalSuppressMessage("Trimming", "IL2055", Justification = "ValueTaskAwaiterReader<T> is referenced statically; T comes from a live awaiter type.")]
    [UnconditionalSuppressMessage("Trimming", "IL2077", Justification = "ValueTaskAwaiterReader<T> has a public parameterless constructor that is referenced statically.")]
    static SourceAwaiter<TAwaiter>? Create()
    {
        var type = typeof(TAwaiter);
        try
        {
            SourceAwaiter<TAwaiter>? reader = null;
            if (type == typeof(ValueTaskAwaiter)) reader = (SourceAwaiter<TAwaiter>)(object)new ValueTaskAwaiterReader();
            else if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ValueTaskAwaiter<>) && RuntimeFeature.IsDynamicCodeSupported)
                reader = (SourceAwaiter<TAwaiter>)Activator.CreateInstance(typeof(ValueTaskAwaiterReader<>).MakeGenericType(type.GetGenericArguments()))!;
            return reader != null && reader.Works() ? reader : null;
        }
        catch (Exception e) when (e is MissingMemberException or NotSupportedException or InvalidOperationException)
        {
            return null;
        }
    }
}

/// <summary>Reads the source of a <see cref="ValueTaskAwaiter"/> (see <see cref="SourceAwaiter{TAwaiter}"/>).</summary>
internal sealed class ValueTaskAwaiterReader : SourceAwaiter<ValueTaskAwaiter>
{
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_value")]
    static extern ref ValueTask Task(ref ValueTaskAwaiter awaiter);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_obj")]
    static extern ref object? Source(ref ValueTask task);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_token")]
    static extern ref short Token(ref ValueTask task);

    public override bool TrySuspend(ref ValueTaskAwaiter awaiter, Coroutine box)
    {
        ref var task = ref Task(ref awaiter);
        if (Source(ref task) is not IValueTaskSource source) return false;
        source.OnCompleted(Coroutine.s_runBox, box, Token(ref task), ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
        return true;
    }

    private protected override bool Works()
    {
        var probe = new ProbeSource<bool>();
        var awaiter = new ValueTask(probe, ProbeSource<bool>.Token).GetAwaiter();
        ref var task = ref Task(ref awaiter);
        return ReferenceEquals(Source(ref task), probe) && Token(ref task) == ProbeSource<bool>.Token;
    }
}

/// <summary>Reads the source of a <see cref="ValueTaskAwaiter{TResult}"/> (see <see cref="SourceAwaiter{TAwaiter}"/>).</summary>
internal sealed class ValueTaskAwaiterReader<T> : SourceAwaiter<ValueTaskAwaiter<T>>
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
        var probe = new ProbeSource<T>();
        var awaiter = new ValueTask<T>(probe, ProbeSource<T>.Token).GetAwaiter();
        ref var task = ref Task(ref awaiter);
        return ReferenceEquals(Source(ref task), probe) && Token(ref task) == ProbeSource<T>.Token;
    }
}

/// <summary>A source that never completes, to check the readers against (<see cref="SourceAwaiter{TAwaiter}"/>).</summary>
internal sealed class ProbeSource<T> : IValueTaskSource, IValueTaskSource<T>
{
    public const short Token = 12345;
    public ValueTaskSourceStatus GetStatus(short token) => ValueTaskSourceStatus.Pending;
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) { }
    void IValueTaskSource.GetResult(short token) { }
    T IValueTaskSource<T>.GetResult(short token) => default!;
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

    /// <summary>
    /// The <c>CreateTask(function, arg)</c> forms rank above every <c>CreateTask(function, name)</c> form, so that a
    /// method group with overloads of both shapes (<c>Fetch()</c> and <c>Fetch(string url)</c>) given a string,
    /// <c>CreateTask(Fetch, url)</c>, calls <c>Fetch(url)</c> as it reads rather than naming the task after the
    /// URL. Among them the <c>Coroutine</c> forms rank above the <c>Task</c> ones, as above.
    /// </summary>
    public const int ArgTask = 2, ArgCoroutine = 3;
}
