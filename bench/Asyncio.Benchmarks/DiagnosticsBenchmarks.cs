using Asyncio;
using BenchmarkDotNet.Attributes;

namespace Asyncio.Benchmarks;

/// <summary>
/// What the Diagnostics layer costs a callback: the chain of <see cref="LoopBenchmarks.CallSoonChain"/> with a trace
/// recording, and in debug mode (the watchdog off, as its timer thread is not the callback's cost). Both take the
/// loop's instrumented path; recording must allocate nothing (the trace's ring is made when it starts).
/// </summary>
[MemoryDiagnoser]
public class DiagnosticsBenchmarks : IOpsBenchmark
{
    EventLoop _traced = null!, _debug = null!;
    EventLoop _loop = null!;
    int _remaining;

    /// <summary>Operations the next invocation performs.</summary>
    public int N { get; set; } = LoopBenchmarks.Ops;

    [GlobalSetup]
    public void Setup()
    {
        _traced = new EventLoop();
        _traced.StartTrace(capacity: 1 << 16);
        _debug = new EventLoop(new LoopOptions { Debug = true, BlockedLoopThreshold = TimeSpan.Zero });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _traced.Close();
        _debug.Close();
    }

    static readonly Action<object?> s_chain = Step;

    static void Step(object? o)
    {
        var b = (DiagnosticsBenchmarks)o!;
        if (--b._remaining == 0) b._loop.Stop();
        else b._loop.CallSoon(s_chain, b);
    }

    void Chain(EventLoop loop)
    {
        _loop = loop;
        _remaining = N;
        loop.CallSoon(s_chain, this);
        loop.RunForever();
    }

    /// <summary>A callback chain while a trace records every callback.</summary>
    [Benchmark(OperationsPerInvoke = LoopBenchmarks.Ops)]
    public void CallSoonChainTraced() => Chain(_traced);

    /// <summary>A callback chain in debug mode (each callback timed for the slow-callback report).</summary>
    [Benchmark(OperationsPerInvoke = LoopBenchmarks.Ops)]
    public void CallSoonChainDebug() => Chain(_debug);
}
