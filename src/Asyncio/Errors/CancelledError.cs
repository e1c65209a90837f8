namespace Asyncio;

/// <summary>
/// Raised at an await of a loop primitive when the task (or the cancel scope) running the awaiting code
/// was cancelled; asyncio's <c>asyncio.CancelledError</c>.
/// </summary>
/// <remarks>
/// It derives from <see cref="OperationCanceledException"/> so that .NET code which treats cancellation
/// generically (a <c>catch (OperationCanceledException)</c>, a <see cref="Task"/> that ends cancelled)
/// recognises it. As in asyncio, a coroutine may catch it and carry on; the task then keeps running and
/// <see cref="AioTask.Cancelling"/> still counts the request.
/// </remarks>
public class CancelledError : OperationCanceledException
{
    /// <summary>Creates a cancellation error with asyncio's default (empty) message.</summary>
    public CancelledError() : base(DefaultMessage) { }

    /// <summary>Creates a cancellation error carrying the message given to <c>Cancel(msg)</c>.</summary>
    /// <param name="message">The cancellation message, or <see langword="null"/> for none.</param>
    public CancelledError(string? message) : base(message ?? DefaultMessage) { CancelMessage = message; }

    /// <summary>Creates a cancellation error with a message and the error that caused it.</summary>
    public CancelledError(string? message, Exception? innerException) : base(message ?? DefaultMessage, innerException)
    {
        CancelMessage = message;
    }

    /// <summary>Creates a cancellation error tied to the token that was signalled.</summary>
    public CancelledError(string? message, CancellationToken token) : base(message ?? DefaultMessage, token)
    {
        CancelMessage = message;
    }

    /// <summary>The message passed to <c>Cancel(msg)</c>, or <see langword="null"/> when none was given.</summary>
    public string? CancelMessage { get; }

    internal const string DefaultMessage = "The operation was cancelled.";

    /// <summary>
    /// A wait refused at its call because <paramref name="token"/> is already cancelled. It ends as a wait
    /// that the token cancels later does: canceled, throwing a <see cref="CancelledError"/> that carries the
    /// token (<see cref="ValueTask.FromCanceled(CancellationToken)"/> would throw a
    /// <see cref="TaskCanceledException"/>, which a <c>catch (CancelledError)</c> misses).
    /// </summary>
    internal static ValueTask Refused(CancellationToken token) => new(RefusedTask<bool>(token));

    /// <inheritdoc cref="Refused(CancellationToken)"/>
    internal static ValueTask<T> Refused<T>(CancellationToken token) => new(RefusedTask<T>(token));

    // An async method that throws an OperationCanceledException ends canceled and rethrows that very
    // exception when awaited: the one public way to make such a Task.
#pragma warning disable CS1998 // no await: it only throws
    static async Task<T> RefusedTask<T>(CancellationToken token) => throw new CancelledError(null, token);
#pragma warning restore CS1998
}
