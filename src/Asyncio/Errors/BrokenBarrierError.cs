namespace Asyncio;

/// <summary>
/// Raised by <see cref="AsyncBarrier.WaitAsync"/> when the barrier is aborted, or reset while the caller
/// waits in it; asyncio's <c>BrokenBarrierError</c>.
/// </summary>
public class BrokenBarrierError : InvalidOperationException
{
    /// <summary>Creates the error with the default message.</summary>
    public BrokenBarrierError() : base("The barrier is broken.") { }

    /// <summary>Creates the error with a message.</summary>
    public BrokenBarrierError(string message) : base(message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public BrokenBarrierError(string message, Exception? innerException) : base(message, innerException) { }
}
