namespace Asyncio.Tests;

/// <summary>Long batches of ready callbacks, for the tests of what a loop does inside one (EventLoop.RunOnce, step 5).</summary>
public static class LoopBatch
{
    /// <summary>
    /// Queues <paramref name="count"/> callbacks that record their index in <paramref name="order"/>; the first also
    /// runs <paramref name="first"/>, the last stops the loop.
    /// </summary>
    public static void Queue(EventLoop loop, List<string> order, int count, Action first)
    {
        for (int i = 0; i < count; i++)
        {
            int k = i;
            loop.CallSoon(() =>
            {
                order.Add(k.ToString());
                if (k == 0) first();
                if (k == count - 1) loop.Stop();
            });
        }
    }

    /// <summary>Spins until the loop's clock has passed <paramref name="when"/>.</summary>
    public static void SpinPast(EventLoop loop, double when)
    {
        while (loop.Time() <= when) Thread.SpinWait(20);
    }
}
