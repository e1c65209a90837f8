namespace Asyncio.Tests.Audit;

using static Asyncio.Tests.Coroutines;

/// <summary>Audit probes: Gather, Wait, AsCompleted and TaskGroup against asyncio's documented behaviour.
/// Written as an audit (2026-12-04, session 19): edge cases the concept classes did not cover, each pinned to what
/// CPython's asyncio does (the comment or trait of each names where), or to a documented difference (docs/differences.md).
/// </summary>
public class CombinatorsAuditTests
{
    static double Now => Aio.GetRunningLoop().Time();

    static AioTask<int> SleepTask(double seconds, int value) => Aio.CreateTask(() => After(seconds, value));

    static Future<int> Done(int value)
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.SetResult(value);
        return f;
    }

    // =====================================================================
    // Gather
    // =====================================================================

    [Fact]
    public void Gather_CancelledThenFirstChildFailsInCleanup_RaisesThatError() => AioTest.Run(async () =>
    {
        // asyncio gather._done_callback: without return_exceptions, the first child to end after the
        // cancel decides: an exception there is set on the outer future.
        var a = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { throw new FormatException("cleanup"); }
            return 1;
        });
        var b = SleepTask(10, 2);
        var g = Aio.Gather(a, b);
        await Aio.Sleep(1);
        Assert.True(g.Cancel());
        var e = await Assert.ThrowsAsync<FormatException>(async () => await g);
        Assert.Equal("cleanup", e.Message);
        Assert.True(b.IsCancelled || (await Record.ExceptionAsync(async () => await b)) is CancelledError);
    });

    [Fact]
    public void Gather_AlreadyFailedFutureAndPendingTask_FailsAndTheTaskRunsOn() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.SetException(new FormatException("early"));
        var t = SleepTask(5, 2);
        double t0 = Now;
        var e = await Assert.ThrowsAsync<FormatException>(async () => await Aio.Gather(f, t));
        Assert.Equal("early", e.Message);
        Assert.Equal(0, Now - t0, 6);
        Assert.False(t.IsDone);
        Assert.Equal(2, await t);
    });

    [Fact]
    public void GatherOutcomes_SameFailedFutureTwice_BothSlotsHoldTheException() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var f = loop.CreateFuture<int>();
        var ok = loop.CreateFuture<int>();
        var g = Aio.GatherOutcomes(new[] { f, ok, f });
        await Aio.Sleep(0);
        var boom = new FormatException("x");
        f.SetException(boom);
        ok.SetResult(4);
        var outcomes = await g;
        Assert.Equal(3, outcomes.Length);
        Assert.Same(boom, outcomes[0].Exception);
        Assert.Equal(4, outcomes[1].Value);
        Assert.Same(boom, outcomes[2].Exception);
    });

    [Fact]
    public void Gather_SameTaskTwiceCancelled_EndsWithCancelledError() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        var g = Aio.Gather(a, a);
        await Aio.Sleep(1);
        Assert.True(g.Cancel("m"));
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await g);
        Assert.Equal("m", e.CancelMessage);
        Assert.True(a.IsCancelled);
    });

    [Fact]
    public void Gather_CancelWhileDoneChildrenAreNotYetReported_RefusesAndReturnsResults() => AioTest.Run(async () =>
    {
        // asyncio: _GatheringFuture.cancel() cancels no child (all done) and returns False; the gather then
        // completes with the results.
        var g = Aio.Gather(Done(1), Done(2));
        Assert.False(g.Cancel());
        Assert.Equal(new[] { 1, 2 }, await g);
    });

    [Fact]
    public void Gather_AwaitingTaskCancelledAfterTheChildFinishedInTheSameStep_TaskIsStillCancelled() => AioTest.Run(async () =>
    {
        // asyncio: Task.cancel() finds its waiter's cancel() refused (the gather cannot cancel a done
        // child) and sets _must_cancel: the coroutine gets CancelledError when it resumes.
        var loop = Aio.GetRunningLoop();
        var f = loop.CreateFuture<int>();
        var log = new List<string>();
        var t = Aio.CreateTask(async () =>
        {
            try
            {
                await Aio.Gather(f);
                log.Add("returned");
            }
            catch (CancelledError) { log.Add("cancelled"); throw; }
        });
        await Aio.Sleep(1);
        f.SetResult(1);
        Assert.True(t.Cancel());
        await Record.ExceptionAsync(async () => await t);
        Assert.Equal(["cancelled"], log);
        Assert.True(t.IsCancelled);
    });

    [Fact]
    public void Gather_AwaitingTaskCancelledAndAChildFailsInCleanup_TaskSeesTheChildsError() => AioTest.Run(async () =>
    {
        // asyncio: task.cancel() is forwarded to the gather (which accepts), so the task gets whatever the
        // gather ends with: here the first child's cleanup error, not CancelledError.
        var a = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { throw new FormatException("cleanup"); }
        });
        var b = Aio.CreateTask(async () => await Aio.Sleep(10));
        Exception? seen = null;
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Gather(a, b); }
            catch (Exception e) { seen = e; }
        });
        await Aio.Sleep(1);
        t.Cancel();
        await t;
        Assert.IsType<FormatException>(seen);
        await Record.ExceptionAsync(async () => await a);
        await Record.ExceptionAsync(async () => await b);
    });

    [Fact]
    public void Gather_EmptyUntypedAndTyped_AreDoneAtOnce() => AioTest.Run(async () =>
    {
        var u = Aio.Gather(Array.Empty<Future>());
        var t = Aio.Gather(Array.Empty<Future<int>>());
        Assert.True(u.IsDone);
        Assert.True(t.IsDone);
        Assert.Empty(await t);
        await u;
        var o = Aio.GatherOutcomes(Array.Empty<Future<int>>());
        Assert.True(o.IsDone);
        Assert.Empty(await o);
    });

    [Fact]
    public void Gather_OfAGather_CancellingTheOuterCancelsTheInnersChildren() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        var b = SleepTask(10, 2);
        var c = SleepTask(10, 3);
        var inner = Aio.Gather(a, b);
        var outer = Aio.Gather<int[]>(inner, Aio.Gather(c));
        await Aio.Sleep(1);
        Assert.True(outer.Cancel());
        await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.True(a.IsCancelled);
        Assert.True(b.IsCancelled);
        Assert.True(c.IsCancelled);
    });

    [Fact]
    public void Gather_AfterItFailed_CancelReturnsFalseAndLeavesTheOthersRunning() => AioTest.Run(async () =>
    {
        var slow = SleepTask(10, 1);
        var bad = Aio.CreateTask(() => FailAfter(1, "boom"));
        var g = Aio.Gather(slow, bad);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await g);
        Assert.False(g.Cancel());
        Assert.False(slow.IsCancelled);
        Assert.Equal(1, await slow);
    });

    [Fact]
    public void Gather_CancelTwice_SecondAlsoAcceptedWhileChildrenClean() => AioTest.Run(async () =>
    {
        // asyncio: Task.cancel() on a pending task returns True every time, so the gather's second cancel()
        // returns True too.
        var a = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { await Aio.Sleep(1); throw; }
        });
        var g = Aio.Gather(a);
        await Aio.Sleep(1);
        Assert.True(g.Cancel());
        await Aio.Sleep(0);
        Assert.True(g.Cancel());
        await Assert.ThrowsAsync<CancelledError>(async () => await g);
    });

    [Fact]
    public void GatherOutcomes_ChildFailsAndChildCancelled_WaitsForAllAndOrdersThem() => AioTest.Run(async () =>
    {
        var a = Aio.CreateTask(() => FailAfter(1, "a"));
        var b = SleepTask(3, 2);
        var c = SleepTask(10, 3);
        var g = Aio.GatherOutcomes([a, b, c]);
        await Aio.Sleep(2);
        c.Cancel("c");
        double t0 = Now;
        var r = await g;
        Assert.Equal(1, Now - t0, 6);
        Assert.IsType<InvalidOperationException>(r[0].Exception);
        Assert.Equal(2, r[1].Value);
        Assert.True(r[2].IsCancelled);
        Assert.False(g.IsCancelled);
    });

    // =====================================================================
    // Wait
    // =====================================================================

    [Fact]
    public void Wait_TimeoutZero_ReturnsDoneAndPendingAtOnce() => AioTest.Run(async () =>
    {
        var d = Done(1);
        var p = SleepTask(5, 2);
        double t0 = Now;
        var (done, pending) = await Aio.Wait(new Future[] { d, p }, timeout: 0);
        Assert.Equal(0, Now - t0, 6);
        Assert.Equal([d], done);
        Assert.Equal([p], pending);
        Assert.False(p.IsCancelled);
        Assert.Equal(2, await p);
    });

    [Fact]
    public void Wait_NegativeTimeout_BehavesAsZero() => AioTest.Run(async () =>
    {
        // asyncio: loop.call_later(-1, ...) runs as soon as possible.
        var p = SleepTask(5, 2);
        var (done, pending) = await Aio.Wait([p], timeout: -1);
        Assert.Empty(done);
        Assert.Equal([p], pending);
        Assert.Equal(2, await p);
    });

    [Fact]
    public void Wait_FirstException_AChildAlreadyFailed_ReturnsAtOnce() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.SetException(new FormatException());
        var p = SleepTask(5, 2);
        double t0 = Now;
        var (done, pending) = await Aio.Wait(new Future[] { f, p }, returnWhen: ReturnWhen.FirstException);
        Assert.Equal(0, Now - t0, 6);
        Assert.Equal([f], done);
        Assert.Equal([p], pending);
        Assert.IsType<FormatException>(f.GetException());
        await p;
    });

    [Fact]
    public void Wait_FirstCompleted_AChildAlreadyDone_ReturnsAtOnce() => AioTest.Run(async () =>
    {
        var d = Done(1);
        var p = SleepTask(5, 2);
        double t0 = Now;
        var (done, pending) = await Aio.Wait(new Future[] { p, d }, returnWhen: ReturnWhen.FirstCompleted);
        Assert.Equal(0, Now - t0, 6);
        Assert.Equal([d], done);
        Assert.Equal([p], pending);
        await p;
    });

    [Fact]
    public void Wait_LazyEnumerable_IsAccepted() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var b = SleepTask(2, 2);
        IEnumerable<AioTask<int>> Lazy() { yield return a; yield return b; }
        var (done, pending) = await Aio.Wait(Lazy());
        Assert.Equal(2, done.Count);
        Assert.Empty(pending);
    });

    [Fact]
    public void Wait_EmptyLazyEnumerable_Throws() => AioTest.Run(() =>
    {
        // asyncio: ValueError('Set of Tasks/Futures is empty.') for any empty iterable.
        IEnumerable<Future> Lazy() { yield break; }
        Assert.Throws<ArgumentException>(() => { Aio.Wait(Lazy()); });
        return Task.CompletedTask;
    });

    [Fact]
    public void Wait_FirstExceptionAndTimeout_TimeoutFirst_NothingCancelled() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var b = Aio.CreateTask(() => FailAfter(5, "late"));
        double t0 = Now;
        var (done, pending) = await Aio.Wait(new Future[] { a, b }, timeout: 2, returnWhen: ReturnWhen.FirstException);
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal([a], done);
        Assert.Equal([b], pending);
        Assert.False(b.IsCancelled);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await b);
    });

    [Fact]
    public void Wait_AllCompleted_EndsWhenTheLastIsDoneNotAtTheTimeout() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var b = SleepTask(2, 2);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([a, b], timeout: 10);
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal(2, done.Count);
        Assert.Empty(pending);
        await Aio.Sleep(20); // the timeout's handle must not fire anything afterwards
    });

    // =====================================================================
    // AsCompleted
    // =====================================================================

    [Fact]
    public void AsCompleted_Timeout_ThoseFinishedBeforeItAreStillYieldedThenTimeout() => AioTest.Run(async () =>
    {
        var tasks = new[] { SleepTask(2, 2), SleepTask(1, 1), SleepTask(10, 10) };
        var it = Aio.AsCompleted(tasks, timeout: 3);
        await Aio.Sleep(5);   // the consumer is late: the timeout has expired
        var results = new List<object>();
        foreach (var next in it)
        {
            try { results.Add(await next); }
            catch (TimeoutException) { results.Add("timeout"); }
        }
        Assert.Equal([1, 2, "timeout"], results);
        Assert.False(tasks[2].IsCancelled);
        Assert.Equal(10, await tasks[2]);
    });

    [Fact]
    public void AsCompletedAsync_Timeout_RemainingAreNotCancelled() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var b = SleepTask(10, 2);
        var got = new List<AioTask<int>>();
        await Assert.ThrowsAsync<TimeoutException>(async () =>
        {
            await foreach (var t in Aio.AsCompletedAsync(new[] { a, b }, timeout: 2)) got.Add(t);
        });
        Assert.Equal([a], got);
        Assert.False(b.IsCancelled);
        Assert.Equal(2, await b);
    });

    [Fact]
    public void AsCompleted_DoneFuturesWithZeroTimeout_YieldsAllWithoutTimeout() => AioTest.Run(async () =>
    {
        // asyncio: the done callbacks of finished futures are queued before the call_later(0) timer
        // reaches the ready queue, so every one is delivered and the timeout handle is cancelled.
        var results = new List<int>();
        foreach (var next in Aio.AsCompleted(new[] { Done(1), Done(2) }, timeout: 0))
            results.Add(await next);
        results.Sort();
        Assert.Equal([1, 2], results);
    });

    [Fact]
    public void AsCompletedAsync_DoneFuturesWithZeroTimeout_YieldsAll() => AioTest.Run(async () =>
    {
        var a = Done(1);
        var b = Done(2);
        var got = new List<Future<int>>();
        await foreach (var f in Aio.AsCompletedAsync(new[] { a, b }, timeout: 0)) got.Add(f);
        Assert.Equal(2, got.Count);
    });

    [Fact]
    public void AsCompleted_CancelledChild_ItsAwaitableRaisesCancelledError() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        var b = SleepTask(2, 2);
        var it = Aio.AsCompleted(new[] { a, b }).GetEnumerator();
        Assert.True(it.MoveNext());
        var first = it.Current;
        await Aio.Sleep(1);
        a.Cancel("no");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await first);
        Assert.Equal("no", e.CancelMessage);
        Assert.True(it.MoveNext());
        Assert.Equal(2, await it.Current);
        Assert.False(it.MoveNext());
    });

    [Fact]
    public void AsCompleted_NegativeTimeout_RemainingRaiseTimeout() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var results = new List<object>();
        foreach (var next in Aio.AsCompleted(new[] { a }, timeout: -1))
        {
            try { results.Add(await next); }
            catch (TimeoutException) { results.Add("timeout"); }
        }
        Assert.Equal(["timeout"], results);
        Assert.Equal(1, await a);
    });

    // =====================================================================
    // TaskGroup
    // =====================================================================

    [Fact]
    public void TaskGroup_OuterChildFailsWhileTheBodyIsInAnInnerGroup_InnerIsCancelledOuterRaisesOnlyTheChildsError() => AioTest.Run(async () =>
    {
        AioTask? innerChild = null;
        bool innerBodyCancelled = false;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async outer =>
        {
            _ = outer.CreateTask(() => FailAfter(1, "outer child"));
            await TaskGroup.Run(async inner =>
            {
                innerChild = inner.CreateTask(async () => await Aio.Sleep(10));
                try { await Aio.Sleep(10); }
                catch (CancelledError) { innerBodyCancelled = true; throw; }
            });
        }));
        var only = Assert.Single(eg.Exceptions);
        Assert.Equal("outer child", only.Message);
        Assert.True(innerBodyCancelled);
        Assert.True(innerChild!.IsCancelled);
    });

    [Fact]
    public void TaskGroup_NestedGroupsCancelledFromOutside_CancelledErrorPropagatesThroughBoth() => AioTest.Run(async () =>
    {
        AioTask? a = null, b = null;
        var log = new List<string>();
        var t = Aio.CreateTask(async () =>
        {
            try
            {
                await TaskGroup.Run(async outer =>
                {
                    a = outer.CreateTask(async () => await Aio.Sleep(10));
                    try
                    {
                        await TaskGroup.Run(async inner =>
                        {
                            b = inner.CreateTask(async () => await Aio.Sleep(10));
                            await Aio.Sleep(10);
                        });
                    }
                    catch (CancelledError) { log.Add("inner group raised CancelledError"); throw; }
                });
            }
            catch (CancelledError) { log.Add("outer group raised CancelledError"); throw; }
        });
        await Aio.Sleep(1);
        t.Cancel("stop");
        await Record.ExceptionAsync(async () => await t);
        Assert.True(t.IsCancelled);
        Assert.True(a!.IsCancelled);
        Assert.True(b!.IsCancelled);
        Assert.Equal(["inner group raised CancelledError", "outer group raised CancelledError"], log);
    });

    [Fact]
    public void TaskGroup_CancelledFromOutsideWithAMessage_TheCancelledErrorCarriesIt() => AioTest.Run(async () =>
    {
        CancelledError? seen = null;
        var t = Aio.CreateTask(async () =>
        {
            try
            {
                await TaskGroup.Run(async tg =>
                {
                    _ = tg.CreateTask(async () => await Aio.Sleep(10));
                    await Aio.Sleep(10);
                });
            }
            catch (CancelledError e) { seen = e; throw; }
        });
        await Aio.Sleep(1);
        t.Cancel("why");
        await Record.ExceptionAsync(async () => await t);
        Assert.Equal("why", seen!.CancelMessage);
    });

    [Fact]
    public void TaskGroup_CancelledFromOutsideAfterTheBodyEnded_ChildSwallows_StillRaisesCancelledError() => AioTest.Run(async () =>
    {
        bool childFinished = false;
        var t = Aio.CreateTask(async () =>
        {
            await TaskGroup.Run(tg =>
            {
                tg.CreateTask(async () =>
                {
                    try { await Aio.Sleep(10); }
                    catch (CancelledError) { }
                    await Aio.Sleep(1);
                    childFinished = true;
                });
            });
            return "not cancelled";
        });
        await Aio.Sleep(1);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.True(childFinished);
        Assert.True(t.IsCancelled);
    });

    [Fact]
    public void TaskGroup_BodyThrowsBeforeItsFirstAwait_ChildIsCancelledBeforeItRunsAndTheErrorIsGrouped() => AioTest.Run(async () =>
    {
        bool childRan = false;
        AioTask? child = null;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            child = tg.CreateTask(async () => { childRan = true; await Aio.Sleep(1); });
            if (child != null) throw new FormatException("body");
            await Aio.Sleep(1);
        }));
        Assert.IsType<FormatException>(Assert.Single(eg.Exceptions));
        Assert.False(childRan);
        Assert.True(child!.IsCancelled);
    });

    [Fact]
    public void TaskGroup_BodyAwaitsTheChildThatFails_TheGroupHoldsTheErrorOnce() => AioTest.Run(async () =>
    {
        // asyncio: the group's done callback (added first) cancels the body before the body's wake-up runs;
        // the waiter is done, so the task gets _must_cancel and the body raises CancelledError, not the
        // child's error. The group then holds the child's error once.
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            var c = tg.CreateTask(() => FailAfter(1, "child"));
            await c;
        }));
        var only = Assert.Single(eg.Exceptions);
        Assert.Equal("child", only.Message);
    });

    [Fact]
    public void TaskGroup_BodyAwaitsAFailingChild_TheAwaitRaisesCancelledErrorNotTheChildsError() => AioTest.Run(async () =>
    {
        // asyncio: _on_task_done (the group's callback, added first) cancels the parent task while its waiter
        // (the child) is already done: _must_cancel, so the await raises CancelledError.
        var log = new List<string>();
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            var c = tg.CreateTask(() => FailAfter(1, "child"));
            try { await c; log.Add("returned"); }
            catch (InvalidOperationException) { log.Add("child error"); }
            catch (CancelledError) { log.Add("cancelled"); throw; }
        }));
        Assert.Single(eg.Exceptions);
        Assert.Equal(["cancelled"], log);
    });

    [Fact]
    public void TaskGroup_SiblingCreatesATaskAfterTheGroupAborted_IsRefused() => AioTest.Run(async () =>
    {
        InvalidOperationException? refused = null;
        await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(tg =>
        {
            tg.CreateTask(() => FailAfter(1, "boom"));
            tg.CreateTask(async () =>
            {
                try { await Aio.Sleep(10); }
                catch (CancelledError)
                {
                    refused = Record.Exception(() => { tg.CreateTask(() => Task.CompletedTask); }) as InvalidOperationException;
                    throw;
                }
            });
        }));
        Assert.NotNull(refused);
    });

    [Fact]
    public void TaskGroup_BodyFailsWithNoChildren_OneGroupWithTheBodysError() => AioTest.Run(async () =>
    {
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            await Aio.Sleep(1);
            throw new FormatException("body");
        }));
        Assert.Equal("body", Assert.Single(eg.Exceptions).Message);
    });

    [Fact]
    public void TaskGroup_CancelledTwiceWhileChildrenCleanUp_WaitsForEveryChild() => AioTest.Run(async () =>
    {
        bool cleaned = false;
        double exitedAt = -1;
        var t = Aio.CreateTask(async () =>
        {
            try
            {
                await TaskGroup.Run(tg =>
                {
                    tg.CreateTask(async () =>
                    {
                        try { await Aio.Sleep(10); }
                        catch (CancelledError)
                        {
                            try { await Aio.Sleep(3); }
                            catch (CancelledError) { }
                            // cleanup continues despite a second cancel
                            await Aio.Sleep(0);
                            cleaned = true;
                            throw;
                        }
                    });
                });
            }
            finally { exitedAt = Now; }
        });
        double t0 = Now;
        await Aio.Sleep(1);
        t.Cancel();
        await Aio.Sleep(1);
        t.Cancel();
        await Record.ExceptionAsync(async () => await t);
        Assert.True(cleaned);
        Assert.True(t.IsCancelled);
        Assert.True(exitedAt - t0 >= 2 - 1e-9, $"exited at {exitedAt - t0}");
    });

    [Fact]
    public void TaskGroup_ChildCancelledOnItsOwnWhileASiblingRuns_SiblingIsNotCancelled() => AioTest.Run(async () =>
    {
        AioTask<int>? sib = null;
        await TaskGroup.Run(async tg =>
        {
            var c = tg.CreateTask(() => After(10, 1));
            sib = tg.CreateTask(() => After(3, 2));
            await Aio.Sleep(1);
            c.Cancel();
        });
        Assert.False(sib!.IsCancelled);
        Assert.Equal(2, sib.Result);
    });

    [Fact]
    public void TaskGroup_ChildFailsWithAnExceptionGroup_ItIsNestedNotFlattened() => AioTest.Run(async () =>
    {
        var inner = new ExceptionGroup("inner", [new FormatException("a")]);
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(tg =>
        {
            tg.CreateTask(async () => { await Aio.Sleep(1); throw inner; });
        }));
        Assert.Same(inner, Assert.Single(eg.Exceptions));
    });

    // =====================================================================
    // Batch 2
    // =====================================================================

    [Fact]
    public void Gather_OverWatchLimitCompletedTasksWithADuplicate_ReturnsEveryResult() => AioTest.RunReal(async () =>
    {
        var tasks = Enumerable.Range(0, 65).Select(Task.FromResult).ToArray();
        var withDup = tasks.Append(tasks[3]).ToArray();
        var gather = Aio.Gather(withDup);
        var winner = await Aio.Wait(new Future[] { gather, Aio.CreateTask(async () => await Aio.Sleep(5)) }, returnWhen: ReturnWhen.FirstCompleted);
        Assert.Contains(gather, winner.Done);
        var r = await gather;
        Assert.Equal(66, r.Length);
        Assert.Equal(3, r[65]);
    });

    [Fact]
    public void Wait_OverWatchLimitCompletedTasksWithADuplicate_Returns() => AioTest.RunReal(async () =>
    {
        var tasks = Enumerable.Range(0, 65).Select(i => (Task)Task.FromResult(i)).ToArray();
        var withDup = tasks.Append(tasks[3]).ToArray();
        var wait = Aio.Wait(withDup);
        var guard = Aio.CreateTask(async () => await Aio.Sleep(5));
        var winner = await Aio.Wait(new Future[] { wait, guard }, returnWhen: ReturnWhen.FirstCompleted);
        guard.Cancel();
        Assert.Contains(wait, winner.Done);
        var (done, pending) = await wait;
        Assert.Equal(65, done.Count);
        Assert.Empty(pending);
    });

    [Fact]
    public void Gather_AlreadyCancelledFuture_FailsWithCancelledErrorAndTheOtherRunsOn() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.Cancel("gone");
        var t = SleepTask(2, 2);
        var g = Aio.Gather(f, t);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await g);
        Assert.Equal("gone", e.CancelMessage);
        Assert.False(g.IsCancelled);
        Assert.False(t.IsCancelled);
        Assert.Equal(2, await t);
    });

    [Fact]
    public void GatherOutcomes_AlreadyCancelledFuture_RecordedWithItsMessage() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.Cancel("gone");
        var r = await Aio.GatherOutcomes(new[] { f, Done(5) });
        Assert.True(r[0].IsCancelled);
        Assert.Equal("gone", ((CancelledError)r[0].Exception!).CancelMessage);
        Assert.Equal(5, r[1].Value);
    });

    [Fact]
    public void Wait_FirstCompleted_ACancelledChildCountsAsDone() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        var b = SleepTask(10, 2);
        var w = Aio.Wait([a, b], returnWhen: ReturnWhen.FirstCompleted);
        await Aio.Sleep(1);
        a.Cancel();
        var (done, pending) = await w;
        Assert.Equal([a], done);
        Assert.Equal([b], pending);
        b.Cancel();
    });

    [Fact]
    public void TaskGroup_ChildFailsWhileTheBodyIsInsideATimeout_NoTimeoutError() => AioTest.Run(async () =>
    {
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(() => FailAfter(1, "child"));
            await Aio.Timeout(100, async () => await Aio.Sleep(10));
        }));
        var only = Assert.Single(eg.Exceptions);
        Assert.IsType<InvalidOperationException>(only);
    });

    [Fact]
    public void TaskGroup_SynchronousActionBodyThrows_ChildCancelledErrorGrouped() => AioTest.Run(async () =>
    {
        AioTask? child = null;
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run((TaskGroup tg) =>
        {
            child = tg.CreateTask(async () => await Aio.Sleep(1));
            throw new FormatException("sync");
        }));
        Assert.IsType<FormatException>(Assert.Single(eg.Exceptions));
        Assert.True(child!.IsCancelled);
    });

    [Fact]
    public void TaskGroup_NonAsyncFuncBodyThrows_ChildCancelledErrorGrouped() => AioTest.Run(async () =>
    {
        AioTask? child = null;
        Func<TaskGroup, Task> body = tg =>
        {
            child = tg.CreateTask(async () => await Aio.Sleep(1));
            throw new FormatException("sync");
        };
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(body));
        Assert.IsType<FormatException>(Assert.Single(eg.Exceptions));
        Assert.True(child!.IsCancelled);
    });

    [Fact]
    public void TaskGroup_OuterChildFailsAndInnerChildFailsInCleanup_OuterGroupHoldsBothInOrder() => AioTest.Run(async () =>
    {
        var eg = await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async outer =>
        {
            _ = outer.CreateTask(() => FailAfter(1, "outer child"));
            await TaskGroup.Run(inner =>
            {
                inner.CreateTask(async () =>
                {
                    try { await Aio.Sleep(10); }
                    finally { throw new FormatException("inner cleanup"); }
                });
            });
        }));
        Assert.Equal(2, eg.Exceptions.Count);
        Assert.Equal("outer child", eg.Exceptions[0].Message);
        var innerEg = Assert.IsType<ExceptionGroup>(eg.Exceptions[1]);
        Assert.Equal("inner cleanup", Assert.Single(innerEg.Exceptions).Message);
    });

    [Fact]
    public void TaskGroup_GroupAbortedByChild_CallerTaskNotCancelledAfterwards_Nested() => AioTest.Run(async () =>
    {
        // After an inner group's abort, the outer body catches the ExceptionGroup and goes on: nothing of
        // the inner abort leaks (asyncio uncancels the parent it cancelled).
        var log = new List<string>();
        await TaskGroup.Run(async outer =>
        {
            try
            {
                await TaskGroup.Run(async inner =>
                {
                    _ = inner.CreateTask(() => FailAfter(1, "x"));
                    await Aio.Sleep(10);
                });
            }
            catch (ExceptionGroup) { log.Add("caught"); }
            await Aio.Sleep(1);
            log.Add("slept");
        });
        Assert.Equal(["caught", "slept"], log);
    });

    [Fact]
    public void Gather_AwaitingTaskCancelledTwice_ChildrenCleanUpAndTaskEndsCancelled() => AioTest.Run(async () =>
    {
        bool cleaned = false;
        var a = Aio.CreateTask(async () =>
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError)
            {
                try { await Aio.Sleep(2); } catch (CancelledError) { }
                cleaned = true;
                throw;
            }
        });
        var t = Aio.CreateTask(async () => { await Aio.Gather(a); });
        await Aio.Sleep(1);
        t.Cancel();
        await Aio.Sleep(1);
        t.Cancel();
        await Record.ExceptionAsync(async () => await t);
        Assert.True(t.IsCancelled);
        Assert.True(a.IsCancelled);
        Assert.True(cleaned);
    });

    [Fact]
    public void AsCompleted_AllDoneBeforeTheTimeout_TimerDoesNotFireLater() => AioTest.Run(async () =>
    {
        var tasks = new[] { SleepTask(1, 1), SleepTask(2, 2) };
        var results = new List<int>();
        foreach (var next in Aio.AsCompleted(tasks, timeout: 3))
            results.Add(await next);
        await Aio.Sleep(5);
        Assert.Equal([1, 2], results);
    });

    [Fact]
    public void AsCompletedAsync_BreakEarly_RemainingKeepRunningUncancelled() => AioTest.Run(async () =>
    {
        var a = SleepTask(1, 1);
        var b = SleepTask(2, 2);
        await foreach (var t in Aio.AsCompletedAsync(new[] { a, b }))
            break;
        Assert.False(b.IsCancelled);
        Assert.Equal(2, await b);
    });

    // =====================================================================
    // Batch 3
    // =====================================================================

    static async Coroutine<int> CoAfter(double seconds, int value)
    {
        await Aio.Sleep(seconds);
        return value;
    }

    [Fact]
    public void Gather_SameCoroutineTwice_ItsResultAppearsTwice() => AioTest.Run(async () =>
    {
        var c = CoAfter(1, 7);
        var d = CoAfter(2, 8);
        var r = await Aio.Gather(c, d, c);
        Assert.Equal(new[] { 7, 8, 7 }, r);
    });

    [Fact]
    public void Wait_SameCoroutineTwiceFirstCompleted_ThenGatherOfIt_Works() => AioTest.Run(async () =>
    {
        var c = CoAfter(1, 7);
        var d = CoAfter(3, 8);
        var (done, pending) = await Aio.Wait(new[] { c, c, d }, returnWhen: ReturnWhen.FirstCompleted);
        Assert.Equal([c], done);
        Assert.Equal([d], pending);
        Assert.Equal(new[] { 8 }, await Aio.Gather(d));
    });

    [Fact]
    public void Gather_AwaitingTaskCancelledWithAMessage_ChildrenGetTheMessage() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        CancelledError? seen = null;
        var t = Aio.CreateTask(async () =>
        {
            try { await Aio.Gather(a); }
            catch (CancelledError e) { seen = e; throw; }
        });
        await Aio.Sleep(1);
        t.Cancel("why");
        await Record.ExceptionAsync(async () => await t);
        Assert.True(a.IsCancelled);
        var childErr = await Assert.ThrowsAsync<CancelledError>(async () => await a);
        Assert.Equal("why", childErr.CancelMessage);
        Assert.Equal("why", seen!.CancelMessage);
    });

    [Fact]
    public void TaskGroup_AfterAbortByAChild_TasksCancellingIsBackToZero() => AioTest.Run(async () =>
    {
        int cancelling = -1;
        var t = Aio.CreateTask(async () =>
        {
            try
            {
                await TaskGroup.Run(async tg =>
                {
                    _ = tg.CreateTask(() => FailAfter(1, "x"));
                    await Aio.Sleep(10);
                });
            }
            catch (ExceptionGroup) { }
            cancelling = Aio.CurrentTask!.Cancelling();
        });
        await t;
        Assert.Equal(0, cancelling);
    });

    [Fact]
    public void TaskGroup_CancelledFromOutside_TasksCancellingStaysOne() => AioTest.Run(async () =>
    {
        int cancelling = -1;
        var t = Aio.CreateTask(async () =>
        {
            try
            {
                await TaskGroup.Run(async tg =>
                {
                    _ = tg.CreateTask(async () => await Aio.Sleep(10));
                    await Aio.Sleep(10);
                });
            }
            catch (CancelledError) { cancelling = Aio.CurrentTask!.Cancelling(); }
        });
        await Aio.Sleep(1);
        t.Cancel();
        await t;
        Assert.Equal(1, cancelling);
    });

    [Fact]
    public void TaskGroup_BodyRaisesCancelledErrorItself_ChildrenCancelledAndCancelledErrorPropagates() => AioTest.Run(async () =>
    {
        AioTask? child = null;
        await Assert.ThrowsAsync<CancelledError>(() => TaskGroup.Run(async tg =>
        {
            child = tg.CreateTask(async () => await Aio.Sleep(10));
            await Aio.Sleep(1);
            throw new CancelledError("self");
        }));
        Assert.True(child!.IsCancelled);
    });

    [Fact]
    public void TaskGroup_EagerChildFailsAtOnce_ASecondCreateTaskInTheSameStepIsAcceptedThenCancelled() => AioTest.Run(async () =>
    {
        // gh-128550: the group learns of the eager failure through a scheduled callback, so it is not yet
        // shutting down when the body creates the next task.
        AioTask? second = null;
        Exception? refused = null;
        await Assert.ThrowsAsync<ExceptionGroup>(() => TaskGroup.Run(async tg =>
        {
            _ = tg.CreateTask(() => throw new InvalidOperationException("eager"));
            refused = Record.Exception(() => { second = tg.CreateTask(async () => await Aio.Sleep(10)); });
            await Aio.Sleep(10);
        }));
        Assert.Null(refused);
        Assert.True(second!.IsCancelled);
    }, new LoopOptions { VirtualTime = true, EagerTasks = true });

    [Fact]
    public void Timeout_AroundGather_ExpiryCancelsTheChildrenAndRaisesTimeout() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        var b = SleepTask(10, 2);
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () => { await Aio.Gather(a, b); }));
        Assert.Equal(1, Now - t0, 6);
        Assert.True(a.IsCancelled);
        Assert.True(b.IsCancelled);
    });

    [Fact]
    public void WaitFor_Gather_ExpiryCancelsTheChildrenAndRaisesTimeout() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        var b = SleepTask(10, 2);
        var g = Aio.Gather(a, b);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(g, 1));
        Assert.True(a.IsCancelled);
        Assert.True(b.IsCancelled);
    });

    [Fact]
    public void Timeout_AroundWait_ExpiryRaisesTimeoutAndChildrenRunOn() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () => { await Aio.Wait([a]); }));
        Assert.False(a.IsCancelled);
        Assert.Equal(1, await a);
    });

    [Fact]
    public void Timeout_AroundAsCompletedAsync_ExpiryRaisesTimeoutAndChildrenRunOn() => AioTest.Run(async () =>
    {
        var a = SleepTask(10, 1);
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, async () =>
        {
            await foreach (var _ in Aio.AsCompletedAsync(new[] { a })) { }
        }));
        Assert.False(a.IsCancelled);
        Assert.Equal(1, await a);
    });

    [Fact]
    [Trait("asyncio", "differs (docs/differences.md): as_completed's awaitables take results in the order they are awaited; ours are bound in the order they are enumerated")]
    public void AsCompleted_FuturesAwaitedInReverseOrder_EachHoldsTheResultOfItsEnumerationPosition() => AioTest.Run(async () =>
    {
        var tasks = new[] { SleepTask(3, 3), SleepTask(1, 1), SleepTask(2, 2) };
        var all = Aio.AsCompleted(tasks).ToList();
        var got = new List<int>();
        for (int i = all.Count - 1; i >= 0; i--) got.Add(await all[i]);
        Assert.Equal([3, 2, 1], got);   // the first enumerated holds the first to finish (1), awaited last
    });
}
