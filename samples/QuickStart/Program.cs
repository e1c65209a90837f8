// The README's quick start, kept compiling: dotnet run --project samples/QuickStart
using Asyncio;

Aio.Run(async () =>
{
    // Two coroutines sleep at the same time: this takes one second, not two.
    await Aio.Gather(SayAfter(1, "hello"), SayAfter(1, "world"));

    // A task can be named, inspected and cancelled; cancellation reaches its awaits.
    var worker = Aio.CreateTask(Worker, name: "worker");
    await Aio.Sleep(0.1);
    worker.Cancel("shutting down");

    // Timeouts and structured concurrency.
    try { await Aio.WaitFor(() => Aio.Sleep(10).AsTask(), timeout: 0.5); }
    catch (TimeoutException) { Console.WriteLine("timed out"); }

    await TaskGroup.Run(tg =>
    {
        tg.CreateTask(() => SayAfter(0.2, "child 1"));
        tg.CreateTask(() => SayAfter(0.1, "child 2"));
    });   // returns when both children are done; a failure cancels the others
});

static async Task SayAfter(double delay, string what)
{
    await Aio.Sleep(delay);
    Console.WriteLine(what);
}

static async Task Worker()
{
    try { while (true) await Aio.Sleep(1); }
    catch (CancelledError e) { Console.WriteLine($"worker cancelled: {e.CancelMessage}"); throw; }
}
