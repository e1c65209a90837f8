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
        // (Without a spin the loop would block once, unless it was descheduled for the whole 20 ms, as it can
        // be on a loaded machine: IdleSpinZero_WaitsEndSoon_LoopNeverSpins covers the zero setting.)
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
        // Timers 30 ms away under a spin of 900 ms: the spin ends at the timer's deadline, not after it. A spin that
        // ran its full length would make every timer about 870 ms late. One late timer proves nothing on a loaded
        // machine (the loop's thread can be descheduled for longer than that), so five timers run one after the
        // other and the least late of them must be well within the spin: a load stall hits some, a spin that
        // overshoots hits all.
        using var loop = new EventLoop(new LoopOptions { IdleSpin = TimeSpan.FromMilliseconds(900) });
        var lateness = new List<double>();
        double due = 0;
        void Next()
        {
            due = loop.Time() + 0.03;
            loop.CallLater(0.03, () =>
            {
                lateness.Add(loop.Time() - due);
                if (lateness.Count == 5) loop.Stop();
                else Next();
            });
        }
        loop.CallSoon(Next);
        loop.RunForever();
        Assert.All(lateness, l => Assert.True(l >= 0, $"fired {l} s before its deadline"));
        Assert.True(lateness.Min() < 0.45, $"every timer of 30 ms fired late: {string.Join(", ", lateness.Select(l => $"{l * 1000:F0} ms"))}");
    }

    /// <summary>
    /// A lost wake-up (found through a TLS test that hung once until its time limit): a post finds the loop
    /// blocked, and before it signals the wake-up the wait ends on its own (here socket data, sent by the post's
    /// own hook). The post then sets the "wake-up signalled" flag and writes the wake-up descriptor; the loop's
    /// next spin read that write and, catching nothing, left the flag set, so the next post from another thread,
    /// finding the flag set, did not wake the blocking wait after the spin. The order is forced through the
    /// post's test hook, not by timing: the hook returns only once the loop thread, past its wait, waits for the
    /// post's lock. Without the fix the second callback runs only when the 10-second watchdog wakes the loop.
    /// </summary>
    [Fact]
    public void IdleSpin_ReadsAWakeUpSignalledAfterTheWaitEnded_NextPostStillWakesTheLoop()
    {
        using var loop = new EventLoop(new LoopOptions { IdleSpin = TimeSpan.FromMilliseconds(5) });
        var (a, b) = NetTest.SocketPair();
        using (a) using (b)
        {
            var loopThread = Thread.CurrentThread;
            bool hookRan = false, secondRan = false;
            int watchdogFired = 0;
            loop.AddReader(b, () => b.Receive(new byte[16]));
            loop.BeforeWakeSignalForTests = () =>
            {
                loop.BeforeWakeSignalForTests = null;
                hookRan = true;
                a.Send("x"u8);  // ends the loop's wait on its own, before this post signals
                var waited = Stopwatch.StartNew();
                while ((loopThread.ThreadState & System.Threading.ThreadState.WaitSleepJoin) == 0 && waited.Elapsed < TimeSpan.FromSeconds(10))
                    Thread.Sleep(1);
            };
            var poster = new Thread(() =>
            {
                WaitUntilBlocked(loop);
                loop.CallSoonThreadsafe(() => { });            // signals late: after the wait above ended
                WaitUntilBlocked(loop);                          // the loop has spun (reading that signal) and blocks again
                loop.CallSoonThreadsafe(() => { secondRan = Volatile.Read(ref watchdogFired) == 0; loop.Stop(); });
            }) { IsBackground = true };
            using var watchdog = new Timer(_ =>
            {
                Volatile.Write(ref watchdogFired, 1);
                loop.WakeReactorWithNothingToRun();
            }, null, 10_000, Timeout.Infinite);
            loop.CallSoon(poster.Start);
            loop.RunForever();
            poster.Join();
            loop.RemoveReader(b);
            Assert.True(hookRan, "the first post did not find the loop blocked");
            Assert.True(secondRan, "the second post did not wake the loop (the watchdog did)");
        }
    }

    /// <summary>Waits (bounded: 10 s) until the loop is in a blocking wait of its reactor.</summary>
    static void WaitUntilBlocked(EventLoop loop)
    {
        var waited = Stopwatch.StartNew();
        while (!loop.BlockedInReactor && waited.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
    }

    // ---- the default: adaptive ----

    /// <summary>
    /// Ping-pongs with another thread that answers at once (it spins on a flag, then posts a thread-safe
    /// callback) until the loop has spun before a wait, or for at most <paramref name="maxRounds"/> rounds or
    /// 30 seconds.
    /// </summary>
    static (int Rounds, EventLoop Loop) PingPongUntilASpin(LoopOptions? options, int maxRounds)
    {
        var loop = new EventLoop(options);
        int asked = 0, answered = 0;
        var deadline = Stopwatch.StartNew();
        void Answered()
        {
            answered++;
            if (loop.IdleSpins > 0 && answered >= 100 || answered == maxRounds || deadline.Elapsed > TimeSpan.FromSeconds(30)) loop.Stop();
            else Volatile.Write(ref asked, answered + 1);
        }
        var partner = new Thread(() =>
        {
            for (int i = 1; ; i++)
            {
                while (Volatile.Read(ref asked) < i)
                    if (loop.IsClosed || !loop.IsRunning && i > 1) return;
                loop.CallSoonThreadsafe(Answered);
            }
        }) { IsBackground = true };
        loop.CallSoon(() => { partner.Start(); Volatile.Write(ref asked, 1); });
        loop.RunForever();
        return (answered, loop);
    }

    /// <summary>
    /// The partner's answers end the loop's idle waits within microseconds when it runs on a free core, so
    /// the adaptive default spins before its waits (and, with a core free, most answers arrive during the
    /// spin: measured 1,992 of 2,000 on the idle 2-core machine; when the cores are busy the spins miss and
    /// back off, which this test cannot rule out, so it checks only that the loop spins).
    /// </summary>
    [Fact]
    public void AdaptiveDefault_WaitsEndSoon_LoopSpins()
    {
        var (rounds, loop) = PingPongUntilASpin(null, maxRounds: 50_000);
        using (loop)
        {
            Assert.True(loop.IdleSpins > 0, $"no spin in {rounds} rounds, {loop.BlockingPolls} blocking waits");
        }
    }

    [Fact]
    public void IdleSpinZero_WaitsEndSoon_LoopNeverSpins()
    {
        var (rounds, loop) = PingPongUntilASpin(new LoopOptions { IdleSpin = TimeSpan.Zero }, maxRounds: 2_000);
        using (loop)
        {
            Assert.Equal(2_000, rounds);
            Assert.Equal(0, loop.IdleSpins);
        }
    }

    [Fact]
    public void AdaptiveDefault_WaitsLongerThanTheHotGap_LoopNeverSpins()
    {
        // Timers 2 ms apart in real time: every idle wait is long, so the loop blocks at once each time.
        using var loop = new EventLoop();
        int fired = 0;
        void Next() { if (++fired == 20) loop.Stop(); else loop.CallLater(0.002, Next); }
        loop.CallLater(0.002, Next);
        loop.RunForever();
        Assert.Equal(20, fired);
        Assert.Equal(0, loop.IdleSpins);
        Assert.True(loop.BlockingPolls >= 10, $"{loop.BlockingPolls} blocking waits, {loop.IdleSpins} spins");
    }

    [Fact]
    public void AdaptiveDefault_TimersSoonerThanTheSpin_SpinsUntilEachInsteadOfBlocking()
    {
        // A chain of timers 20 µs apart: after the first short wait, each spin reaches the next timer, which
        // counts as a catch (the spin replaced a short blocking wait), so the loop never backs off to blocking.
        using var loop = new EventLoop();
        const int timers = 2000;
        int fired = 0;
        void Next() { if (++fired == timers) loop.Stop(); else loop.CallLater(0.00002, Next); }
        loop.CallLater(0.00002, Next);
        loop.RunForever();
        Assert.Equal(timers, fired);
        Assert.True(loop.IdleSpins > timers / 2, $"{loop.IdleSpins} spins");
        Assert.True(loop.BlockingPolls < 20, $"{loop.BlockingPolls} blocking waits for {timers} timers");
    }

    [Fact]
    public void AdaptiveDefault_VirtualTime_NeverSpins()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true, AutojumpThreshold = TimeSpan.FromMilliseconds(1) });
        int fired = 0;
        void Next() { if (++fired == 20) loop.Stop(); else loop.CallLater(0.0001, Next); }
        loop.CallLater(0.0001, Next);
        loop.RunForever();
        Assert.Equal(20, fired);
        Assert.Equal(0, loop.IdleSpins);
    }

    // ---- the policy, step by step ----

    static IdleSpinPolicy HotPolicy()
    {
        var policy = IdleSpinPolicy.Adaptive();
        policy.Blocked(0);
        return policy;
    }

    [Fact]
    public void Adaptive_StartsCold_SpinsOnlyAfterAWaitShorterThanTheHotGap()
    {
        var policy = IdleSpinPolicy.Adaptive();
        Assert.True(policy.Enabled);
        Assert.False(policy.ShouldSpin());
        policy.Blocked(IdleSpinPolicy.HotGap);
        Assert.False(policy.ShouldSpin());
        policy.Blocked(IdleSpinPolicy.HotGap - 1);
        Assert.True(policy.ShouldSpin());
        Assert.True(policy.ShouldSpin()); // stays hot while spins do not block
        policy.Blocked(IdleSpinPolicy.HotGap * 10);
        Assert.False(policy.ShouldSpin());
    }

    /// <summary>Runs the policy through short waits until it spins again; returns how many it blocked through.</summary>
    static int SkippedBeforeTheNextSpin(ref IdleSpinPolicy policy)
    {
        int skipped = 0;
        while (!policy.ShouldSpin())
        {
            policy.Blocked(0);
            if (++skipped > 1000) throw new InvalidOperationException("the policy never spins again");
        }
        return skipped;
    }

    [Fact]
    public void Adaptive_MissesInARow_ThreeTolerated_ThenBackOffDoublingUpTo63Waits()
    {
        var policy = HotPolicy();
        var skipped = new List<int>();
        for (int i = 0; i < 11; i++)
        {
            Assert.True(policy.ShouldSpin());
            policy.Missed();
            policy.Blocked(0);
            skipped.Add(SkippedBeforeTheNextSpin(ref policy));
        }
        Assert.Equal([0, 0, 0, 1, 3, 7, 15, 31, 63, 63, 63], skipped);
    }

    [Fact]
    public void Adaptive_ASpinThatCatchesWork_ResetsTheBackOff()
    {
        var policy = HotPolicy();
        for (int i = 0; i < 6; i++)
        {
            policy.Missed();
            SkippedBeforeTheNextSpin(ref policy);
        }
        policy.Caught();
        for (int i = 0; i < 3; i++)
        {
            policy.Missed();
            Assert.Equal(0, SkippedBeforeTheNextSpin(ref policy));
        }
        policy.Missed();
        Assert.Equal(1, SkippedBeforeTheNextSpin(ref policy));
    }

    [Fact]
    public void Fixed_SpinsBeforeEveryWait_Never_NotAtAll()
    {
        var policy = IdleSpinPolicy.Fixed(100);
        Assert.Equal(100, policy.SpinTicks);
        for (int i = 0; i < 10; i++)
        {
            policy.Missed();
            policy.Blocked(IdleSpinPolicy.HotGap * 10);
            Assert.True(policy.ShouldSpin());
        }
        Assert.False(IdleSpinPolicy.Never.Enabled);
    }
}
