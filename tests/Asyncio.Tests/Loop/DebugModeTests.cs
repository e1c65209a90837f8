namespace Asyncio.Tests.Loop;

/// <summary>Debug mode (asyncio's set_debug): slow callbacks, callbacks that block the loop, tasks pending at close.</summary>
[Collection("Console")] // redirects Console.Error
public class DebugModeTests
{
    /// <summary>Runs <paramref name="run"/> with the standard error captured, and returns what it wrote there.</summary>
    internal static string StandardErrorOf(Action run)
    {
        var saved = Console.Error;
        var sink = new StringWriter();
        Console.SetError(sink);
        try { run(); }
        finally { Console.SetError(saved); }
        return sink.ToString();
    }

    [Fact]
    public void SlowCallback_InDebugMode_IsReportedWithItsTask()
    {
        var reports = new List<string>();
        string output = StandardErrorOf(() =>
        {
            Aio.Run(async () =>
            {
                var t = Aio.CreateTask(async () => { await Aio.Sleep(0); Thread.Sleep(60); }, "sluggish");
                await t;
            }, new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(20) });
        });
        Assert.Contains("sluggish", output);
        Assert.Contains("took", output);
    }

    [Fact]
    public void SlowCallback_ATasksFirstStep_IsReportedWithItsTask()
    {
        // A first step is queued as a callback of the loop's own scope (the task's scope does not exist yet): the
        // report still names the task, not the loop's start adapter.
        string output = StandardErrorOf(() =>
        {
            Aio.Run(async () =>
            {
                var t = Aio.CreateTask(async () => { Thread.Sleep(60); await Aio.Sleep(0); }, "slow-starter");
                await t;
            }, new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(20) });
        });
        Assert.Contains("Executing task slow-starter took", output);
    }

    [Fact]
    public void SlowCallback_ASleepResumedInsideALongBatch_IsReportedWithItsTask()
    {
        // The sleep ends while a batch of 200 callbacks runs and resumes after the 64th (RunOnce, step 5):
        // that resumption is timed like any callback.
        string output = StandardErrorOf(() =>
        {
            using var loop = new EventLoop(new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(20) });
            LoopBatch.Queue(loop, new List<string>(), 200, () =>
            {
                loop.EagerTasks = true;   // the task's first step, and its sleep, begin here
                loop.CreateTask(async () => { await Aio.Sleep(0.001); Thread.Sleep(60); }, "sluggish-sleeper");
                loop.EagerTasks = false;
                LoopBatch.SpinPast(loop, loop.Time() + 0.001);
            });
            loop.RunForever();
        });
        Assert.Contains("sluggish-sleeper", output);
        Assert.Contains("took", output);
    }

    static void SlowTimer() => Thread.Sleep(60);

    [Fact]
    public void SlowCallback_ATimersCallback_IsNamedByTheMethodScheduled()
    {
        // A CallLater or CallAt callback runs through the loop's timer entry: the report names the method scheduled.
        string output = StandardErrorOf(() =>
        {
            using var loop = new EventLoop(new LoopOptions { VirtualTime = true, Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(20) });
            loop.CallLater(0.5, SlowTimer);
            loop.CallAt(1, _ => SlowTimer(), null);
            loop.CallLater(2, loop.Stop);
            loop.RunForever();
        });
        Assert.Contains("Executing callback DebugModeTests.SlowTimer took", output);
        Assert.Contains($"Executing callback DebugModeTests.{nameof(SlowCallback_ATimersCallback_IsNamedByTheMethodScheduled)} (lambda) took", output);
        Assert.DoesNotContain("TimerEntry", output);
    }

    [Fact]
    public void SlowCallback_DebugOff_NotReported()
    {
        string output = StandardErrorOf(() =>
        {
            Aio.Run(async () => { await Aio.Sleep(0); Thread.Sleep(30); },
                new LoopOptions { SlowCallbackDuration = TimeSpan.FromMilliseconds(10) });
        });
        Assert.DoesNotContain("took", output);
    }

    [Fact]
    public void Debug_CanBeToggledOnARunningLoop()
    {
        using var loop = new EventLoop();
        Assert.False(loop.Debug);
        loop.Debug = true;
        Assert.True(loop.Debug);
        loop.SlowCallbackDuration = TimeSpan.FromSeconds(1);
        Assert.Equal(TimeSpan.FromSeconds(1), loop.SlowCallbackDuration);
    }

    /// <summary>A standard error that can be read while another thread writes to it, and says when a line mentions <c>blocked</c>.</summary>
    sealed class WatchedError : StringWriter
    {
        public readonly ManualResetEventSlim Blocked = new();

        public override void WriteLine(string? value)
        {
            lock (this) base.WriteLine(value);
            if (value?.Contains("blocked") == true) Blocked.Set();
        }

        public override string ToString()
        {
            lock (this) return base.ToString();
        }
    }

    static string WithWatchedError(Action<WatchedError> run)
    {
        var saved = Console.Error;
        var sink = new WatchedError();
        Console.SetError(sink);
        try { run(sink); }
        finally { Console.SetError(saved); }
        return sink.ToString();
    }

    static LoopOptions Watchdog(double thresholdSeconds, bool debug = true) => new()
    {
        Debug = debug,
        BlockedLoopThreshold = TimeSpan.FromSeconds(thresholdSeconds),
        SlowCallbackDuration = TimeSpan.FromSeconds(100),   // only the watchdog speaks
    };

    [Fact]
    public void Watchdog_ReportsACallbackThatBlocksTheLoop_WhileItStillRuns_Once()
    {
        string output = WithWatchedError(err =>
        {
            Aio.Run(async () =>
            {
                await Aio.Sleep(0);
                // Blocks the loop until the watchdog has spoken (bounded), then a while longer: one report only.
                Assert.True(err.Blocked.Wait(TimeSpan.FromSeconds(20)), "the watchdog did not report the blocked loop");
                Thread.Sleep(200);
            }, Watchdog(0.05));
        });
        Assert.Contains("The event loop is blocked: task main has been running for", output);
        Assert.Single(output.Split('\n'), l => l.Contains("blocked"));
    }

    [Fact]
    public void Watchdog_NamesAPlainCallback()
    {
        string output = WithWatchedError(err =>
        {
            using var loop = new EventLoop(Watchdog(0.05));
            loop.CallSoon(Stuck);
            loop.CallSoon(loop.Stop);
            loop.RunForever();

            void Stuck() => Assert.True(err.Blocked.Wait(TimeSpan.FromSeconds(20)));
        });
        Assert.Contains("callback", output);
        Assert.True(output.Contains("Stuck"), output);
    }

    [Fact]
    public void Watchdog_NamesATimersCallback()
    {
        string output = WithWatchedError(err =>
        {
            using var loop = new EventLoop(Watchdog(0.05));
            loop.CallLater(0.001, Stuck);
            loop.CallLater(0.002, loop.Stop);
            loop.RunForever();

            void Stuck() => Assert.True(err.Blocked.Wait(TimeSpan.FromSeconds(20)));
        });
        Assert.Contains($"The event loop is blocked: callback DebugModeTests.{nameof(Watchdog_NamesATimersCallback)}.Stuck has been running", output);
        Assert.DoesNotContain("TimerEntry", output);
    }

    [Theory]
    [InlineData(0.0, true)]     // watchdog off
    [InlineData(0.05, false)]   // debug mode off
    public void Watchdog_OffOrNotDebug_Silent(double threshold, bool debug)
    {
        string output = WithWatchedError(_ =>
        {
            Aio.Run(async () => { await Aio.Sleep(0); Thread.Sleep(300); }, Watchdog(threshold, debug));
        });
        Assert.DoesNotContain("blocked", output);
    }

    [Fact]
    public void Close_InDebugMode_ReportsTasksStillPending()
    {
        foreach (bool debug in new[] { true, false })
        {
            var reports = new List<ExceptionContext>();
            var loop = new EventLoop(new LoopOptions { Debug = debug, VirtualTime = true });
            loop.SetExceptionHandler((_, c) => reports.Add(c));
            var never = loop.CreateFuture();
            var stuck = loop.CreateTask(async () => await never, "stuck");
            var done = loop.CreateTask(() => Task.CompletedTask, "done");
            loop.RunUntilComplete(done);
            loop.Close();
            if (debug)
            {
                var r = Assert.Single(reports);
                Assert.Equal("Task was destroyed but it is pending!", r.Message);
                Assert.Same(stuck, r.Task);
            }
            else Assert.Empty(reports);
        }
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData(" False ", false)]
    [InlineData("1", true)]
    [InlineData("yes", true)]
    [Trait("asyncio", "PYTHONASYNCIODEBUG: the environment turns debug mode on for every loop")]
    public void EnvironmentVariable_TurnsDebugModeOnForEveryLoop(string? value, bool debug)
    {
        EventLoop.t_debugVariableForTests = value ?? "";   // this thread's stand-in for ASYNCIO_DEBUG
        try
        {
            using var loop = new EventLoop();
            Assert.Equal(debug, loop.Debug);
            using var explicitly = new EventLoop(new LoopOptions { Debug = true });
            Assert.True(explicitly.Debug);
            Assert.Equal(debug, EventLoop.IsDebugSetting(value));
        }
        finally { EventLoop.t_debugVariableForTests = null; }
    }
}
