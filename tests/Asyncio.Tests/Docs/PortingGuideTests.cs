using System.Net.Sockets;
using System.Text;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Docs;

/// <summary>
/// The C# side of every example in docs/porting.md, run: each test is one section's code (with virtual time where it
/// sleeps), plus the assertions that say what the guide claims it does.
/// </summary>
public class PortingGuideTests
{
    static readonly LoopOptions Virtual = new() { VirtualTime = true };

    // ---- 0. The program ----

    static async Task<int> Compute()
    {
        await Aio.Sleep(0);
        return 42;
    }

    [Fact]
    public void Section0_AioRunTakesTheMainCoroutine()
    {
        var printed = new List<int>();
        Aio.Run(async () =>
        {
            int result = await Compute();
            printed.Add(result);
        });
        int direct = Aio.Run(Compute);
        Assert.Equal([42], printed);
        Assert.Equal(42, direct);
    }

    // ---- 1. A coroutine starts when it is called ----

    readonly List<string> _log = new();

    async Task Greet(string who)
    {
        _log.Add($"hello {who}");
        await Aio.Sleep(1);
        _log.Add($"bye {who}");
    }

    [Fact]
    public void Section1_CallingACoroutineRunsItUpToItsFirstAwait()
    {
        Aio.Run(async () =>
        {
            Task pending = Greet("a");        // Python: greet("a") runs nothing yet
            Assert.Equal(["hello a"], _log);  // here it has already run to its first await
            await pending;
            Assert.Equal(["hello a", "bye a"], _log);

            var task = Aio.CreateTask(() => Greet("b"), name: "greeter");
            var same = Aio.CreateTask(Greet, "c");
            Assert.Equal(2, _log.Count);       // neither has started yet, as in asyncio
            await Aio.Gather(task, same);
            Assert.Equal(["hello a", "bye a", "hello b", "hello c", "bye b", "bye c"], _log);
        }, Virtual);
    }

    // ---- 2. Cancellation: CancelledError is an OperationCanceledException ----

    [Fact]
    public void Section2_CatchExceptionMustLetCancellationThrough()
    {
        Aio.Run(async () =>
        {
            var log = new List<string>();
            async Task Worker()
            {
                while (true)
                {
                    try
                    {
                        await Aio.Sleep(1);   // the work
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        log.Add("a failure, logged; the loop goes on");
                    }
                }
            }

            var task = Aio.CreateTask(Worker);
            await Aio.Sleep(2.5);
            task.Cancel("shutting down");
            var error = await Assert.ThrowsAsync<CancelledError>(async () => await task);
            Assert.Equal("shutting down", error.CancelMessage);
            Assert.True(task.IsCancelled);
            Assert.Empty(log);
        }, Virtual);
    }

    [Fact]
    public void Section2_TheFilterAlsoLetsThroughAForeignTimeout_WhichEndsTheTaskCancelled()
    {
        Aio.Run(async () =>
        {
            int attempts = 0;
            async Task Worker()
            {
                while (true)
                {
                    try
                    {
                        await Aio.Sleep(1);
                        attempts++;
                        throw new TaskCanceledException("HttpClient.Timeout elapsed");   // what HttpClient throws on timeout
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                    }
                }
            }

            var task = Aio.CreateTask(Worker);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await task);
            Assert.Equal(1, attempts);        // not retried, as `except Exception:` retries asyncio's TimeoutError
            Assert.True(task.IsCancelled);    // and the task ends cancelled, not failed, though nobody cancelled it
        }, Virtual);
    }

    [Fact]
    public void Section2_TheTrap_CatchExceptionSwallowsTheCancellation()
    {
        Aio.Run(async () =>
        {
            int swallowed = 0;
            bool stop = false;   // the test's own way out: Aio.Run's final cancellation would be swallowed too
            async Task Worker()
            {
                while (!stop)
                {
                    try { await Aio.Sleep(1); }
                    catch (Exception) { swallowed++; }   // ported from `except Exception:` as it is
                }
            }

            var task = Aio.CreateTask(Worker);
            await Aio.Sleep(2.5);
            task.Cancel();
            await Aio.Sleep(10);
            Assert.Equal(1, swallowed);
            Assert.False(task.IsDone);   // one cancellation, one error: the task goes on
            task.Cancel();
            await Aio.Sleep(1);
            Assert.Equal(2, swallowed);
            Assert.False(task.IsDone);
            stop = true;
            await task;
        }, Virtual);
    }

    [Fact]
    public void Section2_CleanUpThenRethrow()
    {
        Aio.Run(async () =>
        {
            var log = new List<string>();
            async Task Worker()
            {
                try { await Aio.Sleep(3600); }
                catch (CancelledError)
                {
                    await Aio.Sleep(0.1);   // an await in the clean-up works: the cancellation was delivered once
                    log.Add("cleaned up");
                    throw;
                }
            }

            var task = Aio.CreateTask(Worker);
            await Aio.Sleep(1);
            task.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await task);
            Assert.Equal(["cleaned up"], log);
        }, Virtual);
    }

    // ---- 3. Timeouts ----

    static async Task<string> Fetch(double seconds)
    {
        await Aio.Sleep(seconds);
        return $"took {seconds} s";
    }

    [Fact]
    public void Section3_TimeoutScopeAndWaitFor()
    {
        Aio.Run(async () =>
        {
            string? data;
            try { data = await Aio.Timeout(2, () => Fetch(5)); }
            catch (TimeoutException) { data = null; }
            Assert.Null(data);

            Assert.Equal("took 1 s", await Aio.Timeout(2, () => Fetch(1)));
            Assert.Equal("took 1 s", await Aio.WaitFor(() => Fetch(1), timeout: 2));
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => Fetch(5), timeout: 2));

            // Given a running Task instead of the function, WaitFor times out but cannot cancel it: it runs on.
            Task<string> running = Fetch(5);
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(running, 2));
            Assert.False(running.IsCompleted);
            Assert.Equal("took 5 s", await running);
        }, Virtual);
    }

    // ---- 4. Task groups and except* ----

    static async Task<string> Download(string name)
    {
        await Aio.Sleep(0.1);
        if (name.StartsWith("bad")) throw new IOException($"cannot fetch {name}");
        return name.ToUpperInvariant();
    }

    [Fact]
    public void Section4_TaskGroupResults()
    {
        Aio.Run(async () =>
        {
            AioTask<string>? a = null, b = null;
            await TaskGroup.Run(tg =>
            {
                a = tg.CreateTask(() => Download("a"));
                b = tg.CreateTask(() => Download("b"));
            });
            Assert.Equal("AB", a!.Result + b!.Result);
        }, Virtual);
    }

    [Fact]
    public void Section4_ExceptStar()
    {
        Aio.Run(async () =>
        {
            var logged = new List<string>();
            try
            {
                await TaskGroup.Run(tg =>
                {
                    tg.CreateTask(() => Download("bad-1"));
                    tg.CreateTask(() => Download("bad-2"));
                    tg.CreateTask(() => Download("c"));
                });
            }
            catch (ExceptionGroup group)
            {
                var (io, others) = group.Split<IOException>();
                foreach (var e in io?.Exceptions ?? []) logged.Add(e.Message);
                if (others != null) throw others;
            }
            Assert.Equal(["cannot fetch bad-1", "cannot fetch bad-2"], logged);

            // Python's OSError covers socket errors; IOException does not.
            var refused = new ExceptionGroup("unhandled errors in a TaskGroup",
                [new IOException("disk"), new SocketException((int)SocketError.ConnectionRefused)]);
            Assert.Single(refused.Split<IOException>().Match!.Exceptions);
            var (os, rest) = refused.Split(e => e is IOException or SocketException);
            Assert.Equal(2, os!.Exceptions.Count);
            Assert.Null(rest);
        }, Virtual);
    }

    // ---- 5. Queues ----

    [Fact]
    public void Section5_ProducerConsumerWithJoin()
    {
        Aio.Run(async () =>
        {
            var queue = new AsyncQueue<int>(maxSize: 10);
            var done = new List<int>();

            async Task Worker()
            {
                while (true)
                {
                    int job = await queue.GetAsync();
                    try
                    {
                        await Aio.Sleep(0.01 * job);
                        done.Add(job);
                    }
                    finally { queue.TaskDone(); }
                }
            }

            var workers = Enumerable.Range(0, 3).Select(_ => Aio.CreateTask(Worker)).ToList();
            for (int job = 1; job <= 20; job++) await queue.PutAsync(job);
            await queue.JoinAsync();   // every job taken and done
            foreach (var w in workers) w.Cancel();
            await Aio.GatherOutcomes(workers);
            Assert.Equal(Enumerable.Range(1, 20), done.Order());
        }, Virtual);
    }

    // ---- 6. Locks and semaphores ----

    [Fact]
    public void Section6_ASemaphoreLimitsConcurrency()
    {
        Aio.Run(async () =>
        {
            var limit = new AsyncSemaphore(3);
            int running = 0, most = 0;

            async Task<string> Polite(string name)
            {
                using (await limit.AcquireAsync())
                {
                    most = Math.Max(most, ++running);
                    try { return await Download(name); }
                    finally { running--; }
                }
            }

            string[] pages = await Aio.Gather(Enumerable.Range(0, 10).Select(i => Polite($"p{i}")));
            Assert.Equal(10, pages.Length);
            Assert.Equal(3, most);

            var myLock = new AsyncLock();   // `lock` is a C# keyword
            using (await myLock.AcquireAsync())
                Assert.True(myLock.IsLocked);
            Assert.False(myLock.IsLocked);
        }, Virtual);
    }

    // ---- 7. Blocking code ----

    static int Checksum(byte[] data) => data.Aggregate(0, (sum, b) => (sum * 31 + b) & 0xffffff);

    [Fact]
    public void Section7_BlockingWorkGoesToAThread()
    {
        Aio.Run(async () =>
        {
            var data = Encoding.UTF8.GetBytes("some large file");
            int loopThread = Environment.CurrentManagedThreadId, workThread = 0;
            int sum = await Aio.ToThread(() =>
            {
                workThread = Environment.CurrentManagedThreadId;
                return Checksum(data);
            });
            Assert.Equal(Checksum(data), sum);
            Assert.NotEqual(loopThread, workThread);
            Assert.Equal(loopThread, Environment.CurrentManagedThreadId);   // and back on the loop

            // An AioTask's Result does not block the loop: before the task is done it throws, as asyncio's result().
            var pending = Aio.CreateTask(async () => await Aio.ToThread(() => Checksum(data)));
            Assert.Throws<InvalidStateError>(() => pending.Result);
            Assert.Equal(Checksum(data), await pending);
        });
    }

    // ---- 8. Streams ----

    [Fact]
    public void Section8_StreamsClientAndServer()
    {
        NetTest.Run(false, async () =>
        {
            await using var server = await Aio.StartServer(async (reader, writer) =>
            {
                await foreach (var line in reader)   // async for line in reader
                {
                    writer.Write(Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(line).ToUpperInvariant()));
                    await writer.Drain();
                }
                writer.Close();
                await writer.WaitClosed();
            }, "127.0.0.1", 0);
            int port = ((System.Net.IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;

            var (r, w) = await Aio.OpenConnection("127.0.0.1", port);
            w.Write("hello\n"u8);
            await w.Drain();
            byte[] answer = await r.ReadLine();
            w.Close();
            await w.WaitClosed();
            Assert.Equal("HELLO\n", Encoding.UTF8.GetString(answer));
        });
    }

    // ---- 9. Context variables ----

    static readonly AsyncLocal<string?> RequestId = new();

    [Fact]
    public void Section9_AsyncLocalFlowsIntoTasks()
    {
        Aio.Run(async () =>
        {
            async Task<string> Handler()
            {
                await Aio.Sleep(0.1);
                return RequestId.Value ?? "none";
            }

            RequestId.Value = "r-1";
            var first = Aio.CreateTask(Handler);    // copies the context now, as create_task does
            RequestId.Value = "r-2";
            var second = Aio.CreateTask(Handler);
            Assert.Equal(["r-1", "r-2"], await Aio.Gather(first, second));

            // Unlike a Python coroutine awaited directly, an async method's change does not come back to its caller.
            async Task SetRequestId(string id)
            {
                RequestId.Value = id;
                await Aio.Sleep(0);
            }
            async Coroutine SetRequestIdCoroutine(string id)
            {
                RequestId.Value = id;
                await Aio.Sleep(0);
            }
            await SetRequestId("r-3");
            Assert.Equal("r-2", RequestId.Value);
            await SetRequestIdCoroutine("r-4");
            Assert.Equal("r-2", RequestId.Value);
        }, Virtual);
    }

    // ---- 10. Testing with virtual time ----

    [Fact]
    public void Section10_AnHourOfSleepTakesNoTime()
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        double elapsed = Aio.Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            double start = loop.Time();
            await Aio.Sleep(3600);
            return loop.Time() - start;
        }, new LoopOptions { VirtualTime = true });
        Assert.Equal(3600, elapsed, precision: 3);
        Assert.True(started.Elapsed < TimeSpan.FromMinutes(1));   // virtual: the bound only says it did not sleep an hour
    }
}
