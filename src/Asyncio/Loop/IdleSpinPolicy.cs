using System.Diagnostics;

namespace Asyncio;

/// <summary>
/// When a loop with nothing to do polls without blocking before it blocks (<see cref="LoopOptions.IdleSpin"/>).
/// </summary>
/// <remarks>
/// <para>
/// Waking a blocked thread costs tens of microseconds on a virtual machine, more than serving a small
/// request, so a server answering one client at a time serves it two to three times as often when its loop
/// keeps polling for a few tens of microseconds before it blocks. Spinning by default would burn that CPU in
/// every loop, though, including the ones whose waits are long (timers, idle servers) and gain nothing.
/// </para>
/// <para>
/// The adaptive policy spins only where a spin is likely to pay: after an idle wait that ended soon
/// (within <see cref="HotGap"/> of the loop going idle, so the next wait is likely short as well). A spin
/// that ends with nothing is a miss; one that reaches the loop's next timer is not (it replaced a blocking
/// wait shorter than the spin, and the timer fires without the cost of a wake-up). Three misses in a row are tolerated: a peer on another core answers
/// sooner once this loop answers sooner (its own processor has had no time to go to sleep), so the first
/// spins after a run of blocking waits often miss where later ones catch; measured on the benchmark VM, an
/// echo server with one client behind a C load generator served 24-29 k requests/s backing off at the
/// first miss and 30-32 k tolerating a few (without a spin 9.5 k). Past that, the loop blocks without
/// spinning for the next 1, 3, 7, ... up to 63 short waits before it tries again, so a loop whose waits sit
/// just above the spin wastes at most one spin in 64; a spin that catches work resets the count. A loop
/// whose waits are long never spins: each long wait turns the policy cold. The cost when cold is one
/// timestamp per blocking wait.
/// </para>
/// <para>
/// A single processor needs no rule of its own: what a spin there could catch is what an interrupt
/// delivers (a remote peer's packets), and a local peer's spins miss and back off.
/// </para>
/// <para>
/// The fixed policy (a spin given in <see cref="LoopOptions.IdleSpin"/>) spins before every blocking wait.
/// </para>
/// </remarks>
internal struct IdleSpinPolicy
{
    /// <summary>The longest spin of the adaptive policy.</summary>
    public static readonly long AdaptiveSpin = Stopwatch.Frequency / 20_000; // 50 us

    /// <summary>An idle wait that ended within this (spin included) makes the adaptive policy spin next time.</summary>
    public static readonly long HotGap = Stopwatch.Frequency / 4_000; // 250 us

    /// <summary>Misses in a row that still spin at the next short wait (the spin may be what makes waits short).</summary>
    const int ToleratedMisses = 3;

    /// <summary>Back-offs before the longest (63 waits): 1, 3, 7, 15, 31, 63.</summary>
    const int MaxBackOffs = 6;

    /// <summary>The longest spin, in <see cref="Stopwatch"/> ticks; zero when the loop never spins.</summary>
    public readonly long SpinTicks;
    readonly bool _adaptive;
    bool _hot;      // the last idle wait ended within HotGap
    int _misses;    // spins in a row that ended with nothing
    int _skips;     // short waits left to block through without spinning

    IdleSpinPolicy(long spinTicks, bool adaptive)
    {
        SpinTicks = spinTicks;
        _adaptive = adaptive;
    }

    /// <summary>Never spins.</summary>
    public static IdleSpinPolicy Never => default;

    /// <summary>Spins up to <paramref name="spinTicks"/> before every blocking wait.</summary>
    public static IdleSpinPolicy Fixed(long spinTicks) => new(spinTicks, adaptive: false);

    /// <summary>Spins up to <see cref="AdaptiveSpin"/>, only while idle waits end soon.</summary>
    public static IdleSpinPolicy Adaptive() => new(AdaptiveSpin, adaptive: true);

    /// <summary>Whether the policy spins at all (callers skip the rest when it does not).</summary>
    public readonly bool Enabled => SpinTicks != 0;

    /// <summary>Whether to spin before the wait about to block.</summary>
    public bool ShouldSpin()
    {
        if (!_adaptive) return true;
        if (!_hot) return false;
        if (_skips == 0) return true;
        _skips--;
        return false;
    }

    /// <summary>A spin caught work (I/O or a thread-safe callback) before its end, or reached the next timer.</summary>
    public void Caught() => _misses = 0;

    /// <summary>A spin ended with nothing: the loop blocks next, and the next short waits do not spin.</summary>
    public void Missed()
    {
        if (!_adaptive) return;
        if (_misses < ToleratedMisses + MaxBackOffs) _misses++;
        _skips = _misses <= ToleratedMisses ? 0 : (1 << (_misses - ToleratedMisses)) - 1;
    }

    /// <summary>
    /// A blocking wait returned, <paramref name="idleTicks"/> after the loop went idle (a spin that missed
    /// included).
    /// </summary>
    public void Blocked(long idleTicks)
    {
        if (_adaptive) _hot = idleTicks < HotGap;
    }
}
