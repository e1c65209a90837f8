using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// A running <c>Aio.Timeout</c>: its deadline, which the body may move, and whether it expired;
/// asyncio's <c>asyncio.Timeout</c>.
/// </summary>
/// <remarks>
/// When the deadline passes, every await of a loop primitive pending inside the body (and the token
/// <see cref="Aio.CancellationToken"/> the body sees) is cancelled; the <see cref="CancelledError"/> that
/// comes out of the body is turned into a <see cref="TimeoutException"/>. Only this timeout's own
/// cancellation is turned: a cancellation of the enclosing task, or of an enclosing timeout, passes
/// through unchanged, so timeouts nest.
/// </remarks>
public sealed class TimeoutScope
{
    readonly EventLoop _loop;
    internal readonly CancelScope Scope;
    TimerHandle? _timer;
    long? _due;
    bool _exited;

    internal TimeoutScope(EventLoop loop, CancelScope scope)
    {
        _loop = loop;
        Scope = scope;
    }

    /// <summary>
    /// The deadline in loop time (<see cref="EventLoop.Time"/>), or <see langword="null"/> for none; asyncio's
    /// <c>when()</c>. <see cref="double.PositiveInfinity"/> for an infinite one (or one beyond the clock's range
    /// of about 73 years), which never expires.
    /// </summary>
    public double? When() => _due is long d ? EventLoop.DeadlineToSeconds(d) : null;

    /// <summary>Whether the deadline passed and the body was cancelled; asyncio's <c>expired()</c>.</summary>
    public bool Expired { get; private set; }

    /// <summary>
    /// Whether the expiry's cancellation reached the body when it was made: an await took it, or the scope's token
    /// existed (a .NET API given <see cref="Aio.CancellationToken"/> observes it). A body that saw it may have caught
    /// it and gone on, as asyncio lets it; one it could not reach still owes the timeout (Aio.TimeoutCore).
    /// </summary>
    internal bool CancellationReached { get; private set; }

    /// <summary>
    /// Moves the deadline to loop time <paramref name="when"/> (<see langword="null"/>: no deadline); asyncio's
    /// <c>reschedule()</c>. A deadline already past expires on the next iteration.
    /// </summary>
    /// <exception cref="InvalidOperationException">The timeout has expired or its body has ended.</exception>
    public void Reschedule(double? when)
    {
        _loop.CheckThread(nameof(TimeoutScope), nameof(Reschedule));
        if (_exited) throw new InvalidOperationException("Cannot reschedule a timeout whose body has ended.");
        if (Expired) throw new InvalidOperationException("Cannot reschedule a timeout that has already expired.");
        SetDeadline(when is double w ? _loop.WhenToTicks(w, nameof(when)) : null);
    }

    internal void SetDeadline(long? due)
    {
        _timer?.Cancel();
        _timer = null;
        _due = due;
        if (due is long d) _timer = new TimerHandle(_loop.ScheduleTimerEntry(s_expire, this, d, relative: false));
    }

    static readonly Action<object?> s_expire = static o =>
    {
        var t = (TimeoutScope)o!;
        if (t._exited || t.Expired) return;
        t.Expired = true;
        t._timer = null;
        bool delivered = t.Scope.Cancel(null);
        t.CancellationReached = delivered || t.Scope.HasTokenSource;
    };

    internal void Exit()
    {
        _exited = true;
        _timer?.Cancel();
        _timer = null;
        Scope.Close();
    }

    /// <inheritdoc />
    /// <remarks>As asyncio's repr: <c>&lt;TimeoutScope [active] when=12.5&gt;</c>, <c>[expired]</c> or <c>[finished]</c>.</remarks>
    public override string ToString() =>
        Expired ? "<TimeoutScope [expired]>"
        : _exited ? "<TimeoutScope [finished]>"
        : $"<TimeoutScope [active] when={(When() is double w ? w.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "None")}>";
}

public static partial class Aio
{
    // ---- Timeout / TimeoutAt ----

    /// <summary>
    /// Runs <paramref name="body"/> with a deadline <paramref name="delay"/> seconds from now
    /// (<see langword="null"/>: none); asyncio's <c>async with asyncio.timeout(delay)</c>. If the deadline
    /// passes, the body's pending awaits are cancelled and <see cref="TimeoutException"/> is thrown.
    /// </summary>
    /// <remarks>Differences from asyncio: a C# <c>using</c> block cannot see the body's exception, so the
    /// body is a delegate. It runs at once, in the calling task, inside the timeout's scope. The awaits the
    /// timeout cancels are those that began inside the body: a coroutine started before the timeout and
    /// awaited in the body keeps waiting in the scope it began in (hot C# coroutines; docs/differences.md),
    /// so bound the wait with <see cref="WaitFor(Task, double?)"/> instead, or start the coroutine inside the body.
    /// An await of a .NET API that was not given the task's token (<see cref="CancellationToken"/>) cannot be
    /// interrupted: it runs to its end, and the timeout's cancellation is thrown at the body's next await of the
    /// loop, or the <see cref="TimeoutException"/> when the body returns (unless the cancellation reached the body
    /// through the task's token, which it may have caught, as asyncio lets a body do); pass the token to end such a
    /// wait on time (<c>Task.Delay(d, Aio.CancellationToken)</c>).</remarks>
    public static Task Timeout(double? delay, Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore<bool>(RelativeDue(delay), async _ => { await CheckBody(body()).ConfigureAwait(true); return true; });
    }

    /// <summary>Runs <paramref name="body"/> with a deadline and returns its result; see <see cref="Timeout(double?, Func{Task})"/>.</summary>
    public static Task<T> Timeout<T>(double? delay, Func<Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore(RelativeDue(delay), _ => body());
    }

    /// <summary>Runs <paramref name="body"/>, which receives the <see cref="TimeoutScope"/> to inspect or reschedule; see <see cref="Timeout(double?, Func{Task})"/>.</summary>
    public static Task Timeout(double? delay, Func<TimeoutScope, Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore<bool>(RelativeDue(delay), async t => { await CheckBody(body(t)).ConfigureAwait(true); return true; });
    }

    /// <summary>Runs <paramref name="body"/> with the <see cref="TimeoutScope"/> and returns its result.</summary>
    public static Task<T> Timeout<T>(double? delay, Func<TimeoutScope, Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore(RelativeDue(delay), body);
    }

    /// <summary>
    /// Runs <paramref name="body"/> with a deadline <paramref name="delay"/> from now
    /// (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: none); see <see cref="Timeout(double?, Func{Task})"/>.
    /// </summary>
    public static Task Timeout(TimeSpan delay, Func<Task> body) => Timeout(Seconds(delay), body);

    /// <summary>Runs <paramref name="body"/> with a deadline <paramref name="delay"/> from now and returns its result.</summary>
    public static Task<T> Timeout<T>(TimeSpan delay, Func<Task<T>> body) => Timeout(Seconds(delay), body);

    /// <summary>Runs <paramref name="body"/>, which receives the <see cref="TimeoutScope"/>, with a deadline <paramref name="delay"/> from now.</summary>
    public static Task Timeout(TimeSpan delay, Func<TimeoutScope, Task> body) => Timeout(Seconds(delay), body);

    /// <summary>Runs <paramref name="body"/>, which receives the <see cref="TimeoutScope"/>, with a deadline <paramref name="delay"/> from now and returns its result.</summary>
    public static Task<T> Timeout<T>(TimeSpan delay, Func<TimeoutScope, Task<T>> body) => Timeout(Seconds(delay), body);

    /// <summary>
    /// Runs <paramref name="body"/>, a function returning a <see cref="ValueTask"/> (a stream's write drain, a queue's
    /// put...), with a deadline; see <see cref="Timeout(double?, Func{Task})"/>. The operation starts inside the
    /// timeout's scope, so on timeout it is cancelled and loses nothing, as with an <c>async</c> lambda. (Converting
    /// a started read with <c>AsTask()</c> would leave it pending, still holding its stream, after the timeout.)
    /// </summary>
    [OverloadResolutionPriority(-1)] // an async lambda, which fits both, takes the Task form
    public static Task Timeout(double? delay, Func<ValueTask> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore<bool>(RelativeDue(delay), async _ => { await body(); return true; });
    }

    /// <summary>
    /// Runs <paramref name="body"/>, a function returning a <see cref="ValueTask{T}"/> (a stream read, a queue get...),
    /// with a deadline and returns its result: <c>await Aio.Timeout(5, () =&gt; reader.ReadLine())</c>; see
    /// <see cref="Timeout(double?, Func{ValueTask})"/>.
    /// </summary>
    [OverloadResolutionPriority(-1)]
    public static Task<T> Timeout<T>(double? delay, Func<ValueTask<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore(RelativeDue(delay), _ => body().AsTask());
    }

    /// <summary>Runs <paramref name="body"/> with a deadline <paramref name="delay"/> from now; see <see cref="Timeout(double?, Func{ValueTask})"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task Timeout(TimeSpan delay, Func<ValueTask> body) => Timeout(Seconds(delay), body);

    /// <summary>Runs <paramref name="body"/> with a deadline <paramref name="delay"/> from now and returns its result; see <see cref="Timeout{T}(double?, Func{ValueTask{T}})"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task<T> Timeout<T>(TimeSpan delay, Func<ValueTask<T>> body) => Timeout(Seconds(delay), body);

    /// <summary>
    /// Runs <paramref name="body"/>, a function returning a <see cref="Coroutine"/> (an <c>async Coroutine</c> method),
    /// with a deadline; see <see cref="Timeout(double?, Func{Task})"/>. The coroutine starts inside the timeout's
    /// scope, so its awaits are cancelled on timeout.
    /// </summary>
    [OverloadResolutionPriority(-1)] // an async lambda, which fits every form, takes the Task one
    public static Task Timeout(double? delay, Func<Coroutine> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore<bool>(RelativeDue(delay), async _ => { await body(); return true; });
    }

    /// <summary>
    /// Runs <paramref name="body"/>, a function returning a <see cref="Coroutine{T}"/>, with a deadline and returns its
    /// result: <c>await Aio.Timeout(5, () =&gt; Fetch(url))</c>; see <see cref="Timeout(double?, Func{Coroutine})"/>.
    /// </summary>
    [OverloadResolutionPriority(-1)]
    public static Task<T> Timeout<T>(double? delay, Func<Coroutine<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore(RelativeDue(delay), _ => body().AsTask());
    }

    /// <summary>Runs <paramref name="body"/> with a deadline <paramref name="delay"/> from now; see <see cref="Timeout(double?, Func{Coroutine})"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task Timeout(TimeSpan delay, Func<Coroutine> body) => Timeout(Seconds(delay), body);

    /// <summary>Runs <paramref name="body"/> with a deadline <paramref name="delay"/> from now and returns its result; see <see cref="Timeout{T}(double?, Func{Coroutine{T}})"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task<T> Timeout<T>(TimeSpan delay, Func<Coroutine<T>> body) => Timeout(Seconds(delay), body);

    /// <summary>A <see cref="TimeSpan"/> timeout in seconds; <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> means none, as everywhere in .NET.</summary>
    internal static double? Seconds(TimeSpan timeout) =>
        timeout == System.Threading.Timeout.InfiniteTimeSpan ? null : timeout.TotalSeconds;

    /// <summary>
    /// Runs <paramref name="body"/> with a deadline at loop time <paramref name="when"/> (<see langword="null"/>:
    /// none); asyncio's <c>asyncio.timeout_at(when)</c>. See <see cref="Timeout(double?, Func{Task})"/>.
    /// </summary>
    public static Task TimeoutAt(double? when, Func<TimeoutScope, Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore<bool>(AbsoluteDue(when), async t => { await CheckBody(body(t)).ConfigureAwait(true); return true; });
    }

    /// <summary>Runs <paramref name="body"/> with a deadline at loop time <paramref name="when"/> and returns its result.</summary>
    public static Task<T> TimeoutAt<T>(double? when, Func<TimeoutScope, Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore(AbsoluteDue(when), body);
    }

    /// <summary>Runs <paramref name="body"/> with a deadline at loop time <paramref name="when"/>; see <see cref="TimeoutAt(double?, Func{TimeoutScope, Task})"/>.</summary>
    public static Task TimeoutAt(double? when, Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore<bool>(AbsoluteDue(when), async _ => { await CheckBody(body()).ConfigureAwait(true); return true; });
    }

    /// <summary>Runs <paramref name="body"/> with a deadline at loop time <paramref name="when"/> and returns its result.</summary>
    public static Task<T> TimeoutAt<T>(double? when, Func<Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return TimeoutCore(AbsoluteDue(when), _ => body());
    }

    static long? RelativeDue(double? delay)
    {
        if (delay is not double d) return null;
        var loop = EventLoop.GetRunningLoop();
        return EventLoop.AddTicks(loop.NowTicks(), EventLoop.DelayToTicks(d, nameof(delay)));
    }

    static long? AbsoluteDue(double? when) => when is double w ? EventLoop.GetRunningLoop().WhenToTicks(w, nameof(when)) : null;

    static async Task<T> TimeoutCore<T>(long? due, Func<TimeoutScope, Task<T>> body)
    {
        var loop = EventLoop.GetRunningLoop();
        var parent = loop.CurrentScope;
        var scope = new CancelScope(loop, parent.Task, parent);
        var timeout = new TimeoutScope(loop, scope);
        int outsideAtEntry = OutsideCancels(scope);
        timeout.SetDeadline(due);
        try
        {
            try
            {
                T result = await new BodyAwaitable<T>(StartIn(loop, scope, body, timeout), scope);
                // The deadline passed while the body awaited what the scope cannot interrupt (a .NET Task not given
                // the task's token), and no await took the cancellation since: it still counts, as asyncio would
                // have thrown it into that await. A body that caught it and went on has taken it (MustCancel is off), and
                // so may one it reached otherwise: through the token, or an await that a task group then kept it for.
                if (timeout.Expired && !timeout.CancellationReached && scope.MustCancel && OutsideCancels(scope) <= outsideAtEntry)
                    throw new TimeoutException("The operation timed out.", new CancelledError(scope.CancelMessage));
                return result;
            }
            catch (OperationCanceledException e) when (timeout.Expired && OutsideCancels(scope) <= outsideAtEntry)
            {
                // Only this timeout's own cancellation becomes a TimeoutException; asyncio's rule: on exit the
                // task has no more cancellation requests than on entry (Timeout.__aexit__ and uncancel()).
                throw new TimeoutException("The operation timed out.", e);
            }
        }
        finally
        {
            PassOnKeptCancellation(scope, parent, outsideAtEntry);
            timeout.Exit();
            LeaveScope(loop, scope, parent);
        }
    }

    /// <summary>
    /// Once the body of a timeout or task group has ended: a cancellation still kept in its scope for the next
    /// await (an inner task group leaves one when its errors win over a cancellation) moves to
    /// <paramref name="parent"/> if it came from outside the scope. Closing the scope drops the scope's own,
    /// as asyncio's <c>uncancel()</c> does; an outer one must reach the caller's next await, as it stays on
    /// the task in asyncio.
    /// </summary>
    internal static void PassOnKeptCancellation(CancelScope scope, CancelScope parent, int outsideAtEntry)
    {
        if (!scope.MustCancel || OutsideCancels(scope) <= outsideAtEntry) return;
        var message = scope.CancelMessage;
        scope.ClearMustCancel();
        parent.Keep(message);
    }

    /// <summary>Closes the scope of a task-group body, passing on a kept cancellation from outside (<see cref="PassOnKeptCancellation"/>).</summary>
    internal static void CloseBodyScope(CancelScope scope, CancelScope parent, int outsideAtEntry)
    {
        PassOnKeptCancellation(scope, parent, outsideAtEntry);
        scope.Close();
    }

    /// <summary>
    /// The cancellation requests that reach <paramref name="scope"/> from outside it: its task's (asyncio's
    /// <c>cancelling()</c>) plus one for each enclosing timeout or task-group body that has cancelled itself
    /// and is still open (asyncio's timeouts and task groups cancel the whole task, and count there).
    /// </summary>
    internal static int OutsideCancels(CancelScope scope)
    {
        int n = scope.Task?.Cancelling() ?? 0;
        for (var s = scope.Parent; s?.Parent != null; s = s.Parent)
            if (s.CancelCalled && !s.Closed) n++;
        return n;
    }

    /// <summary>
    /// After a body awaited with <see cref="BodyAwaitable{T}"/> has ended: if the code now running is still in
    /// its scope, make the enclosing scope current again, so that the caller's continuation, which was captured
    /// there, runs at once instead of on the next iteration.
    /// </summary>
    internal static void LeaveScope(EventLoop loop, CancelScope scope, CancelScope parent)
    {
        if (loop.IsLoopThread && ReferenceEquals(loop.CurrentScope, scope)) loop.EnterScope(parent);
    }

    /// <summary>Returns <paramref name="body"/>, or throws a clear error if a body delegate returned null.</summary>
    internal static Task CheckBody(Task? body) =>
        body ?? throw new InvalidOperationException("The body returned null instead of a Task.");

    /// <summary>Calls <paramref name="body"/> with <paramref name="scope"/> as the current scope; a synchronous throw becomes a faulted task.</summary>
    internal static Task<T> StartIn<TArg, T>(EventLoop loop, CancelScope scope, Func<TArg, Task<T>> body, TArg arg)
    {
        var previous = loop.EnterScope(scope);
        try
        {
            var task = body(arg);
            CheckBody(task);
            return task;
        }
        catch (Exception e)
        {
            return Task.FromException<T>(e);
        }
        finally
        {
            loop.EnterScope(previous);
        }
    }

    // ---- WaitFor ----

    /// <summary>
    /// Waits for <paramref name="task"/> with a timeout in seconds (<see langword="null"/>: none); asyncio's
    /// <c>wait_for()</c>. On timeout the task is cancelled, waited for, and <see cref="TimeoutException"/> is
    /// thrown. Cancelling the caller cancels the task too. A timeout of 0 or less cancels a task that is not
    /// done at once (one not started yet never runs), as asyncio does.
    /// </summary>
    public static Task<T> WaitFor<T>(AioTask<T> task, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (IsOver(timeout)) return CancelAndWait(task, static f => ((AioTask<T>)f).Result);
        return TimeoutCore(RelativeDue(timeout), async _ => await task);
    }

    /// <summary>Waits for a task or future with a timeout; see <see cref="WaitFor{T}(AioTask{T}, double?)"/>.</summary>
    public static Task WaitFor(Future future, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(future);
        if (IsOver(timeout)) return CancelAndWait(future, static f => { f.GetResult(); return true; });
        return TimeoutCore(RelativeDue(timeout), async _ => { await future; return true; });
    }

    /// <summary>Waits for a future with a value with a timeout; see <see cref="WaitFor{T}(AioTask{T}, double?)"/>.</summary>
    public static Task<T> WaitFor<T>(Future<T> future, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(future);
        if (IsOver(timeout)) return CancelAndWait(future, static f => ((Future<T>)f).Result);
        return TimeoutCore(RelativeDue(timeout), async _ => await future);
    }

    /// <summary>
    /// Runs <paramref name="coroutine"/> with a timeout; see <see cref="WaitFor{T}(AioTask{T}, double?)"/>. The
    /// coroutine runs at once in the calling task, and its awaits are cancelled on timeout. With a timeout of
    /// 0 or less it is not started at all and <see cref="TimeoutException"/> is thrown, as asyncio's
    /// <c>wait_for()</c> never starts the coroutine then.
    /// </summary>
    public static Task<T> WaitFor<T>(Func<Task<T>> coroutine, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return IsOver(timeout) ? TimedOutAtOnce<T>() : Timeout(timeout, coroutine);
    }

    /// <summary>Runs <paramref name="coroutine"/> with a timeout; see <see cref="WaitFor{T}(Func{Task{T}}, double?)"/>.</summary>
    public static Task WaitFor(Func<Task> coroutine, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return IsOver(timeout) ? TimedOutAtOnce<bool>() : Timeout(timeout, coroutine);
    }

    /// <summary>
    /// Runs <paramref name="operation"/>, a function returning a <see cref="ValueTask{T}"/> (a stream read, a queue
    /// get...), with a timeout: <c>await Aio.WaitFor(() =&gt; reader.ReadLine(), 5)</c>, asyncio's
    /// <c>wait_for(reader.readline(), 5)</c>. The operation starts inside the timeout's scope, so on timeout it is
    /// cancelled and loses nothing; see <see cref="WaitFor{T}(Func{Task{T}}, double?)"/>. (A started read converted
    /// with <c>AsTask()</c> cannot be cancelled: after the timeout it stays pending and holds its stream.)
    /// </summary>
    [OverloadResolutionPriority(-1)] // an async lambda, which fits both, takes the Task form
    public static Task<T> WaitFor<T>(Func<ValueTask<T>> operation, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(operation);
        return IsOver(timeout) ? TimedOutAtOnce<T>() : Timeout(timeout, operation);
    }

    /// <summary>Runs <paramref name="operation"/>, a function returning a <see cref="ValueTask"/>, with a timeout; see <see cref="WaitFor{T}(Func{ValueTask{T}}, double?)"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task WaitFor(Func<ValueTask> operation, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(operation);
        return IsOver(timeout) ? TimedOutAtOnce<bool>() : Timeout(timeout, operation);
    }

    /// <summary>Runs <paramref name="operation"/> with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(Func{ValueTask{T}}, double?)"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task<T> WaitFor<T>(Func<ValueTask<T>> operation, TimeSpan timeout) => WaitFor(operation, Seconds(timeout));

    /// <summary>Runs <paramref name="operation"/> with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(Func{ValueTask{T}}, double?)"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task WaitFor(Func<ValueTask> operation, TimeSpan timeout) => WaitFor(operation, Seconds(timeout));

    /// <summary>
    /// Runs <paramref name="coroutine"/>, a function returning a <see cref="Coroutine{T}"/> (an <c>async Coroutine&lt;T&gt;</c>
    /// method), with a timeout: <c>await Aio.WaitFor(() =&gt; Fetch(url), 5)</c>; on timeout its awaits are cancelled.
    /// See <see cref="WaitFor{T}(Func{Task{T}}, double?)"/>.
    /// </summary>
    [OverloadResolutionPriority(-1)] // an async lambda, which fits every form, takes the Task one
    public static Task<T> WaitFor<T>(Func<Coroutine<T>> coroutine, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return IsOver(timeout) ? TimedOutAtOnce<T>() : Timeout(timeout, coroutine);
    }

    /// <summary>Runs <paramref name="coroutine"/>, a function returning a <see cref="Coroutine"/>, with a timeout; see <see cref="WaitFor{T}(Func{Coroutine{T}}, double?)"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task WaitFor(Func<Coroutine> coroutine, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return IsOver(timeout) ? TimedOutAtOnce<bool>() : Timeout(timeout, coroutine);
    }

    /// <summary>Runs <paramref name="coroutine"/> with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(Func{Coroutine{T}}, double?)"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task<T> WaitFor<T>(Func<Coroutine<T>> coroutine, TimeSpan timeout) => WaitFor(coroutine, Seconds(timeout));

    /// <summary>Runs <paramref name="coroutine"/> with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(Func{Coroutine{T}}, double?)"/>.</summary>
    [OverloadResolutionPriority(-1)]
    public static Task WaitFor(Func<Coroutine> coroutine, TimeSpan timeout) => WaitFor(coroutine, Seconds(timeout));

    /// <summary>Runs <paramref name="coroutine"/> with a timeout; see <see cref="WaitFor{T}(Func{Task{T}}, double?)"/>.</summary>
    public static Task<T> WaitFor<T>(Func<Task<T>> coroutine, TimeSpan timeout) => WaitFor(coroutine, Seconds(timeout));

    /// <summary>Runs <paramref name="coroutine"/> with a timeout; see <see cref="WaitFor{T}(Func{Task{T}}, double?)"/>.</summary>
    public static Task WaitFor(Func<Task> coroutine, TimeSpan timeout) => WaitFor(coroutine, Seconds(timeout));

    /// <summary>Waits for <paramref name="task"/> with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(AioTask{T}, double?)"/>.</summary>
    public static Task<T> WaitFor<T>(AioTask<T> task, TimeSpan timeout) => WaitFor(task, Seconds(timeout));

    /// <summary>Waits for a task or future with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(AioTask{T}, double?)"/>.</summary>
    public static Task WaitFor(Future future, TimeSpan timeout) => WaitFor(future, Seconds(timeout));

    /// <summary>Waits for a future with a value with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(AioTask{T}, double?)"/>.</summary>
    public static Task<T> WaitFor<T>(Future<T> future, TimeSpan timeout) => WaitFor(future, Seconds(timeout));

    /// <summary>Waits for a running coroutine with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(Task{T}, double?)"/>.</summary>
    public static Task<T> WaitFor<T>(Task<T> task, TimeSpan timeout) => WaitFor(task, Seconds(timeout));

    /// <summary>Waits for a running coroutine without a result with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(Task{T}, double?)"/>.</summary>
    public static Task WaitFor(Task task, TimeSpan timeout) => WaitFor(task, Seconds(timeout));

    /// <summary>
    /// Waits for a running coroutine with a timeout. A <see cref="Task"/> cannot be cancelled from outside:
    /// on timeout the wait ends with <see cref="TimeoutException"/> while the Task runs on (at once for a
    /// timeout of 0 or less, unless the Task is already complete). Pass a coroutine function
    /// (<see cref="WaitFor{T}(Func{Task{T}}, double?)"/>) to have it cancelled.
    /// </summary>
    public static Task<T> WaitFor<T>(Task<T> task, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.IsCompleted) return task;
        if (IsOver(timeout)) return TimedOutAtOnce<T>();
        var future = FutureOf<T>(task);
        return TimeoutCore(RelativeDue(timeout), async _ => await future);
    }

    /// <summary>Waits for a running coroutine without a result with a timeout; see <see cref="WaitFor{T}(Task{T}, double?)"/>.</summary>
    public static Task WaitFor(Task task, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.IsCompleted) return task;
        if (IsOver(timeout)) return TimedOutAtOnce<bool>();
        var future = FutureOf<object?>(task);
        return TimeoutCore(RelativeDue(timeout), async _ => { await future; return true; });
    }

    /// <summary>
    /// Waits for a running <see cref="Coroutine{T}"/> with a timeout, as <see cref="WaitFor{T}(Task{T}, double?)"/>
    /// does for a Task: a coroutine cannot be cancelled from outside, so on timeout the wait ends with
    /// <see cref="TimeoutException"/> while the coroutine runs on. Pass a coroutine function to have it cancelled.
    /// </summary>
    public static Task<T> WaitFor<T>(Coroutine<T> coroutine, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return WaitFor(coroutine.AsTask(), timeout);
    }

    /// <summary>Waits for a running <see cref="Coroutine"/> with a timeout; see <see cref="WaitFor{T}(Coroutine{T}, double?)"/>.</summary>
    public static Task WaitFor(Coroutine coroutine, double? timeout)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        return WaitFor(coroutine.AsTask(), timeout);
    }

    /// <summary>Waits for a running <see cref="Coroutine{T}"/> with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(Coroutine{T}, double?)"/>.</summary>
    public static Task<T> WaitFor<T>(Coroutine<T> coroutine, TimeSpan timeout) => WaitFor(coroutine, Seconds(timeout));

    /// <summary>Waits for a running <see cref="Coroutine"/> with a <see cref="TimeSpan"/> timeout; see <see cref="WaitFor{T}(Coroutine{T}, double?)"/>.</summary>
    public static Task WaitFor(Coroutine coroutine, TimeSpan timeout) => WaitFor(coroutine, Seconds(timeout));

    /// <summary>Whether a <c>WaitFor</c> timeout is 0 or less: asyncio's <c>wait_for()</c> does not wait for a deadline then.</summary>
    static bool IsOver(double? timeout)
    {
        _ = EventLoop.GetRunningLoop(); // the same error outside a loop as with a deadline
        return timeout is double t && t <= 0;
    }

    /// <summary>The outcome of a <c>WaitFor</c> whose timeout was over before it began: nothing is started or awaited.</summary>
    static Task<T> TimedOutAtOnce<T>() =>
        Task.FromException<T>(new TimeoutException("The operation timed out.", new CancelledError()));

    /// <summary>
    /// <c>WaitFor</c> with a timeout of 0 or less, as asyncio's <c>wait_for()</c>: the outcome of a future
    /// already done; otherwise the future is cancelled at once and waited for (a cancellation of the caller
    /// meanwhile ends the wait), and <see cref="TimeoutException"/> is thrown if it ended cancelled (a task
    /// that swallows the cancellation gives its result or exception instead).
    /// </summary>
    static async Task<T> CancelAndWait<T>(Future future, Func<Future, T> read)
    {
        if (future.IsDone) return read(future); // as it is, even cancelled: not this wait's timeout
        future.Cancel();
        // Not "await future": a cancellation of the caller would cancel the future again; cancelling a Wait
        // cancels only the wait.
        if (!future.IsDone) await Wait([future]);
        if (future.IsCancelled) throw new TimeoutException("The operation timed out.", future.MakeCancelledError());
        return read(future);
    }
}

/// <summary>
/// Awaits the body of a timeout or task group so that the code after the await runs the moment the body
/// ends, in the same callback, instead of on the next iteration.
/// </summary>
/// <remarks>
/// A plain <c>await</c> captures the enclosing scope; the body ends in its own scope, so .NET would post the
/// continuation to the loop, and for one iteration the body would be over while the timeout still looked
/// active: a cancellation arriving in between would be taken for this timeout's, or a deadline passing would
/// mark it expired after a success. Capturing the body's scope instead lets .NET run the continuation inline
/// when the body ends there (it is posted to the loop otherwise, for example when the body ended on another
/// thread).
/// </remarks>
internal readonly struct BodyAwaitable<T>(Task<T> body, CancelScope scope) : ICriticalNotifyCompletion
{
    public BodyAwaitable<T> GetAwaiter() => this;

    public bool IsCompleted => body.IsCompleted;

    public T GetResult() => body.GetAwaiter().GetResult();

    public void OnCompleted(Action continuation) => Register(continuation, flow: true);

    public void UnsafeOnCompleted(Action continuation) => Register(continuation, flow: false);

    void Register(Action continuation, bool flow)
    {
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(scope);
        try
        {
            if (flow) body.GetAwaiter().OnCompleted(continuation);
            else body.GetAwaiter().UnsafeOnCompleted(continuation);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }
}
