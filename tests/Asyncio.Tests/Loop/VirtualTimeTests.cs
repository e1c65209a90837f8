namespace Asyncio.Tests.Loop;

/// <summary>Virtual time: the autojump clock and the loop's TimeProvider.</summary>
public class VirtualTimeTests
{
    [Fact]
    public void Sleep_AnHour_CompletesAtOnceAndTimeAdvancesExactly()
    {
        var wall = System.Diagnostics.Stopwatch.StartNew();
        var elapsed = AioTest.Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            double start = loop.Time();
            await Aio.Sleep(3600);
            return loop.Time() - start;
        });
        Assert.Equal(3600.0, elapsed, 6);
        Assert.True(wall.Elapsed < TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void VirtualClock_StartsAtZero_AndOnlyMovesWhenIdle() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        Assert.Equal(0.0, loop.Time());
        for (int i = 0; i < 1000; i++) await Aio.Sleep(0); // busy: the clock does not move
        Assert.Equal(0.0, loop.Time());
        await Aio.Sleep(2.5);
        Assert.Equal(2.5, loop.Time(), 9);
    });

    [Fact]
    public void InfiniteTimers_NeverFire_TheClockDoesNotJumpToThem()
    {
        // asyncio: call_later(math.inf) and sleep(math.inf) never end. On virtual time the clock must
        // not jump to the far-away deadline they are clamped to when nothing else is pending.
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        bool timerFired = false, sleepEnded = false;
        loop.CallLater(double.PositiveInfinity, () => timerFired = true);
        loop.CallLater(TimeSpan.MaxValue, () => timerFired = true);
        loop.CallLater(Timeout.InfiniteTimeSpan, () => timerFired = true);   // -1 ms, but documented as never
        loop.CreateTask(async () => { await Aio.Sleep(double.PositiveInfinity); sleepEnded = true; });
        Assert.Null(AioTest.RunForeverUntilStoppedFromAnotherThread(loop));
        Assert.False(timerFired);
        Assert.False(sleepEnded);
        Assert.Equal(0.0, loop.Time());
    }

    [Fact]
    public void TaskDelay_WithLoopTimeProvider_FollowsVirtualTime() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        await Task.Delay(TimeSpan.FromMinutes(10), loop.TimeProvider);
        Assert.Equal(600.0, loop.Time(), 6);
        Assert.Equal(loop.TimeProvider.GetTimestamp(), System.Diagnostics.Stopwatch.Frequency * 600);
    });

    [Fact]
    public void PeriodicTimer_WithLoopTimeProvider_TicksOnVirtualTime() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5), loop.TimeProvider);
        var ticks = new List<double>();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(await timer.WaitForNextTickAsync());
            ticks.Add(loop.Time());
        }
        Assert.Equal([5.0, 10.0, 15.0], ticks);
    });

    [Fact]
    public void CancellationTokenSource_WithLoopTimeProvider_FiresOnVirtualTime() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30), loop.TimeProvider);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.Delay(Timeout.Infinite, cts.Token));
        Assert.Equal(30.0, loop.Time(), 6);
    });

    [Fact]
    public void GetUtcNow_AdvancesWithVirtualTime() => AioTest.Run(async () =>
    {
        var p = Aio.GetRunningLoop().TimeProvider;
        var before = p.GetUtcNow();
        await Aio.Sleep(86400);
        Assert.Equal(TimeSpan.FromDays(1), p.GetUtcNow() - before);
    });

    [Fact]
    public void ExecutorWork_HoldsTheClockUntilItReports() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var sleeper = Aio.CreateTask(() => Aio.Sleep(10).AsTask());
        await Aio.ToThread(() => Thread.Sleep(100));
        double timeAfterThread = loop.Time();
        await sleeper;
        Assert.Equal(0.0, timeAfterThread); // the clock did not jump while the thread was working
        Assert.Equal(10.0, loop.Time(), 6);
    });

    [Fact]
    public void AutojumpThreshold_WaitsForThreadsafeCallbacksBeforeJumping()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true, AutojumpThreshold = TimeSpan.FromSeconds(5) });
        var order = new List<string>();
        loop.CallLater(100, () => { order.Add("timer"); loop.Stop(); });
        var t = new Thread(() => { Thread.Sleep(20); loop.CallSoonThreadsafe(() => order.Add("outside")); });
        t.Start();
        loop.RunForever();
        t.Join();
        Assert.Equal(["outside", "timer"], order);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AutojumpThreshold_AWaitThatEndsWithNothingToRun_KeepsWaitingForTheRestOfTheThreshold(bool portable)
    {
        // A wait of the reactor can end with nothing to run: a signal interrupts it (the runtime's collections
        // do), or a wake-up arrives whose callback already ran. That is no outside event: the clock must not
        // jump before the whole threshold has passed (it once fired a TLS handshake's 60 s limit in 8 ms).
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true, AutojumpThreshold = TimeSpan.FromSeconds(5), PortableReactor = portable });
        var order = new List<string>();
        loop.CallLater(100, () => { order.Add("timer"); loop.Stop(); });
        var t = new Thread(() =>
        {
            // Once the loop blocks before jumping, wake it with nothing to run; once it blocks again (or after
            // 2 s, if it never does), send the outside event.
            WaitForBlockingPolls(loop, 1);
            loop.WakeReactorWithNothingToRun();
            WaitForBlockingPolls(loop, 2);
            loop.CallSoonThreadsafe(() => { order.Add("outside"); loop.Stop(); });
        });
        t.Start();
        loop.RunForever();
        t.Join();
        Assert.Equal(["outside"], order);
        Assert.Equal(0.0, loop.Time());
    }

    static void WaitForBlockingPolls(EventLoop loop, int count)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (loop.BlockingPolls < count && waited.Elapsed < TimeSpan.FromSeconds(2)) Thread.Sleep(1);
    }

    [Fact]
    [Trait("dotnet", "ITimer.Change and Dispose of the loop's TimeProvider from another thread take effect on the loop")]
    public void LoopTimer_ChangedAndDisposedFromAnotherThread_FiresOnlyAsChanged() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var fired = new List<(string Name, double Time, bool OnLoop)>();
        using var kept = loop.TimeProvider.CreateTimer(
            _ => fired.Add(("kept", loop.Time(), EventLoop.TryGetRunningLoop() == loop)), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        var dropped = loop.TimeProvider.CreateTimer(_ => fired.Add(("dropped", loop.Time(), true)), null, TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);
        // Work on a thread holds the virtual clock until it reports back, after its changes were posted.
        bool changedAfterDispose = await Aio.ToThread(() =>
        {
            dropped.Dispose();
            bool changed = dropped.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
            kept.Change(TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);
            return changed;
        });
        await Aio.Sleep(60);
        Assert.False(changedAfterDispose);
        Assert.Equal([("kept", 10.0, true)], fired);
    });
    [Fact]
    [Trait("dotnet", "ITimer.Change and Dispose of the loop's TimeProvider racing with the loop's close never throw")]
    public void LoopTimer_CreatedChangedAndDisposedWhileTheLoopStopsAndCloses_NeverThrows()
    {
        // Another thread makes, changes and disposes timers while the loop stops and closes; Change reports false
        // once the loop is closed, Dispose then does nothing. The calls used to check the loop's state, then post
        // or touch its timers, so a close in between made the post throw (or raced Close on the timer queue).
        for (int round = 0; round < 200; round++)
        {
            var loop = new EventLoop(new LoopOptions { VirtualTime = true });
            var provider = loop.TimeProvider;
            Exception? error = null;
            int calls = 0;
            var other = new Thread(() =>
            {
                try
                {
                    while (true)
                    {
                        var timer = provider.CreateTimer(_ => { }, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
                        bool changed = timer.Change(TimeSpan.FromSeconds(2), Timeout.InfiniteTimeSpan);
                        timer.Dispose();
                        Interlocked.Increment(ref calls);
                        if (!changed && loop.IsClosed) break;
                    }
                    var late = provider.CreateTimer(_ => { }, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
                    Assert.False(late.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan));
                    late.Dispose();
                }
                catch (Exception e) { error = e; }
            });
            other.Start();
            // Stop once the other thread is busy, at a point that varies from round to round.
            loop.CallSoon(() => { while (Volatile.Read(ref calls) < 1 + round % 7) Thread.Yield(); loop.Stop(); });
            loop.RunForever();
            loop.Close();
            other.Join();
            Assert.Null(error);
        }
    }
}
