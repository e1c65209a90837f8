namespace Asyncio;

/// <summary>
/// The loop's waiting point: blocks until a thread-safe wake-up, I/O readiness, or a timeout.
/// </summary>
/// <remarks>
/// The loop calls <see cref="Poll"/> once per iteration at most, on its own thread, and only when it has
/// nothing ready to run or has run a batch of callbacks since the last poll. <see cref="Wake"/> may be
/// called from any thread; a wake-up that arrives before <see cref="Poll"/> makes the next poll return at once.
/// </remarks>
internal interface IReactor : IDisposable
{
    /// <summary>
    /// Waits for at most <paramref name="timeoutTicks"/> (in <see cref="System.Diagnostics.Stopwatch"/>
    /// ticks; negative means no limit, zero means do not block) and dispatches what became ready.
    /// </summary>
    void Poll(long timeoutTicks);

    /// <summary>Makes a current or the next <see cref="Poll"/> return. Thread-safe.</summary>
    void Wake();

    /// <summary>Whether file descriptors or sockets are registered (virtual time then waits for them before jumping).</summary>
    bool HasRegistrations { get; }
}
