namespace Asyncio;

/// <summary>
/// Raised on an operation that the future's state does not allow, such as setting the result of a future
/// that is already done or reading the result of one that is not; asyncio's <c>InvalidStateError</c>.
/// </summary>
public class InvalidStateError : InvalidOperationException
{
    /// <summary>Creates the error with a message that names the offending state.</summary>
    public InvalidStateError(string message) : base(message) { }

    /// <summary>Creates the error with a message and a cause.</summary>
    public InvalidStateError(string message, Exception? innerException) : base(message, innerException) { }
}
