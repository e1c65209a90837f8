using System.Runtime.CompilerServices;
namespace Asyncio.Tests.Tasks;

/// <summary>asyncio.Task: life cycle, names, eager start, results, strong references.</summary>
public class TaskTests
{
    [Fact]
    public void CreateTask_StartsOnALaterIteration() => AioTest.Run(async () =>
    {
        bool started = false;
        var t = Aio.CreateTask(async () => { started = true; await Task.CompletedTask; });
        Assert.False(started);
        await Aio.Sleep(0);
        Assert.True(started);
        Assert.True(t.IsDone);
    });

    [Fact]
    public void CreateTask_EagerMode_RunsUntilTheFirstSuspension() => AioTest.Run(async () =>
    {
        var order = new List<string>();
        var t = Aio.CreateTask(async () => { order.Add("start"); await Aio.Sleep(1); order.Add("end"); });
        order.Add("created");
        var done = Aio.CreateTask(() => Task.CompletedTask);
        Assert.True(done.IsDone); // finished without suspending: done at once
        await t;
        Assert.Equal(["start", "created", "end"], order);
    }, new LoopOptions { VirtualTime = true, EagerTasks = true });

    [Fact]
    [Trait("asyncio", "test_tasks: test_task_set_methods (a task's outcome is its coroutine's)")]
    public void SetResultOrSetException_OnATask_ThrowsAndLeavesItRunning() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(1); return 7; });
        await Aio.Sleep(0);
        Assert.Throws<InvalidOperationException>(() => t.SetResult());
        Assert.Throws<InvalidOperationException>(() => t.SetException(new ArgumentException("x")));
        Assert.False(t.IsDone);
        Assert.Equal(7, await t);
    });

    [Fact]
    [Trait("asyncio", "tasks: 'Task cannot await on itself' (RuntimeError at the await)")]
    public void Await_TheTaskItself_ThrowsAtTheAwait() => AioTest.Run(async () =>
    {
        bool caught = false;
        var t = Aio.CreateTask(async () =>
        {
            await Aio.Sleep(0);
            try { await Aio.CurrentTask!; }
            catch (InvalidOperationException) { caught = true; }
            return 1;
        });
        AioTask<int>? typed = null;
        typed = Aio.CreateTask(async () =>
        {
            await Aio.Sleep(0);
            return await typed!;
        });
        await Aio.Wait([t, typed], 1);
        Assert.True(caught);
        Assert.Equal(1, await t);
        Assert.IsType<InvalidOperationException>(typed.GetException());
    });

    [Fact]
    public void Cancel_TasksAwaitingEachOtherInACycle_EndsTheCycleWithCancelledError() => AioTest.Run(async () =>
    {
        // a awaits b, b awaits c (inside a timeout scope), c awaits a. Cancelling a cancels b, which cancels
        // c, which cancels a again: the cancellation has come back round, so a's own await ends there (it
        // used to recurse until the stack overflowed), and the others follow as their awaited tasks end.
        AioTask? a = null, b = null, c = null;
        a = Aio.CreateTask(async () => { await Aio.Sleep(0); await b!; });
        b = Aio.CreateTask(async () => { await Aio.Sleep(0); await Aio.Timeout(3600, async () => await c!); });
        c = Aio.CreateTask(async () => { await Aio.Sleep(0); await a!; });
        await Aio.Sleep(1);
        Assert.False(a.IsDone || b.IsDone || c.IsDone);

        Assert.True(a.Cancel("stop"));
        var (_, pending) = await Aio.Wait([a, b, c], timeout: 1);
        Assert.Empty(pending);
        Assert.All(new[] { a, b, c }, t => Assert.True(t.IsCancelled, t.ToString()));
        Assert.Equal("stop", Assert.Throws<CancelledError>(() => a.GetException()).Message);
    });

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static void StartFailingTasks(int n)
    {
        for (int i = 0; i < n; i++)
            _ = Aio.CreateTask(async () => { await Aio.Sleep(1); throw new InvalidOperationException("lost"); });
    }

    [Theory]
    [Trait("asyncio", "test_tasks: 'Task exception was never retrieved'")]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(10)]
    public void Exception_NeverRetrieved_ReportedWithTheTaskOnceCollected(int tasks)
    {
        // Every one of them (the last ones to finish used to stay in the loop's list of tasks: 0, 2, 3, 3, 4 and 9
        // reports for 1, 2, 3, 4, 5 and 10 tasks).
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            StartFailingTasks(tasks);
            await Aio.Sleep(2);
            await FutureTests.CollectGarbage();
        });
        Assert.Equal(tasks, errors.Count);
        Assert.All(errors, e =>
        {
            Assert.Equal("Task exception was never retrieved", e.Message);
            Assert.Equal("lost", e.Exception!.Message);
            Assert.NotNull(e.Task);
        });
    }

    /// <summary>Starts one task that fails as <paramref name="variant"/> says, and keeps nothing of it but a weak reference.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static WeakReference StartOneFailingTask(string variant) => new(variant switch
    {
        "sleep" => Aio.CreateTask(async () => { await Aio.Sleep(0.01); throw new InvalidOperationException("lost"); }),
        "sleep0" => Aio.CreateTask(async () => { await Aio.Sleep(0); throw new InvalidOperationException("lost"); }),
        "yield" => Aio.CreateTask(async () => { await Task.Yield(); throw new InvalidOperationException("lost"); }),
        "no await" => Aio.CreateTask(async () => { await Task.CompletedTask; throw new InvalidOperationException("lost"); }),   // ends in its first step
        "Task.Delay" => Aio.CreateTask(async () => { await Task.Delay(5); throw new InvalidOperationException("lost"); }),
        "async Task" => Aio.CreateTask((Func<Task>)(async () => { await Aio.Sleep(0.01); throw new InvalidOperationException("lost"); })),
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    });

    /// <summary>Whether the task behind <paramref name="task"/> is done or gone (a call of its own, so that the caller holds no reference).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static bool DoneOrGone(WeakReference task) => task.Target is not AioTask t || t.IsDone;

    [Theory]
    [Trait("asyncio", "test_tasks: 'Task exception was never retrieved'")]
    [InlineData("sleep", true)]
    [InlineData("sleep", false)]
    [InlineData("sleep0", true)]
    [InlineData("sleep0", false)]
    [InlineData("yield", true)]
    [InlineData("yield", false)]
    [InlineData("no await", true)]
    [InlineData("no await", false)]
    [InlineData("Task.Delay", true)]
    [InlineData("Task.Delay", false)]
    [InlineData("async Task", true)]
    [InlineData("async Task", false)]
    public void Exception_NeverRetrieved_ASingleTask_IsReportedOnceCollected(string variant, bool virtualTime)
    {
        // A single failed task nobody retrieves: the last one to finish used to stay in the loop's list of tasks
        // (swept only once finished tasks outnumbered live ones, and the test's own task is live), so it was never
        // collected and never reported. The loop now sweeps finished tasks out when it is about to wait.
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            var task = StartOneFailingTask(variant);
            await Aio.Sleep(0.02);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (!DoneOrGone(task) && waited.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(1);   // Task.Delay runs on real time
            Assert.True(DoneOrGone(task), "the task did not end");
            await Aio.Sleep(0.01);   // the loop waits once after the task ended
            await FutureTests.CollectGarbage();
        }, new LoopOptions { VirtualTime = virtualTime });
        var error = Assert.Single(errors);
        Assert.Equal("Task exception was never retrieved", error.Message);
        Assert.Equal("lost", error.Exception!.Message);
        Assert.NotNull(error.Task);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Exception_NeverRetrieved_TaskCollectedWhileTheLoopWaits_IsReported(bool virtualTime)
    {
        // The collection happens on another thread while the loop waits for it, right after the failed task's
        // last step: nothing of the loop (its list of tasks, its current scope, the thread's synchronisation
        // context) may still hold the task then.
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            var task = StartOneFailingTask("sleep0");
            bool collected = await Aio.ToThread(() =>
            {
                var waited = System.Diagnostics.Stopwatch.StartNew();
                while (!DoneOrGone(task) && waited.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
                // The loop goes on to wait for this thread once the task has ended; collect until the task is
                // gone (a few rounds at most once the loop waits), for 5 seconds at most.
                while (task.IsAlive && waited.Elapsed < TimeSpan.FromSeconds(5))
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    if (task.IsAlive) Thread.Sleep(10);
                }
                return !task.IsAlive;
            });
            Assert.True(collected, "the failed task was still reachable while the loop waited");
            await Aio.Sleep(0);
            await Aio.Sleep(0);
        }, new LoopOptions { VirtualTime = virtualTime });
        var error = Assert.Single(errors);
        Assert.Equal("Task exception was never retrieved", error.Message);
        Assert.NotNull(error.Task);
    }

    [Fact]
    public void Name_DefaultIsTaskN_CustomNameKept() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => Task.CompletedTask);
        var b = Aio.CreateTask(() => Task.CompletedTask, "worker");
        Assert.Matches(@"^Task-\d+$", a.Name);
        Assert.Equal("worker", b.Name);
        b.Name = "renamed";
        Assert.Equal("renamed", b.Name);
        Assert.Contains("renamed", b.ToString());
        await Aio.Gather(a, b);
    });

    [Fact]
    public void Result_TypedTask_ReturnsValue() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(1); return "x"; });
        Assert.Throws<InvalidStateError>(() => t.Result);
        Assert.Equal("x", await t);
        Assert.Equal("x", t.Result);
    });

    [Fact]
    public void Exception_InCoroutine_TaskFailsAndAwaitRethrows() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => { await Aio.Sleep(1); throw new FormatException("nope"); });
        var e = await Assert.ThrowsAsync<FormatException>(async () => await t);
        Assert.Equal("nope", e.Message);
        Assert.True(t.IsFaulted);
        Assert.Same(e, t.GetException());
    });

    [Fact]
    public void Exception_ThrownSynchronouslyByCoroutineFunction_TaskFails() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask((Func<Task>)(() => throw new ArgumentException("sync")));
        await Assert.ThrowsAsync<ArgumentException>(async () => await t);
    });

    [Fact]
    public void CurrentTask_InsideTaskAndInPlainCallback() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        AioTask? seen = null;
        var t = Aio.CreateTask(async () => { await Aio.Sleep(0); seen = Aio.CurrentTask; });
        await t;
        Assert.Same(t, seen);
        AioTask? inCallback = t;
        loop.CallSoon(() => inCallback = loop.CurrentTask);
        await Aio.Sleep(0);
        Assert.Null(inCallback);
    });

    [Fact]
    public void CurrentTask_SurvivesForeignAwaits() => AioTest.RunReal(async () =>
    {
        var me = Aio.CurrentTask;
        Assert.NotNull(me);
        await Task.Delay(1);
        Assert.Same(me, Aio.CurrentTask);
        await Task.Yield();
        Assert.Same(me, Aio.CurrentTask);
        await Task.Run(() => Thread.Sleep(1));
        Assert.Same(me, Aio.CurrentTask);
    });

    [Fact]
    public void AllTasks_ListsLiveTasksOnly() => AioTest.Run(async () =>
    {
        var sleeper = Aio.CreateTask(() => Aio.Sleep(10).AsTask(), "sleeper");
        var quick = Aio.CreateTask(() => Task.CompletedTask, "quick");
        await Aio.Sleep(0);
        var names = Aio.AllTasks().Select(t => t.Name).ToList();
        Assert.Contains("sleeper", names);
        Assert.Contains("main", names);
        Assert.DoesNotContain("quick", names);
        await sleeper;
    });

    [Fact]
    public void FinishedTasks_LetGoOfByTheLoop_ListStaysBounded() => AioTest.Run(async () =>
    {
        // The loop unlinks finished tasks lazily, as soon as they outnumber the live ones (101 here: the
        // sleepers and the test's own task), so it never holds more than twice the live tasks.
        var loop = Aio.GetRunningLoop();
        var sleepers = new List<AioTask>();
        for (int i = 0; i < 100; i++) sleepers.Add(Aio.CreateTask(() => Aio.Sleep(1).AsTask()));
        for (int round = 0; round < 20; round++)
        {
            for (int i = 0; i < 1000; i++) _ = Aio.CreateTask(() => Task.CompletedTask);
            await Aio.Sleep(0);
            Assert.True(loop.TasksHeld <= 2 * 101, $"{loop.TasksHeld} tasks held in round {round}");
        }
        Assert.Equal(101, Aio.AllTasks().Count);
        await Aio.Gather(sleepers);
        _ = Assert.Single(Aio.AllTasks());
    });

    [Fact]
    public void FinishedTasks_SweptWhileTheLoopWaits_LiveOnesStayListed() => AioTest.Run(async () =>
    {
        // More tasks than one idle sweep visits, ending in scattered order with waits in between: the list keeps
        // every live task, and lets go of the finished ones over the next waits.
        var loop = Aio.GetRunningLoop();
        var tasks = new List<AioTask>();
        for (int i = 0; i < 3 * EventLoop.IdleSweepLinks; i++)
        {
            double delay = 1 + (i * 37 % 101) / 100.0;
            tasks.Add(Aio.CreateTask(() => Aio.Sleep(delay).AsTask(), $"s{i}"));
        }
        var pending = tasks.ToList();
        for (int step = 0; step < 50; step++)
        {
            await Aio.Sleep(0.05);
            await Task.Delay(2);   // real time passes: a long list is swept at most once a millisecond
            pending.RemoveAll(t => t.IsDone);
            Assert.Equal(pending.Select(t => t.Name).Prepend("main").Order(), Aio.AllTasks().Select(t => t.Name).Order());
            Assert.True(loop.TasksHeld <= 2 * (pending.Count + 1), $"{loop.TasksHeld} tasks held for {pending.Count + 1} live");
        }
        Assert.Empty(pending);
        for (int i = 0; i < 10 && loop.TasksHeld > 1; i++)
        {
            await Task.Delay(2);
            await Aio.Sleep(0.01);
        }
        Assert.Equal(1, loop.TasksHeld);
    });

    [Fact]
    public void FinishedTasks_EndingInTheOrderTheirCreatorMadeThem_AreLetGoOfAtOnce() => AioTest.Run(async () =>
    {
        // The test's task spawns a batch and then longer-lived tasks; the batch ends in order within one iteration,
        // with no wait before the check (no idle sweep), and fewer finished than live (no sweep at all).
        var loop = Aio.GetRunningLoop();
        var batch = new List<AioTask>();
        for (int i = 0; i < 3; i++) batch.Add(Aio.CreateTask(() => Task.CompletedTask));
        var never = loop.CreateFuture();
        var live = new List<AioTask>();
        for (int i = 0; i < 5; i++) live.Add(Aio.CreateTask(async () => await never));
        Assert.Equal(9, loop.TasksHeld);
        await Aio.Sleep(0);
        Assert.All(batch, t => Assert.True(t.IsDone));
        Assert.Equal(6, loop.TasksHeld);   // the test's task and the live ones
        Assert.Equal(live.Prepend(Aio.CurrentTask!).Select(t => t.Name).Order(), Aio.AllTasks().Select(t => t.Name).Order());
        never.Cancel();
        await Aio.Wait(live);
    });

    [Fact]
    public void Exception_NeverRetrieved_ATaskAmongManyLiveOnes_IsReportedOnceCollected()
    {
        // More live tasks than one idle sweep visits: the failed one is let go of over the next waits. (The live ones
        // wait for a future nobody completes: the virtual clock jumps while the test waits for real time to pass.)
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            var live = new List<AioTask>();
            var never = Aio.GetRunningLoop().CreateFuture();
            for (int i = 0; i < 2 * EventLoop.IdleSweepLinks; i++) live.Add(Aio.CreateTask(async () => await never));
            StartFailingTasks(1);
            await Aio.Sleep(2);
            var loop = Aio.GetRunningLoop();
            for (int i = 0; i < 50 && loop.TasksHeld > live.Count + 1; i++)
            {
                await Task.Delay(2);   // real time passes: a long list is swept at most once a millisecond
                await Aio.Sleep(0.01);
            }
            Assert.Equal(live.Count + 1, loop.TasksHeld);   // the live ones and the test's own
            await FutureTests.CollectGarbage();
            foreach (var t in live) t.Cancel();
            await Aio.Wait(live);
        });
        var error = Assert.Single(errors);
        Assert.Equal("Task exception was never retrieved", error.Message);
    }

    [Fact]
    public void FinishedTask_DroppedByTheProgram_IsNotKeptByTheLoop() => AioTest.Run(async () =>
    {
        var weak = await RunTaskAndForgetIt();
        await Aio.CreateTask(() => Task.CompletedTask); // a second finished task makes the loop sweep
        for (int i = 0; i < 3 && weak.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(weak.IsAlive, "the loop still holds a finished task that nothing else references");
    });

    static async Task<WeakReference> RunTaskAndForgetIt()
    {
        var task = Aio.CreateTask(() => Task.FromResult(new byte[1 << 20]));
        await task;
        return new WeakReference(task);
    }

    [Fact]
    public void FireAndForgetTask_NotCollectedWhileRunning() => AioTest.Run(async () =>
    {
        bool finished = false;
        StartUnreferenced(() => finished = true);
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            await Aio.Sleep(1);
        }
        await Aio.Sleep(10);
        Assert.True(finished);
    });

    static void StartUnreferenced(Action onDone) =>
        Aio.CreateTask(async () => { await Aio.Sleep(5); onDone(); });

    [Fact]
    public void AsTask_ComposesWithTaskWhenAll() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(async () => { await Aio.Sleep(1); return 1; });
        var b = Aio.CreateTask(async () => { await Aio.Sleep(2); return 2; });
        var results = await Task.WhenAll(a.AsTask(), b);
        Assert.Equal([1, 2], results);
    });

    [Fact]
    public void Task_CoroutineEndsOnTheLoop_IsDoneInTheSameIteration() => AioTest.Run(async () =>
    {
        // A completion that detoured through another thread would land after the marker.
        var loop = Aio.GetRunningLoop();
        bool? doneAtMarker = null;
        AioTask? t = null;
        t = Aio.CreateTask(async () =>
        {
            await Aio.Sleep(0);
            loop.CallSoon(() => doneAtMarker = t!.IsDone);
        });
        await t;
        await Aio.Sleep(0);
        Assert.True(doneAtMarker);
    });

    // ---- CreateTask(function, arg): asyncio's create_task(coro(arg)), without a closure ----

    static async Coroutine<int> TwiceLater(int x) { await Aio.Sleep(1); return 2 * x; }
    static async Task<string> EchoLater(string s) { await Aio.Sleep(1); return s; }

    [Fact]
    public void CreateTask_WithAnArgument_CallsTheFunctionWithItWhenTheTaskStarts() => AioTest.Run(async () =>
    {
        var calls = new List<string>();
        var a = Aio.CreateTask(TwiceLater, 21);
        var b = Aio.CreateTask(EchoLater, "echo", name: "b");
        var c = Aio.CreateTask(async (string s) => { calls.Add(s); await Aio.Sleep(1); }, "coroutine");
        var d = Aio.CreateTask((string s) => { calls.Add(s); return Task.CompletedTask; }, "task");
        Assert.Empty(calls);   // nothing runs before the tasks start, as with any task
        Assert.Equal("b", b.Name);
        Assert.IsType<Func<int, Coroutine<int>>>(a.GetCoroutine());
        await Aio.Gather(a, b, c, d);
        Assert.Equal(42, a.Result);
        Assert.Equal("echo", b.Result);
        Assert.Equal(["coroutine", "task"], calls);
        Assert.True(a.GetCoroutine() is Coroutine<int>);   // the running coroutine once started
        Assert.True(b.GetCoroutine() is Task<string>);
    });

    [Fact]
    public void CreateTask_WithAnArgument_OnTheLoopAndEagerly_StartsAtOnce() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var t = loop.CreateTask(TwiceLater, 5);
        var u = loop.CreateTask(async (int x) => { await Aio.Sleep(1); return x + 1; }, 5);
        Assert.Equal(10, await t);
        Assert.Equal(6, await u);
    });

    [Fact]
    public void CreateTask_WithAnArgument_EagerMode_RunsTheFunctionBeforeReturning() => AioTest.Run(async () =>
    {
        int seen = 0;
        var t = Aio.CreateTask(async (int x) => { seen = x; await Aio.Sleep(1); }, 7);
        Assert.Equal(7, seen);
        await t;
    }, new LoopOptions { VirtualTime = true, EagerTasks = true });

    [Fact]
    public void CreateTask_WithAnArgument_NullFunction_ThrowsAndSchedulesNothing() => AioTest.Run(async () =>
    {
        int before = Aio.AllTasks().Count;
        Assert.Throws<ArgumentNullException>(() => { Aio.CreateTask((Func<int, Coroutine>)null!, 1); });
        Assert.Throws<ArgumentNullException>(() => { Aio.CreateTask((Func<int, Coroutine<int>>)null!, 1); });
        Assert.Throws<ArgumentNullException>(() => { Aio.CreateTask((Func<int, Task>)null!, 1); });
        Assert.Throws<ArgumentNullException>(() => { Aio.CreateTask((Func<int, Task<int>>)null!, 1); });
        Assert.Equal(before, Aio.AllTasks().Count);
        await Aio.Sleep(0);
    });

    [Fact]
    public void CreateTask_WithAnArgument_FunctionThatThrows_TaskFailsWithTheError() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask((int x) => x > 0 ? throw new InvalidOperationException($"bad {x}") : Task.CompletedTask, 3);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await t);
        Assert.Equal("bad 3", e.Message);
    });

    static readonly List<string> s_fetched = new();
    static Task Fetch() { s_fetched.Add("(none)"); return Task.CompletedTask; }
    static Task Fetch(string url) { s_fetched.Add(url); return Task.CompletedTask; }

    [Fact]
    public void CreateTask_MethodGroupWithAndWithoutAParameter_AStringIsTheArgumentNotTheName() => AioTest.Run(async () =>
    {
        s_fetched.Clear();
        var t = Aio.CreateTask(Fetch, "https://example.org/");
        await t;
        Assert.Equal(["https://example.org/"], s_fetched);
        Assert.StartsWith("Task-", t.Name);
        var named = Aio.CreateTask(Fetch, "https://example.org/2", name: "fetch");
        await named;
        Assert.Equal("fetch", named.Name);
    });

    [MethodImpl(MethodImplOptions.NoInlining)]
    static AioTask TaskWithAnArgumentOnlyItHolds(out WeakReference arg)
    {
        var o = new object();
        arg = new WeakReference(o);
        return Aio.CreateTask(static (object _) => Task.CompletedTask, o);
    }

    [Fact]
    public void CreateTask_WithAnArgument_TheTaskLetsItGoOnceStarted() => AioTest.Run(async () =>
    {
        var task = TaskWithAnArgumentOnlyItHolds(out var arg);
        Assert.True(arg.IsAlive);
        await task;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(arg.IsAlive);
        GC.KeepAlive(task);
    });
}
