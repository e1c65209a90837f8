using System.Diagnostics;

namespace Asyncio;

/// <summary>
/// The reactor for platforms without epoll: a wait handle that <see cref="Wake"/> sets. Timeouts are
/// rounded up to whole milliseconds, so a timer is never early but may be up to a millisecond late.
/// </summary>
internal sealed class PortableReactor : IReactor
{
    readonly ManualResetEventSlim _event = new(false, spinCount: 0);

    public bool HasRegistrations => false;

    public void Poll(long timeoutTicks)
    {
        if (timeoutTicks == 0) { _event.Reset(); return; }
        int ms = timeoutTicks < 0 ? Timeout.Infinite : (int)Math.Min(int.MaxValue, (timeoutTicks * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency);
        _event.Wait(ms);
        _event.Reset();
    }

    public void Wake() => _event.Set();

    public void Dispose() => _event.Dispose();
}
