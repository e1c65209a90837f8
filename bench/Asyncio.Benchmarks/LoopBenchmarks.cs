using Asyncio;
using BenchmarkDotNet.Attributes;

namespace Asyncio.Benchmarks;

/// <summary>
/// The hot paths of issue 2, each driven the way a user drives them: a loop runs a coroutine (or a batch
/// of callbacks) that performs <see cref="Ops"/> operations per benchmark invocation. Target: 0 bytes
/// allocated per operation for CallSoon, future completion + await and Sleep(0) in steady state.
/// </summary>
/// <remarks>
/// The per-invocation cost (one <c>RunUntilComplete</c>: a task and its state machine) is spread over
/// <see cref="Ops"/> operations; <c>--alloc</c> (see <see cref="AllocationProbe"/>) removes it exactly by
/// running two sizes and reports the steady-state bytes per operation and which types they are.
/// </remarks>
[MemoryDiagnoser]
public class LoopBenchmarks : IOpsBenchmark
{
    /// <summary>Operations per benchmark invocation.</summary>
    public const int Ops = 10_000;

    EventLoop _loop = null!;
    Func<Task> _futureLoop = null!, _sleepLoop = null!, _createTaskLoop = null!, _timerLoop = null!;
    int _remaining;

    /// <summary>Operations the next invocation performs (<see cref="Ops"/>; the allocation probe varies it).</summary>
    public int N { get; set; } = Ops;

    [GlobalSetup]
    public void Setup()
    {
        _loop = new EventLoop();
        _futureLoop = FutureLoop;
        _sleepLoop = SleepLoop;
        _createTaskLoop = CreateTaskLoop;
        _timerLoop = TimerLoop;
    }

    [GlobalCleanup]
    public void Cleanup() => _loop.Close();

    // ---- CallSoon ----

    static readonly Action<object?> s_countDown = static o =>
    {
        var b = (LoopBenchmarks)o!;
        if (--b._remaining == 0) b._loop.Stop();
    };

    /// <summary><c>CallSoon</c> of N callbacks, then the loop runs them (one iteration).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void CallSoon()
    {
        var loop = _loop;
        _remaining = N;
        for (int i = 0; i < N; i++) loop.CallSoon(s_countDown, this);
        loop.RunForever();
    }

    static readonly Action<object?> s_chain = Chain;

    static void Chain(object? o)
    {
        var b = (LoopBenchmarks)o!;
        if (--b._remaining == 0) b._loop.Stop();
        else b._loop.CallSoon(s_chain, b);
    }

    /// <summary>A callback that schedules itself with <c>CallSoon</c>: one callback per loop iteration.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void CallSoonChain()
    {
        _remaining = N;
        _loop.CallSoon(s_chain, this);
        _loop.RunForever();
    }

    // ---- futures ----

    static readonly Action<object?> s_setResult = static o => ((Future)o!).SetResult();

    async Task FutureLoop()
    {
        var loop = _loop;
        for (int i = 0, n = N; i < n; i++)
        {
            var f = loop.CreateFuture();
            loop.CallSoon(s_setResult, f);
            await f;
        }
    }

    /// <summary>A task creates a future, a callback completes it, the task awaits it (asyncio's
    /// <c>fut = loop.create_future(); loop.call_soon(fut.set_result, None); await fut</c>).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void FutureCreateCompleteAwait() => _loop.RunUntilComplete(_futureLoop);

    // ---- sleeps ----

    async Task SleepLoop()
    {
        for (int i = 0, n = N; i < n; i++) await Aio.Sleep(0);
    }

    /// <summary><c>await Aio.Sleep(0)</c> in a task: yield to the loop for one iteration.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void Sleep0() => _loop.RunUntilComplete(_sleepLoop);

    // ---- tasks ----

#pragma warning disable CS1998 // the trivial coroutine of W2: no await inside
    static async Task Noop() { }
#pragma warning restore CS1998
    static readonly Func<Task> s_noop = Noop;

    async Task CreateTaskLoop()
    {
        for (int i = 0, n = N; i < n; i++) await Aio.CreateTask(s_noop);
    }

    /// <summary><c>await Aio.CreateTask(noop)</c>: create a task of a trivial coroutine and await it.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void CreateTaskAwait() => _loop.RunUntilComplete(_createTaskLoop);

    // ---- coroutines (docs/design/coroutines.md) ----

    async Coroutine CoroutineSleepLoop()
    {
        for (int i = 0, n = N; i < n; i++) await Aio.Sleep(0);
    }

    /// <summary><c>await Aio.Sleep(0)</c> in a task whose body is an <c>async Coroutine</c>: 0 bytes per await, as with <c>async Task</c>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void CoroutineSleep0() => _loop.RunUntilComplete(_loop.CreateTask(CoroutineSleepLoop));

    static async Coroutine InnerCoroutine() => await Aio.Sleep(0);

    static async Task InnerTask() => await Aio.Sleep(0);

    async Coroutine NestedCoroutineLoop()
    {
        for (int i = 0, n = N; i < n; i++) await InnerCoroutine();
    }

    async Task NestedTaskLoop()
    {
        for (int i = 0, n = N; i < n; i++) await InnerTask();
    }

    /// <summary>
    /// A coroutine awaits a nested <c>async Coroutine</c> method that suspends once: its box (64 bytes) per
    /// call; it resumes the caller on the same stack.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void NestedCoroutineAwait() => _loop.RunUntilComplete(_loop.CreateTask(NestedCoroutineLoop));

    /// <summary>The same with <c>async Task</c> methods: the runtime's box and its await continuation per call.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void NestedTaskAwait() => _loop.RunUntilComplete(_nestedTaskLoop ??= NestedTaskLoop);

    Func<Task>? _nestedTaskLoop;

    // ---- timers (virtual time, so no real waiting) ----

    EventLoop? _virtualLoop;

    async Task TimerLoop()
    {
        for (int i = 0, n = N; i < n; i++) await Aio.Sleep(0.001);
    }

    /// <summary><c>await Aio.Sleep(0.001)</c> on a virtual-time loop: a timer added, fired and resumed.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void SleepTimerVirtual() => (_virtualLoop ??= new EventLoop(new LoopOptions { VirtualTime = true })).RunUntilComplete(_timerLoop);
}
