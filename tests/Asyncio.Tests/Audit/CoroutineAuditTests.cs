using System.Runtime.CompilerServices;

namespace Asyncio.Tests.Audit;

/// <summary>
/// Audit probes: the <c>async Coroutine</c> method type, eager tasks, virtual time and the loop's
/// TimeProvider, sleeps, debug mode; each pinned to CPython's asyncio (3.12/3.13), the library's own docs, or a
/// documented difference (docs/differences.md). Written as an audit (2026-12-04, session 19).
/// </summary>
[Collection("Console")] // one probe redirects Console.Error
public class CoroutineAuditTests
{
    static EventLoop Loop => Aio.GetRunningLoop();
    static double Now => Aio.GetRunningLoop().Time();
    static LoopOptions Eager => new() { VirtualTime = true, EagerTasks = true };

    static readonly AsyncLocal<string?> s_local = new();

    static async Coroutine<T> After<T>(double seconds, T value)
    {
        await Aio.Sleep(seconds);
        return value;
    }

#pragma warning disable CS1998
    static async Coroutine<int> Immediate(int v) => v;
    static async Coroutine ThrowsOce() => throw new OperationCanceledException("oce");
#pragma warning restore CS1998

    /// <summary>Counts loop iterations from now by a self-rescheduling callback.</summary>
    sealed class IterationCounter
    {
        public int Count;
        bool _stopped;
        public IterationCounter(EventLoop loop)
        {
            void Tick() { if (_stopped) return; Count++; loop.CallSoon(Tick); }
            loop.CallSoon(Tick);
        }
        public void Stop() => _stopped = true;
    }

    // ================= ExecutionContext / AsyncLocal and CreateTask =================

    [Fact]
    [Trait("asyncio", "a task runs in its own copy of the context: a value it sets does not reach its creator")]
    public void CreateTask_AsyncLocalSetInTheTask_NotSeenByTheCreator() => AioTest.Run(async () =>
    {
        s_local.Value = "creator";
        await Aio.CreateTask(async () => { await Aio.Sleep(0); s_local.Value = "task"; await Aio.Sleep(0); });
        Assert.Equal("creator", s_local.Value);
    });

    [Fact]
    [Trait("asyncio", "eager_task_factory: the eager step runs in a copy of the creator's context; a value it sets does not reach the creator")]
    public void Eager_AsyncLocal_SeenInTheTask_AndItsChangesStayThere() => AioTest.Run(async () =>
    {
        s_local.Value = "creator";
        string? inStep = null, afterAwait = null;
        var t = Aio.CreateTask(async () =>
        {
            inStep = s_local.Value;
            s_local.Value = "task";
            await Aio.Sleep(0);
            afterAwait = s_local.Value;
        });
        Assert.Equal("creator", s_local.Value);
        await t;
        Assert.Equal(("creator", "task"), (inStep, afterAwait));
        Assert.Equal("creator", s_local.Value);
    }, Eager);

    [Fact]
    [Trait("asyncio", "contextvars flow through await: a value set in a coroutine after an await of a coroutine is seen after further awaits")]
    public void Coroutine_AsyncLocalSetBetweenNestedCoroutineAwaits_Persists() => AioTest.Run(async () =>
    {
        async Coroutine<string?> Body()
        {
            await After(0.1, 0);
            s_local.Value = "mid";
            await After(0.1, 0);
            await Aio.Sleep(0);
            return s_local.Value;
        }
        Assert.Equal("mid", await Body());
        Assert.Null(s_local.Value);
    });

    // ================= Coroutine: awaits, threads, loops =================

    [Fact]
    [Trait("library", "Coroutine: may be awaited any number of times, from any thread")]
    public void Coroutine_PendingAwaitedFromAPlainThread_GetsTheResultOffTheLoopThread() => AioTest.RunReal(async () =>
    {
        var c = After(0.05, 42);
        int loopThread = Environment.CurrentManagedThreadId;
        var fromPool = Task.Run(async () =>
        {
            int r = await c;
            return (r, Environment.CurrentManagedThreadId);
        });
        Assert.Equal(42, await c);
        var (value, thread) = await fromPool.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(42, value);
        Assert.NotEqual(loopThread, thread);   // a context-free await does not run on the loop thread
    });

    [Fact]
    [Trait("library", "Coroutine: a coroutine of one loop awaited in a coroutine task of another loop resumes on that other loop's thread")]
    public void Coroutine_AwaitedFromAnotherLoopsTask_ResumesOnThatLoopsThread()
    {
        using var gate = new ManualResetEventSlim();
        Coroutine<int>? shared = null;
        var loopA = new Thread(() =>
        {
            Aio.Run(async () =>
            {
                shared = After(0.2, 7);
                gate.Set();
                await shared;
            });
        });
        loopA.Start();
        Assert.True(gate.Wait(20_000));
        var (value, sameThread) = Aio.Run(async () =>
        {
            int me = Environment.CurrentManagedThreadId;
            return await Aio.WaitFor(Aio.CreateTask(async () =>
            {
                int v = await shared!;
                await Aio.Sleep(0);      // still on this loop: its primitives work
                return (v, Environment.CurrentManagedThreadId == me);
            }), 20);
        }, new LoopOptions());
        Assert.True(loopA.Join(20_000));
        Assert.Equal((7, true), (value, sameThread));
    }

    [Fact]
    [Trait("library", "Coroutine: each await returns its result; awaiting after the loop closed works")]
    public async Task Coroutine_FinishedInALoop_AwaitedAfterTheLoopClosed_ReturnsItsResult()
    {
        var (c, f) = Aio.Run(async () =>
        {
            var ok = After(1, 5);
            var bad = FailLater();
            await ok;
            try { await bad; } catch (InvalidOperationException) { }
            return (ok, bad);
        });
        Assert.Equal(5, await c);
        Assert.Equal(5, await c.AsTask());
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await f);
        static async Coroutine<int> FailLater() { await Aio.Sleep(0.5); throw new InvalidOperationException("x"); }
    }

    [Fact]
    [Trait("library", "Coroutine.AsTask: a cancelled coroutine gives a cancelled Task (also when it failed synchronously)")]
    public void Coroutine_CancelledBeforeFirstAwait_IsCancelledAndAsTaskIsCanceled() => AioTest.Run(async () =>
    {
        var c = ThrowsOce();
        Assert.True(c.IsCancelled);
        Assert.False(c.IsFaulted);
        Assert.True(c.AsTask().IsCanceled);
        Assert.IsType<OperationCanceledException>(c.GetException());
        await Assert.ThrowsAsync<OperationCanceledException>(async () => await c);
    });

    [Fact]
    [Trait("asyncio", "a task whose coroutine raises CancelledError(msg) at its first step ends cancelled with msg")]
    public void CreateTask_CoroutineRaisesCancelledErrorSynchronously_TaskCancelledWithMessage() => AioTest.Run(async () =>
    {
#pragma warning disable CS1998
        var t = Aio.CreateTask(async () => { throw new CancelledError("early"); });
#pragma warning restore CS1998
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.IsCancelled);
        Assert.Equal("early", e.CancelMessage);
    });

    [Fact]
    [Trait("library", "GatherOutcomes of coroutines: one ended by an OperationCanceledException is recorded as a cancellation (differences.md)")]
    public void GatherOutcomes_CoroutineEndedByPlainOce_RecordedAsCancelled() => AioTest.Run(async () =>
    {
        async Coroutine<int> Oce() { await Aio.Sleep(0.1); throw new OperationCanceledException(); }
        var r = await Aio.GatherOutcomes([After(0.2, 1), Oce()]);
        Assert.True(r[0].IsSuccess);
        Assert.True(r[1].IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "gather: cancelling the task that awaits the gather cancels the children, and the task ends cancelled")]
    public void Gather_Coroutines_AwaitingTaskCancelled_ChildrenCancelledTaskCancelled() => AioTest.Run(async () =>
    {
        int finished = 0;
        async Coroutine<int> Child(double d) { await Aio.Sleep(d); finished++; return 1; }
        var t = Aio.CreateTask(async () => await Aio.Gather(Child(10), Child(20)));
        await Aio.Sleep(1);
        t.Cancel("stop");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(t.IsCancelled);
        Assert.Equal(1, Now, 3);
        await Aio.Sleep(30);
        Assert.Equal(0, finished);
    });

    [Fact]
    [Trait("asyncio", "shield: cancelling the awaiter leaves the shielded task (here a coroutine task) running to its result")]
    public void Shield_TaskOfACoroutine_AwaiterCancelled_InnerFinishes() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(() => After(5, "done"));
        var outer = Aio.CreateTask(async () => await Aio.Shield(inner));
        await Aio.Sleep(1);
        outer.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.Equal("done", await inner);
        Assert.Equal(5, Now, 3);
    });

    [Fact]
    [Trait("asyncio", "wait_for(coro, t): the coroutine is wrapped in a task and cancelled at the timeout (the Func form)")]
    public void WaitFor_CoroutineFunctionOverItsTimeout_IsCancelled() => AioTest.Run(async () =>
    {
        bool cancelled = false;
        async Coroutine<int> Slow()
        {
            try { await Aio.Sleep(10); return 1; }
            catch (CancelledError) { cancelled = true; throw; }
        }
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(async () => await Slow(), 1));
        Assert.True(cancelled);
        Assert.Equal(1, Now, 3);
    });

    [Fact]
    [Trait("asyncio", "asyncio.timeout: a timeout reaches a sleep inside a coroutine that resumed after a foreign await (the coroutine comes back in the timeout's scope)")]
    public void Coroutine_InTimeoutBody_AfterAForeignTaskAwait_TimeoutStillCancelsIt() => AioTest.RunReal(async () =>
    {
        bool resumedOnLoop = false;
        int me = Environment.CurrentManagedThreadId;
        async Coroutine Body()
        {
            await Task.Run(() => Thread.Sleep(1));
            resumedOnLoop = Environment.CurrentManagedThreadId == me;
            await Aio.Sleep(30);
        }
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(0.3, async () => await Body()));
        Assert.True(resumedOnLoop);
    });

    [Fact]
    [Trait("asyncio", "task.cancel(): reaches an await inside a coroutine that awaited a foreign Task first")]
    public void Coroutine_TaskCancelledAfterAForeignAwait_SleepThrowsCancelledError() => AioTest.RunReal(async () =>
    {
        var ready = Loop.CreateFuture();
        var t = Aio.CreateTask(async () =>
        {
            await Task.Run(() => { });
            ready.SetResult();
            await Aio.Sleep(30);
        });
        await ready;
        t.Cancel("m");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("m", e.CancelMessage);
    });

    [Fact]
    [Trait("library", "differences.md: ConfigureAwait(false) in a coroutine sends its continuation to the thread pool; loop APIs there throw")]
    public void Coroutine_ConfigureAwaitFalse_LeavesTheLoop_LoopApisThrow() => AioTest.RunReal(async () =>
    {
        int me = Environment.CurrentManagedThreadId;
        async Coroutine<(bool, Exception?)> Body()
        {
            await Task.Delay(1).ConfigureAwait(false);
            bool onLoop = Environment.CurrentManagedThreadId == me;
            Exception? e = null;
            try { await Aio.Sleep(0); } catch (Exception x) { e = x; }
            return (onLoop, e);
        }
        var (onLoop, error) = await Body();
        Assert.False(onLoop);
        Assert.IsType<InvalidOperationException>(error);
        Assert.Equal(me, Environment.CurrentManagedThreadId);
    });

    [Fact]
    [Trait("library", "Coroutine: a chain of alternating async Task and async Coroutine methods, 20,000 deep, ends without overflowing the stack")]
    public void Coroutine_AlternatingTaskAndCoroutineChain_EndsWithoutStackOverflow() => AioTest.Run(async () =>
    {
        var gate = Loop.CreateFuture();
        async Coroutine<int> C(int n) => n == 0 ? await LeafAsync() : await T(n - 1) + 1;
        async Task<int> T(int n) => n == 0 ? await LeafAsync() : await C(n - 1) + 1;
        async Coroutine<int> LeafAsync() { await gate; return 0; }
        var top = C(20_000);
        await Aio.Sleep(0);
        gate.SetResult();
        Assert.Equal(20_000, await top);
    });

    [Fact]
    [Trait("asyncio", "a coroutine that never awaits: a task running it finishes in its first step with its result")]
    public void CreateTask_CoroutineThatNeverAwaits_ResultAfterOneIteration() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => Immediate(3));
        Assert.False(t.IsDone);
        await Aio.Sleep(0);
        Assert.True(t.IsDone);
        Assert.Equal(3, t.Result);
    });

    [Fact]
    [Trait("library", "Coroutine: awaited by a coroutine, by an async Task method and through AsTask at once: all get the result")]
    public void Coroutine_AwaitedByMixedAwaiters_AllResume() => AioTest.Run(async () =>
    {
        var c = After(1, 9);
        async Coroutine<int> ViaCoroutine() => await c + 1;
        async Task<int> ViaTask() => await c + 2;
        var a = ViaCoroutine();
        var b = ViaTask();
        var d = c.AsTask();
        var e = c.AsValueTask();
        Assert.Equal(10, await a);
        Assert.Equal(11, await b);
        Assert.Equal(9, await d);
        Assert.Equal(9, await e);
        Assert.Equal(9, await c);
    });

    [Fact]
    [Trait("asyncio", "a coroutine awaited inside a timeout body and ending later: the task resumes outside in its own scope, not in the closed timeout's")]
    public void Coroutine_StartedInTimeoutBody_AwaitedAfter_ResumesInTheTasksScope() => AioTest.Run(async () =>
    {
        Coroutine<int>? escaped = null;
        await Aio.Timeout(5, async () => { escaped = After(2, 1); await Aio.Sleep(0); });
        Assert.Equal(1, await escaped!);
        // The next await belongs to the task: a cancel of the task reaches it.
        var me = Aio.CurrentTask!;
        Loop.CallLater(1, () => me.Cancel("x"));
        await Assert.ThrowsAsync<CancelledError>(async () => await Aio.Sleep(10));
        me.Uncancel();
    });

    // ================= Eager tasks =================

    [Fact]
    [Trait("asyncio", "eager task: created with name=, current_task().get_name() inside the eager step is that name")]
    public void Eager_Name_IsVisibleInsideTheEagerStep() => AioTest.Run(async () =>
    {
        string? seen = null;
        var t = Aio.CreateTask(async () => { seen = Aio.CurrentTask?.Name; await Aio.Sleep(0); }, "eager-1");
        Assert.Equal("eager-1", seen);
        await t;
    }, Eager);

    [Fact]
    [Trait("asyncio", "eager task creating an eager task: current_task() is the inner task in its step, the outer again after, the creator after both")]
    public void Eager_Nested_CurrentTaskIsRestoredAtEachLevel() => AioTest.Run(async () =>
    {
        var log = new List<string?>();
        var creator = Aio.CurrentTask;
        AioTask? inner = null;
        var outer = Aio.CreateTask(async () =>
        {
            log.Add(Aio.CurrentTask?.Name);
            inner = Aio.CreateTask(async () => { log.Add(Aio.CurrentTask?.Name); await Aio.Sleep(0); log.Add(Aio.CurrentTask?.Name); }, "inner");
            log.Add(Aio.CurrentTask?.Name);
            await Aio.Sleep(0);
            log.Add(Aio.CurrentTask?.Name);
        }, "outer");
        Assert.Same(creator, Aio.CurrentTask);
        await outer;
        await inner!;
        Assert.Equal(["outer", "inner", "outer", "inner", "outer"], log);
    }, Eager);

    [Fact]
    [Trait("asyncio", "eager task factory applies to create_task(coro(arg)): the call and its first step run inside create_task")]
    public void Eager_CreateTaskWithArg_RunsTheFirstStepAtOnceWithTheArgument() => AioTest.Run(async () =>
    {
        var seen = new List<string>();
        async Coroutine<int> Work(string s) { seen.Add(s + ":" + Aio.CurrentTask?.Name); await Aio.Sleep(1); return s.Length; }
        var t = Aio.CreateTask(Work, "abc", name: "w");
        Assert.Equal(["abc:w"], seen);
        Assert.Equal(3, await t);
    }, Eager);

    [Fact]
    [Trait("asyncio", "eager task whose step raises CancelledError(msg) synchronously: create_task returns a task already cancelled with msg")]
    public void Eager_StepRaisesCancelledError_TaskDoneCancelledAtOnce() => AioTest.Run(async () =>
    {
#pragma warning disable CS1998
        var t = Aio.CreateTask(async () => { throw new CancelledError("bye"); });
#pragma warning restore CS1998
        Assert.True(t.IsDone);
        Assert.True(t.IsCancelled);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("bye", e.CancelMessage);
    }, Eager);

    [Fact]
    [Trait("asyncio", "eager task finishing synchronously: done at once with its result, not in all_tasks(), cancel() returns False")]
    public void Eager_FinishesSynchronously_ResultAtOnceAndNotInAllTasks() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => Immediate(4));
        Assert.True(t.IsDone);
        Assert.Equal(4, t.Result);
        Assert.DoesNotContain(t, Aio.AllTasks());
        Assert.False(t.Cancel());
        Assert.Equal(0, t.Cancelling());
        await Aio.Sleep(0);
    }, Eager);

    [Fact]
    [Trait("asyncio", "a done callback added to an eagerly finished task runs via call_soon, not inline")]
    public void Eager_FinishedTask_DoneCallbackRunsLater() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => Immediate(1));
        bool ran = false;
        t.AddDoneCallback(_ => ran = true);
        Assert.False(ran);
        await Aio.Sleep(0);
        Assert.True(ran);
    }, Eager);

    [Fact]
    [Trait("asyncio", "Task(eager_start=True) when the loop is not running: the task is scheduled and starts when the loop runs")]
    public void Eager_CreatedBeforeTheLoopRuns_StartsWhenItRuns()
    {
        using var loop = new EventLoop(Eager);
        bool ran = false;
        var t = loop.CreateTask(async () => { ran = true; await Aio.Sleep(0); return 1; });
        Assert.False(ran);
        Assert.Equal(1, loop.RunUntilComplete(t));
        Assert.True(ran);
    }

    [Fact]
    [Trait("asyncio", "loop.set_task_factory(eager_task_factory) on a running loop: later create_task calls start eagerly")]
    public void Eager_ToggledOnARunningLoop_TakesEffect() => AioTest.Run(async () =>
    {
        bool ran = false;
        Loop.EagerTasks = true;
        var t = Aio.CreateTask(async () => { ran = true; await Aio.Sleep(0); });
        Loop.EagerTasks = false;
        Assert.True(ran);
        bool ran2 = false;
        var t2 = Aio.CreateTask(async () => { ran2 = true; await Aio.Sleep(0); });
        Assert.False(ran2);
        await t; await t2;
    });

    [Fact]
    [Trait("asyncio", "eager step raising: the exception is the task's; create_task returns; the creator goes on")]
    public void Eager_StepFailsInsideAnotherEagerStep_OuterUnaffected() => AioTest.Run(async () =>
    {
        AioTask? inner = null;
#pragma warning disable CS1998
        var outer = Aio.CreateTask(async () =>
        {
            inner = Aio.CreateTask(async () => { throw new InvalidOperationException("inner"); });
            await Aio.Sleep(0);
            return 2;
        });
#pragma warning restore CS1998
        Assert.True(inner!.IsDone);
        Assert.IsType<InvalidOperationException>(inner.GetException());
        Assert.Equal(2, await outer);
    }, Eager);

    [Fact]
    [Trait("asyncio", "eager task in a TaskGroup: its step runs inside tg.create_task with current_task() the child")]
    public void Eager_TaskGroupChild_StepRunsAtOnceAsTheChild() => AioTest.Run(async () =>
    {
        string? seen = null;
        await TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(async () => { seen = Aio.CurrentTask?.Name; await Aio.Sleep(1); }, "child");
            Assert.Equal("child", seen);
            await Aio.Sleep(0);
        });
        Assert.Equal(1, Now, 3);
    }, Eager);

    [Fact]
    [Trait("asyncio", "eager step that suspends on sleep(0): the creator's code after create_task runs before the task resumes")]
    public void Eager_StepSuspendsOnSleep0_CreatorRunsFirst() => AioTest.Run(async () =>
    {
        var log = new List<string>();
        var t = Aio.CreateTask(async () => { log.Add("step1"); await Aio.Sleep(0); log.Add("step2"); });
        log.Add("creator");
        await t;
        Assert.Equal(["step1", "creator", "step2"], log);
    }, Eager);

    [Fact]
    [Trait("asyncio", "eager task cancelled before its first step resumes (while suspended on sleep(0)): it ends cancelled")]
    public void Eager_CancelledWhileSuspendedOnSleep0_EndsCancelled() => AioTest.Run(async () =>
    {
        bool after = false;
        var t = Aio.CreateTask(async () => { await Aio.Sleep(0); after = true; });
        Assert.True(t.Cancel());
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.False(after);
    }, Eager);

    [Fact]
    [Trait("asyncio", "an eager task's scope: Aio.CancellationToken after create_task is the creator's own (restored), and cancelling the child does not signal it")]
    public void Eager_ChildCancelled_CreatorsTokenUntouched() => AioTest.Run(async () =>
    {
        var before = Aio.CancellationToken;
        var t = Aio.CreateTask(async () => await Aio.Sleep(10));
        Assert.Equal(before, Aio.CancellationToken);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.False(Aio.CancellationToken.IsCancellationRequested);
    }, Eager);

    // ================= Sleep =================

    [Fact]
    [Trait("asyncio", "sleep(delay): TimeSpan form advances the virtual clock by exactly the delay")]
    public void Sleep_TimeSpan_AdvancesExactly() => AioTest.Run(async () =>
    {
        await Aio.Sleep(TimeSpan.FromSeconds(2.5));
        Assert.Equal(2.5, Now, 9);
    });

    [Theory]
    [Trait("asyncio", "sleep(0) (and a negative delay) yields exactly one loop iteration")]
    [InlineData(0)]
    [InlineData(-5)]
    public void Sleep_TimeSpanZeroOrNegative_YieldsExactlyOneIteration(int seconds) => AioTest.Run(async () =>
    {
        var counter = new IterationCounter(Loop);
        await Aio.Sleep(TimeSpan.FromSeconds(seconds));
        int n = counter.Count;
        counter.Stop();
        Assert.Equal(1, n);
    });

    [Fact]
    [Trait("asyncio", "sleep(0, result) yields one iteration and returns result")]
    public void Sleep_ZeroWithResult_YieldsOneIterationAndReturnsResult() => AioTest.Run(async () =>
    {
        var counter = new IterationCounter(Loop);
        string r = await Aio.Sleep(0, "r");
        int n = counter.Count;
        counter.Stop();
        Assert.Equal("r", r);
        Assert.Equal(1, n);
    });

    [Fact]
    [Trait("asyncio", "sleep(delay, result): the clock advances by delay and result comes back")]
    public void Sleep_DelayWithResult_AdvancesExactly() => AioTest.Run(async () =>
    {
        Assert.Equal(7, await Aio.Sleep(1.25, 7));
        Assert.Equal(1.25, Now, 9);
    });

    [Fact]
    [Trait("asyncio", "3.13: sleep(nan) raises ValueError (here ArgumentException), also with a result")]
    public void Sleep_NaNWithResult_Throws() => AioTest.Run(async () =>
    {
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await Aio.Sleep(double.NaN, 1));
    });

    [Fact]
    [Trait("asyncio", "sleep(-inf) behaves as sleep(0); sleep(+inf) sleeps until cancelled (here cut by a timeout)")]
    public void Sleep_Infinities() => AioTest.Run(async () =>
    {
        await Aio.Sleep(double.NegativeInfinity);
        Assert.Equal(0, Now);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(3, async () => await Aio.Sleep(double.PositiveInfinity)));
        Assert.Equal(3, Now, 9);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(3, async () => await Aio.Sleep(TimeSpan.MaxValue)));
        Assert.Equal(6, Now, 9);
    });

    [Fact]
    [Trait("library", "Aio.Sleep: the deadline counts from the call and is never early (a tiny positive delay still advances the clock)")]
    public void Sleep_TinyPositiveDelay_NeverEarly() => AioTest.Run(async () =>
    {
        await Aio.Sleep(1e-12);
        Assert.True(Now > 0);
    });

    [Fact]
    [Trait("library", "Sleep's doc: the deadline counts from the call to Sleep, not from the await")]
    public void Sleep_DeadlineCountsFromTheCall() => AioTest.Run(async () =>
    {
        var s = Aio.Sleep(2);
        await Aio.Sleep(1);
        await s;
        Assert.Equal(2, Now, 9);
    });

    // ================= Virtual time and the TimeProvider =================

    [Fact]
    [Trait("library", "loop.TimeProvider: Task.Delay(t, provider) in a coroutine follows virtual time and resumes on the loop thread in its task")]
    public void TimeProvider_TaskDelayInACoroutineTask_ExactAndOnTheLoop() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () =>
        {
            var me = Aio.CurrentTask;
            await Task.Delay(TimeSpan.FromSeconds(5), Loop.TimeProvider);
            return (Now, ReferenceEquals(me, Aio.CurrentTask));
        });
        var (when, same) = await t;
        Assert.Equal(5, when, 6);
        Assert.True(same);
    });

    [Fact]
    [Trait("library", "loop.TimeProvider: PeriodicTimer ticks at exact multiples on virtual time")]
    public void TimeProvider_PeriodicTimer_TicksAtMultiples() => AioTest.Run(async () =>
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1.5), Loop.TimeProvider);
        var at = new List<double>();
        for (int i = 0; i < 4; i++)
        {
            Assert.True(await timer.WaitForNextTickAsync());
            at.Add(Math.Round(Now, 6));
        }
        Assert.Equal([1.5, 3.0, 4.5, 6.0], at);
    });

    [Fact]
    [Trait("library", "loop.TimeProvider.CreateTimer: a zero due time fires on a later iteration, not inside CreateTimer; Change after Dispose returns false")]
    public void TimeProvider_CreateTimerZeroDue_FiresLater_ChangeAfterDisposeFalse() => AioTest.Run(async () =>
    {
        int fired = 0;
        var timer = Loop.TimeProvider.CreateTimer(_ => fired++, null, TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        Assert.Equal(0, fired);
        await Aio.Sleep(0);
        await Aio.Sleep(0);
        Assert.Equal(1, fired);
        Assert.True(timer.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan));
        await Aio.Sleep(2);
        Assert.Equal(2, fired);
        timer.Dispose();
        Assert.False(timer.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan));
    });

    [Fact]
    [Trait("library", "loop.TimeProvider: a timer with an infinite due time never fires and does not move the virtual clock")]
    public void TimeProvider_InfiniteDueTimer_NeverFiresClockStays() => AioTest.Run(async () =>
    {
        int fired = 0;
        using var timer = Loop.TimeProvider.CreateTimer(_ => fired++, null, Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(1));
        await Aio.Sleep(3);
        Assert.Equal(0, fired);
        Assert.Equal(3, Now, 9);
    });

    [Fact]
    [Trait("library", "loop.TimeProvider: a periodic timer changed from its own callback follows the new schedule")]
    public void TimeProvider_TimerChangedFromItsCallback() => AioTest.Run(async () =>
    {
        var at = new List<double>();
        ITimer? timer = null;
        timer = Loop.TimeProvider.CreateTimer(_ =>
        {
            at.Add(Math.Round(Now, 6));
            if (at.Count == 2) timer!.Change(TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        await Aio.Sleep(20);
        timer.Dispose();
        Assert.Equal([1.0, 2.0, 7.0], at);
    });

    [Fact]
    [Trait("library", "loop.TimeProvider: GetTimestamp starts at zero on virtual time and GetElapsedTime follows sleeps exactly")]
    public void TimeProvider_TimestampsFollowVirtualTime() => AioTest.Run(async () =>
    {
        var tp = Loop.TimeProvider;
        long t0 = tp.GetTimestamp();
        await Aio.Sleep(TimeSpan.FromMilliseconds(1500));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), tp.GetElapsedTime(t0));
    });

    [Fact]
    [Trait("library", "LoopOptions.AutojumpThreshold: RunInExecutor work on any scheduler holds the virtual clock until it reports back")]
    public void VirtualTime_ExecutorWorkOnACustomScheduler_HoldsTheClock() => AioTest.Run(async () =>
    {
        var sleeper = Aio.CreateTask(async () => await Aio.Sleep(1));
        var scheduler = new ConcurrentExclusiveSchedulerPair().ConcurrentScheduler;
        var f = Loop.RunInExecutor(scheduler, () => { Thread.Sleep(50); return 1; });
        Assert.Equal(1, await f);
        Assert.Equal(0, Now);
        Assert.False(sleeper.IsDone);
        await sleeper;
    });

    [Fact]
    [Trait("library", "virtual time: a coroutine awaiting Task.Delay(t, provider, token) is cancelled by its task's cancel at the cancel's time")]
    public void TimeProvider_TaskDelayWithTaskToken_CancelledWithTheTask() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(async () => await Task.Delay(TimeSpan.FromSeconds(10), Loop.TimeProvider, Aio.CancellationToken));
        await Aio.Sleep(2);
        t.Cancel("why");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("why", e.CancelMessage);
        Assert.Equal(2, Now, 6);
    });

    // ================= Debug mode =================

    [Fact]
    [Trait("asyncio", "debug mode _check_thread: call_soon / create_task / task.cancel from another thread raise (RuntimeError; here InvalidOperationException)")]
    public void Debug_NonThreadsafeCallsFromAnotherThread_Throw() => AioTest.RunReal(async () =>
    {
        var loop = Loop;
        var t = Aio.CreateTask(async () => await Aio.Sleep(30));
        var f = loop.CreateFuture<int>();
        var errors = await Task.Run(() => new Exception?[]
        {
            Record.Exception(() => loop.CallSoon(() => { })),
            Record.Exception(() => loop.CallLater(1, () => { })),
            Record.Exception(() => { loop.CreateTask(async () => await Task.Yield()); }),
            Record.Exception(() => t.Cancel()),
            Record.Exception(() => f.SetResult(1)),
        }).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.All(errors, e => Assert.IsType<InvalidOperationException>(e));
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
    });

    [Fact]
    [Trait("asyncio", "debug mode: a fast callback is not reported as slow; slow_callback_duration changed on a running loop is used")]
    public void Debug_SlowCallbackDurationChangedAtRuntime_IsUsed()
    {
        string output = Asyncio.Tests.Loop.DebugModeTests.StandardErrorOf(() => Aio.Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await Aio.CreateTask(async () => { await Aio.Sleep(0); }, "quick");
            loop.SlowCallbackDuration = TimeSpan.FromMilliseconds(5);
            await Aio.CreateTask(async () => { await Aio.Sleep(0); Thread.Sleep(40); }, "slowpoke");
        }, new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromSeconds(10) }));
        Assert.Contains("slowpoke", output);
        Assert.DoesNotContain("quick", output);
    }

    // ================= more =================

    [Fact]
    [Trait("library", "a task whose coroutine ends on a thread-pool thread (ConfigureAwait(false)) ends with its result, reported on the loop")]
    public void CreateTask_CoroutineEndsOffTheLoop_TaskEndsWithItsResult() => AioTest.RunReal(async () =>
    {
        var t = Aio.CreateTask(async () => { await Task.Delay(1).ConfigureAwait(false); return 5; });
        Assert.Equal(5, await t);
        Assert.True(t.IsDone);
    });

    [Fact]
    [Trait("library", "loop.TimeProvider: Task.WaitAsync(timeout, provider) times out on virtual time at the exact deadline")]
    public void TimeProvider_WaitAsyncTimeout_OnVirtualTime() => AioTest.Run(async () =>
    {
        var never = new TaskCompletionSource();
        await Assert.ThrowsAsync<TimeoutException>(() => never.Task.WaitAsync(TimeSpan.FromSeconds(3), Loop.TimeProvider));
        Assert.Equal(3, Now, 6);
    });

    [Fact]
    [Trait("library", "loop.TimeProvider: CancelAfter on a CancellationTokenSource made with the provider reschedules on virtual time")]
    public void TimeProvider_CancelAfterOnAProviderCts() => AioTest.Run(async () =>
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10), Loop.TimeProvider);
        cts.CancelAfter(TimeSpan.FromSeconds(2));
        var fired = Loop.CreateFuture<double>();
        cts.Token.Register(() => fired.SetResult(Now));
        Assert.Equal(2, await fired, 6);
    });

    [Fact]
    [Trait("library", "loop.TimeProvider: disposing a PeriodicTimer while a tick is awaited ends the wait with false")]
    public void TimeProvider_PeriodicTimerDisposedWhileWaiting_ReturnsFalse() => AioTest.Run(async () =>
    {
        var timer = new PeriodicTimer(TimeSpan.FromSeconds(5), Loop.TimeProvider);
        Loop.CallLater(1, timer.Dispose);
        Assert.False(await timer.WaitForNextTickAsync());
        Assert.Equal(1, Now, 6);
    });

    [Fact]
    [Trait("asyncio", "wait_for(done, timeout=0) returns the result (3.12); wait_for(pending, 0) raises TimeoutError at once")]
    public void WaitFor_CoroutineWithZeroTimeout() => AioTest.Run(async () =>
    {
        Assert.Equal(5, await Aio.WaitFor(Immediate(5), 0));
        var pending = After(1, 1);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(pending, 0));
        Assert.Equal(0, Now);
        Assert.Equal(1, await pending);
    });

    [Fact]
    [Trait("library", "Gather of a hundred coroutines on virtual time: learns of their end in the step that ends them; the clock does not run past")]
    public void Gather_HundredCoroutinesOnVirtualTime_EndsAtTheirTime() => AioTest.Run(async () =>
    {
        var other = Aio.CreateTask(async () => await Aio.Sleep(1.5));
        var r = await Aio.Gather(Enumerable.Range(0, 100).Select(i => After(1, i)));
        Assert.Equal(99, r[99]);
        Assert.Equal(1, Now, 6);
        await other;
    });

    [Fact]
    [Trait("asyncio", "_check_thread returns when the loop is not running: call_soon from another thread is allowed then (debug or not)")]
    public void Debug_CallSoonFromAnotherThreadWhileTheLoopIsNotRunning_Allowed()
    {
        using var loop = new EventLoop(new LoopOptions { Debug = true, VirtualTime = true });
        bool ran = false;
        var th = new Thread(() => loop.CallSoon(() => ran = true));
        th.Start();
        Assert.True(th.Join(20_000));
        loop.RunUntilComplete(async () => await Aio.Sleep(0));
        Assert.True(ran);
    }

    [Fact]
    [Trait("asyncio", "eager task whose coroutine raises a plain OperationCanceledException synchronously ends cancelled (differences.md: any OCE)")]
    public void Eager_StepRaisesPlainOce_TaskCancelled() => AioTest.Run(async () =>
    {
        var t = Aio.CreateTask(() => ThrowsOce());
        Assert.True(t.IsCancelled);
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
    }, Eager);

    [Fact]
    [Trait("asyncio", "an eager task awaiting another eager task that suspends: both resume in order and results flow")]
    public void Eager_AwaitsAnotherEagerTask() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => After(1, 10));
        var b = Aio.CreateTask(async () => await a + 1);
        Assert.False(b.IsDone);
        Assert.Equal(11, await b);
        Assert.Equal(1, Now, 6);
    }, Eager);

    [Fact]
    [Trait("asyncio", "an eager task awaiting an eager task already done finishes inside create_task")]
    public void Eager_AwaitsADoneEagerTask_FinishesAtOnce() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => Immediate(10));
        var b = Aio.CreateTask(async () => await a + 1);
        Assert.True(b.IsDone);
        Assert.Equal(11, b.Result);
        await Aio.Sleep(0);
    }, Eager);

    [Fact]
    [Trait("asyncio", "differs (docs/differences.md, hot coroutines; Aio.Timeout's remarks): a coroutine started before a timeout keeps waiting in the scope it began in, so the timeout does not interrupt it; the expired timeout throws once the body returns")]
    public void Timeout_AroundAnAwaitOfACoroutineStartedBeforeIt_DoesNotInterruptIt() => AioTest.Run(async () =>
    {
        var c = After(10, 1);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () => await c));
        Assert.Equal(10, Now, 6);
        Assert.Equal(1, await c);
    });

    [Fact]
    [Trait("library", "Coroutine remarks: when execution-context flow is suppressed, a coroutine resumes in the default context")]
    public void Coroutine_FlowSuppressed_ResumesInTheDefaultContext() => AioTest.Run(async () =>
    {
        s_local.Value = "outer";
        async Coroutine<string?> Body() { await Aio.Sleep(0); return s_local.Value; }
        Coroutine<string?> c;
        using (ExecutionContext.SuppressFlow()) c = Body();
        Assert.Null(await c);
        Assert.Equal("outer", s_local.Value);
    });

    [Fact]
    [Trait("asyncio", "eager task: after a foreign await in its first step it resumes on the loop as itself (current_task)")]
    public void Eager_ForeignAwaitInTheFirstStep_ResumesAsTheTask() => AioTest.RunReal(async () =>
    {
        int me = Environment.CurrentManagedThreadId;
        var loop = Loop;
        loop.EagerTasks = true;
        var t = Aio.CreateTask(async () =>
        {
            await Task.Run(() => Thread.Sleep(1));
            return (Aio.CurrentTask?.Name, Environment.CurrentManagedThreadId == me);
        }, "e");
        loop.EagerTasks = false;
        Assert.Equal(("e", true), await t);
    });

    [Fact]
    [Trait("asyncio", "eager task awaiting a pending coroutine of its creator: resumes in its own task when it ends")]
    public void Eager_AwaitsCreatorsPendingCoroutine() => AioTest.Run(async () =>
    {
        var c = After(1, 5);
        var t = Aio.CreateTask(async () => { int v = await c; return (v, Aio.CurrentTask?.Name); }, "waiter");
        Assert.Equal(5, await c);
        Assert.Equal((5, "waiter"), await t);
    }, Eager);

    [Fact]
    [Trait("asyncio", "task.cancel() while a coroutine in it awaits Task.Delay(t, token of the task): ends cancelled with the message (OCE maps to the request)")]
    public void Coroutine_ForeignDelayWithTaskToken_RealTime_CancelledWithMessage() => AioTest.RunReal(async () =>
    {
        async Coroutine Body() => await Task.Delay(30_000, Aio.CancellationToken);
        var t = Aio.CreateTask(async () => await Body());
        await Aio.Sleep(0.01);
        t.Cancel("halt");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("halt", e.CancelMessage);
    });
}
