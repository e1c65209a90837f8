using System.Runtime.CompilerServices;
namespace Asyncio;

/// <summary>
/// Structured concurrency: a body that starts child tasks, and a guarantee that none outlives it;
/// asyncio's <c>TaskGroup</c> (3.11+ semantics).
/// </summary>
/// <remarks>
/// <code>
/// await TaskGroup.Run(async tg =>
/// {
///     tg.CreateTask(() => Fetch("a"));
///     tg.CreateTask(() => Fetch("b"));
/// });   // returns when both are done
/// </code>
/// <para>The first child that fails cancels the other children and the body. Once every child is done,
/// the failures (the body's own included) are thrown together as one <see cref="ExceptionGroup"/>.
/// Children that end cancelled are not failures. A cancellation from outside cancels the children and is
/// rethrown as <see cref="CancelledError"/> once they are done; if there are failures (the body's own
/// included, even one it raised on being cancelled), the <see cref="ExceptionGroup"/> wins and the
/// cancellation is kept for the caller's next await, until <see cref="AioTask.Uncancel"/> withdraws it. The body's
/// own error comes after the children's in the group. Once the group is shutting down it refuses new
/// tasks.</para>
/// <para>Differences from asyncio: <c>async with</c> becomes a delegate, because a C# <c>using</c> block
/// cannot see the body's exception. The group cancels only its own body, not the whole enclosing task,
/// so there is nothing to uncancel afterwards.</para>
/// </remarks>
public sealed class TaskGroup
{
    readonly EventLoop _loop;
    readonly CancelScope _body;
    readonly List<Exception> _errors = new();
    readonly HashSet<AioTask> _tasks = new(ReferenceEqualityComparer.Instance);
    Future? _allDone;
    bool _aborting, _exited, _finished;

    TaskGroup(EventLoop loop, CancelScope body)
    {
        _loop = loop;
        _body = body;
    }

    /// <summary>Runs <paramref name="body"/> with a new group and returns once the body and every child task are done.</summary>
    /// <exception cref="ExceptionGroup">The body or children failed.</exception>
    /// <exception cref="CancelledError">The caller was cancelled.</exception>
    public static Task Run(Func<TaskGroup, Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunCore<bool>(async tg => { await Aio.CheckBody(body(tg)).ConfigureAwait(true); return true; });
    }

    /// <summary>
    /// Runs a synchronous <paramref name="body"/> (one that only starts children) with a new group and
    /// returns once every child task is done: <c>await TaskGroup.Run(tg => { tg.CreateTask(A); tg.CreateTask(B); })</c>.
    /// </summary>
    /// <exception cref="ExceptionGroup">The body or children failed.</exception>
    /// <exception cref="CancelledError">The caller was cancelled.</exception>
    public static Task Run(Action<TaskGroup> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Run(tg =>
        {
            body(tg);
            return Task.CompletedTask;
        });
    }

    /// <summary>Runs <paramref name="body"/> with a new group and returns the body's result once every child is done.</summary>
    /// <exception cref="ExceptionGroup">The body or children failed.</exception>
    /// <exception cref="CancelledError">The caller was cancelled.</exception>
    public static Task<T> Run<T>(Func<TaskGroup, Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunCore(body);
    }

    static async Task<T> RunCore<T>(Func<TaskGroup, Task<T>> body)
    {
        var loop = EventLoop.GetRunningLoop();
        var parent = loop.CurrentScope;
        var group = new TaskGroup(loop, new CancelScope(loop, parent.Task, parent));
        int outsideAtEntry = Aio.OutsideCancels(group._body);
        T result = default!;
        Exception? bodyError = null;
        bool cancelledFromOutside = false;
        string? cancelMessage = null;
        try
        {
            result = await new BodyAwaitable<T>(Aio.StartIn(loop, group._body, body, group), group._body);
        }
        catch (OperationCanceledException) when (group._body.CancelCalled && Aio.OutsideCancels(group._body) <= outsideAtEntry)
        {
            // The group cancelled its own body after a child failed: nothing to report for the body.
        }
        catch (OperationCanceledException e)
        {
            cancelledFromOutside = true;
            cancelMessage = (e as CancelledError)?.CancelMessage;
        }
        catch (Exception e)
        {
            bodyError = e;
        }
        Aio.LeaveScope(loop, group._body, parent);
        group._exited = true;
        // Only the children are left to cancel: cancelling the body that has ended would leave a stray
        // cancellation in its scope.
        if (cancelledFromOutside || bodyError != null) group.Abort();
        // A cancellation from outside that an inner group kept in the body goes on to the wait for the
        // children, as asyncio's stays on the task and interrupts __aexit__.
        Aio.PassOnKeptCancellation(group._body, parent, outsideAtEntry);
        while (group._tasks.Count > 0)
        {
            group._allDone = new TaskGroupWait(loop);
            try
            {
                await group._allDone;
            }
            catch (CancelledError e)
            {
                // Cancelled while waiting for the children: cancel them and keep waiting.
                if (!cancelledFromOutside) cancelMessage = e.CancelMessage;
                cancelledFromOutside = true;
                group.Abort();
            }
        }
        group._finished = true;
        // A cancellation from outside that the body turned into an error of its own still counts (asyncio
        // looks at the parent task's cancelling() here, not at the type of the body's exception).
        bool outsideRequests = Aio.OutsideCancels(group._body) > outsideAtEntry;
        Aio.CloseBodyScope(group._body, parent, outsideAtEntry);
        // asyncio adds the body's own error after the children's.
        if (bodyError != null) group._errors.Add(bodyError);
        if (group._errors.Count > 0)
        {
            // The errors win, but the cancellation must not be lost: the next await of the caller takes it
            // (asyncio uncancels and re-cancels the parent task here).
            if (cancelledFromOutside || outsideRequests) parent.Keep(cancelMessage);
            // asyncio's message; its str() adds the count, as Message adds the errors' messages here.
            throw new ExceptionGroup("unhandled errors in a TaskGroup", group._errors);
        }
        if (cancelledFromOutside) throw new CancelledError(cancelMessage);
        return result;
    }

    /// <summary>Starts <paramref name="coroutine"/> as a child task of the group; asyncio's <c>TaskGroup.create_task()</c>.</summary>
    /// <exception cref="InvalidOperationException">The group is finished or shutting down.</exception>
    public AioTask CreateTask(Func<Task> coroutine, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckOpen();
        return Track(_loop.CreateTask(coroutine, name));
    }

    /// <summary>Starts a coroutine with a result as a child task of the group.</summary>
    /// <exception cref="InvalidOperationException">The group is finished or shutting down.</exception>
    public AioTask<T> CreateTask<T>(Func<Task<T>> coroutine, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckOpen();
        return Track(_loop.CreateTask(coroutine, name));
    }

    /// <summary>Starts a <see cref="Coroutine"/> function as a child task of the group.</summary>
    /// <exception cref="InvalidOperationException">The group is finished or shutting down.</exception>
    [OverloadResolutionPriority(CoroutinePriority.Value)]
    public AioTask CreateTask(Func<Coroutine> coroutine, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckOpen();
        return Track(_loop.CreateTask(coroutine, name));
    }

    /// <summary>Starts a <see cref="Coroutine{T}"/> function as a child task of the group.</summary>
    /// <exception cref="InvalidOperationException">The group is finished or shutting down.</exception>
    [OverloadResolutionPriority(CoroutinePriority.Value)]
    public AioTask<T> CreateTask<T>(Func<Coroutine<T>> coroutine, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckOpen();
        return Track(_loop.CreateTask(coroutine, name));
    }

    /// <summary>Starts <paramref name="coroutine"/> applied to <paramref name="arg"/> as a child task of the group, with no closure per task; see <see cref="EventLoop.CreateTask{TArg}(Func{TArg, Task}, TArg, string?)"/>.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    /// <exception cref="InvalidOperationException">The group is finished or shutting down.</exception>
    [OverloadResolutionPriority(CoroutinePriority.ArgTask)]
    public AioTask CreateTask<TArg>(Func<TArg, Task> coroutine, TArg arg, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckOpen();
        return Track(_loop.CreateTask(coroutine, arg, name));
    }

    /// <summary>Starts a coroutine with a result, applied to <paramref name="arg"/>, as a child task of the group.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    /// <exception cref="InvalidOperationException">The group is finished or shutting down.</exception>
    [OverloadResolutionPriority(CoroutinePriority.ArgTask)]
    public AioTask<T> CreateTask<TArg, T>(Func<TArg, Task<T>> coroutine, TArg arg, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckOpen();
        return Track(_loop.CreateTask(coroutine, arg, name));
    }

    /// <summary>Starts a <see cref="Coroutine"/> function, applied to <paramref name="arg"/>, as a child task of the group.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    /// <exception cref="InvalidOperationException">The group is finished or shutting down.</exception>
    [OverloadResolutionPriority(CoroutinePriority.ArgCoroutine)]
    public AioTask CreateTask<TArg>(Func<TArg, Coroutine> coroutine, TArg arg, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckOpen();
        return Track(_loop.CreateTask(coroutine, arg, name));
    }

    /// <summary>Starts a <see cref="Coroutine{T}"/> function, applied to <paramref name="arg"/>, as a child task of the group.</summary>
    /// <param name="coroutine">The coroutine function, called with <paramref name="arg"/> when the task starts.</param>
    /// <param name="arg">The argument passed to <paramref name="coroutine"/>.</param>
    /// <param name="name">The task's name; <c>Task-N</c> when <see langword="null"/>.</param>
    /// <exception cref="InvalidOperationException">The group is finished or shutting down.</exception>
    [OverloadResolutionPriority(CoroutinePriority.ArgCoroutine)]
    public AioTask<T> CreateTask<TArg, T>(Func<TArg, Coroutine<T>> coroutine, TArg arg, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckOpen();
        return Track(_loop.CreateTask(coroutine, arg, name));
    }

    /// <summary>The task that runs the group (asyncio's awaited_by of its children).</summary>
    internal AioTask? OwnerTask => _body.Task;

    void CheckOpen()
    {
        _loop.CheckThread(nameof(TaskGroup), nameof(CreateTask));
        if (_finished || (_exited && _tasks.Count == 0)) throw new InvalidOperationException("This TaskGroup is finished.");
        if (_aborting) throw new InvalidOperationException("This TaskGroup is shutting down.");
    }

    TTask Track<TTask>(TTask task) where TTask : AioTask
    {
        // The done callback is always scheduled, never run inline, even for an eager task that is already
        // done: a failure must not cancel the body before CreateTask returns (asyncio gh-128550).
        _tasks.Add(task);
        task.AddDoneCallback(OnTaskDone);
        // An eager task may have made the group abort while it ran (asyncio gh-155418).
        if (_aborting && !task.IsDone) task.Cancel();
        return task;
    }

    void OnTaskDone(Future f)
    {
        var task = (AioTask)f;
        _tasks.Remove(task);
        if (!task.IsCancelled && task.RetrieveException() is { } e)
        {
            _errors.Add(e);
            Abort();
        }
        if (_tasks.Count == 0 && _allDone is { IsDone: false } all) all.SetResult();
    }

    /// <summary>
    /// Cancels the children and the body, once: children the group has already cancelled are not cancelled
    /// again (their cleanup goes on), as asyncio aborts only if it is not aborting.
    /// </summary>
    void Abort()
    {
        if (_aborting) return;
        _aborting = true;
        foreach (var t in _tasks)
            if (!t.IsDone) t.Cancel();
        if (!_exited) _body.Cancel(null);
    }
}

/// <summary>What the task running a group awaits once its body has ended: the group's children (named as such in call graphs).</summary>
internal sealed class TaskGroupWait(EventLoop loop) : Future(loop);
