namespace Asyncio.Tests.Tasks;

/// <summary>asyncio's <c>shield()</c>: the inner task survives, the outer future is cancelled, outcomes mirrored.</summary>
public class ShieldTests
{
    static AioTask<int> SleepTask(double seconds, int value) =>
        Aio.CreateTask(async () => { await Aio.Sleep(seconds); return value; });

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_effect")]
    public void Shield_AwaitingTaskCancelled_InnerTaskSurvives() => AioTest.Run(async () =>
    {
        var inner = SleepTask(5, 7);
        var outer = Aio.CreateTask(async () => await Aio.Shield(inner));
        await Aio.Sleep(1);
        outer.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.True(outer.IsCancelled);
        Assert.False(inner.IsDone);
        Assert.Equal(7, await inner);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_cancel_outer")]
    public void Cancel_OuterFuture_IsCancelledWhileInnerRuns() => AioTest.Run(async () =>
    {
        var inner = SleepTask(5, 7);
        var outer = Aio.Shield(inner);
        Assert.True(outer.Cancel("stop"));
        Assert.True(outer.IsCancelled);
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.Equal("stop", e.CancelMessage);
        Assert.Equal(7, await inner);
        Assert.False(outer.Cancel());
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_cancel_outer_exception, test_shield_duplicate_log_once (3.14)")]
    public void Shield_OuterCancelledThenInnerFails_ErrorIsReportedOnce()
    {
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            var inner = Aio.GetRunningLoop().CreateFuture<int>();
            var first = Aio.Shield(inner);
            var second = Aio.Shield(inner);
            await Aio.Sleep(0);
            first.Cancel();
            second.Cancel();
            await Aio.Sleep(0);
            inner.SetException(new FormatException("lost"));
            await Aio.Sleep(0);
            await Aio.Sleep(0);
        });
        var report = Assert.Single(errors);
        Assert.Equal("lost", Assert.IsType<FormatException>(report.Exception).Message);
        Assert.Contains("shielded", report.Message);
    }

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_cancel_outer_exception (a task shielded by a cancelled awaiter)")]
    public void Shield_AwaitingTaskCancelledThenShieldedTaskFails_ErrorIsReported()
    {
        var errors = AioTest.RunCollectingErrors(async () =>
        {
            AioTask? inner = null;
            var outer = Aio.CreateTask(async () => await Aio.Shield(inner = Aio.CreateTask(async () =>
            {
                await Aio.Sleep(2);
                throw new FormatException("after the awaiter left");
            })));
            await Aio.Sleep(1);
            outer.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await outer);
            await Aio.Sleep(2);
            Assert.True(inner!.IsFaulted);
        });
        var report = Assert.Single(errors);
        Assert.IsType<FormatException>(report.Exception);
        Assert.NotNull(report.Task);
    }

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_cancel_outer_result")]
    public void Shield_OuterCancelledThenInnerSucceedsOrIsCancelled_NothingIsReported() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var succeeds = loop.CreateFuture<int>();
        var cancelled = loop.CreateFuture<int>();
        var a = Aio.Shield(succeeds);
        var b = Aio.Shield(cancelled);
        a.Cancel();
        b.Cancel();
        succeeds.SetResult(1);
        cancelled.Cancel();
        await Aio.Sleep(0);
        await Aio.Sleep(0);
        Assert.True(a.IsCancelled && b.IsCancelled);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_result")]
    public void Shield_InnerSucceeds_MirrorsResult() => AioTest.Run(async () =>
    {
        Assert.Equal(3, await Aio.Shield(SleepTask(1, 3)));
        var f = Aio.GetRunningLoop().CreateFuture<string>();
        var outer = Aio.Shield(f);
        f.SetResult("x");
        Assert.Equal("x", await outer);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_exception")]
    public void Shield_InnerFails_MirrorsException() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask<int>(async () => { await Aio.Sleep(1); throw new InvalidOperationException("boom"); });
        var outer = Aio.Shield(inner);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await outer);
        Assert.Equal("boom", e.Message);
        Assert.Same(inner.GetException(), outer.GetException());
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_cancel_inner")]
    public void Shield_InnerCancelled_OuterIsCancelled() => AioTest.Run(async () =>
    {
        var inner = SleepTask(5, 7);
        var outer = Aio.Shield(inner);
        await Aio.Sleep(1);
        inner.Cancel("inner");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.True(outer.IsCancelled);
        Assert.Equal("inner", e.CancelMessage);
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_coroutine")]
    public void Shield_CoroutineFunction_RunsItAsATaskThatSurvives() => AioTest.Run(async () =>
    {
        bool finished = false;
        var outer = Aio.CreateTask(async () => await Aio.Shield(async () =>
        {
            await Aio.Sleep(3);
            finished = true;
            return 1;
        }));
        await Aio.Sleep(1);
        outer.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        Assert.False(finished);
        await Aio.Sleep(3);
        Assert.True(finished);
    });

    [Fact]
    public void Shield_UntypedFuture_MirrorsCompletion() => AioTest.Run(async () =>
    {
        var inner = Aio.CreateTask(() => Aio.Sleep(1).AsTask());
        await Aio.Shield((Future)inner);
        Assert.True(inner.IsDone);
        var survivor = Aio.Shield(() => Aio.Sleep(1).AsTask());
        await survivor;
    });

    [Fact]
    [Trait("asyncio", "test_tasks: test_shield_shortcut")]
    public void Shield_DoneTask_MirrorsItsResult() => AioTest.Run(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture<int>();
        f.SetResult(11);
        var shielded = Aio.Shield(f);
        Assert.True(shielded.IsDone); // asyncio returns a done inner as it is: done at once, not an iteration later
        Assert.Equal(11, await shielded);

        var failed = Aio.CreateTask<int>(async () => { await Aio.Sleep(0); throw new InvalidOperationException("x"); });
        await Aio.Wait([failed]);
        var mirror = Aio.Shield(failed);
        Assert.True(mirror.IsDone);
        Assert.Equal("x", (await Assert.ThrowsAsync<InvalidOperationException>(async () => await mirror)).Message);
    });

    [Fact]
    public void Shield_FutureOfAnotherLoop_Throws() => AioTest.Run(() =>
    {
        using var other = new EventLoop();
        Assert.Throws<ArgumentException>(() => { Aio.Shield(other.CreateFuture<int>()); });
        return Task.CompletedTask;
    });
}
