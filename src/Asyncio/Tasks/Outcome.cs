namespace Asyncio;

/// <summary>
/// How one awaitable ended, as reported by <see cref="Aio.GatherOutcomes{T}(IEnumerable{Task{T}})"/>
/// (asyncio's <c>gather(..., return_exceptions=True)</c>): a value, an exception, or a cancellation.
/// </summary>
public readonly struct Outcome<T>
{
    internal Outcome(T value, Exception? exception)
    {
        Value = value;
        Exception = exception;
    }

    /// <summary>The value, when the awaitable succeeded; <c>default</c> otherwise.</summary>
    public T Value { get; }

    /// <summary>The exception, when it failed (a <see cref="CancelledError"/> when it was cancelled).</summary>
    public Exception? Exception { get; }

    /// <summary>Whether it succeeded.</summary>
    public bool IsSuccess => Exception == null;

    /// <summary>Whether it was cancelled.</summary>
    public bool IsCancelled => Exception is CancelledError;

    /// <summary>The value, or throws the exception.</summary>
    public T GetValueOrThrow()
    {
        if (Exception != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(Exception);
        return Value;
    }

    /// <inheritdoc />
    public override string ToString() => Exception == null ? $"Value({Value})" : $"Exception({Exception.GetType().Name}: {Exception.Message})";
}
