namespace Asyncio.Tests;

/// <summary>The small coroutines the combinator tests gather, wait for and group.</summary>
public static class Coroutines
{
    /// <summary>Sleeps <paramref name="seconds"/>, then returns <paramref name="value"/>.</summary>
    public static async Task<int> After(double seconds, int value)
    {
        await Aio.Sleep(seconds);
        return value;
    }

    /// <summary>Sleeps <paramref name="seconds"/>, then fails with an <see cref="InvalidOperationException"/> carrying <paramref name="message"/>.</summary>
    public static async Task<int> FailAfter(double seconds, string message)
    {
        await Aio.Sleep(seconds);
        throw new InvalidOperationException(message);
    }
}
