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
/// rethrown as <see cref="CancelledError"/> once they are done (unless there are failures, which win).
/// Once the group is shutting down it refuses new tasks.</para>
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
        return RunCore<bool>(async tg => { await body(tg).ConfigureAwait(true); return true; });
    }

    /// <summary>Runs <paramref name="body"/> with a new group and returns the body's result once every child is done.</summary>
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
        T result = default!;
        bool cancelledFromOutside = false;
        string? cancelMessage = null;
        try
        {
            result = await Aio.StartIn(loop, group._body, body, group).ConfigureAwait(true);
        }
        catch (OperationCanceledException e) when (group._body.CancelCalled && !group._body.CancelledFromOutside)
        {
            // The group cancelled its own body after a child failed: nothing to report for the body.
            _ = e;
        }
        catch (OperationCanceledException e)
        {
            cancelledFromOutside = true;
            cancelMessage = (e as CancelledError)?.CancelMessage;
            group.Abort();
        }
        catch (Exception e)
        {
            group._errors.Add(e);
            group.Abort();
        }
        group._exited = true;
        while (group._tasks.Count > 0)
        {
            group._allDone = loop.CreateFuture();
            try
            {
                await group._allDone;
            }
            catch (CancelledError e)
            {
                // Cancelled while waiting for the children: cancel them and keep waiting.
                cancelledFromOutside = true;
                cancelMessage ??= e.CancelMessage;
                group.Abort();
            }
        }
        group._finished = true;
        group._body.Close();
        if (group._errors.Count > 0)
            throw new ExceptionGroup($"unhandled errors in a TaskGroup ({group._errors.Count} sub-exception{(group._errors.Count == 1 ? "" : "s")})", group._errors);
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

    void CheckOpen()
    {
        _loop.CheckThread(nameof(CreateTask));
        if (_finished || (_exited && _tasks.Count == 0)) throw new InvalidOperationException("This TaskGroup is finished.");
        if (_aborting) throw new InvalidOperationException("This TaskGroup is shutting down.");
    }

    TTask Track<TTask>(TTask task) where TTask : AioTask
    {
        _tasks.Add(task);
        task.AddDoneCallback(OnTaskDone);
        return task;
    }

    void OnTaskDone(Future f)
    {
        var task = (AioTask)f;
        _tasks.Remove(task);
        if (!task.IsCancelled && task.ExceptionCore is { } e)
        {
            _errors.Add(e);
            if (!_aborting) Abort();
        }
        if (_tasks.Count == 0 && _allDone is { IsDone: false } all) all.SetResult();
    }

    void Abort()
    {
        _aborting = true;
        foreach (var t in _tasks)
            if (!t.IsDone) t.Cancel();
        if (!_exited) _body.Cancel(null);
    }
}
