using System.Reflection;
using System.Runtime.CompilerServices;

namespace Asyncio.Tests.Tasks;

/// <summary>
/// The lean <see cref="Coroutine"/> / <see cref="Coroutine{T}"/> return types (<c>async Coroutine</c> methods):
/// they start at once like any async method, await and rethrow like a Task, resume nested coroutines of the
/// same task without a loop iteration, and resume awaiters elsewhere in their own task or thread; they run as
/// tasks, in gathers, as Tasks and ValueTasks, off the loop, and cost less memory than an <c>async Task</c>.
/// </summary>
public class CoroutineTests
{
    static double Now => Aio.GetRunningLoop().Time();

    static async Coroutine<T> After<T>(double seconds, T value)
    {
        await Aio.Sleep(seconds);
        return value;
    }

    static async Coroutine SleepOnly(double seconds) => await Aio.Sleep(seconds);

    static async Coroutine<int> FailAfter(double seconds, Exception exception)
    {
        await Aio.Sleep(seconds);
        throw exception;
    }

    static async Coroutine FailVoidAfter(double seconds, Exception exception)
    {
        await Aio.Sleep(seconds);
        throw exception;
    }

#pragma warning disable CS1998 // these coroutines never suspend, on purpose
    static async Coroutine<int> ReturnsAtOnce(int value) => value;

    static async Coroutine<int> ThrowsAtOnce(Exception exception) => throw exception;

    static async Coroutine ThrowsAtOnceVoid(Exception exception) => throw exception;
#pragma warning restore CS1998

    /// <summary>A coroutine that ends on a thread-pool thread (its await does not come back to the loop).</summary>
    static async Coroutine<int> EndsOnThePool()
    {
        await Task.Delay(1).ConfigureAwait(false);
        return Environment.CurrentManagedThreadId;
    }

    static readonly AsyncLocal<string?> s_local = new();

    // ---- starting ----

    [Fact]
    public void Call_CoroutineMethod_RunsSynchronouslyUpToItsFirstSuspension() => AioTest.Run(async () =>
    {
        int step = 0;
        async Coroutine Steps()
        {
            step = 1;
            await Aio.Sleep(1);
            step = 2;
        }
        var c = Steps();
        Assert.Equal(1, step);
        Assert.False(c.IsCompleted);
        await c;
        Assert.Equal(2, step);
        Assert.True(c.IsCompletedSuccessfully);
    });

    [Fact]
    public void Call_CoroutineThatNeverSuspends_ReturnsACompletedCoroutine() => AioTest.Run(async () =>
    {
        int calls = 0;
#pragma warning disable CS1998
        async Coroutine Counts() => calls++;
#pragma warning restore CS1998
        var c = Counts();
        Assert.Equal(1, calls);
        Assert.True(c.IsCompleted);
        Assert.True(c.IsCompletedSuccessfully);
        Assert.False(c.IsFaulted || c.IsCancelled);
        Assert.Null(c.GetException());

        var typed = ReturnsAtOnce(7);
        Assert.True(typed.IsCompletedSuccessfully);
        Assert.Equal(7, typed.Result);
        Assert.Equal(7, await typed);
    });

    [Fact]
    public void Result_PendingCoroutine_ThrowsInvalidOperationException() => AioTest.Run(async () =>
    {
        var c = After(1, 3);
        Assert.Throws<InvalidOperationException>(() => c.Result);
        Assert.Equal(3, await c);
        Assert.Equal(3, c.Result);
    });

    // ---- awaiting ----

    [Fact]
    public void Await_CoroutineWithSleeps_ReturnsItsResultAfterExactlyTheirTime() => AioTest.Run(async () =>
    {
        async Coroutine<string> TwoSleeps()
        {
            await Aio.Sleep(1);
            await Aio.Sleep(2);
            return "done";
        }
        double t0 = Now;
        Assert.Equal("done", await TwoSleeps());
        Assert.Equal(3, Now - t0, 6);
    });

    [Fact]
    public void Await_CoroutineFailsAfterAnAwait_RethrowsTheSameExceptionAndIsFaulted() => AioTest.Run(async () =>
    {
        var error = new InvalidOperationException("boom");
        var c = FailAfter(1, error);
        var caught = await Assert.ThrowsAsync<InvalidOperationException>(async () => await c);
        Assert.Same(error, caught);
        Assert.True(c.IsCompleted);
        Assert.True(c.IsFaulted);
        Assert.False(c.IsCancelled);
        Assert.False(c.IsCompletedSuccessfully);
        Assert.Same(error, c.GetException());
        Assert.Same(error, Assert.Throws<InvalidOperationException>(() => c.Result));

        var untyped = FailVoidAfter(1, error);
        Assert.Same(error, await Assert.ThrowsAsync<InvalidOperationException>(async () => await untyped));
        Assert.True(untyped.IsFaulted);
    });

    [Fact]
    public void Call_CoroutineThrowsBeforeAnyAwait_ReturnsAFaultedCoroutineInsteadOfThrowing() => AioTest.Run(async () =>
    {
        var error = new FormatException("at once");
        Coroutine<int>? c = null;
        Coroutine? untyped = null;
        var thrownAtCall = Record.Exception(() =>
        {
            c = ThrowsAtOnce(error);
            untyped = ThrowsAtOnceVoid(error);
        });
        Assert.Null(thrownAtCall);
        Assert.True(c!.IsFaulted);
        Assert.True(untyped!.IsFaulted);
        Assert.Same(error, c.GetException());
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(async () => await c));
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(async () => await untyped));
    });

    [Theory]
    [InlineData(true)]  // a CancelledError
    [InlineData(false)] // a plain OperationCanceledException
    public void Await_CoroutineEndsWithACancellationException_IsCancelledNotFaulted(bool cancelledError) => AioTest.Run(async () =>
    {
        OperationCanceledException error = cancelledError ? new CancelledError("own") : new OperationCanceledException("own");
        async Coroutine EndsCancelled()
        {
            await Aio.Sleep(1);
            throw error;
        }
        var c = EndsCancelled();
        var caught = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await c);
        Assert.Same(error, caught);
        Assert.True(c.IsCompleted);
        Assert.True(c.IsCancelled);
        Assert.False(c.IsFaulted);
        Assert.False(c.IsCompletedSuccessfully);
        Assert.Same(error, c.GetException());
        Assert.False(Aio.CurrentTask!.IsCancelled);
    });

    [Fact]
    public void Await_SameCoroutineSeveralTimes_EachAwaitGetsItsResult() => AioTest.Run(async () =>
    {
        var c = After(1, 5);
        Assert.Equal(5, await c);
        Assert.Equal(5, await c);
        Assert.Equal(5, await c);

        var error = new InvalidOperationException("again");
        var bad = FailAfter(1, error);
        Assert.Same(error, await Assert.ThrowsAsync<InvalidOperationException>(async () => await bad));
        Assert.Same(error, await Assert.ThrowsAsync<InvalidOperationException>(async () => await bad));
    });

    [Fact]
    public void Await_PendingCoroutineFromSeveralTasks_AllGetTheResult() => AioTest.Run(async () =>
    {
        static async Coroutine<int> AwaitIt(Coroutine<int> c) => await c;
        var shared = After(2, 9);
        var viaTaskMethod = Aio.CreateTask((Func<Task<int>>)(async () => await shared));   // an async Task awaiter
        var viaCoroutine = Aio.CreateTask(() => AwaitIt(shared));
        await Aio.Sleep(0); // both tasks have started and wait on the pending coroutine
        Assert.False(shared.IsCompleted);
        double t0 = Now;
        Assert.Equal(9, await shared); // a third waiter
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal(9, await viaTaskMethod);
        Assert.Equal(9, await viaCoroutine);
        Assert.Equal(2, Now - t0, 6);
    });

    // ---- nested coroutines and other tasks ----

    [Theory]
    [InlineData(0.0)] // the innermost ends after a Sleep(0)
    [InlineData(1.0)] // the innermost ends after a timed sleep
    public void Await_NestedCoroutinesInOneTask_ResumeWithoutALoopIteration(double delay) => AioTest.Run(async () =>
    {
        // The innermost coroutine queues a callback just before it ends. Had the coroutines awaiting it been
        // resumed through the loop (a posted continuation each), the callback, queued first, would run before
        // them; resumed at once on the same stack, they all run before it.
        var loop = Aio.GetRunningLoop();
        var log = new List<string>();
        async Coroutine Inner()
        {
            await Aio.Sleep(delay);
            loop.CallSoon(() => log.Add("callback"));
            log.Add("inner ends");
        }
        async Coroutine<int> Middle()
        {
            await Inner();
            log.Add("middle resumed");
            return 1;
        }
        async Coroutine Outer()
        {
            await Middle();
            log.Add("outer resumed");
        }
        var task = Aio.CreateTask(() => Outer());
        await task;
        await Aio.Sleep(0); // the callback has run by now
        Assert.Equal(["inner ends", "middle resumed", "outer resumed", "callback"], log);
    });

    [Theory]
    [InlineData(true)]  // the awaiting task runs an async Coroutine method
    [InlineData(false)] // the awaiting task runs an async Task method
    public void Await_CoroutineStartedInAnotherTask_ResumesInTheAwaitingTaskAndOutlivesTheStartersCancellation(bool awaiterIsCoroutine) => AioTest.Run(async () =>
    {
        Coroutine<int>? shared = null;
        AioTask? currentAfterAwait = null;
        async Coroutine StartsIt()
        {
            shared = After(1, 42);          // its sleep belongs to task A
            await Aio.Sleep(100);
        }
        async Coroutine<int> AwaitsItAsCoroutine()
        {
            int r = await shared!;
            currentAfterAwait = Aio.CurrentTask;
            await Aio.Sleep(1);             // after A is cancelled
            return r + 1;
        }
        async Task<int> AwaitsItAsTask()
        {
            int r = await shared!;
            currentAfterAwait = Aio.CurrentTask;
            await Aio.Sleep(1);
            return r + 1;
        }
        double t0 = Now;
        var a = Aio.CreateTask(() => StartsIt());
        await Aio.Sleep(0);
        Assert.NotNull(shared);
        var b = awaiterIsCoroutine ? Aio.CreateTask(() => AwaitsItAsCoroutine()) : Aio.CreateTask(() => AwaitsItAsTask());
        await Aio.Sleep(1.5);               // the shared coroutine ended at 1 and B resumed
        Assert.True(shared!.IsCompletedSuccessfully);
        Assert.Same(b, currentAfterAwait);
        Assert.True(a.Cancel("stop A"));
        Assert.Equal(43, await b);
        Assert.False(b.IsCancelled);
        Assert.Equal(2, Now - t0, 6);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await a);
        Assert.Equal("stop A", e.CancelMessage);
    });

    [Fact]
    public void Cancel_TaskThatAwaitedAnotherTasksCoroutine_CancelsItsOwnSleepOnly() => AioTest.Run(async () =>
    {
        Coroutine<int>? shared = null;
        bool bSleepCancelled = false;
        async Coroutine<int> StartsIt()
        {
            shared = After(1, 42);
            await Aio.Sleep(5);
            return await shared;
        }
        async Coroutine<int> AwaitsIt()
        {
            int r = await shared!;
            try { await Aio.Sleep(10); }
            catch (CancelledError) { bSleepCancelled = true; throw; }
            return r;
        }
        double t0 = Now;
        var a = Aio.CreateTask(() => StartsIt());
        await Aio.Sleep(0);
        var b = Aio.CreateTask(() => AwaitsIt());
        await Aio.Sleep(2);                 // B resumed at 1 and sleeps in its own code
        Assert.True(b.Cancel("stop B"));
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await b);
        Assert.Equal("stop B", e.CancelMessage);
        Assert.True(b.IsCancelled);
        Assert.True(bSleepCancelled);
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal(42, await a);          // A is untouched
        Assert.False(a.IsCancelled);
        Assert.Equal(5, Now - t0, 6);
    });

    // ---- running as a task ----

    [Fact]
    public void Cancel_TaskRunningACoroutine_ItsSleepThrowsCancelledErrorAndTheTaskEndsCancelled() => AioTest.Run(async () =>
    {
        bool sleepThrew = false;
        async Coroutine<int> Sleeper()
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { sleepThrew = true; throw; }
            return 1;
        }
        var task = Aio.CreateTask(() => Sleeper());
        await Aio.Sleep(1);
        double t0 = Now;
        Assert.True(task.Cancel("stop"));
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.Equal("stop", e.CancelMessage);
        Assert.True(sleepThrew);
        Assert.True(task.IsCancelled);
        Assert.False(task.IsFaulted);
        Assert.Equal(0, Now - t0, 6);
    });

    [Fact]
    public void Cancel_TaskRunningNestedCoroutines_ReachesTheInnermostSleep() => AioTest.Run(async () =>
    {
        var log = new List<string>();
        async Coroutine Inner()
        {
            try { await Aio.Sleep(10); }
            catch (CancelledError) { log.Add("inner cancelled"); throw; }
        }
        async Coroutine Outer()
        {
            try { await Inner(); }
            catch (CancelledError) { log.Add("outer cancelled"); throw; }
        }
        var task = Aio.CreateTask(() => Outer());
        await Aio.Sleep(1);
        task.Cancel("stop");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await task);
        Assert.Equal("stop", e.CancelMessage);
        Assert.True(task.IsCancelled);
        Assert.Equal(["inner cancelled", "outer cancelled"], log);
    });

    [Fact]
    public void CreateTask_CoroutineFunction_TaskEndsWithTheCoroutinesResult() => AioTest.Run(async () =>
    {
        double t0 = Now;
        AioTask<int> typed = Aio.CreateTask(() => After(2, 11));
        AioTask untyped = Aio.CreateTask(() => SleepOnly(3));
        Assert.Equal(11, await typed);
        Assert.Equal(2, Now - t0, 6);
        Assert.Equal(11, typed.Result);
        await untyped;
        Assert.Equal(3, Now - t0, 6);
        Assert.True(untyped.IsDone && !untyped.IsFaulted && !untyped.IsCancelled);

        AioTask<int> atOnce = Aio.CreateTask(() => ReturnsAtOnce(4));
        Assert.Equal(4, await atOnce);
    });

    [Fact]
    public void CreateTask_FailingCoroutine_TaskFaultedWithTheSameException() => AioTest.Run(async () =>
    {
        var error = new InvalidOperationException("task boom");
        var later = Aio.CreateTask(() => FailAfter(1, error));
        var atOnce = Aio.CreateTask(() => ThrowsAtOnce(error));
        var untyped = Aio.CreateTask(() => FailVoidAfter(1, error));
        foreach (var task in new AioTask[] { later, atOnce, untyped })
        {
            var caught = await Assert.ThrowsAsync<InvalidOperationException>(async () => await task);
            Assert.Same(error, caught);
            Assert.True(task.IsFaulted);
            Assert.False(task.IsCancelled);
            Assert.Same(error, task.GetException());
        }
    });

    [Fact]
    public void TaskGroupCreateTask_CoroutineFunctions_GroupWaitsForThem() => AioTest.Run(async () =>
    {
        AioTask<int>? a = null;
        AioTask? b = null;
        double t0 = Now;
        await TaskGroup.Run(tg =>
        {
            a = tg.CreateTask(() => After(1, 42));
            b = tg.CreateTask(() => SleepOnly(3));
            return Task.CompletedTask;
        });
        Assert.Equal(3, Now - t0, 6);
        Assert.Equal(42, a!.Result);
        Assert.True(b!.IsDone && !b.IsFaulted && !b.IsCancelled);
    });

    // ---- gather ----

    [Fact]
    public void Gather_Coroutines_ReturnsResultsInArgumentOrder() => AioTest.Run(async () =>
    {
        double t0 = Now;
        int[] results = await Aio.Gather(After(2, 10), After(1, 20), After(3, 30));
        Assert.Equal([10, 20, 30], results);
        Assert.Equal(3, Now - t0, 6);
    });

    [Fact]
    public void Gather_UntypedCoroutines_CompletesWhenAllAreDone() => AioTest.Run(async () =>
    {
        double t0 = Now;
        var a = SleepOnly(2);
        var b = SleepOnly(1);
        await Aio.Gather(a, b);
        Assert.True(a.IsCompletedSuccessfully && b.IsCompletedSuccessfully);
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    public void Gather_CoroutineFails_EndsAtTheFirstFailureWithThatException() => AioTest.Run(async () =>
    {
        var first = new InvalidOperationException("first");
        var second = new InvalidOperationException("second");
        var slow = After(5, 1);
        var laterFailure = FailAfter(2, second);
        double t0 = Now;
        var caught = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Aio.Gather(slow, FailAfter(1, first), laterFailure));
        Assert.Same(first, caught);
        Assert.Equal(1, Now - t0, 6);
        Assert.False(slow.IsCompleted);
        Assert.Same(second, await Assert.ThrowsAsync<InvalidOperationException>(async () => await laterFailure));
        Assert.Equal(1, await slow);
    });

    [Fact]
    public void GatherOutcomes_Coroutines_ReportsEachOutcomeInOrder() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var f = loop.CreateFuture<int>();
        async Coroutine<int> AwaitIt() => await f;
        loop.CallLater(3, () => f.Cancel("stop"));
        var error = new InvalidOperationException("boom");
        double t0 = Now;
        Outcome<int>[] outcomes = await Aio.GatherOutcomes(new[] { After(1, 7), FailAfter(2, error), AwaitIt() });
        Assert.Equal(3, Now - t0, 6);
        Assert.Equal(3, outcomes.Length);
        Assert.True(outcomes[0].IsSuccess);
        Assert.Equal(7, outcomes[0].Value);
        Assert.Same(error, outcomes[1].Exception);
        Assert.True(outcomes[2].IsCancelled);
        Assert.Equal("stop", ((CancelledError)outcomes[2].Exception!).CancelMessage);

        Outcome<object?>[] untyped = await Aio.GatherOutcomes(new Coroutine[] { SleepOnly(1), FailVoidAfter(1, error) });
        Assert.True(untyped[0].IsSuccess);
        Assert.Same(error, untyped[1].Exception);
    });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Gather_CompletedCoroutines_ReturnsTheirResults(bool virtualTime) => AioTest.Run(async () =>
    {
        var g = Aio.Gather(Coroutine.FromResult(1), ReturnsAtOnce(2));
        int[] results = await Aio.WaitFor(g, 5);
        Assert.Equal([1, 2], results);
        await Aio.WaitFor(Aio.Gather(Coroutine.CompletedCoroutine, SleepOnly(0)), 5);
    }, new LoopOptions { VirtualTime = virtualTime });

    [Fact]
    public void Gather_ThousandCoroutinesOnRealTime_ReturnsAllResults() => AioTest.RunReal(async () =>
    {
        // Far past ChildSet.WatchEachLimit (64), which bounds how Task children are watched.
        const int N = 1000;
        var coroutines = new Coroutine<int>[N];
        for (int i = 0; i < N; i++) coroutines[i] = After(0.001 * (1 + i % 10), i);
        int[] results = await Aio.WaitFor(Aio.Gather(coroutines), 30);
        Assert.Equal(Enumerable.Range(0, N), results);
    });

    [Fact]
    public void Gather_NullCoroutine_ThrowsArgumentException() => AioTest.Run(() =>
    {
        Assert.Throws<ArgumentException>(() => { Aio.Gather(new Coroutine<int>[] { ReturnsAtOnce(1), null! }); });
        Assert.Throws<ArgumentException>(() => { Aio.Gather(new Coroutine[] { null! }); });
        Assert.Throws<ArgumentException>(() => { Aio.Gather(new List<Coroutine<int>> { null! }); });
        Assert.Throws<ArgumentException>(() => { Aio.GatherOutcomes(new Coroutine<int>[] { null! }); });
        return Task.CompletedTask;
    });

    // ---- as .NET Tasks ----

    [Fact]
    public void AsTask_PendingCoroutine_CompletesWithItsResult() => AioTest.Run(async () =>
    {
        Task<int> t = After(1, 8).AsTask();
        Assert.False(t.IsCompleted);
        Assert.Equal(8, await t);
        Assert.True(t.IsCompletedSuccessfully);

        Task untyped = SleepOnly(1).AsTask();
        Assert.False(untyped.IsCompleted);
        await untyped;
        Assert.True(untyped.IsCompletedSuccessfully);

        Assert.Equal(3, await ReturnsAtOnce(3).AsTask());
    });

    [Fact]
    public void AsTask_CancelledCoroutine_GivesACanceledTask() => AioTest.Run(async () =>
    {
        async Coroutine<int> EndsCancelled()
        {
            await Aio.Sleep(1);
            throw new CancelledError("own");
        }
        var t = EndsCancelled().AsTask();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await t);
        Assert.True(t.IsCanceled);
        Assert.Equal(TaskStatus.Canceled, t.Status);
    });

    [Fact]
    public void AsTask_FaultedCoroutine_GivesAFaultedTask() => AioTest.Run(async () =>
    {
        var error = new InvalidOperationException("as task");
        var t = FailAfter(1, error).AsTask();
        Assert.Same(error, await Assert.ThrowsAsync<InvalidOperationException>(async () => await t));
        Assert.True(t.IsFaulted);
        Assert.Same(error, t.Exception!.InnerException);

        var atOnce = ThrowsAtOnce(error).AsTask();
        Assert.True(atOnce.IsFaulted);
        Assert.Same(error, atOnce.Exception!.InnerException);
    });

    [Fact]
    public void AsValueTask_AwaitedFromAnAsyncTaskMethod_ReturnsTheResult() => AioTest.Run(async () =>
    {
        static async Task<int> Plain(Coroutine<int> c) => await c.AsValueTask() + 1;
        static async Task PlainUntyped(Coroutine c) => await c.AsValueTask();
        double t0 = Now;
        Assert.Equal(6, await Plain(After(1, 5)));
        Assert.Equal(8, await Plain(ReturnsAtOnce(7)));
        var untyped = SleepOnly(1);
        await PlainUntyped(untyped);
        Assert.True(untyped.IsCompletedSuccessfully);
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    public void AwaitFromAsyncTaskMethod_CoroutineEndsOnThePool_ResumesOnTheLoopThreadInItsTask() => AioTest.RunReal(async () =>
    {
        int loopThread = Environment.CurrentManagedThreadId;
        async Task<(int Inner, int After, AioTask? Current)> Plain()
        {
            int inner = await EndsOnThePool();
            return (inner, Environment.CurrentManagedThreadId, Aio.CurrentTask);
        }
        var task = Aio.CreateTask(() => Plain());
        var (innerThread, afterThread, current) = await Aio.WaitFor(task, 30);
        Assert.NotEqual(loopThread, innerThread); // the coroutine did end off the loop
        Assert.Equal(loopThread, afterThread);
        Assert.Same(task, current);
    });

    [Fact]
    public void AwaitFromAsyncTaskMethod_CoroutineOnTheLoop_ResumesOnTheLoopThread() => AioTest.Run(async () =>
    {
        int loopThread = Environment.CurrentManagedThreadId;
        async Task<int> Plain()
        {
            await After(1, 0);
            return Environment.CurrentManagedThreadId;
        }
        Assert.Equal(loopThread, await Plain());
    });

    // ---- contexts ----

    [Fact]
    public void AsyncLocal_SetBeforeASleepInsideACoroutine_IsStillVisibleAfterIt() => AioTest.Run(async () =>
    {
        async Coroutine<string> Keeps(string value, double seconds)
        {
            s_local.Value = value;
            await Aio.Sleep(seconds);
            return s_local.Value ?? "(none)";
        }
        // Interleaved in one task, and in two tasks: each coroutine resumes with its own value.
        string[] results = await Aio.Gather(Keeps("a", 2), Keeps("b", 1));
        Assert.Equal(["a", "b"], results);
        var t1 = Aio.CreateTask(() => Keeps("c", 1));
        var t2 = Aio.CreateTask(() => Keeps("d", 1));
        Assert.Equal("c", await t1);
        Assert.Equal("d", await t2);
    });

    [Fact]
    public void AsyncLocal_SetInTheSynchronousPartOfACalledCoroutine_DoesNotLeakToTheCaller() => AioTest.Run(async () =>
    {
        async Coroutine SetsThenSleeps()
        {
            s_local.Value = "callee";
            await Aio.Sleep(1);
        }
#pragma warning disable CS1998
        async Coroutine<int> SetsOnly()
        {
            s_local.Value = "callee";
            return 1;
        }
#pragma warning restore CS1998
        async Coroutine<string?> Caller()
        {
            s_local.Value = "caller";
            var pending = SetsThenSleeps();
            string? afterPendingCall = s_local.Value;
            _ = SetsOnly();
            string? afterCompletedCall = s_local.Value;
            await pending;
            return $"{afterPendingCall}/{afterCompletedCall}/{s_local.Value}";
        }
        Assert.Equal("caller/caller/caller", await Caller());

        s_local.Value = "body";
        var c = SetsThenSleeps();
        Assert.Equal("body", s_local.Value);
        await c;
        Assert.Equal("body", s_local.Value);
    });

    [Fact]
    public void AsyncLocal_SetInsideACoroutineAfterAnAwait_IsNotVisibleToTheAwaitingCaller() => AioTest.Run(async () =>
    {
        async Coroutine SetsAfterSleep()
        {
            await Aio.Sleep(1);
            s_local.Value = "callee";
        }
        async Coroutine<string?> CoroutineCaller(string? value)
        {
            s_local.Value = value;
            await SetsAfterSleep();
            return s_local.Value;
        }
        async Task<string?> TaskCaller(string? value)
        {
            s_local.Value = value;
            await SetsAfterSleep();
            return s_local.Value;
        }
        Assert.Equal("caller", await Aio.CreateTask(() => CoroutineCaller("caller")));
        Assert.Null(await Aio.CreateTask(() => CoroutineCaller(null)));
        Assert.Equal("caller", await Aio.CreateTask(() => TaskCaller("caller")));
        Assert.Null(await Aio.CreateTask(() => TaskCaller(null)));
    });

    // ---- foreign awaits and threads ----

    [Fact]
    public void Coroutine_AwaitsTaskDelayOnRealTime_ResumesOnTheLoopThreadInItsTask() => AioTest.RunReal(async () =>
    {
        int loopThread = Environment.CurrentManagedThreadId;
        async Coroutine<(int Thread, AioTask? Current)> DelaysThenReports()
        {
            await Task.Delay(1);
            return (Environment.CurrentManagedThreadId, Aio.CurrentTask);
        }
        var task = Aio.CreateTask(() => DelaysThenReports());
        var (thread, current) = await Aio.WaitFor(task, 30);
        Assert.Equal(loopThread, thread);
        Assert.Same(task, current);
    });

    [Fact]
    public void Coroutine_AwaitsTaskCompletedOnAnotherThread_ResumesOnTheLoopThread() => AioTest.RunReal(async () =>
    {
        int loopThread = Environment.CurrentManagedThreadId;
        var tcs = new TaskCompletionSource<int>(); // continuations may run inline on the completing thread
        async Coroutine<(int Value, int Thread)> AwaitsIt()
        {
            int v = await tcs.Task;
            return (v, Environment.CurrentManagedThreadId);
        }
        var task = Aio.CreateTask(() => AwaitsIt());
        await Aio.Sleep(0.01);
        Assert.False(task.IsDone);
        var completer = new Thread(() => tcs.SetResult(7));
        completer.Start();
        var (value, thread) = await Aio.WaitFor(task, 30);
        Assert.True(completer.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(7, value);
        Assert.Equal(loopThread, thread);
    });

    [Fact]
    public void Coroutine_AwaitsACoroutineThatEndsOnThePool_ResumesOnTheLoopThreadInItsTask() => AioTest.RunReal(async () =>
    {
        int loopThread = Environment.CurrentManagedThreadId;
        async Coroutine<(int Inner, int After, AioTask? Current)> Outer()
        {
            int inner = await EndsOnThePool();
            return (inner, Environment.CurrentManagedThreadId, Aio.CurrentTask);
        }
        var task = Aio.CreateTask(() => Outer());
        var (innerThread, afterThread, current) = await Aio.WaitFor(task, 30);
        Assert.NotEqual(loopThread, innerThread);
        Assert.Equal(loopThread, afterThread);
        Assert.Same(task, current);
    });

    [Fact]
    public async Task Coroutine_OnThePoolWithoutALoop_CompletesAndConvertsToATask()
    {
        static async Coroutine<int> DelaysThenFive()
        {
            await Task.Delay(1);
            return 5;
        }
        static async Coroutine<int> Nested() => await DelaysThenFive() + 1;
        bool loopSeen = true;
        var t = Task.Run(() =>
        {
            loopSeen = EventLoop.TryGetRunningLoop() != null;
            return DelaysThenFive().AsTask();
        });
        Assert.Equal(5, await t.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(loopSeen);

        var nested = Task.Run(async () => await Nested());
        Assert.Equal(6, await nested.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    // ---- memory ----

    static async Coroutine<int> SleepsOnceAsCoroutine()
    {
        await Aio.Sleep(1);
        return 1;
    }

    static async Task<int> SleepsOnceAsTask()
    {
        await Aio.Sleep(1);
        return 1;
    }

    [Fact]
    public void Call_TenThousandSleepingCoroutines_CostUnder84BytesEachAndLessThanAsyncTaskMethods() => AioTest.Run(async () =>
    {
        // Measured around the calls only (each suspends in its first sleep): the coroutine's box holds its
        // state machine, its waiter slot, its result and one context field (72 bytes); an async Task method's
        // box carries a Task's bookkeeping besides (104). The sleeps allocate about 5 bytes each (their share
        // of the timer queue's chunks). A Debug build of this assembly makes each state machine an object of
        // its own (its header and the box's reference to it: 24 bytes more, in both forms). The best of three
        // rounds after a warm-up, so that another test's load cannot tip the margin.
        const int N = 10_000, Rounds = 3;
        bool separateStateMachine = !typeof(CoroutineTests).GetMethod(nameof(SleepsOnceAsCoroutine), BindingFlags.NonPublic | BindingFlags.Static)!
            .GetCustomAttribute<AsyncStateMachineAttribute>()!.StateMachineType.IsValueType;
        int budget = 84 + (separateStateMachine ? 24 : 0);   // 72 + about 5, and a margin
        var coroutines = new Coroutine<int>[N];
        var tasks = new Task<int>[N];
        long coroutineBytes = long.MaxValue, taskBytes = long.MaxValue;
        for (int round = 0; round <= Rounds; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < N; i++) coroutines[i] = SleepsOnceAsCoroutine();
            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            if (round > 0) coroutineBytes = Math.Min(coroutineBytes, bytes);
            Assert.Equal(N, (await Aio.Gather(coroutines)).Sum());

            before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < N; i++) tasks[i] = SleepsOnceAsTask();
            bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            if (round > 0) taskBytes = Math.Min(taskBytes, bytes);
            Assert.Equal(N, (await Aio.Gather(tasks)).Sum());
        }
        string numbers = $"{coroutineBytes / (double)N:F1} bytes per coroutine, {taskBytes / (double)N:F1} per async Task method";
        Assert.True(coroutineBytes < (long)N * budget, $"{numbers}; the budget is {budget}");
        // 32 bytes less per box; 24 here leaves room for the timer chunks' share, which is not exactly alike.
        Assert.True(taskBytes - coroutineBytes >= (long)N * 24, $"{numbers}; a coroutine should cost about 32 bytes less");
    });
    [Fact]
    public void CreateTask_PlainAsyncLambda_IsBuiltAsACoroutine() => AioTest.Run(async () =>
    {
        // The coroutine overloads of CreateTask take priority over the Func<Task> ones for a lambda that fits both.
        var task = Aio.CreateTask(async () => await Aio.Sleep(1));
        var typed = Aio.CreateTask(async () => { await Aio.Sleep(1); return 7; });
        await Aio.Sleep(0);
        Assert.True(task.GetCoroutine() is Coroutine, $"{task.GetCoroutine()?.GetType()}");
        Assert.True(typed.GetCoroutine() is Coroutine<int>, $"{typed.GetCoroutine()?.GetType()}");
        Func<Task> asTask = async () => await Aio.Sleep(1);
        var taskForm = Aio.CreateTask(asTask);
        await Aio.Sleep(0);
        Assert.True(taskForm.GetCoroutine() is Task, $"{taskForm.GetCoroutine()?.GetType()}");
        await Aio.Gather(task, taskForm);
        Assert.Equal(7, await typed);
    });

    static async Coroutine AwaitsASleep() => await Aio.Sleep(1);

    static async Coroutine AwaitsAFuture(Future<int> f) => await f;   // ValueTaskAwaiter<int>

    [Fact]
    public void Await_LoopPrimitivesInCoroutines_SuspendWithoutADelegate() => AioTest.Run(async () =>
    {
        // The builder reads the source inside a ValueTaskAwaiter or ValueTaskAwaiter<T> (checked once per
        // type); if it could not, every coroutine awaiting a loop primitive would also allocate a delegate and
        // its holder (about 100 bytes). Measured on 10,000 short-lived coroutines, each awaiting once.
        Assert.NotNull(SourceAwaiter<ValueTaskAwaiter>.Instance);
        Assert.NotNull(SourceAwaiter<ValueTaskAwaiter<int>>.Instance);
        const int N = 10_000;
        var loop = Aio.GetRunningLoop();
        var sleepers = new Coroutine[N];
        var waiters = new Coroutine[N];
        var future = loop.CreateFuture<int>();
        long sleepBytes = long.MaxValue, futureBytes = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < N; i++) sleepers[i] = AwaitsASleep();
            long middle = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < N; i++) waiters[i] = AwaitsAFuture(future);
            long after = GC.GetAllocatedBytesForCurrentThread();
            if (round > 0)
            {
                sleepBytes = Math.Min(sleepBytes, middle - before);
                futureBytes = Math.Min(futureBytes, after - middle);
            }
            future.SetResult(round);
            await Aio.Gather(sleepers);
            await Aio.Gather(waiters);
            future = loop.CreateFuture<int>();
        }
        // A box is 64 bytes (72 with a parameter); a Debug build adds the state machine object (24). A future's
        // waiters beyond its loop's pool are new objects (about 75 bytes). The delegate path would add about 100.
        Assert.True(sleepBytes < N * 110L, $"{sleepBytes / (double)N:F1} bytes per coroutine awaiting a sleep");
        Assert.True(futureBytes < N * 210L, $"{futureBytes / (double)N:F1} bytes per coroutine awaiting a Future<int> (its waiter included)");
    });

    [Fact]
    public void Await_ChainOfAHundredThousandCoroutines_EndsWithoutOverflowingTheStack() => AioTest.Run(async () =>
    {
        // Each link awaits the one before; the first ends after a sleep, and each end resumes the next link.
        // On the same stack that would nest 100,000 deep: past a depth the resumption goes through the loop.
        static async Coroutine<int> Next(Coroutine<int> previous) => await previous + 1;
        Coroutine<int> last = After(1, 0);
        for (int i = 0; i < 100_000; i++) last = Next(last);
        Assert.Equal(100_000, await last);
    });

    [Fact]
    public void Await_TenThousandTasksOnOneCoroutine_AllResume() => AioTest.Run(async () =>
    {
        var shared = After(1, 5);
        var tasks = new AioTask<int>[10_000];
        for (int i = 0; i < tasks.Length; i++) tasks[i] = Aio.CreateTask(async () => await shared + 1);
        int[] results = await Aio.Gather(tasks);
        Assert.All(results, r => Assert.Equal(6, r));
    });

    [Fact]
    public void AsyncLocal_SetAfterAnAwaitInATaskCoroutine_DoesNotStayOnTheLoopThread()
    {
        // The box resumes in its own context and puts the thread's back afterwards: a value one task sets
        // must not be seen by other tasks' first steps, nor after the run. A callback it schedules runs in its
        // context (asyncio's call_soon copies the context), so that one sees it.
        string? seenByCallback = "unset", seenByLaterTask = "unset", seenAfterRun = "unset";
        AioTest.Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await Aio.CreateTask(async Coroutine () =>
            {
                await Aio.Sleep(0);
                s_local.Value = "leaked";
                loop.CallSoon(() => seenByCallback = s_local.Value);
            });
            await Aio.Sleep(0);
            await Aio.CreateTask(async Coroutine () => { seenByLaterTask = s_local.Value; await Aio.Sleep(0); });
        });
        seenAfterRun = s_local.Value;
        Assert.Equal("leaked", seenByCallback);
        Assert.Null(seenByLaterTask);
        Assert.Null(seenAfterRun);
    }

    [Fact]
    public void AsTask_OnVirtualTime_CompletesInTheStepThatEndsTheCoroutine() => AioTest.Run(async () =>
    {
        // The Task's completion runs where the coroutine ends (it asked for no context), so the virtual clock
        // cannot jump past it while it travels through the thread pool.
        var t = After(1, 3).AsTask();
        double t0 = Now;
        Assert.Equal(3, await Aio.WaitFor(t, 5));
        Assert.Equal(1, Now - t0, 6);
    });

    [Fact]
    public void OnCompleted_NullContinuation_ThrowsArgumentNullException() => AioTest.Run(async () =>
    {
        var c = After(1, 1);
        Assert.Throws<ArgumentNullException>(() => c.GetAwaiter().OnCompleted(null!));
        Assert.Throws<ArgumentNullException>(() => c.GetAwaiter().UnsafeOnCompleted(null!));
        Assert.Equal(1, await c);
    });

    [Fact]
    public void Wait_Coroutines_FirstCompletedReturnsTheOneThatEndedFirst() => AioTest.Run(async () =>
    {
        var a = After(3, 1);
        var b = After(1, 2);
        var c = After(2, 3);
        double t0 = Now;
        var (done, pending) = await Aio.Wait([a, b, c], returnWhen: ReturnWhen.FirstCompleted);
        Assert.Equal(1, Now - t0, 6);
        Assert.Equal([b], done);
        Assert.Equal(2, pending.Count);
        int[] rest = await Aio.Gather(a, c);
        Assert.Equal([1, 3], rest);
    });

    [Fact]
    public void AsCompletedAsync_Coroutines_YieldsThemInTheOrderTheyEnd() => AioTest.Run(async () =>
    {
        var a = After(3, "a");
        var b = After(1, "b");
        var c = After(2, "c");
        var order = new List<string>();
        await foreach (var done in Aio.AsCompletedAsync([a, b, c]))
        {
            Assert.True(done.IsCompleted);
            order.Add(done.Result);
        }
        Assert.Equal(["b", "c", "a"], order);
    });
    [Fact]
    public void WaitFor_CoroutineWithinItsTimeout_ReturnsItsResult() => AioTest.Run(async () =>
    {
        double t0 = Now;
        Assert.Equal(4, await Aio.WaitFor(After(1, 4), 5));
        Assert.Equal(1, Now - t0, 6);
        await Aio.WaitFor(SleepOnly(1), TimeSpan.FromSeconds(5));
        Assert.Equal(2, Now - t0, 6);
    });

    [Fact]
    public void WaitFor_CoroutineOverItsTimeout_ThrowsTimeoutExceptionAndTheCoroutineRunsOn() => AioTest.Run(async () =>
    {
        var slow = After(10, 6);
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(slow, 2));
        Assert.Equal(2, Now - t0, 6);
        Assert.False(slow.IsCompleted);
        Assert.Equal(6, await slow);   // a coroutine cannot be cancelled from outside, as a Task cannot
        Assert.Equal(10, Now - t0, 6);
    });

    static async Coroutine<int> Inner() { await Aio.Sleep(0); throw new InvalidOperationException("deep"); }
    static async Coroutine<int> Outer() => await Inner() + 1;

    [Fact]
    public void Await_FailedCoroutine_StackTraceShowsTheUsersFramesOnly() => AioTest.Run(async () =>
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Outer());
        Assert.Contains(nameof(Inner), e.StackTrace);
        Assert.Contains(nameof(Outer), e.StackTrace);
        // As a Task's awaiter hides itself ([StackTraceHidden]), the coroutine's rethrow adds no frames of the library.
        Assert.DoesNotContain("CoroutineAwaiter", e.StackTrace);
        Assert.DoesNotContain("ThrowFailure", e.StackTrace);
        Assert.DoesNotContain("get_Result", e.StackTrace);
    });
}
