namespace Asyncio;

/// <summary>
/// The stream ended before a read was satisfied; asyncio's <c>IncompleteReadError</c>. <see cref="Partial"/>
/// holds the bytes read before the end (they have been consumed from the stream).
/// </summary>
public sealed class IncompleteReadError : EndOfStreamException
{
    /// <summary>Creates the error with the bytes read and the count that was expected (<see langword="null"/> when unknown).</summary>
    public IncompleteReadError(byte[] partial, int? expected)
        : base($"{partial.Length} bytes read on a total of {(expected is int e ? e.ToString(System.Globalization.CultureInfo.InvariantCulture) : "undefined")} expected bytes")
    {
        Partial = partial;
        Expected = expected;
    }

    /// <summary>The bytes read before the stream ended.</summary>
    public byte[] Partial { get; }

    /// <summary>How many bytes were expected, or <see langword="null"/> (a read until a separator).</summary>
    public int? Expected { get; }
}

/// <summary>
/// A read until a separator found no separator within the reader's limit; asyncio's
/// <c>LimitOverrunError</c>. Nothing was consumed: the data is still in the reader's buffer.
/// </summary>
public sealed class LimitOverrunError : Exception
{
    /// <summary>Creates the error; <paramref name="consumed"/> is how many bytes are to be consumed to get past the problem.</summary>
    public LimitOverrunError(string message, int consumed) : base(message) => Consumed = consumed;

    /// <summary>How many bytes would have to be consumed (asyncio's <c>consumed</c>).</summary>
    public int Consumed { get; }
}
