namespace Asyncio.Tests.Sync;

/// <summary>
/// Cancels waiters of every primitive at random points, across many seeds, and checks that nothing is
/// lost: items conserved, permits conserved, mutual exclusion kept, no waiter stranded. Each seed also
/// shuffles the order of ready callbacks (<see cref="LoopOptions.ScheduleSeed"/>), so a seed is a
/// reproducible schedule: a failure names its seed.
/// </summary>
public class RandomisedCancellationTests
{
    const int Seeds = 150;

    public static IEnumerable<object[]> SeedBatches() => Enumerable.Range(0, 5).Select(b => new object[] { b });

    static LoopOptions Options(int seed) => new() { VirtualTime = true, ScheduleSeed = seed };

    static IEnumerable<int> SeedsOf(int batch) => Enumerable.Range(batch * Seeds / 5, Seeds / 5);

    /// <summary>Cancels random tasks of <paramref name="victims"/> (and random tokens) at random moments.</summary>
    static async Task Chaos(Random rnd, IReadOnlyList<AioTask> victims, List<CancellationTokenSource> tokens, Action? extra, int rounds)
    {
        for (int i = 0; i < rounds; i++)
        {
            if (rnd.Next(3) == 0) await Aio.Sleep(0);
            else await Aio.Sleep(rnd.NextDouble() * 0.002);
            extra?.Invoke(); // may wake a waiter, which the cancellation below may then hit before it resumes
            var v = victims[rnd.Next(victims.Count)];
            if (!v.IsDone) v.Cancel();
            if (tokens.Count > 0 && rnd.Next(4) == 0)
            {
                int k = rnd.Next(tokens.Count);
                tokens[k].Cancel();
                tokens[k] = new CancellationTokenSource();
            }
        }
    }

    static CancellationToken MaybeToken(Random rnd, List<CancellationTokenSource> tokens) =>
        tokens.Count > 0 && rnd.Next(2) == 0 ? tokens[rnd.Next(tokens.Count)].Token : default;

    [Theory]
    [MemberData(nameof(SeedBatches))]
    public void Queue_RandomCancellations_EveryItemDeliveredExactlyOnce(int batch)
    {
        foreach (int seed in SeedsOf(batch))
        {
            AioTest.Run(async () =>
            {
                var rnd = new Random(seed);
                AsyncQueue<int> q = (seed % 3) switch
                {
                    0 => new AsyncQueue<int>(1 + rnd.Next(3)),
                    1 => new AsyncLifoQueue<int>(1 + rnd.Next(3)),
                    _ => new AsyncPriorityQueue<int>(rnd.Next(2) == 0 ? 0 : 2),
                };
                var tokens = Enumerable.Range(0, 2).Select(_ => new CancellationTokenSource()).ToList();
                var produced = new List<int>();
                var consumed = new List<int>();
                const int producers = 3, perProducer = 30, consumers = 3;

                async Task Producer(int p)
                {
                    for (int i = 0; i < perProducer; i++)
                    {
                        int item = p * 1000 + i;
                        while (true)
                        {
                            try
                            {
                                await q.PutAsync(item, MaybeToken(rnd, tokens));
                                produced.Add(item);
                                break;
                            }
                            catch (OperationCanceledException) { /* not put: retry */ }
                        }
                        try { if (rnd.Next(2) == 0) await Aio.Sleep(0); }
                        catch (OperationCanceledException) { }
                    }
                }

                async Task Consumer()
                {
                    while (true)
                    {
                        try
                        {
                            consumed.Add(await q.GetAsync(MaybeToken(rnd, tokens)));
                            q.TaskDone();
                            if (rnd.Next(3) == 0) await Aio.Sleep(0);
                        }
                        catch (OperationCanceledException) { /* nothing taken: go on */ }
                        catch (QueueShutDownError) { return; }
                    }
                }

                var prod = Enumerable.Range(0, producers).Select(p => Aio.CreateTask(() => Producer(p))).ToList();
                var cons = Enumerable.Range(0, consumers).Select(_ => Aio.CreateTask(Consumer)).ToList();
                // The chaos also puts and gets right before it cancels, which exercises the "woken, then
                // cancelled before it ran" paths (a claim or a reserved slot passed on).
                int extraItem = 100_000;
                void PutOrGet()
                {
                    if (rnd.Next(2) == 0 && q.TryPut(extraItem)) produced.Add(extraItem++);
                    if (rnd.Next(3) == 0 && q.TryGet(out var y)) { consumed.Add(y); q.TaskDone(); }
                }
                var chaos = Aio.CreateTask(() => Chaos(rnd, prod.Concat(cons).ToList(), tokens, PutOrGet, 60));
                await Aio.Timeout(60, async () =>
                {
                    foreach (var t in prod) await t;
                    await q.JoinAsync();
                    q.Shutdown();
                    foreach (var t in cons) await t;
                });
                chaos.Cancel();
                try { await chaos; } catch (OperationCanceledException) { }

                Assert.True(produced.Order().SequenceEqual(consumed.Order()), $"seed {seed}: items lost or duplicated");
                Assert.True(consumed.Count >= producers * perProducer);
                Assert.True(q.IsEmpty, $"seed {seed}");
                Assert.Equal(0, q.GetterCount);
                Assert.Equal(0, q.PutterCount);
                Assert.Equal(0, q.Unfinished);
                q.AssertInvariants();
                foreach (var c in tokens) c.Dispose();
            }, Options(seed));
        }
    }

    [Theory]
    [MemberData(nameof(SeedBatches))]
    public void Semaphore_RandomCancellations_PermitsConservedAndNeverExceeded(int batch)
    {
        foreach (int seed in SeedsOf(batch))
        {
            AioTest.Run(async () =>
            {
                var rnd = new Random(seed);
                int permits = 1 + rnd.Next(3);
                var sem = seed % 2 == 0 ? new AsyncSemaphore(permits) : new AsyncBoundedSemaphore(permits);
                var tokens = Enumerable.Range(0, 2).Select(_ => new CancellationTokenSource()).ToList();
                int holders = 0, maxHolders = 0, acquisitions = 0;

                async Task Worker()
                {
                    for (int i = 0; i < 20; i++)
                    {
                        try
                        {
                            await sem.AcquireAsync(MaybeToken(rnd, tokens));
                        }
                        catch (OperationCanceledException) { continue; }
                        holders++;
                        acquisitions++;
                        maxHolders = Math.Max(maxHolders, holders);
                        try { await Aio.Sleep(rnd.Next(2) == 0 ? 0 : 0.0005); }
                        catch (OperationCanceledException) { }
                        finally
                        {
                            holders--;
                            sem.Release();
                        }
                    }
                }

                var workers = Enumerable.Range(0, 6).Select(_ => Aio.CreateTask(Worker)).ToList();
                var chaos = Aio.CreateTask(() => Chaos(rnd, workers, tokens, null, 60));
                await Aio.Timeout(60, async () => { foreach (var w in workers) await w; });
                chaos.Cancel();
                try { await chaos; } catch (OperationCanceledException) { }

                Assert.True(maxHolders <= permits, $"seed {seed}: {maxHolders} holders of {permits} permits");
                Assert.Equal(permits, sem.Value);
                Assert.Equal(0, sem.WaiterCount);
                Assert.False(sem.IsLocked);
                Assert.True(acquisitions > 0);
                foreach (var c in tokens) c.Dispose();
            }, Options(seed));
        }
    }

    [Theory]
    [MemberData(nameof(SeedBatches))]
    public void LockAndCondition_RandomCancellations_ExclusionKeptAndEveryConsumerFinishes(int batch)
    {
        foreach (int seed in SeedsOf(batch))
        {
            AioTest.Run(async () =>
            {
                var rnd = new Random(seed);
                var cond = new AsyncCondition();
                var tokens = Enumerable.Range(0, 2).Select(_ => new CancellationTokenSource()).ToList();
                int inside = 0, available = 0, taken = 0;
                void Enter() { Assert.Equal(0, inside); inside = 1; } // mutual exclusion
                void Exit() => inside = 0;
                const int items = 40;
                bool done = false;

                async Task Consumer()
                {
                    while (true)
                    {
                        try
                        {
                            using (await cond.AcquireAsync(MaybeToken(rnd, tokens)))
                            {
                                Enter();
                                try
                                {
                                    Exit(); // the wait releases the lock...
                                    // ...and always comes back holding it, even when cancelled.
                                    try { await cond.WaitForAsync(() => available > 0 || done, MaybeToken(rnd, tokens)); }
                                    finally { Assert.True(cond.IsLocked); Enter(); }
                                    if (available > 0) { available--; taken++; }
                                    else if (done) return;
                                }
                                finally { Exit(); }
                            }
                        }
                        catch (OperationCanceledException) { }
                    }
                }

                async Task Producer()
                {
                    for (int i = 0; i < items; i++)
                    {
                        while (true)
                        {
                            try
                            {
                                using (await cond.AcquireAsync())
                                {
                                    Enter();
                                    available++;
                                    cond.Notify();
                                    Exit();
                                }
                                break;
                            }
                            catch (OperationCanceledException) { }
                        }
                        try { await Aio.Sleep(rnd.Next(2) == 0 ? 0 : 0.0003); }
                        catch (OperationCanceledException) { }
                    }
                }

                var consumers = Enumerable.Range(0, 4).Select(_ => Aio.CreateTask(Consumer)).ToList();
                var producer = Aio.CreateTask(Producer);
                var chaos = Aio.CreateTask(() => Chaos(rnd, consumers, tokens, null, 40));
                await Aio.Timeout(60, async () =>
                {
                    await producer;
                    chaos.Cancel();
                    try { await chaos; } catch (OperationCanceledException) { }
                    // Every item is taken with no notification beyond the producer's one per item, although
                    // consumers were cancelled mid-wait: a notification lost on the way would leave an item
                    // behind with every consumer waiting, until the timeout fails the test.
                    while (available > 0) await Aio.Sleep(0.001);
                    using (await cond.AcquireAsync())
                    {
                        done = true;
                        cond.NotifyAll();
                    }
                    foreach (var c in consumers) await c;
                });

                Assert.Equal(items, taken);
                Assert.False(cond.IsLocked);
                Assert.Equal(0, cond.WaiterCount);
                Assert.Equal(0, cond.Lock.WaiterCount);
                foreach (var c in tokens) c.Dispose();
            }, Options(seed));
        }
    }

    [Theory]
    [MemberData(nameof(SeedBatches))]
    public void EventAndBarrier_RandomCancellations_NoWaiterStranded(int batch)
    {
        foreach (int seed in SeedsOf(batch))
        {
            AioTest.Run(async () =>
            {
                var rnd = new Random(seed);
                var ev = new AsyncEvent();
                var barrier = new AsyncBarrier(3);
                var tokens = Enumerable.Range(0, 2).Select(_ => new CancellationTokenSource()).ToList();
                int woke = 0;

                async Task Worker()
                {
                    for (int i = 0; i < 10; i++)
                    {
                        try { await barrier.WaitAsync(MaybeToken(rnd, tokens)); }
                        catch (OperationCanceledException) { }
                        catch (BrokenBarrierError) { }
                    }
                    while (true)
                    {
                        try
                        {
                            await ev.WaitAsync(MaybeToken(rnd, tokens));
                            woke++;
                            return;
                        }
                        catch (OperationCanceledException) { }
                    }
                }

                var workers = Enumerable.Range(0, 5).Select(_ => Aio.CreateTask(Worker)).ToList();
                // An extra party, so that the barrier can fill whatever was cancelled.
                var helper = Aio.CreateTask(async () =>
                {
                    while (true)
                    {
                        try { await barrier.WaitAsync(); }
                        catch (BrokenBarrierError) { }
                    }
                });
                var chaos = Aio.CreateTask(() => Chaos(rnd, workers, tokens, null, 30));
                await Aio.Timeout(60, async () =>
                {
                    while (!workers.All(w => w.IsDone))
                    {
                        await Aio.Sleep(0.005);
                        switch (rnd.Next(6))
                        {
                            case 0: ev.Set(); break;
                            case 1: ev.Clear(); break;
                            case 2: barrier.Reset(); break; // unsticks a round that lacks parties
                        }
                    }
                });
                helper.Cancel();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await helper);
                chaos.Cancel();
                try { await chaos; } catch (OperationCanceledException) { }

                Assert.Equal(0, ev.WaiterCount);
                Assert.Equal(0, barrier.WaitingCount);
                Assert.Equal(5, woke);
                foreach (var c in tokens) c.Dispose();
            }, Options(seed));
        }
    }
}
