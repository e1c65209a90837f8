namespace Asyncio;

/// <summary>
/// Raised when putting into a queue that was shut down, or getting from one that was shut down and is
/// empty (or was shut down immediately); asyncio's <c>QueueShutDown</c>. See <see cref="AsyncQueue{T}.Shutdown"/>.
/// </summary>
public class QueueShutDownError : InvalidOperationException
{
    /// <summary>Creates the error with the default message.</summary>
    public QueueShutDownError() : base("The queue has been shut down.") { }

    /// <summary>Creates the error with a message.</summary>
    public QueueShutDownError(string message) : base(message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public QueueShutDownError(string message, Exception? innerException) : base(message, innerException) { }
}
