using System.Diagnostics;

namespace Asyncio;

/// <summary>
/// The loop's clock as a <see cref="TimeProvider"/> (<see cref="EventLoop.TimeProvider"/>): timestamps are
/// the loop's ticks and timers are loop timers whose callbacks run on the loop thread.
/// </summary>
internal sealed class LoopTimeProvider(EventLoop loop) : TimeProvider
{
    readonly DateTimeOffset _virtualEpoch = DateTimeOffset.UtcNow;

    public override long GetTimestamp() => loop.NowTicks();

    public override long TimestampFrequency => Stopwatch.Frequency;

    /// <summary>On virtual time, the wall clock at the loop's creation plus the virtual time elapsed.</summary>
    public override DateTimeOffset GetUtcNow() =>
        loop.IsVirtualTime ? _virtualEpoch + TimeSpan.FromSeconds(loop.Time()) : base.GetUtcNow();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new LoopTimer(loop, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>A timer of <see cref="LoopTimeProvider"/>; changes from other threads are marshalled to the loop.</summary>
    sealed class LoopTimer(EventLoop loop, TimerCallback callback, object? state) : ITimer
    {
        TimerEntry? _entry;
        TimeSpan _period = global::System.Threading.Timeout.InfiniteTimeSpan;
        bool _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime < TimeSpan.Zero && dueTime != global::System.Threading.Timeout.InfiniteTimeSpan) throw new ArgumentOutOfRangeException(nameof(dueTime));
            if (period < TimeSpan.Zero && period != global::System.Threading.Timeout.InfiniteTimeSpan) throw new ArgumentOutOfRangeException(nameof(period));
            if (_disposed) return false;
            // The state check and the post are one step: a loop that closes meanwhile makes this false, never a throw.
            return loop.RunOrPostThreadsafe(s_apply, (this, dueTime, period));
        }

        static readonly Action<object?> s_apply = static o =>
        {
            var (t, dueTime, period) = ((LoopTimer, TimeSpan, TimeSpan))o!;
            t.Apply(dueTime, period);
        };

        void Apply(TimeSpan dueTime, TimeSpan period)
        {
            if (_entry != null) loop.CancelTimer(_entry);
            _entry = null;
            if (_disposed || loop.IsClosed) return;
            _period = period;
            if (dueTime != global::System.Threading.Timeout.InfiniteTimeSpan)
                _entry = loop.ScheduleTimerEntry(s_fire, this, EventLoop.DelayToTicks(dueTime), relative: true);
        }

        static readonly Action<object?> s_fire = static o =>
        {
            var t = (LoopTimer)o!;
            t._entry = null;
            if (t._disposed) return;
            if (t._period != global::System.Threading.Timeout.InfiniteTimeSpan && t._period > TimeSpan.Zero)
                t._entry = t.Loop.ScheduleTimerEntry(s_fire!, t, EventLoop.DelayToTicks(t._period), relative: true);
            t.Callback(t.State);
        };

        EventLoop Loop => loop;
        TimerCallback Callback => callback;
        object? State => state;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            loop.RunOrPostThreadsafe(s_cancel, this); // a closed loop has no timers left to cancel
        }

        static readonly Action<object?> s_cancel = static o =>
        {
            var t = (LoopTimer)o!;
            if (t._entry != null) t.Loop.CancelTimer(t._entry);
            t._entry = null;
        };

        public ValueTask DisposeAsync()
        {
            Dispose();
            return default;
        }
    }
}
