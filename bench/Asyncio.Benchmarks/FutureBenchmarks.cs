using Asyncio;
using BenchmarkDotNet.Attributes;

namespace Asyncio.Benchmarks;

/// <summary>
/// Completion plus await of futures created before the measured code, so that the figure is what
/// completing and awaiting costs, without the future's own allocation (which
/// <see cref="LoopBenchmarks.FutureCreateCompleteAwait"/> includes).
/// </summary>
[MemoryDiagnoser]
public class FutureBenchmarks : IOpsBenchmark
{
    /// <summary>Operations per benchmark invocation.</summary>
    public const int Ops = 100_000;

    EventLoop _loop = null!;
    Future[] _futures = [];
    Func<Task> _completeAwaitLoop = null!;

    /// <summary>Operations the next invocation performs.</summary>
    public int N { get; set; } = Ops;

    [GlobalSetup]
    public void Setup()
    {
        _loop = new EventLoop();
        _completeAwaitLoop = CompleteAwaitLoop;
    }

    [GlobalCleanup]
    public void Cleanup() => _loop.Close();

    [IterationSetup]
    public void MakeFutures()
    {
        if (_futures.Length != N) _futures = new Future[N];
        for (int i = 0; i < N; i++) _futures[i] = _loop.CreateFuture();
    }

    static readonly Action<object?> s_setResult = static o => ((Future)o!).SetResult();

    async Task CompleteAwaitLoop()
    {
        var loop = _loop;
        var futures = _futures;
        for (int i = 0; i < futures.Length; i++)
        {
            var f = futures[i];
            loop.CallSoon(s_setResult, f);
            await f;
        }
    }

    /// <summary>A callback completes a pending future that a task awaits.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void FutureCompleteAwait() => _loop.RunUntilComplete(_completeAwaitLoop);
}
