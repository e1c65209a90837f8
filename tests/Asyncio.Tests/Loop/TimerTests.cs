namespace Asyncio.Tests.Loop;

/// <summary>Timers: order by deadline then scheduling, never early, cancellation, scale, bounded memory.</summary>
public class TimerTests
{
    [Fact]
    public void CallLater_OrderedByDeadlineThenByScheduling()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var order = new List<string>();
        loop.CallLater(2, () => order.Add("b2"));
        loop.CallLater(1, () => order.Add("a1"));
        loop.CallAt(2, () => order.Add("c2"));   // same deadline as b2, scheduled later
        loop.CallLater(0.5, () => order.Add("z"));
        loop.CallLater(2, () => { order.Add("d2"); loop.Stop(); });
        loop.RunForever();
        Assert.Equal(["z", "a1", "b2", "c2", "d2"], order);
    }

    [Fact]
    public void CallLater_SameDeadlineFromDifferentDelays_RunInSchedulingOrder()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var order = new List<string>();
        loop.CallLater(2, () => order.Add("first"));             // due at 2, scheduled at 0
        loop.CallLater(1, () => loop.CallLater(1, () => order.Add("second"))); // due at 2, scheduled at 1
        loop.CallLater(3, loop.Stop);
        loop.RunForever();
        Assert.Equal(["first", "second"], order);
    }

    [Fact]
    public void Timer_NeverFiresEarly_RealClock()
    {
        using var loop = new EventLoop();
        var early = new List<string>();
        int pending = 0;
        foreach (var d in new[] { 0.001, 0.0015, 0.003, 0.0101, 0.02 })
        {
            pending++;
            TimerHandle? h = null;
            h = loop.CallLater(d, () =>
            {
                if (loop.Time() < h!.When) early.Add($"{d}: {loop.Time()} < {h.When}");
                if (--pending == 0) loop.Stop();
            });
        }
        loop.RunForever();
        Assert.Empty(early);
    }

    [Fact]
    public void Sleep_NeverReturnsEarly_RealClock() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        foreach (var d in new[] { 0.0005, 0.002, 0.011 })
        {
            double start = loop.Time();
            await Aio.Sleep(d);
            Assert.True(loop.Time() - start >= d, $"slept {loop.Time() - start} < {d}");
        }
    });

    [Fact]
    [Trait("asyncio", "call_later(math.inf).when() and call_at(math.inf).when() are inf")]
    public void TimerHandle_InfiniteDeadline_WhenIsInfinity()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        Assert.Equal(double.PositiveInfinity, loop.CallLater(double.PositiveInfinity, () => { }).When);
        Assert.Equal(double.PositiveInfinity, loop.CallAt(double.PositiveInfinity, () => { }).When);
        Assert.Equal(double.PositiveInfinity, loop.CallLater(System.Threading.Timeout.InfiniteTimeSpan, () => { }).When);
        Assert.Equal(double.PositiveInfinity, loop.CallLater(1e10, () => { }).When);   // beyond the ticks (~290 years): never, as documented
        Assert.Equal(12345.678, loop.CallAt(12345.678, () => { }).When, 6);
    }

    [Fact]
    public void TimerHandle_Cancelled_CallbackDoesNotRun()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        bool ran = false;
        var h = loop.CallLater(1, () => ran = true);
        Assert.Equal(1.0, h.When, 6);
        h.Cancel();
        Assert.True(h.IsCancelled);
        loop.CallLater(2, loop.Stop);
        loop.RunForever();
        Assert.False(ran);
    }

    [Fact]
    public void CallLater_NegativeOrZeroDelay_RunsOnNextIteration()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallLater(-5, () => order.Add("late"));
        loop.CallSoon(() => order.Add("soon"));
        loop.CallLater(0.01, loop.Stop);
        loop.RunForever();
        Assert.Equal(["soon", "late"], order);
        Assert.Throws<ArgumentException>(() => loop.CallLater(double.NaN, () => { }));
    }

    [Fact]
    [Trait("asyncio", "test_base_events: call_later(-1) and call_later(-2) run in the order of their past deadlines")]
    public void CallLater_NegativeDelays_RunInTheOrderOfTheirPastDeadlines()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var order = new List<string>();
        double whenC = double.NaN;
        loop.CallLater(5, () =>
        {
            loop.CallLater(1, loop.Stop);
            loop.CallLater(-1, () => order.Add("a"));
            loop.CallLater(-2, () => order.Add("b"));
            whenC = loop.CallLater(TimeSpan.FromSeconds(-3), () => order.Add("c")).When;
            loop.CallLater(0, () => order.Add("d"));
        });
        loop.RunForever();
        Assert.Equal(["c", "b", "a", "d"], order);
        Assert.Equal(2.0, whenC, 6);
    }

    // A long batch of ready callbacks does not hold sleeps back (RunOnce, step 5): after every 64 callbacks
    // of the batch, if more remain, the loop reads the clock and resumes the sleeps that have ended, before
    // the rest of the batch. Timers with a callback keep to the next iteration's start, as in asyncio.

    /// <summary>Sleeps <paramref name="seconds"/> (begun at the call: a hot coroutine), then records <paramref name="name"/>.</summary>
    static async Coroutine SleepThenAdd(List<string> order, double seconds, string name)
    {
        await Aio.Sleep(seconds);
        order.Add(name);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LongBatch_SleepThatEndsMeanwhile_ResumesAfterTheNext64CallbacksNotAfterTheBatch(bool debug)
    {
        using var loop = new EventLoop(new LoopOptions { Debug = debug });
        var order = new List<string>();
        LoopBatch.Queue(loop, order, 200, () =>
        {
            _ = SleepThenAdd(order, 0.001, "slept");
            LoopBatch.SpinPast(loop, loop.Time() + 0.001);   // the sleep's deadline counts from the call, so it has passed
        });
        loop.RunForever();
        // Callbacks 0-63, then the look at the clock: the sleep resumes before callback 64.
        Assert.Equal(64, order.IndexOf("slept"));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => i.ToString()), order.Where(x => x != "slept"));
    }

    [Fact]
    public void LongRowOfTaskStarts_SleepThatEndsMeanwhile_ResumesAfterTheNext64Starts()
    {
        // Tasks made in a row start from one ready item (a run, EventLoop.Tasks.cs): the run looks at the sleeps
        // every 64 starts, as a batch of separate items does.
        using var loop = new EventLoop();
        var order = new List<string>();
        loop.CallSoon(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                int k = i;
                loop.CreateTask(() =>
                {
                    if (k == 0)
                    {
                        _ = SleepThenAdd(order, 0.001, "slept");
                        LoopBatch.SpinPast(loop, loop.Time() + 0.001);
                    }
                    order.Add(k.ToString());
                    if (k == 199) loop.Stop();
                    return Task.CompletedTask;
                });
            }
        });
        loop.RunForever();
        Assert.Equal(64, order.IndexOf("slept"));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => i.ToString()), order.Where(x => x != "slept"));
    }

    [Fact]
    public void LongBatch_SleepsEndingMeanwhile_ResumeByDeadline()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        LoopBatch.Queue(loop, order, 100, () =>
        {
            _ = SleepThenAdd(order, 0.003, "3ms");
            _ = SleepThenAdd(order, 0.001, "1ms");
            _ = SleepThenAdd(order, 0.002, "2ms");
            LoopBatch.SpinPast(loop, loop.Time() + 0.003);
        });
        loop.RunForever();
        Assert.Equal(["1ms", "2ms", "3ms", "64"], order.Skip(64).Take(4));
    }

    [Fact]
    public void LongBatch_SleepNotYetEnded_WaitsAndIsNeverEarly()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        double begun = double.NaN, resumed = double.NaN;
        async Coroutine Sleeper()
        {
            begun = loop.Time();
            await Aio.Sleep(0.05);
            resumed = loop.Time();
            order.Add("slept");
        }
        LoopBatch.Queue(loop, order, 200, () => { _ = Sleeper(); });
        loop.RunForever();
        Assert.Equal(200, order.Count);   // the batch ended long before the sleep
        loop.CallLater(0.1, loop.Stop);
        loop.RunForever();
        Assert.Equal("slept", order[^1]);
        Assert.True(resumed - begun >= 0.05, $"slept {resumed - begun} s");
    }

    [Fact]
    public void LongBatch_SleepAgainAfterEachResume_ResumesOncePerLook()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        async Coroutine Again()
        {
            for (int i = 0; i < 1000; i++)
            {
                await Aio.Sleep(0.000001);
                order.Add("t");
            }
        }
        LoopBatch.Queue(loop, order, 256, () =>
        {
            _ = Again();
            LoopBatch.SpinPast(loop, loop.Time() + 0.001);
        });
        loop.RunForever();
        // Looks after callbacks 63, 127 and 191 (none after 255, the last): the clock is read once per look,
        // so the sleep begun by a resume during a look ends after it.
        int inBatch = order.Take(order.IndexOf("255") + 1).Count(x => x == "t");
        Assert.InRange(inBatch, 1, 3);
        Assert.Equal("t", order[64]);
        Assert.Equal(Enumerable.Range(0, 256).Select(i => i.ToString()), order.Where(x => x != "t"));
    }

    [Fact]
    public void LongBatch_OfExactly64_NoLookAfterTheLastCallback_AsInAsyncio()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        LoopBatch.Queue(loop, order, 64, () =>
        {
            _ = SleepThenAdd(order, 0.001, "slept");
            loop.CallSoon(() => order.Add("soon"));
            LoopBatch.SpinPast(loop, loop.Time() + 0.001);
        });
        loop.RunForever();
        loop.CallLater(0.01, loop.Stop);
        loop.RunForever();
        // The next iteration: first what the batch queued, then the sleep that ended (step 4 queues it after).
        Assert.Equal(["soon", "slept"], order.Skip(64));
    }

    [Fact]
    public void LongBatch_TimerCallbackThatComesDueMeanwhile_WaitsForTheNextIterationAfterWhatTheBatchQueued()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        LoopBatch.Queue(loop, order, 200, () =>
        {
            loop.CallSoon(() => order.Add("soon"));
            var h = loop.CallLater(0.001, () => order.Add("timer"));
            loop.CallLater(-1, () => order.Add("past"));
            LoopBatch.SpinPast(loop, h.When);
        });
        loop.RunForever();
        Assert.Equal(200, order.Count);   // no timer callback ran inside the batch
        loop.CallLater(0.01, loop.Stop);
        loop.RunForever();
        Assert.Equal(["soon", "past", "timer"], order.Skip(200));
    }

    [Fact]
    public void LongBatch_ResultArrivesBeforeTheTimeoutExpires_ResultWinsAsInAsyncio() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var fut = loop.CreateFuture<int>();
        AioTask<int>? waiter = null;
        var batchDone = loop.CreateFuture();
        for (int i = 0; i < 200; i++)
        {
            int k = i;
            loop.CallSoon(() =>
            {
                if (k == 0)
                {
                    // The waiter starts here, eagerly, up to its wait: its timeout's deadline is set in the same
                    // callback that delivers the result, so no stall of the loop's thread can let the deadline pass
                    // before the result arrives (started in an earlier iteration, a stall of 50 ms before this
                    // batch made the timeout due when the batch began, and asyncio too then times out).
                    loop.EagerTasks = true;
                    waiter = loop.CreateTask(() => Aio.WaitFor(fut, 0.05));
                    loop.EagerTasks = false;
                    fut.SetResult(42);   // in time; the waiter's wake-up is queued for the next iteration
                    LoopBatch.SpinPast(loop, loop.Time() + 0.1);   // the timeout's deadline passes during the batch
                }
                if (k == 199) batchDone.SetResult();
            });
        }
        await batchDone;
        Assert.Equal(42, await waiter!);
    });

    [Fact]
    public void LongBatch_SleepOfATaskThatEndsMeanwhile_ResumesInTheTask()
    {
        using var loop = new EventLoop();
        var order = new List<string>();
        AioTask? sleeper = null, resumedIn = null;
        LoopBatch.Queue(loop, order, 200, () =>
        {
            // An eager task's first step runs here: its sleep begins inside the batch.
            loop.EagerTasks = true;
            sleeper = loop.CreateTask(async () =>
            {
                await Aio.Sleep(0.001);
                resumedIn = Aio.CurrentTask;
                order.Add("slept");
            });
            loop.EagerTasks = false;
            LoopBatch.SpinPast(loop, loop.Time() + 0.001);
        });
        loop.RunForever();
        Assert.Equal(64, order.IndexOf("slept"));
        Assert.Same(sleeper, resumedIn);
    }

    [Fact]
    public void IdleLoop_NextTimerAFewHundredMsAway_BlocksUntilItWithoutPolling()
    {
        // With nothing to do, the loop waits in the reactor until the next deadline: one blocking wait, or a
        // few more when signals interrupt it (the runtime suspends threads for a collection with signals, and
        // the rest of the suite collects often), not a busy loop (no blocking wait at all) nor a polling
        // interval (one wait per tick: any interval below ~15 ms makes more than 20 here).
        using var loop = new EventLoop();
        double due = 0, firedAt = 0;
        int pollsBefore = 0;
        loop.CallSoon(() =>
        {
            pollsBefore = loop.BlockingPolls;
            due = loop.Time() + 0.3;
            loop.CallLater(0.3, () => { firedAt = loop.Time(); loop.Stop(); });
        });
        loop.RunForever();
        Assert.True(firedAt >= due, $"fired at {firedAt}, due {due}");
        Assert.InRange(loop.BlockingPolls - pollsBefore, 1, 20);
    }

    [Fact]
    public void Timer_MonthsAway_LoopWaitsForItWithoutOverflowing()
    {
        // The portable reactor waits in whole milliseconds of an int: a deadline 200 days away is more
        // than int.MaxValue ms, and the conversion must cap it instead of overflowing.
        using var loop = new EventLoop(new LoopOptions { PortableReactor = true });
        bool fired = false;
        loop.CallLater(TimeSpan.FromDays(200), () => fired = true);
        Assert.Null(AioTest.RunForeverUntilStoppedFromAnotherThread(loop));
        Assert.False(fired);
        Assert.Equal(0, ReactorTimeout.ToMilliseconds(0));
        Assert.Equal(-1, ReactorTimeout.ToMilliseconds(-1));
        Assert.Equal(1, ReactorTimeout.ToMilliseconds(1));
        Assert.Equal(int.MaxValue, ReactorTimeout.ToMilliseconds(EventLoop.NeverTicks));
    }

    [Fact]
    public void Timers_OneMillionPending_FireInDeadlineOrder()
    {
        const int N = 1_000_000;
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var rng = new Random(1);
        int fired = 0;
        double last = -1;
        bool ordered = true;
        Action<object?> cb = o =>
        {
            double when = (double)o!;
            if (when < last) ordered = false;
            last = when;
            if (++fired == N) loop.Stop();
        };
        for (int i = 0; i < N; i++)
        {
            double delay = rng.Next(0, 100_000) / 1000.0;
            loop.CallLater(delay, cb, loop.TicksToSeconds(EventLoop.DelayToTicks(delay, "d")));
        }
        Assert.Equal(N, loop.TimerSlotsHeld);
        loop.RunForever();
        Assert.Equal(N, fired);
        Assert.True(ordered);
        Assert.Equal(0, loop.TimerSlotsHeld);
    }

    [Fact]
    public void Timers_ManyDelaysScheduledOverTime_FireByDeadlineThenSchedulingOrder()
    {
        // 300 delays (more than there are lanes), scheduled in random order over several points in time, so
        // that lanes fill, empty and pass to other delays while timers of the heap and of many lanes share
        // deadlines: every timer fires at its deadline, ties in the order they were scheduled.
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        // Whole milliseconds as TimeSpans convert to exact clock ticks, so deadlines tie exactly.
        var rng = new Random(7);
        var expected = new List<(long Due, int Seq)>();
        var fired = new List<(long Due, int Seq)>();
        var firedAt = new List<double>();
        int seq = 0, pending = 0;
        void ScheduleSome(long startMs)
        {
            for (int i = 0; i < 2000; i++)
            {
                int delayMs = rng.Next(0, 300);
                var id = (startMs + delayMs, seq++);
                expected.Add(id);
                pending++;
                loop.CallLater(TimeSpan.FromMilliseconds(delayMs), () =>
                {
                    fired.Add(id);
                    firedAt.Add(loop.Time());
                    if (--pending == 0 && expected.Count == 10_000) loop.Stop();
                });
            }
        }
        for (int round = 0; round < 5; round++)
        {
            long startMs = round * 200;
            loop.CallLater(TimeSpan.FromMilliseconds(startMs), () => ScheduleSome(startMs));
        }
        loop.RunForever();
        Assert.Equal(expected.OrderBy(e => e.Due).ThenBy(e => e.Seq), fired);
        for (int i = 0; i < fired.Count; i++) Assert.Equal(fired[i].Due / 1000.0, firedAt[i], 9); // at its deadline
    }

    [Fact]
    public void Timers_OfAHundredDelays_WaitInLanesNotInTheHeap()
    {
        // W4's profile: 100,000 sleeps of 101 delays kept mostly in the heap spent a sixth of their time
        // sifting it. With a lane per delay the heap stays at its first small chunk.
        const int N = 20_000;
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        int fired = 0;
        Action count = () => { if (++fired == N) loop.Stop(); };
        for (int i = 0; i < N; i++) loop.CallLater(i * 7919 % 101 / 1000.0, count);
        Assert.Equal(N, loop.TimerSlotsHeld);
        Assert.True(loop.TimerHeapCapacity <= 128, $"heap capacity {loop.TimerHeapCapacity}"); // each delay's first timer
        Assert.Equal(101, loop.TimerLanes);
        loop.RunForever();
        Assert.Equal(N, fired);
    }

    [Fact]
    public void TimerBurst_OnceFired_HeapAndLaneMemoryGivenBack()
    {
        // 100,000 timers of distinct delays (the heap) and 100,000 of one delay (a lane, whose first 2,032
        // slots are in its small chunks): while they are pending they hold about a hundred 64 KiB chunks;
        // once they have fired, a few at most remain.
        const int N = 100_000;
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        int fired = 0;
        Action count = () => { if (++fired == 2 * N) loop.Stop(); };
        for (int i = 0; i < N; i++)
        {
            loop.CallLater(1 + i * 1e-6, count);
            loop.CallLater(2, count);
        }
        Assert.True(loop.TimerHeapCapacity >= N, $"heap capacity {loop.TimerHeapCapacity}");
        Assert.Equal(1, loop.TimerLanes); // a delay used once takes no lane
        Assert.True(loop.TimerChunksInUse >= 2 * N / 2048 - 2, $"{loop.TimerChunksInUse} chunks in use");
        loop.RunForever();
        Assert.Equal(2 * N, fired);
        Assert.True(loop.TimerHeapCapacity <= 2 * 2048, $"heap capacity {loop.TimerHeapCapacity} after the burst");
        Assert.True(loop.TimerChunksInUse <= 1, $"{loop.TimerChunksInUse} chunks still in use after the burst");
    }

    [Fact]
    public void TimerBurst_Repeated_ReusesTheSlotMemoryOfTheFirst()
    {
        // 20,000 timers of 101 delays, as W4 schedules them: a lane each, about 200 timers in 240 slots of
        // small chunks (16, 32, 64, 128). A second burst of the same size finds all of them kept for reuse:
        // it allocates only its handles.
        const int N = 20_000;
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        int fired = 0;
        Action count = () => { if (++fired % N == 0) loop.Stop(); };
        long Burst()
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < N; i++) loop.CallLater(i % 101 / 1000.0, count);
            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            loop.RunForever();
            return bytes;
        }
        long first = Burst();
        long second = Burst();
        Assert.Equal(2 * N, fired);
        Assert.True(second <= first - 101 * 240 * 32, $"first burst {first} bytes, second {second}: its slot chunks were not reused");
    }

    [Fact]
    public void Lanes_FewTimersOfManyDelays_TakeNoFullChunks()
    {
        // Each of the eight lanes used to take a 64 KiB chunk for its first timer: half a megabyte of fresh
        // memory for eight sleeps (W4's first burst paid it, and its first garbage collection came sooner).
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        int fired = 0;
        Action count = () => { if (++fired == 16) loop.Stop(); };
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 16; i++) loop.CallLater(1 + i % 8, count);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, loop.TimerChunksInUse);
        Assert.True(bytes < 64 * 1024, $"{bytes} bytes for 16 timers of 8 delays");
        loop.RunForever();
        Assert.Equal(16, fired);
    }

    [Fact]
    public void Lane_AppendedWhileItFires_KeepsOrderThroughCompactionAndGrowth()
    {
        // One delay, so every timer is in one lane: a steady trickle (the lane's small chunk fills at its end
        // while most of it has fired, so it is compacted), then a burst while some are pending (it grows past
        // a full chunk with its head in the middle). Every timer fires at its deadline, in scheduling order.
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        const double Delay = 0.05;
        var due = new List<double>();
        var order = new List<int>();
        var late = new List<double>();
        int scheduled = 0;
        void Schedule()
        {
            int id = scheduled++;
            double when = loop.Time() + Delay;
            due.Add(when);
            loop.CallLater(Delay, () =>
            {
                order.Add(id);
                late.Add(loop.Time() - due[id]);
                if (order.Count == 200 * 3 + 5000) loop.Stop();
            });
        }
        int ticks = 0;
        void Tick()
        {
            for (int i = 0; i < 3; i++) Schedule();
            if (++ticks == 100) for (int i = 0; i < 5000; i++) Schedule();
            if (ticks < 200) loop.CallLater(0.01, Tick);
        }
        loop.CallSoon(Tick);
        loop.RunForever();
        Assert.Equal(Enumerable.Range(0, scheduled), order);
        Assert.All(late, l => Assert.InRange(l, -1e-9, 1e-9)); // at its deadline (up to the rounding of seconds)
    }

    [Fact]
    public void Sleep_TimersContinuationTableFull_StillWakesAndCancels() => AioTest.Run(async () =>
    {
        // Sleeps keep an index into a table of continuations instead of a delegate; when the table is full,
        // a sleep falls back to an object of its own, whose continuation must always have its place.
        var loop = Aio.GetRunningLoop();
        int added = 0;
        for (int i = 0; i < 100; i++)
        {
            int k = i;
            if (loop.TryAddTimerContinuation(_ => GC.KeepAlive(k))) added++;
        }
        Assert.InRange(added, 1, 99); // the table filled up
        double start = loop.Time();
        await Aio.Sleep(1);
        Assert.Equal(start + 1, loop.Time(), 6);
        var sleeper = Aio.CreateTask(() => Aio.Sleep(10).AsTask());
        await Aio.Sleep(0.5);
        sleeper.Cancel("stop");
        await Assert.ThrowsAsync<CancelledError>(async () => await sleeper);
        Assert.True(sleeper.IsCancelled);
        Assert.Equal(start + 1.5, loop.Time(), 6);
    });

    [Fact]
    public void ScheduleAndCancel_Forever_StaysBounded()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        int max = 0;
        for (int i = 0; i < 200_000; i++)
        {
            var h = loop.CallLater(1000 + i % 7, () => { });
            h.Cancel();
            max = Math.Max(max, loop.TimerSlotsHeld);
        }
        Assert.True(max <= 2048, $"held up to {max} cancelled timers");
    }

    [Fact]
    public void Sleeps_ThreeHundredThousandOfOneDelay_AllWakeInOrder() => AioTest.Run(async () =>
    {
        // One lane grows past the prefetch threshold: its chunks are then prepared on a pool thread.
        const int N = 300_000;
        var loop = Aio.GetRunningLoop();
        int woke = 0;
        bool ordered = true;
        async Task One(int i)
        {
            await Aio.Sleep(1);
            if (woke++ != i) ordered = false;
        }
        var all = new Task[N];
        for (int i = 0; i < N; i++) all[i] = One(i);
        Assert.Equal(N, loop.TimerSlotsHeld);
        await Task.WhenAll(all);
        Assert.Equal(N, woke);
        Assert.True(ordered);
        Assert.Equal(1.0, loop.Time(), 9);
    });
}
