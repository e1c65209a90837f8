using System.Runtime.InteropServices;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Processes;

/// <summary>
/// asyncio's add_signal_handler/remove_signal_handler. The signals sent are SIGWINCH (28) and SIGURG (23), whose
/// default action is to be ignored, so a handler that failed to register could not end the test run. SIGINT is
/// not sent here: it would reach every test's runner in this process (Console.CancelKeyPress is process-wide) and
/// cancel their main tasks; samples/Supervisor's test sends it to a child process instead.
/// </summary>
[Collection("Signals")]   // shared with the dump on a signal (Diagnostics), which sends SIGURG too
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SignalHandlerTests
{
    const int SIGWINCH = 28, SIGURG = 23;

    static void Run(Func<Task> body) => NetTest.Run(portable: false, body);

    static void SendToSelf(int signal) => SpawnNative.Kill(Environment.ProcessId, signal);

    /// <summary>Waits (real time, bounded by the test's own bound) until <paramref name="done"/> holds.</summary>
    static async Task Until(Func<bool> done)
    {
        while (!done()) await Aio.Sleep(0.005);
    }

    /// <summary>
    /// Sends SIGURG, handled by a fresh handler, and waits for it: the runtime reports each signal as it reads it,
    /// so a signal sent before is reported by then or never. Then lets a little more real time pass.
    /// </summary>
    static async Task Fence(EventLoop loop)
    {
        bool fenced = false;
        loop.AddSignalHandler(SIGURG, () => fenced = true);
        SendToSelf(SIGURG);
        await Until(() => fenced);
        loop.RemoveSignalHandler(SIGURG);
        await Aio.Sleep(0.1);
    }

    [Fact]
    public void AddSignalHandler_CallbackRunsOnTheLoopThread_OncePerDelivery()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            int calls = 0;
            bool onLoopThread = true;
            loop.AddSignalHandler(SIGWINCH, () =>
            {
                calls++;
                onLoopThread &= loop.IsLoopThread;
            });
            SendToSelf(SIGWINCH);
            await Until(() => calls == 1);
            SendToSelf(SIGWINCH);
            await Until(() => calls == 2);
            Assert.True(onLoopThread);
            Assert.True(loop.RemoveSignalHandler(SIGWINCH));
        });
    }

    /// <summary>
    /// A signal that arrives as soon as the runtime's registration exists, before AddSignalHandler has stored it in
    /// its handler: the delivery, on the runtime's signal thread, took the missing registration for a removed handler,
    /// so it neither posted the callback nor cancelled the default action (SIGTERM would have ended the process).
    /// The order is forced through a test hook between the two steps: it sends the signal and waits (bounded) for the
    /// delivery's post.
    /// </summary>
    [Fact]
    public void AddSignalHandler_SignalArrivesBeforeTheRegistrationIsKept_StillDelivered()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            int calls = 0;
            bool posted = false;
            loop.AfterSignalRegisteredForTests = () =>
            {
                loop.AfterSignalRegisteredForTests = null;
                SendToSelf(SIGWINCH);
                var waited = System.Diagnostics.Stopwatch.StartNew();
                while (loop.ThreadsafePending == 0 && waited.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
                posted = loop.ThreadsafePending != 0;
            };
            loop.AddSignalHandler(SIGWINCH, () => calls++);
            Assert.True(posted, "the delivery between the registration and its storing was not posted");
            await Until(() => calls == 1);
            Assert.True(loop.RemoveSignalHandler(SIGWINCH));
        });
    }

    [Fact]
    public void AddSignalHandler_WithState_PassesIt()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            object? got = null;
            var state = new object();
            loop.AddSignalHandler(SIGWINCH, s => got = s, state);
            SendToSelf(SIGWINCH);
            await Until(() => got != null);
            Assert.Same(state, got);
            loop.RemoveSignalHandler(SIGWINCH);
        });
    }

    [Fact]
    public void SecondAdd_ReplacesTheHandler_AndANameSharesItsNumbersSlot()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            int first = 0, second = 0;
            loop.AddSignalHandler(PosixSignal.SIGWINCH, () => first++);
            loop.AddSignalHandler(SIGWINCH, () => second++);
            SendToSelf(SIGWINCH);
            await Until(() => second == 1);
            await Fence(loop);
            Assert.Equal(0, first);
            Assert.Equal(1, second);
            Assert.True(loop.RemoveSignalHandler(PosixSignal.SIGWINCH));
            Assert.False(loop.RemoveSignalHandler(SIGWINCH));
        });
    }

    [Fact]
    public void RemoveSignalHandler_StopsTheCallback_AndReturnsWhetherOneWasSet()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            int calls = 0;
            Assert.False(loop.RemoveSignalHandler(SIGWINCH));
            loop.AddSignalHandler(SIGWINCH, () => calls++);
            Assert.True(loop.RemoveSignalHandler(SIGWINCH));
            SendToSelf(SIGWINCH);
            await Fence(loop);
            Assert.Equal(0, calls);
        });
    }

    [Fact]
    public void AChildProcess_SignalsItsParent_TheHandlerRuns()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            int calls = 0;
            loop.AddSignalHandler(SIGWINCH, () => calls++);
            var p = await Aio.CreateSubprocessExec("sh", ["-c", "kill -WINCH $PPID"]);
            Assert.Equal(0, await p.Wait());
            await Until(() => calls == 1);
            loop.RemoveSignalHandler(SIGWINCH);
        });
    }

    [Fact]
    public void HandlerThatThrows_GoesToTheExceptionHandler_LoopKeepsRunning()
    {
        var errors = NetTest.RunCollectingErrors(portable: false, async () =>
        {
            var loop = Aio.GetRunningLoop();
            int calls = 0;
            loop.AddSignalHandler(SIGWINCH, () => { calls++; throw new InvalidOperationException("handler failed"); });
            SendToSelf(SIGWINCH);
            await Until(() => calls == 1);
            SendToSelf(SIGWINCH);
            await Until(() => calls == 2);
            loop.RemoveSignalHandler(SIGWINCH);
        });
        Assert.Equal(2, errors.Count);
        Assert.All(errors, e => Assert.Equal("handler failed", e.Exception?.Message));
    }

    [Fact]
    public void CloseRemovesEveryHandler()
    {
        int oldCalls = 0;
        EventLoop? closed = null;
        using (var runner = new Runner(new LoopOptions()))
        {
            runner.Run(() =>
            {
                closed = Aio.GetRunningLoop();
                closed.AddSignalHandler(SIGWINCH, () => oldCalls++);
                closed.AddSignalHandler(PosixSignal.SIGINT, () => oldCalls++);   // never sent: only its registration is checked
                Assert.True(closed.HandlesSigint);
                return Task.CompletedTask;
            });
        }
        // A closed loop that kept its SIGINT handler would swallow every Ctrl+C of the process (its registration cancels the default action).
        Assert.False(closed!.HandlesSigint);
        Run(async () =>
        {
            SendToSelf(SIGWINCH);   // no handler any more: ignored, as by default
            await Fence(Aio.GetRunningLoop());
        });
        Assert.Equal(0, oldCalls);
    }

    [Fact]
    public void BadInput_ClearExceptions()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            Assert.Throws<ArgumentOutOfRangeException>(() => loop.AddSignalHandler(0, () => { }));
            Assert.Throws<ArgumentOutOfRangeException>(() => loop.AddSignalHandler(65, () => { }));
            Assert.Throws<ArgumentOutOfRangeException>(() => loop.AddSignalHandler(32, () => { }));   // the C library's
            Assert.Throws<ArgumentOutOfRangeException>(() => loop.AddSignalHandler(33, () => { }));
            Assert.Throws<ArgumentOutOfRangeException>(() => loop.AddSignalHandler((PosixSignal)5, () => { }));
            Assert.Throws<InvalidOperationException>(() => loop.AddSignalHandler(9, () => { }));    // SIGKILL
            Assert.Throws<InvalidOperationException>(() => loop.AddSignalHandler(19, () => { }));   // SIGSTOP
            Assert.Throws<ArgumentNullException>(() => loop.AddSignalHandler(SIGWINCH, (Action)null!));
            var fromElsewhere = await Task.Run(() => Record.Exception(() => loop.AddSignalHandler(SIGWINCH, () => { })));
            Assert.IsType<InvalidOperationException>(fromElsewhere);
            Assert.False(loop.RemoveSignalHandler(SIGWINCH));   // none of the failed calls left a handler
        });
    }
}
