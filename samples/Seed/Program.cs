// The tutorial this project started from: two blocking one-second sleeps take two seconds, the same
// two as asyncio coroutines take one. This is that example in C#, with a knob to scale it up.
//
//   dotnet run -c Release --project samples/Seed                       # both parts, as in the tutorial
//   dotnet run -c Release --project samples/Seed -- --n 1000000 --mode async --quiet
using System.Diagnostics;
using Asyncio;

int n = 2;
string mode = "both";
bool quiet = false;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--n" when i + 1 < args.Length && int.TryParse(args[i + 1], out var value) && value > 0:
            n = value; i++; break;
        case "--mode" when i + 1 < args.Length && args[i + 1] is "blocking" or "async" or "both":
            mode = args[++i]; break;
        case "--quiet":
            quiet = true; break;
        default:
            Console.Error.WriteLine("usage: Seed [--n N] [--mode blocking|async|both] [--quiet]");
            return 2;
    }
}

// Python's round() rounds halves to even; so does this.
static long Round(double seconds) => (long)Math.Round(seconds, MidpointRounding.ToEven);

if (mode is "blocking" or "both")
{
    void BlockingSleep()
    {
        if (!quiet) Console.WriteLine("Antes de dormir");
        Thread.Sleep(1000);
        if (!quiet) Console.WriteLine("Luego de dormir");
    }

    var start = Stopwatch.GetTimestamp();
    for (int i = 0; i < n; i++) BlockingSleep();
    Console.WriteLine($"Duración: {Round(Stopwatch.GetElapsedTime(start).TotalSeconds)}");
}

if (mode is "async" or "both")
{
    // asyncio's `async def`. An `async Task` method would do the same; a Coroutine holds about 40 bytes
    // less while it waits, which a million of them notice.
    static async Coroutine AsyncSleep(bool quiet)
    {
        if (!quiet) Console.WriteLine("before sleep");
        await Aio.Sleep(1);
        if (!quiet) Console.WriteLine("after sleep");
    }

    Aio.Run(async () =>
    {
        var start = Stopwatch.GetTimestamp();
        var sleeps = new Coroutine[n];
        for (int i = 0; i < n; i++) sleeps[i] = AsyncSleep(quiet);
        await Aio.Gather(sleeps);
        Console.WriteLine($"duration: {Round(Stopwatch.GetElapsedTime(start).TotalSeconds)}");
    });
}
return 0;
