// W3 (DESIGN.md section 6): two tasks ping-pong a token through two queues, N round trips.
// Written as a user of the library would write it; prints one line `RESULT {json}` like the peers in
// shared/peers (py/peer.py, dotnet/Program.cs): an in-process warm-up round of N/10, then the measured one.
// Usage: W3 [N]   (default 1,000,000)
using System.Diagnostics;
using System.Globalization;
using Asyncio;

int n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;

double wall = Aio.Run(async () =>
{
    await PingPong(n / 10); // warm-up
    return await PingPong(n);
});

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"RESULT {{\"wall_s\": {wall:F4}, \"rate\": {n / wall:F0}, \"rss_mb\": {ProcessMemory.PeakRssMb():F1}, \"mode\": \"asyncio-dotnet\", \"gc_server\": {(System.Runtime.GCSettings.IsServerGC ? "true" : "false")}}}"));

static async Task<double> PingPong(int n)
{
    var q1 = new AsyncQueue<int>();
    var q2 = new AsyncQueue<int>();
    var sw = Stopwatch.StartNew();
    var ping = Aio.CreateTask(async () =>
    {
        for (int i = 0; i < n; i++)
        {
            await q1.PutAsync(i);
            await q2.GetAsync();
        }
    });
    var pong = Aio.CreateTask(async () =>
    {
        for (int i = 0; i < n; i++)
        {
            int v = await q1.GetAsync();
            await q2.PutAsync(v);
        }
    });
    await Aio.Gather(ping, pong);
    return sw.Elapsed.TotalSeconds;
}

