namespace Asyncio.Tests.Diagnostics;

/// <summary>What futures, tasks and handles print (asyncio's reprs): the public names, and the callback a handle runs.</summary>
public class ReprTests
{
    static void F() { }

    [Fact]
    public void GenericFuturesAndTasks_PrintWithoutTheArity()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        loop.RunUntilComplete(async () =>
        {
            var f = loop.CreateFuture<int>();
            Assert.Equal("<Future pending>", f.ToString());
            f.SetResult(5);
            Assert.Equal("<Future finished result=5>", f.ToString());
            var failed = loop.CreateFuture<int>();
            failed.SetException(new InvalidOperationException("x"));
            Assert.Equal("<Future finished with an exception exception=InvalidOperationException: x>", failed.ToString());
            failed.GetException();
            var t = Aio.CreateTask(async () => { await Aio.Sleep(1); return 3; }, "valued");
            Assert.Equal("<AioTask pending name='valued'>", t.ToString());
            await t;
            Assert.Equal("<AioTask finished name='valued'>", t.ToString());
            var withArg = loop.CreateTask(static async (int x) => { await Aio.Sleep(0); return x; }, 1, "arg");
            Assert.Equal("<AioTask pending name='arg'>", withArg.ToString());
            await withArg;
        });
        var main = loop.RunUntilComplete(() => Task.FromResult(Aio.CurrentTask!.ToString()));
        Assert.Matches("^<AioTask pending name='[^']*'>$", main);
    }

    [Fact]
    public void Handle_NamesItsCallback_OrSaysItIsCancelled()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var h = loop.CallSoon(F);
        Assert.Equal("<Handle ReprTests.F>", h.ToString());
        var withState = loop.CallSoon(_ => F(), null);
        Assert.Equal($"<Handle ReprTests.{nameof(Handle_NamesItsCallback_OrSaysItIsCancelled)} (lambda)>", withState.ToString());
        h.Cancel();
        Assert.Equal("<Handle cancelled>", h.ToString());
        Assert.Equal("<Handle>", default(Handle).ToString());
    }

    [Fact]
    public void TimerHandle_NamesItsDeadlineAndCallback_OrSaysItIsCancelled()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var at = loop.CallAt(12.5, F);
        Assert.Equal("<TimerHandle when=12.5 ReprTests.F>", at.ToString());
        at.Cancel();
        Assert.Equal("<TimerHandle cancelled when=12.5>", at.ToString());
        var later = loop.CallAt(3, _ => F(), null);
        Assert.Equal($"<TimerHandle when=3 ReprTests.{nameof(TimerHandle_NamesItsDeadlineAndCallback_OrSaysItIsCancelled)} (lambda)>", later.ToString());
    }
}
