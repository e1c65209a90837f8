// A pipeline traced: what ran when, drawn as a timeline.
//
//   dotnet run --project samples/Timeline [-- --out DIR]
//
// A producer queues 12 jobs; three workers take them, "fetch" each (a sleep: the loop waits) and "parse" it (a
// little CPU work: the loop runs). The loop records a trace meanwhile and writes it out twice: timeline.json, for
// https://ui.perfetto.dev or chrome://tracing, and timeline.svg, a picture any browser shows. Then it reads the
// trace itself and says where the loop's time went.
using System.Diagnostics;
using Asyncio;

string outDir = args.Length == 2 && args[0] == "--out" ? args[1] : ".";
if (!(args.Length == 0 || args.Length == 2 && args[0] == "--out"))
{
    Console.Error.WriteLine("usage: Timeline [--out DIR]");
    return 2;
}
Directory.CreateDirectory(outDir);

LoopTrace? trace = null;
Aio.Run(async () =>
{
    trace = Aio.GetRunningLoop().StartTrace();
    var jobs = new AsyncQueue<int>(maxSize: 4);
    var random = new Random(42);

    async Task Producer()
    {
        for (int job = 1; job <= 12; job++) await jobs.PutAsync(job);
        jobs.Shutdown();   // the workers' Get ends with QueueShutDownError once the queue is empty
    }

    async Task Worker()
    {
        try
        {
            while (true)
            {
                int job = await jobs.GetAsync();
                await Aio.Sleep(0.01 + random.NextDouble() * 0.04);   // fetch: the loop waits
                Spin(TimeSpan.FromMilliseconds(2));                     // parse: the loop runs
            }
        }
        catch (QueueShutDownError) { }
    }

    await TaskGroup.Run(tg =>
    {
        tg.CreateTask(Producer, name: "producer");
        for (int i = 1; i <= 3; i++) tg.CreateTask(Worker, name: $"worker-{i}");
    });
    trace.Stop();
});

string json = Path.Combine(outDir, "timeline.json"), svg = Path.Combine(outDir, "timeline.svg");
trace!.SaveChromeTrace(json);
trace.SaveSvg(svg);

var events = trace.Events;
TimeSpan Sum(LoopTraceEventKind kind) => events.Where(e => e.Kind == kind).Aggregate(TimeSpan.Zero, (t, e) => t + e.Duration);
var busiest = events.Where(e => e.Kind == LoopTraceEventKind.Step)
    .GroupBy(e => e.Task!.Name)
    .Select(g => (Name: g.Key, Steps: g.Count(), Time: g.Aggregate(TimeSpan.Zero, (t, e) => t + e.Duration)))
    .OrderByDescending(x => x.Time)
    .First();
Console.WriteLine($"traced {events.Count} events over {trace.Elapsed.TotalMilliseconds:F0} ms");
Console.WriteLine($"steps {Sum(LoopTraceEventKind.Step).TotalMilliseconds:F1} ms, callbacks {Sum(LoopTraceEventKind.Callback).TotalMilliseconds:F1} ms, waiting {Sum(LoopTraceEventKind.Idle).TotalMilliseconds:F1} ms");
Console.WriteLine($"busiest task: {busiest.Name}, {busiest.Steps} steps, {busiest.Time.TotalMilliseconds:F1} ms");
Console.WriteLine($"wrote {json} and {svg}");
return 0;

static void Spin(TimeSpan time)
{
    long end = Stopwatch.GetTimestamp() + (long)(time.TotalSeconds * Stopwatch.Frequency);
    while (Stopwatch.GetTimestamp() < end) { }
}
