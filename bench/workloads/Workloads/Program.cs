// This library's side of the macro workloads W1, W2 and W4 (DESIGN.md section 6), written the way the
// README teaches: Aio.Run, Aio.Sleep, Aio.CreateTask, Aio.Gather. The definitions, the warm-up and the
// output match the peers in shared/peers (dotnet/Program.cs, py/peer.py): one line `RESULT {json}`.
//
//   Workloads w1 N    gather N coroutines that each sleep 1 s          -> wall_s
//   Workloads w2 N    create N tasks of a trivial coroutine, gather them -> wall_s, rate (tasks/s)
//   Workloads w4 N    N tasks sleep random 0-100 ms (LCG seed 12345)    -> lateness p50/p99/max/min ms
//
//   Workloads wK N --costs [R]   where the time goes: R rounds (default 4) of size N after the usual
//                                warm-up, each printed as a `COSTS` line (creation and total time, bytes
//                                allocated per task, GCs by generation and their pause); not for bench/run.
using System.Diagnostics;
using System.Globalization;
using Asyncio;

static class Workloads
{
    static int Main(string[] args)
    {
        int rounds = 0;
        bool costs = args.Length >= 3 && args[2] == "--costs"
            && (args.Length == 3 || (args.Length == 4 && int.TryParse(args[3], out rounds) && rounds > 0));
        if (!(args.Length == 2 || costs) || !int.TryParse(args[1], out int n) || n <= 0 || args[0] is not ("w1" or "w2" or "w4"))
        {
            Console.Error.WriteLine("usage: Workloads <w1|w2|w4> N [--costs [ROUNDS]]   (N > 0)");
            return 2;
        }
        if (costs)
        {
            Aio.Run(() => CostRounds(args[0], n, rounds == 0 ? 4 : rounds));
            return 0;
        }
        string result = Aio.Run(() => Body(args[0], n));
        Console.WriteLine(FormattableString.Invariant(
            $"RESULT {{{result}, \"rss_mb\": {ProcessMemory.PeakRssMb():F1}, \"gc_server\": {Json(System.Runtime.GCSettings.IsServerGC)}, \"gc_concurrent\": {Json(GcConcurrent())}}}"));
        return 0;
    }

    static async Task<string> Body(string workload, int n)
    {
        switch (workload)
        {
            case "w1":
                await W1(10);   // warm-up, as the peers do
                return Invariant($"\"wall_s\": {await W1(n):F4}");
            case "w2":
            {
                await W2(Math.Max(1, n / 10));
                double t = await W2(n);
                return Invariant($"\"wall_s\": {t:F4}, \"rate\": {n / t:F0}");
            }
            default:
                await W4(Math.Min(n, 1000));
                return await W4(n);
        }
    }

    /// <summary>The usual warm-up, then <paramref name="rounds"/> rounds of size <paramref name="n"/>, each with its costs.</summary>
    static async Task CostRounds(string workload, int n, int rounds)
    {
        for (int r = 0; r <= rounds; r++)
        {
            int size = r == 0 ? (workload == "w1" ? 10 : workload == "w2" ? Math.Max(1, n / 10) : Math.Min(n, 1000)) : n;
            var costs = new Costs();
            string result = workload switch
            {
                "w1" => Invariant($"wall_s {await W1(size, costs):F4}"),
                "w2" => Invariant($"wall_s {await W2(size, costs):F4}"),
                _ => await W4(size, costs),
            };
            Console.WriteLine($"COSTS {workload} round {r}{(r == 0 ? " (warm-up)" : "")} N={size}: {costs.Report(size)}; {result}");
        }
    }

    // ---- W1: the seed's example scaled up ----

    static async Coroutine Sleeper() => await Aio.Sleep(1);

    static async Task<double> W1(int n, Costs? costs = null)
    {
        long start = Stopwatch.GetTimestamp();
        var sleeps = new Coroutine[n];
        for (int i = 0; i < n; i++) sleeps[i] = Sleeper();
        costs?.Created();
        await Aio.Gather(sleeps);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    // ---- W2: create and await trivial tasks ----

#pragma warning disable CS1998 // a trivial coroutine: no await inside, as in every peer
    static async Task Noop() { }
#pragma warning restore CS1998

    static readonly Func<Task> s_noop = Noop;

    static async Task<double> W2(int n, Costs? costs = null)
    {
        long start = Stopwatch.GetTimestamp();
        var tasks = new AioTask[n];
        for (int i = 0; i < n; i++) tasks[i] = Aio.CreateTask(s_noop);
        costs?.Created();
        await Aio.Gather(tasks);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    // ---- W4: timer lateness ----

    // Lateness counts from the moment Sleep is called: the clock is read just before the call.
    static async Coroutine<double> One(int ms)
    {
        long start = Stopwatch.GetTimestamp();
        await Aio.Sleep(ms / 1000.0);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds - ms;
    }

    // N tasks, as the workload says and as asyncio's gather of coroutines and Tokio's spawn make them: each
    // sleep starts in its task's first step, on the loop, which runs the timers that come due meanwhile
    // every 64 steps (EventLoop.RunOnce).
    static async Task<string> W4(int n, Costs? costs = null)
    {
        uint x = 12345;   // the peers' 32-bit LCG: every peer sleeps the same delays
        var sleeps = new AioTask<double>[n];
        for (int i = 0; i < n; i++)
        {
            x = unchecked(x * 1664525u + 1013904223u);
            sleeps[i] = Aio.CreateTask(One, (int)((x >> 8) % 101));   // create_task(one(d)): no closure per task
        }
        costs?.Created();
        double[] late = await Aio.Gather(sleeps);
        Array.Sort(late);
        double Pick(double p) => late[(int)Math.Round((late.Length - 1) * p)];
        return Invariant($"\"p50_ms\": {Pick(0.5):F3}, \"p99_ms\": {Pick(0.99):F3}, \"max_ms\": {late[^1]:F3}, \"min_ms\": {late[0]:F3}");
    }

    /// <summary>Time, allocation and GC work of one round, split at the end of its creation loop.</summary>
    sealed class Costs
    {
        readonly long _t0 = Stopwatch.GetTimestamp();
        readonly long _a0 = GC.GetTotalAllocatedBytes(precise: true);
        readonly TimeSpan _p0 = GC.GetTotalPauseDuration();
        readonly int _g0 = GC.CollectionCount(0), _g1 = GC.CollectionCount(1), _g2 = GC.CollectionCount(2);
        (double Ms, long Bytes, string Gcs) _created;

        public void Created() => _created = Now();

        public string Report(int n)
        {
            var done = Now();
            return Invariant($"creation {_created.Ms:F1} ms, {_created.Bytes / n} B/task, GCs {_created.Gcs}; whole round {done.Ms:F1} ms, {done.Bytes / n} B/task, GCs {done.Gcs}");
        }

        (double Ms, long Bytes, string Gcs) Now() => (
            Stopwatch.GetElapsedTime(_t0).TotalMilliseconds,
            GC.GetTotalAllocatedBytes(precise: true) - _a0,
            Invariant($"{GC.CollectionCount(0) - _g0}/{GC.CollectionCount(1) - _g1}/{GC.CollectionCount(2) - _g2} paused {(GC.GetTotalPauseDuration() - _p0).TotalMilliseconds:F1} ms"));
    }

    // ---- output ----

    static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    static string Json(bool b) => b ? "true" : "false";

    static bool GcConcurrent() => AppContext.TryGetSwitch("System.GC.Concurrent", out bool on) ? on : true;

}
