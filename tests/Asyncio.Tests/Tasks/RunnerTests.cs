namespace Asyncio.Tests.Tasks;

/// <summary>asyncio.run() and asyncio.Runner.</summary>
public class RunnerTests
{
    [Fact]
    public void Run_ReturnsTheResultOfMain()
    {
        Assert.Equal(3, Aio.Run(async () => { await Aio.Sleep(0); return 3; }));
    }

    [Fact]
    public void Run_MainThrows_RethrowsTheException()
    {
        var e = Assert.Throws<FormatException>(() => Aio.Run(async () => { await Aio.Sleep(0); throw new FormatException("x"); }));
        Assert.Equal("x", e.Message);
    }

    [Fact]
    public void Run_MainCancelled_ThrowsCancelledError()
    {
        Assert.Throws<CancelledError>(() => Aio.Run(async () =>
        {
            Aio.CurrentTask!.Cancel();
            await Aio.Sleep(0);
        }));
    }

    [Fact]
    public void Run_FromCodeRunningInALoop_ThrowsSayingToAwait()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Aio.Run(async () =>
        {
            await Aio.Sleep(0);
            Aio.Run(() => Task.CompletedTask);
        }));
        Assert.Contains("await", e.Message);
    }

    [Fact]
    public void Run_CancelsTasksLeftRunning_AndWaitsForThem()
    {
        bool cleanedUp = false;
        Aio.Run(async () =>
        {
            _ = Aio.CreateTask(async () =>
            {
                try { await Aio.Sleep(3600); }
                finally { cleanedUp = true; }
            });
            await Aio.Sleep(0);
        }, new LoopOptions { VirtualTime = true });
        Assert.True(cleanedUp);
    }

    [Fact]
    public void Run_LeftoverTaskFailingDuringShutdown_IsReported()
    {
        var errors = new List<ExceptionContext>();
        using (var runner = new Runner(new LoopOptions { VirtualTime = true }))
        {
            runner.GetLoop().SetExceptionHandler((_, c) => errors.Add(c));
            runner.Run(async () =>
            {
                _ = Aio.CreateTask(async () =>
                {
                    try { await Aio.Sleep(3600); }
                    catch (CancelledError) { throw new InvalidOperationException("cleanup failed"); }
                });
                await Aio.Sleep(0);
            });
        }
        var ctx = Assert.Single(errors);
        Assert.IsType<InvalidOperationException>(ctx.Exception);
    }

    [Fact]
    public void Run_OnAThreadWithASynchronizationContext_RestoresIt()
    {
        var mine = new SynchronizationContext();
        var saved = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(mine);
        try
        {
            SynchronizationContext? inside = null;
            Aio.Run(async () => { await Aio.Sleep(0); inside = SynchronizationContext.Current; });
            Assert.NotNull(inside);
            Assert.NotSame(mine, inside);
            Assert.Same(mine, SynchronizationContext.Current);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(saved);
        }
    }

    [Fact]
    public void Runner_RunsSeveralCoroutinesOnOneLoop_ThenCloses()
    {
        var runner = new Runner();
        var loop = runner.GetLoop();
        Assert.Equal(1, runner.Run(() => Task.FromResult(1)));
        Assert.Equal(2, runner.Run(() => Task.FromResult(2)));
        Assert.Same(loop, runner.GetLoop());
        runner.Close();
        Assert.True(loop.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => runner.Run(() => Task.FromResult(3)));
    }

    [Fact]
    public void Run_WaitsForExecutorWorkBeforeClosing()
    {
        int finished = 0;
        Aio.Run(async () =>
        {
            _ = Aio.ToThread(() => { Thread.Sleep(50); Interlocked.Exchange(ref finished, 1); });
            await Aio.Sleep(0);
        });
        Assert.Equal(1, Volatile.Read(ref finished));
    }

    [Fact]
    [Trait("asyncio", "Runner: close() without a run creates no loop; get_loop()/run() after close raise; close() twice is fine")]
    public void Runner_ClosedBeforeUse_RefusesGetLoopAndRun()
    {
        var runner = new Runner();
        runner.Close();
        runner.Close();
        Assert.Throws<ObjectDisposedException>(() => runner.GetLoop());
        Assert.Throws<ObjectDisposedException>(() => runner.Run(() => Task.CompletedTask));
    }

    [Fact]
    [Trait("asyncio", "asyncio.run(main, debug=True) runs main on a loop in debug mode")]
    public void Run_DebugOption_MainRunsOnALoopInDebugMode()
    {
        Assert.True(Aio.Run(() => Task.FromResult(Aio.GetRunningLoop().Debug), new LoopOptions { Debug = true }));
        Assert.False(Aio.Run(() => Task.FromResult(Aio.GetRunningLoop().Debug)));
    }

    static readonly AsyncLocal<int> s_value = new();

    [Fact]
    [Trait("asyncio", "asyncio.run() runs main in a copy of the caller's context")]
    public void Run_CallersAsyncLocal_SeenByMainAndItsTasks()
    {
        s_value.Value = 5;
        try
        {
            var seen = Aio.Run(async () =>
            {
                int inMain = s_value.Value;
                int inTask = await Aio.CreateTask(async () => { await Aio.Sleep(0); return s_value.Value; });
                return (inMain, inTask);
            });
            Assert.Equal((5, 5), seen);
        }
        finally
        {
            s_value.Value = 0;
        }
    }

    [Fact]
    [Trait("asyncio", "Runner.run() from its own running loop raises without starting the coroutine (test_recursive_run)")]
    public void Runner_RunFromItsOwnRunningLoop_ThrowsWithoutStartingTheCoroutine()
    {
        using var runner = new Runner();
        bool innerStarted = false;
        var e = Assert.Throws<InvalidOperationException>(() => runner.Run(async () =>
        {
            await Aio.Sleep(0);
            runner.Run(() => { innerStarted = true; return Task.CompletedTask; });
        }));
        Assert.Contains("await", e.Message);
        Assert.False(innerStarted);
        Assert.Equal(1, runner.Run(() => Task.FromResult(1))); // the runner is still usable
    }

    [Fact]
    [Trait("asyncio", "asyncio.run(): main's own failure is raised even when a leftover task fails while cancelled")]
    public void Run_MainFailsAndALeftoverTaskFailsOnCancel_MainsFailureIsRaisedAndTheLeftoverReported()
    {
        var errors = new List<ExceptionContext>();
        AioTask? leftover = null;
        var runner = new Runner(new LoopOptions { VirtualTime = true });
        runner.GetLoop().SetExceptionHandler((_, c) => errors.Add(c));
        var e = Record.Exception(() =>
        {
            using (runner)
            {
                runner.Run(async () =>
                {
                    leftover = Aio.CreateTask(async () =>
                    {
                        try { await Aio.Sleep(1); }
                        catch (CancelledError) { throw new DivideByZeroException(); }
                    });
                    await Aio.Sleep(0);
                    throw new FormatException("main");
                });
            }
        });
        Assert.IsType<FormatException>(e);
        Assert.True(leftover!.IsDone);
        var ctx = Assert.Single(errors);
        Assert.IsType<DivideByZeroException>(ctx.Exception);
        Assert.Same(leftover, ctx.Task);
    }
}
