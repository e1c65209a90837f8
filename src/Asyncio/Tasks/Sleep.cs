using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// The awaitable returned by <see cref="Aio.Sleep(double)"/>: await it once, where it is created.
/// </summary>
/// <remarks>
/// A sleep allocates nothing: the deadline is fixed when <c>Sleep</c> is called and handed to the loop
/// when the await suspends, and the coroutine waits in a 32-byte timer slot. Use <see cref="AsTask"/> to
/// hold a sleep as a <see cref="Task"/>.
/// </remarks>
public readonly struct SleepAwaitable
{
    readonly EventLoop _loop;
    readonly long _due;
    readonly long _delay;

    internal SleepAwaitable(EventLoop loop, long due, long delay)
    {
        _loop = loop;
        _due = due;
        _delay = delay;
    }

    /// <summary>Returns the awaiter (used by <c>await</c>).</summary>
    public ValueTaskAwaiter GetAwaiter() => _loop.PrepareSleep(_due, _delay);

    /// <summary>Runs the sleep as a <see cref="Task"/> (allocates; for composing with .NET APIs).</summary>
    public Task AsTask() => Await(this);

    static async Task Await(SleepAwaitable s) => await s;
}
