namespace Asyncio;

/// <summary>
/// What the loop's exception handler is told about an error that no coroutine could receive: asyncio's
/// exception-handler context dictionary, as a type.
/// </summary>
public sealed class ExceptionContext
{
    /// <summary>Creates a context with a message and, optionally, the exception.</summary>
    public ExceptionContext(string message, Exception? exception = null)
    {
        ArgumentNullException.ThrowIfNull(message);
        Message = message;
        Exception = exception;
    }

    /// <summary>What happened, in words.</summary>
    public string Message { get; }

    /// <summary>The exception, when there is one.</summary>
    public Exception? Exception { get; }

    /// <summary>The future concerned, if any.</summary>
    public Future? Future { get; init; }

    /// <summary>The task concerned, if any.</summary>
    public AioTask? Task { get; init; }

    /// <summary>The callback concerned, if any.</summary>
    public Delegate? Callback { get; init; }

    /// <inheritdoc />
    public override string ToString()
    {
        var s = Message;
        if (Task != null) s += $"\ntask: {Task}";
        else if (Future != null) s += $"\nfuture: {Future}";
        if (Callback != null) s += $"\ncallback: {EventLoop.CallbackName(Callback)}";
        if (Exception != null) s += $"\n{Exception}";
        return s;
    }
}
