using System.Diagnostics;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Loop;

/// <summary>
/// <see cref="LoopOptions.IdleSpin"/>: an idle loop polls without blocking for a while before it blocks,
/// so that what arrives meanwhile is served without the cost of waking a blocked thread.
/// </summary>
public class IdleSpinTests
{
    [Theory]
    [InlineData(-1)]
    [InlineData(1000)]
    public void IdleSpin_NegativeOrASecond_Throws(int milliseconds)
    {
        var options = new LoopOptions { IdleSpin = TimeSpan.FromMilliseconds(milliseconds) };
        Assert.Throws<ArgumentOutOfRangeException>(() => new EventLoop(options));
    }

    /// <summary>Runs the loop until a callback posted by another thread ~20 ms after the loop went idle stops it.</summary>
    static int BlockingPollsUntilAThreadsafeStop(TimeSpan spin)
    {
        using var loop = new EventLoop(new LoopOptions { IdleSpin = spin });
        loop.CallSoon(() => new Thread(() =>
        {
            Thread.Sleep(20);
            loop.CallSoonThreadsafe(loop.Stop);
        }) { IsBackground = true }.Start());
        loop.RunForever();
        return loop.BlockingPolls;
    }

    [Fact]
    public void IdleSpin_ThreadsafeCallbackArrivesWhileSpinning_RunsWithoutTheLoopBlocking()
    {
        Assert.Equal(0, BlockingPollsUntilAThreadsafeStop(TimeSpan.FromMilliseconds(900)));
        Assert.True(BlockingPollsUntilAThreadsafeStop(TimeSpan.Zero) >= 1); // the default blocks at once
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdleSpin_SocketDataArrivesWhileSpinning_ReadWithoutTheLoopBlocking(bool portable)
    {
        using var loop = new EventLoop(new LoopOptions { IdleSpin = TimeSpan.FromMilliseconds(900), PortableReactor = portable });
        var (a, b) = NetTest.SocketPair();
        using (a) using (b)
        {
            int read = 0;
            var buf = new byte[16];
            loop.AddReader(b, () =>
            {
                read += b.Receive(buf);
                loop.RemoveReader(b);
                loop.Stop();
            });
            loop.CallSoon(() => new Thread(() =>
            {
                Thread.Sleep(20);
                a.Send("hello"u8);
            }) { IsBackground = true }.Start());
            loop.RunForever();
            Assert.Equal(5, read);
            Assert.Equal(0, loop.BlockingPolls);
        }
    }

    [Fact]
    public void IdleSpin_IdleLongerThanTheSpin_LoopBlocksAfterIt()
    {
        // A spin of 10 ms before a timer 300 ms away: the loop stops spinning and blocks until the timer.
        using var loop = new EventLoop(new LoopOptions { IdleSpin = TimeSpan.FromMilliseconds(10) });
        double due = 0, firedAt = 0;
        loop.CallSoon(() =>
        {
            due = loop.Time() + 0.3;
            loop.CallLater(0.3, () => { firedAt = loop.Time(); loop.Stop(); });
        });
        loop.RunForever();
        Assert.True(firedAt >= due, $"fired at {firedAt}, due {due}");
        Assert.True(loop.BlockingPolls >= 1);
    }

    [Fact]
    public void IdleSpin_LongerThanTheNextTimer_SpinsOnlyUntilTheTimer()
    {
        // A timer 30 ms away under a spin of 900 ms: the spin ends at the timer's deadline, not after it.
        using var loop = new EventLoop(new LoopOptions { IdleSpin = TimeSpan.FromMilliseconds(900) });
        double due = 0, firedAt = 0;
        var watch = Stopwatch.StartNew();
        loop.CallSoon(() =>
        {
            due = loop.Time() + 0.03;
            loop.CallLater(0.03, () => { firedAt = loop.Time(); loop.Stop(); });
        });
        loop.RunForever();
        Assert.True(firedAt >= due, $"fired at {firedAt}, due {due}");
        Assert.True(watch.Elapsed < TimeSpan.FromMilliseconds(600), $"the timer of 30 ms fired after {watch.Elapsed.TotalMilliseconds} ms");
    }
}
