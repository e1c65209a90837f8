using System.Diagnostics.Tracing;
using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;

namespace Asyncio.Benchmarks;

/// <summary>A benchmark class whose methods perform <see cref="N"/> operations per invocation.</summary>
public interface IOpsBenchmark
{
    /// <summary>Operations the next invocation performs.</summary>
    int N { get; set; }
}

/// <summary>
/// Exact steady-state allocation per operation, and what allocates it (<c>--alloc</c>).
/// </summary>
/// <remarks>
/// BenchmarkDotNet's Allocated column divides everything one invocation allocates by its operations, so
/// the constant cost of an invocation (a task for <c>RunUntilComplete</c>) shows up as a fraction of a
/// byte. This probe runs each benchmark with two sizes and divides the difference, which cancels the
/// constant, then samples the runtime's allocation events (one per ~100 KB allocated) to name the types.
/// </remarks>
public static class AllocationProbe
{
    const int Small = 1_000, Large = 101_000;

    public static int Run(TextWriter output, string? filter)
    {
        output.WriteLine("benchmark\tbytes_per_op\tbytes_per_invocation\ttypes");
        foreach (var type in new[] { typeof(LoopBenchmarks), typeof(FutureBenchmarks), typeof(SyncBenchmarks), typeof(DiagnosticsBenchmarks) })
        {
            foreach (var method in type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() != null))
            {
                string name = $"{type.Name}.{method.Name}";
                if (filter != null && !name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
                var (perOp, perInvocation, types) = Measure(type, method);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}\t{perOp:F1}\t{perInvocation:F0}\t{types}"));
            }
        }
        return 0;
    }

    static (double PerOp, double PerInvocation, string Types) Measure(Type type, MethodInfo method)
    {
        var bench = (IOpsBenchmark)Activator.CreateInstance(type)!;
        Call(type, bench, typeof(GlobalSetupAttribute));
        try
        {
            long Invoke(int n)
            {
                bench.N = n;
                Call(type, bench, typeof(IterationSetupAttribute));
                long before = GC.GetAllocatedBytesForCurrentThread();
                method.Invoke(bench, null);
                return GC.GetAllocatedBytesForCurrentThread() - before;
            }
            for (int i = 0; i < 3; i++) { Invoke(Small); Invoke(Large); }   // warm up: JIT tiers, pools
            long small = Invoke(Small), large = Invoke(Large);
            double perOp = Math.Max(0, (large - small) / (double)(Large - Small));
            double perInvocation = Math.Max(0, small - perOp * Small);
            string types = perOp >= 0.5 ? SampleTypes(() => Invoke(Large), perOp * Large) : "";
            return (perOp, perInvocation, types);
        }
        finally
        {
            Call(type, bench, typeof(GlobalCleanupAttribute));
        }
    }

    static void Call(Type type, object bench, Type attribute)
    {
        foreach (var m in type.GetMethods().Where(m => m.GetCustomAttribute(attribute) != null))
            m.Invoke(bench, null);
    }

    /// <summary>Runs <paramref name="invoke"/> until about 50 MB were allocated, with allocation events on; returns the top types.</summary>
    static string SampleTypes(Action invoke, double bytesPerInvoke)
    {
        using var listener = new AllocationListener();
        int rounds = (int)Math.Clamp(50e6 / Math.Max(1, bytesPerInvoke), 1, 200);
        for (int i = 0; i < rounds; i++) invoke();
        Thread.Sleep(1500);   // runtime events reach the listener asynchronously
        return listener.Summary();
    }

    /// <summary>Adds up the runtime's GCAllocationTick events by type name, weighted by the bytes each stands for.</summary>
    sealed class AllocationListener : EventListener
    {
        readonly Dictionary<string, long> _bytes = new();
        const EventKeywords GcKeyword = (EventKeywords)0x1;

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, GcKeyword);
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventName == null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames == null) return;
            int i = e.PayloadNames.IndexOf("TypeName");
            if (i < 0 || e.Payload![i] is not string name) return;
            if (name.StartsWith("System.Diagnostics.Tracing.", StringComparison.Ordinal)) return;   // this listener's own
            // Each event stands for the ~100 KB allocated since the previous one (a large array: its own size).
            int j = e.PayloadNames.IndexOf("AllocationAmount64");
            long amount = j >= 0 ? Convert.ToInt64(e.Payload[j], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
            lock (_bytes) _bytes[name] = _bytes.GetValueOrDefault(name) + amount;
        }

        public string Summary()
        {
            lock (_bytes)
            {
                long total = _bytes.Values.Sum();
                if (total == 0) return "(no allocation events)";
                return string.Join(", ", _bytes.OrderByDescending(kv => kv.Value).Where(kv => kv.Value * 50 >= total).Take(5)
                    .Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {100.0 * kv.Value / total:F0}%")));
            }
        }
    }
}
