namespace Asyncio.Tests.Tasks;

/// <summary>A review's checks: an expired timeout whose cancellation reached the body does not throw when the body returns; the coroutine-function overloads.</summary>
public class ReviewFindingsTests
{
    static double Now => Aio.GetRunningLoop().Time();

    // A body that sees the timeout's cancellation through the token (a .NET API given Aio.CancellationToken), catches
    // it and returns: asyncio's body that swallows the cancellation ends the timeout normally.
    [Fact]
    public void Timeout_BodyCatchesTheTokensCancellationAndReturns_ReturnsItsResult() => AioTest.Run(async () =>
    {
        double t0 = Now;
        string r = await Aio.Timeout(1, async () =>
        {
            try { await Task.Delay(System.Threading.Timeout.Infinite, Aio.CancellationToken); return "late"; }
            catch (OperationCanceledException) { return "fallback"; }
        });
        Assert.Equal("fallback", r);
        Assert.Equal(1, Now - t0, 6);
    });

    // The timeout's cancellation was delivered (to the group's wait for its children); a child's error won and the
    // group kept the cancellation in the timeout's scope (asyncio: uncancel + cancel). The body catches the group's
    // error and returns: in Python 3.13 the timeout's exit uncancels to zero, which withdraws it, and returns.
    [Fact]
    public void Timeout_GroupErrorCaughtInTheBody_ReturnsNormally() => AioTest.Run(async () =>
    {
        string r = await Aio.Timeout(1, async () =>
        {
            try
            {
                await TaskGroup.Run(tg => { _ = tg.CreateTask(TaskGroupTests.FailInCleanup); return Task.CompletedTask; });
                return "none";
            }
            catch (ExceptionGroup) { return "caught"; }
        });
        Assert.Equal("caught", r);
        await Aio.Sleep(1);   // nothing left over
        Assert.Equal(0, Aio.CurrentTask!.Cancelling());
    });

    static async Coroutine DoIt() { await Aio.Sleep(10); }
    static async Coroutine<int> Fetch() { await Aio.Sleep(0); return 1; }

    [Fact]
    public void WaitFor_NonGenericCoroutineFunction_CancelledOnTimeout() => AioTest.Run(async () =>
    {
        double t0 = Now;
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(DoIt, 1));
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.Timeout(1, () => DoIt()));
        await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => DoIt(), TimeSpan.FromSeconds(1)));
        Assert.Equal(3, Now - t0, 6);
        int a = await Aio.WaitFor(Fetch, 5);        // method group: the generic form
        int b = await Aio.Timeout(5, Fetch);
        Assert.Equal(2, a + b);
    });

    [Fact]
    public void SemaphoreReleaser_UsingVariableDisposedExplicitly_ReleasesOnce() => AioTest.Run(async () =>
    {
        var s = new AsyncSemaphore(1);
        using (var r = await s.AcquireAsync())
        {
            r.Dispose();   // the using variable itself: the implicit dispose then does nothing
            Assert.Equal(1, s.Value);
        }
        Assert.Equal(1, s.Value);   // the docs: "a second dispose of the same variable does nothing"
    });
}
