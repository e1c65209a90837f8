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
}
