using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Asyncio.Tests.Loop;

/// <summary>Thread affinity and the bridges into the loop: call_soon_threadsafe, foreign continuations.</summary>
public class ThreadsafeTests
{
    [Fact]
    public void CallSoonThreadsafe_FromOtherThread_WakesTheWaitingLoop()
    {
        using var loop = new EventLoop();
        int loopThread = 0, ranOn = 0;
        loop.CallSoon(() => loopThread = Environment.CurrentManagedThreadId);
        // The loop is blocked in the reactor when the post comes: no timers, nothing ready.
        Assert.Null(AioTest.RunForeverUntilStoppedFromAnotherThread(loop, () => ranOn = Environment.CurrentManagedThreadId));
        Assert.NotEqual(0, ranOn);
        Assert.Equal(loopThread, ranOn);
    }

    [Fact]
    public void CallSoonThreadsafe_LoopWaitingForATimerAMinuteAway_WakesItAtOnce()
    {
        // The loop blocks in the reactor until a timer 60 s away on the real clock: the post must wake it at
        // once, not when the timer is due. The bound is loose (a loaded machine); it fails only if the
        // wake-up is broken and the loop sleeps on until the timer.
        using var loop = new EventLoop();
        bool ran = false, timerFired = false;
        loop.CallLater(60, () => { timerFired = true; loop.Stop(); });
        var watch = Stopwatch.StartNew();
        Assert.Null(AioTest.RunForeverUntilStoppedFromAnotherThread(loop, () => ran = true));
        watch.Stop();
        Assert.True(ran);
        Assert.False(timerFired);
        Assert.True(loop.BlockingPolls >= 1, "the loop never blocked");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"the loop woke after {watch.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task ContextSend_FromOtherThreadAfterTheLoopClosed_ThrowsInsteadOfWaitingForever()
    {
        // A loop's synchronisation context outlives the loop (code may have captured it). Send after Close
        // has no loop to run the callback: it must say so, not block the calling thread for good.
        var loop = new EventLoop();
        SynchronizationContext? context = null;
        loop.RunUntilComplete(loop.CreateTask(async () => { await Aio.Sleep(0); context = SynchronizationContext.Current; }));
        loop.Close();
        Assert.NotNull(context);
        bool ran = false;
        var send = Task.Run(() => context!.Send(_ => ran = true, null));
        Assert.Same(send, await Task.WhenAny(send, Task.Delay(TimeSpan.FromSeconds(10))));
        await Assert.ThrowsAsync<InvalidOperationException>(() => send);
        Assert.False(ran);
    }

    [Fact]
    public async Task ContextSend_AcceptedThenDroppedByClose_ThrowsInsteadOfWaitingForever()
    {
        // The other order of the test above: the loop is still open when Send posts, so the post is accepted,
        // and Close drops it before any iteration runs it. The sender must learn that, not wait for good. The
        // order is forced: the loop is idle (not running), and Close comes once the post is queued.
        var loop = new EventLoop();
        SynchronizationContext? context = null;
        loop.RunUntilComplete(loop.CreateTask(async () => { await Aio.Sleep(0); context = SynchronizationContext.Current; }));
        Assert.NotNull(context);
        bool ran = false;
        var send = Task.Run(() => context!.Send(_ => ran = true, null));
        var waited = Stopwatch.StartNew();
        while (loop.ThreadsafePending == 0 && !send.IsCompleted && waited.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(1);
        Assert.Equal(1, loop.ThreadsafePending);
        loop.Close();
        Assert.Same(send, await Task.WhenAny(send, Task.Delay(TimeSpan.FromSeconds(10))));
        await Assert.ThrowsAsync<InvalidOperationException>(() => send);
        Assert.False(ran);
    }

    [Fact]
    public void CallSoonThreadsafe_HandleCancelledBeforeTheLoopRuns_TheCallbackDoesNotRun()
    {
        // asyncio's call_soon_threadsafe returns a Handle like call_soon's.
        using var loop = new EventLoop();
        int ran = 0;
        Handle kept = default, cancelled = default;
        var poster = new Thread(() =>
        {
            kept = loop.CallSoonThreadsafe(() => ran++);
            cancelled = loop.CallSoonThreadsafe(_ => ran += 10, null);
        });
        poster.Start();
        poster.Join();
        cancelled.Cancel();   // the loop is not running: this thread may act for it
        Assert.True(cancelled.IsCancelled);
        Assert.False(kept.IsCancelled);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        Assert.Equal(1, ran);
        kept.Cancel();        // after it ran: nothing to cancel
        Assert.False(kept.IsCancelled);
        Assert.NotEqual(kept, cancelled);
    }

    [Fact]
    public void CallSoonThreadsafe_ManyThreads_NothingLost()
    {
        using var loop = new EventLoop();
        const int Threads = 4, Each = 10_000;
        int count = 0;
        var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < Each; i++)
                loop.CallSoonThreadsafe(() => { if (++count == Threads * Each) loop.Stop(); });
        })).ToList();
        loop.CallSoon(() => threads.ForEach(t => t.Start()));
        loop.RunForever();
        threads.ForEach(t => t.Join());
        Assert.Equal(Threads * Each, count);
    }

    [Fact]
    public void LoopApi_FromAnotherThread_ThrowsNamingTheThreadsafeAlternative() => AioTest.RunReal(async () =>
    {
        var loop = Aio.GetRunningLoop();
        var e = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => loop.CallSoon(() => { })));
        Assert.Contains("CallSoonThreadsafe", e.Message);
        await Task.Run(() => Assert.Throws<InvalidOperationException>(() => loop.CallLater(1, () => { })));
        await Task.Run(() => Assert.Throws<InvalidOperationException>(() => { loop.CreateTask(() => Task.CompletedTask); }));
        await Task.Run(() => Assert.Throws<InvalidOperationException>(() => loop.Stop()));
    });

    [Fact]
    public void ObjectApi_FromAnotherThread_ErrorNamesTheTypeAndMember() => AioTest.RunReal(async () =>
    {
        // The error names what the caller called, not an EventLoop method. The loop thread waits for the
        // other thread (Join), so that the handle of CallSoon has not run yet when it is cancelled there.
        static InvalidOperationException FromOtherThread(Action call)
        {
            Exception? caught = null;
            var thread = new Thread(() => caught = Record.Exception(call));
            thread.Start();
            thread.Join();
            return Assert.IsType<InvalidOperationException>(caught);
        }
        var loop = Aio.GetRunningLoop();
        var task = Aio.CreateTask(async () => await Aio.Sleep(10));
        var future = loop.CreateFuture<int>();
        var handle = loop.CallSoon(() => { });
        var timer = loop.CallLater(10, () => { });
        var e = FromOtherThread(() => task.Cancel());
        Assert.StartsWith("AioTask.Cancel was called from thread", e.Message);
        Assert.Contains("CallSoonThreadsafe", e.Message);
        Assert.StartsWith("Future.SetResult was called from thread", FromOtherThread(() => future.SetResult(1)).Message);
        Assert.StartsWith("Handle.Cancel was called from thread", FromOtherThread(handle.Cancel).Message);
        Assert.StartsWith("TimerHandle.Cancel was called from thread", FromOtherThread(timer.Cancel).Message);
        Assert.StartsWith("EventLoop.CallSoon was called from thread", FromOtherThread(() => loop.CallSoon(() => { })).Message);
        handle.Cancel();
        timer.Cancel();
        future.SetResult(1);
        task.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await task);
    });

    [Fact]
    public void AllTasksAndExceptionHandler_FromAnotherThread_ThrowNamingTheThreadsafeAlternative() => AioTest.RunReal(async () =>
    {
        // asyncio's all_tasks() belongs to the loop thread: the list it walks changes there. So do the
        // exception handler's setter and its call, which runs the handler.
        var loop = Aio.GetRunningLoop();
        var task = Aio.CreateTask(async () => await Aio.Sleep(10));
        var e = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => loop.AllTasks()));
        Assert.Contains("AllTasks", e.Message);
        Assert.Contains("RunCoroutineThreadsafe", e.Message);
        e = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => loop.SetExceptionHandler(null)));
        Assert.Contains("SetExceptionHandler", e.Message);
        Assert.Contains("CallSoonThreadsafe", e.Message);
        e = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => loop.CallExceptionHandler(new ExceptionContext("from a thread"))));
        Assert.Contains("CallExceptionHandler", e.Message);
        Assert.Contains("CallSoonThreadsafe", e.Message);
        Assert.NotNull(loop.GetExceptionHandler());   // AioTest's handler is still set
        Assert.Contains(task, loop.AllTasks());      // on the loop thread it works
        task.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await task);
    });

    [Fact]
    public async Task AllTasks_LoopNotRunning_AnyThreadMayAsk()
    {
        // Runner's shutdown asks from the thread that ran the loop, once it has stopped.
        using var loop = new EventLoop();
        var task = loop.CreateTask(() => Task.CompletedTask);
        var tasks = await Task.Run(() => loop.AllTasks());
        Assert.Equal([task], tasks);
        loop.RunUntilComplete(task);
    }

    [Fact]
    public void GetRunningLoop_FindsEachThreadsOwnLoop_WhileAnotherStartedLater()
    {
        // The running loop is the calling thread's own: a loop that started earlier than another one, on
        // another thread, still finds itself; a thread without a loop finds none, even while two run.
        using var first = new EventLoop();
        EventLoop? foundInFirst = null, foundInSecond = null, foundInOther = first, foundAfterStop = first;
        first.CallSoon(() =>
        {
            var secondRunning = new ManualResetEventSlim();
            var release = new ManualResetEventSlim();
            var secondThread = new Thread(() =>
            {
                using var second = new EventLoop();
                second.CallSoon(() =>
                {
                    foundInSecond = Aio.GetRunningLoop();
                    secondRunning.Set();
                    release.Wait(TimeSpan.FromSeconds(30));
                    second.Stop();
                });
                second.RunForever();
                foundAfterStop = EventLoop.TryGetRunningLoop();
            });
            secondThread.Start();
            Assert.True(secondRunning.Wait(TimeSpan.FromSeconds(30)));
            foundInFirst = Aio.GetRunningLoop();   // the second loop started last and is still running
            var other = new Thread(() => foundInOther = EventLoop.TryGetRunningLoop());
            other.Start();
            Assert.True(other.Join(TimeSpan.FromSeconds(30)));
            release.Set();
            Assert.True(secondThread.Join(TimeSpan.FromSeconds(30)));
            first.Stop();
        });
        first.RunForever();
        Assert.Same(first, foundInFirst);
        Assert.NotNull(foundInSecond);
        Assert.NotSame(first, foundInSecond);
        Assert.Null(foundInOther);
        Assert.Null(foundAfterStop);
        Assert.Null(EventLoop.TryGetRunningLoop());
    }

    [Fact]
    public void StoppedLoop_IsNotKeptAliveByTheLibrary()
    {
        // Nothing static (the running-loop lookup, the thread's stack bounds, timers) may keep a loop
        // that has run and been closed.
        var loop = RunAndClose();
        for (int i = 0; i < 3 && loop.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(loop.IsAlive);

        [MethodImpl(MethodImplOptions.NoInlining)]
        static WeakReference RunAndClose()
        {
            var l = new EventLoop();
            l.CallSoon(l.Stop);
            l.RunForever();
            l.Close();
            return new WeakReference(l);
        }
    }

    [Fact]
    public void LoopThreadCheck_TrustsOnlyTheRunningLoopThreadsStack()
    {
        // The hot paths test the thread by the address of a local against the loop thread's stack
        // (ThreadStack.cs): true on the loop's thread at any depth, false on every other thread (whose calls
        // must still throw) and once the loop has stopped.
        using var loop = new EventLoop();
        Assert.False(loop.OnLoopStack());
        bool onLoop = false, deep = false, fromOther = true, otherRejected = false;
        loop.CallSoon(() =>
        {
            onLoop = loop.OnLoopStack();
            deep = Deep(loop, 500);
            var other = new Thread(() =>
            {
                fromOther = loop.OnLoopStack();
                try { loop.CallSoon(() => { }); }
                catch (InvalidOperationException) { otherRejected = true; }
            }, 256 * 1024);
            other.Start();
            Assert.True(other.Join(TimeSpan.FromSeconds(30)));
            loop.Stop();
        });
        loop.RunForever();
        Assert.False(loop.OnLoopStack());
        Assert.False(fromOther);
        Assert.True(otherRejected);
        if (OperatingSystem.IsLinux())
        {
            Assert.NotEqual(0UL, ThreadStack.Current());
            Assert.True(onLoop);
            Assert.True(deep);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        static bool Deep(EventLoop loop, int depth)
        {
            Span<byte> frame = stackalloc byte[512]; // 500 frames: a quarter of a MiB below the callback
            frame[depth % frame.Length] = 1;
            bool result = depth == 0 ? loop.OnLoopStack() : Deep(loop, depth - 1);
            GC.KeepAlive(frame[0]); // not a tail call
            return result;
        }
    }

    [Fact]
    public void StackRange_PacksWholePagesInOneWord_KeepingTheTopOfAHugeStack()
    {
        const ulong page = 4096, low = 0x7f12_3456_7000;
        ulong r = ThreadStack.Pack(low, 8 << 20);
        Assert.True(ThreadStack.Contains(r, low));
        Assert.True(ThreadStack.Contains(r, low + (8 << 20) - 1));
        Assert.False(ThreadStack.Contains(r, low - 1));
        Assert.False(ThreadStack.Contains(r, low + (8 << 20)));
        // Bounds that are not page-aligned are rounded inwards: never a byte of another mapping.
        ulong ragged = ThreadStack.Pack(low + 8, 3 * page);
        Assert.False(ThreadStack.Contains(ragged, low + 8));
        Assert.True(ThreadStack.Contains(ragged, low + page));
        Assert.True(ThreadStack.Contains(ragged, low + 3 * page - 1));
        Assert.False(ThreadStack.Contains(ragged, low + 3 * page));
        // Of a stack larger than 4 GiB only the top 4 GiB count (the stack grows down from there).
        ulong huge = ThreadStack.Pack(low - (16UL << 30), 16UL << 30);
        Assert.True(ThreadStack.Contains(huge, low - 1));
        Assert.True(ThreadStack.Contains(huge, low - (4UL << 30) + page));
        Assert.False(ThreadStack.Contains(huge, low - (8UL << 30)));
        // Nothing (0) contains nothing; a range smaller than a page packs to nothing.
        Assert.False(ThreadStack.Contains(0, 0));
        Assert.False(ThreadStack.Contains(0, low));
        Assert.Equal(0UL, ThreadStack.Pack(low + 8, page));
    }

    [Fact]
    public void LoopThreadCheck_LoopOnItsOwnThread_OtherThreadsAreRejected()
    {
        // A loop on a thread of its own (not the process's main thread, whose stack glibc finds differently).
        using var loop = new EventLoop();
        using var running = new ManualResetEventSlim();
        bool onLoop = false;
        var queue = new AsyncQueue<int>();
        var thread = new Thread(() => loop.RunUntilComplete(loop.CreateTask(async () =>
        {
            onLoop = loop.OnLoopStack();
            running.Set();
            return await queue.GetAsync(); // binds the queue to the loop, then waits
        })), 512 * 1024);
        thread.Start();
        Assert.True(running.Wait(TimeSpan.FromSeconds(30)));
        Assert.False(loop.OnLoopStack());
        Assert.Throws<InvalidOperationException>(() => { _ = queue.GetAsync(); });
        loop.CallSoonThreadsafe(() => queue.PutNowait(7));
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)));
        if (OperatingSystem.IsLinux()) Assert.True(onLoop);
    }

    [Fact]
    public void AwaitLoopPrimitive_FromAnotherThread_Throws() => AioTest.RunReal(async () =>
    {
        var f = Aio.GetRunningLoop().CreateFuture();
        var e = await Task.Run(async () => await Assert.ThrowsAsync<InvalidOperationException>(async () => await f));
        Assert.Contains("outside its event loop", e.Message);
    });

    [Fact]
    public void ForeignTaskCompletedOnThreadPool_ContinuationRunsOnLoopThread() => AioTest.RunReal(async () =>
    {
        int loopThread = Environment.CurrentManagedThreadId;
        var tcs = new TaskCompletionSource<int>();
        _ = Task.Run(() => { Thread.Sleep(10); tcs.SetResult(5); });
        Assert.Equal(5, await tcs.Task);
        Assert.Equal(loopThread, Environment.CurrentManagedThreadId);
        await Task.Delay(5);
        Assert.Equal(loopThread, Environment.CurrentManagedThreadId);
        await Task.Yield();
        Assert.Equal(loopThread, Environment.CurrentManagedThreadId);
        await Task.Run(() => Thread.Sleep(1));
        Assert.Equal(loopThread, Environment.CurrentManagedThreadId);
    });

    [Fact]
    public void InterleavingTasks_TenThousand_NeverRunTwoAtOnce() => AioTest.RunReal(async () =>
    {
        int running = 0, maxRunning = 0, steps = 0;
        int loopThread = Environment.CurrentManagedThreadId;
        bool offThread = false;
        void Enter()
        {
            if (Environment.CurrentManagedThreadId != loopThread) offThread = true;
            maxRunning = Math.Max(maxRunning, ++running);
            Thread.SpinWait(20); // widen the window in which a second thread could barge in
            steps++;
        }
        async Task Worker(int i)
        {
            Enter(); running--;
            await Aio.Sleep(0);
            Enter(); running--;
            await Task.Yield();
            Enter(); running--;
            if (i % 10 == 0) { await Task.Run(() => { }); Enter(); running--; }
            if (i % 100 == 0) { await Task.Delay(1); Enter(); running--; }
        }
        var tasks = Enumerable.Range(0, 10_000).Select(i => Aio.CreateTask(() => Worker(i))).ToList();
        await Aio.Gather(tasks);
        Assert.False(offThread);
        Assert.Equal(1, maxRunning);
        Assert.Equal(10_000 * 3 + 1_000 + 100, steps);
    });

    [Fact]
    public void TaskCompletionAndGather_OnTheLoop_NeverLeaveTheLoopThread() => AioTest.Run(async () =>
    {
        var loop = Aio.GetRunningLoop();
        long before = loop.ThreadsafePosts;
        async Task<int> Work(int i) { await Aio.Sleep(i % 3); return i; }
        var tasks = Enumerable.Range(0, 200).Select(i => Aio.CreateTask(() => Work(i))).ToList();
        var hot = Enumerable.Range(0, 200).Select(Work).ToArray();
        Assert.Equal(200, (await Aio.Gather(tasks)).Length);
        Assert.Equal(200, (await Aio.Gather(hot)).Length);
        // .NET sends context-free continuations to the thread pool while a custom context is current;
        // every hop would come back through the thread-safe queue.
        Assert.Equal(before, loop.ThreadsafePosts);
    });

    [Fact]
    [Trait("asyncio", "call_soon_threadsafe then call_soon from the same thread run in that order (test_call_soon_threadsafe_same_thread)")]
    public void CallSoonThreadsafe_ThenCallSoonFromTheSameThread_RunInCallOrder()
    {
        using var loop = new EventLoop();
        var results = new List<string>();
        // Before the loop runs...
        loop.CallSoonThreadsafe(() => results.Add("hello"));
        loop.CallSoon(() => results.Add("world"));
        // ...and from a callback on the running loop.
        loop.CallSoon(() =>
        {
            loop.CallSoonThreadsafe(() => results.Add("first"));
            loop.CallSoon(() => results.Add("second"));
            loop.CallSoon(loop.Stop);
        });
        loop.RunForever();
        Assert.Equal(["hello", "world", "first", "second"], results);
    }
}
