namespace Asyncio;

/// <summary>
/// Raised by <see cref="AsyncQueue{T}.PutNowait"/> when the queue has no free slot; asyncio's <c>QueueFull</c>.
/// </summary>
public class QueueFullError : InvalidOperationException
{
    /// <summary>Creates the error with the default message.</summary>
    public QueueFullError() : base("The queue is full.") { }

    /// <summary>Creates the error with a message.</summary>
    public QueueFullError(string message) : base(message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public QueueFullError(string message, Exception? innerException) : base(message, innerException) { }
}
