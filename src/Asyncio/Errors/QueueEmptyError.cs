namespace Asyncio;

/// <summary>
/// Raised by <see cref="AsyncQueue{T}.GetNowait"/> when no item is available; asyncio's <c>QueueEmpty</c>.
/// </summary>
public class QueueEmptyError : InvalidOperationException
{
    /// <summary>Creates the error with the default message.</summary>
    public QueueEmptyError() : base("The queue is empty.") { }

    /// <summary>Creates the error with a message.</summary>
    public QueueEmptyError(string message) : base(message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public QueueEmptyError(string message, Exception? innerException) : base(message, innerException) { }
}
