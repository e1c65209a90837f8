using Asyncio;
using BenchmarkDotNet.Attributes;

namespace Asyncio.Benchmarks;

/// <summary>
/// The hot paths of issue 3 (Sync and Queues), driven the way a user drives them: each invocation runs
/// <see cref="Ops"/> operations in one or two tasks on a loop. Target: 0 bytes per operation, uncontended
/// (fast paths) and contended (pooled waiters) alike.
/// </summary>
/// <remarks>
/// A contended operation is one round of two tasks alternating through the primitive: each round
/// suspends and resumes a task at least once. The per-invocation cost (the tasks and their state
/// machines) is removed by <c>--alloc</c> (see <see cref="AllocationProbe"/>).
/// </remarks>
[MemoryDiagnoser]
public class SyncBenchmarks : IOpsBenchmark
{
    /// <summary>Operations per benchmark invocation.</summary>
    public const int Ops = 10_000;

    EventLoop _loop = null!;

    /// <summary>Operations the next invocation performs (<see cref="Ops"/>; the allocation probe varies it).</summary>
    public int N { get; set; } = Ops;

    readonly AsyncLock _lock = new();
    readonly AsyncSemaphore _semaphore = new(1);
    readonly AsyncEvent _set = new(), _ping = new(), _pong = new();
    readonly AsyncCondition _condition = new();
    readonly AsyncBarrier _barrier = new(2);
    readonly AsyncQueue<int> _queue = new(), _q1 = new(), _q2 = new();
    readonly AsyncQueue<int> _bounded = new(1);
    int _turn;

    Func<Task> _lockUncontended = null!, _lockContended = null!, _semaphoreUncontended = null!, _semaphoreContended = null!, _eventSet = null!,
        _eventPingPong = null!, _conditionPingPong = null!, _barrierTwoParties = null!, _queuePutGet = null!, _queuePingPong = null!, _boundedQueue = null!;

    [GlobalSetup]
    public void Setup()
    {
        _loop = new EventLoop();
        _set.Set();
        _queue.PutNowait(-1);
        _lockUncontended = LockUncontendedLoop;
        _lockContended = () => Both(LockSide, LockSide);
        _semaphoreUncontended = SemaphoreUncontendedLoop;
        _semaphoreContended = () => Both(SemaphoreSide, SemaphoreSide);
        _eventSet = EventSetLoop;
        _eventPingPong = () => Both(EventPing, EventPong);
        _conditionPingPong = () => Both(() => ConditionSide(0), () => ConditionSide(1));
        _barrierTwoParties = () => Both(BarrierSide, BarrierSide);
        _queuePutGet = QueuePutGetLoop;
        _queuePingPong = () => Both(QueuePing, QueuePong);
        _boundedQueue = () => Both(BoundedProducer, BoundedConsumer);
    }

    [GlobalCleanup]
    public void Cleanup() => _loop.Close();

    static async Task Both(Func<Task> a, Func<Task> b)
    {
        var ta = Aio.CreateTask(a);
        var tb = Aio.CreateTask(b);
        await ta;
        await tb;
    }

    // ---- lock ----

    async Task LockUncontendedLoop()
    {
        var l = _lock;
        for (int i = 0, n = N; i < n; i++) using (await l.AcquireAsync()) { }
    }

    /// <summary><c>using (await lock.AcquireAsync()) { }</c> on a free lock.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void LockUncontended() => _loop.RunUntilComplete(_lockUncontended);

    async Task LockSide()
    {
        var l = _lock;
        for (int i = 0, n = N / 2; i < n; i++) using (await l.AcquireAsync()) await Aio.Sleep(0);
    }

    /// <summary>Two tasks take turns holding the lock across a <c>Sleep(0)</c>: every acquire waits.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void LockContended() => _loop.RunUntilComplete(_lockContended);

    // ---- semaphore ----

    async Task SemaphoreUncontendedLoop()
    {
        var s = _semaphore;
        for (int i = 0, n = N; i < n; i++) using (await s.AcquireAsync()) { }
    }

    /// <summary><c>using (await semaphore.AcquireAsync()) { }</c> with a permit free.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void SemaphoreUncontended() => _loop.RunUntilComplete(_semaphoreUncontended);

    async Task SemaphoreSide()
    {
        var s = _semaphore;
        for (int i = 0, n = N / 2; i < n; i++) using (await s.AcquireAsync()) await Aio.Sleep(0);
    }

    /// <summary>Two tasks take turns holding the one permit across a <c>Sleep(0)</c>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void SemaphoreContended() => _loop.RunUntilComplete(_semaphoreContended);

    // ---- event ----

    async Task EventSetLoop()
    {
        var e = _set;
        for (int i = 0, n = N; i < n; i++) await e.WaitAsync();
    }

    /// <summary><c>await ev.WaitAsync()</c> on a set event.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void EventWaitSet() => _loop.RunUntilComplete(_eventSet);

    async Task EventPing()
    {
        for (int i = 0, n = N; i < n; i++)
        {
            _ping.Set();
            await _pong.WaitAsync();
            _pong.Clear();
        }
    }

    async Task EventPong()
    {
        for (int i = 0, n = N; i < n; i++)
        {
            await _ping.WaitAsync();
            _ping.Clear();
            _pong.Set();
        }
    }

    /// <summary>Two tasks ping-pong through two events: one round trip per operation.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void EventPingPong() => _loop.RunUntilComplete(_eventPingPong);

    // ---- condition ----

    async Task ConditionSide(int me)
    {
        var c = _condition;
        for (int i = 0, n = N / 2; i < n; i++)
        {
            using (await c.AcquireAsync())
            {
                while (_turn != me) await c.WaitAsync();
                _turn = 1 - me;
                c.Notify();
            }
        }
    }

    /// <summary>Two tasks take turns under a condition (wait, notify).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void ConditionPingPong() => _loop.RunUntilComplete(_conditionPingPong);

    // ---- barrier ----

    async Task BarrierSide()
    {
        var b = _barrier;
        for (int i = 0, n = N; i < n; i++) await b.WaitAsync();
    }

    /// <summary>Two tasks pass a barrier of two parties together, round after round: the first to arrive waits.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void BarrierTwoParties() => _loop.RunUntilComplete(_barrierTwoParties);

    // ---- queues ----

    async Task QueuePutGetLoop()
    {
        var q = _queue;
        for (int i = 0, n = N; i < n; i++)
        {
            await q.PutAsync(i);
            await q.GetAsync();
        }
    }

    /// <summary><c>await q.PutAsync(x); await q.GetAsync()</c> on a queue that is never empty.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void QueuePutGet() => _loop.RunUntilComplete(_queuePutGet);

    async Task QueuePing()
    {
        for (int i = 0, n = N; i < n; i++)
        {
            await _q1.PutAsync(i);
            await _q2.GetAsync();
        }
    }

    async Task QueuePong()
    {
        for (int i = 0, n = N; i < n; i++) await _q2.PutAsync(await _q1.GetAsync());
    }

    /// <summary>W3: two tasks ping-pong a token through two queues; one round trip per operation.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void QueuePingPong() => _loop.RunUntilComplete(_queuePingPong);

    async Task BoundedProducer()
    {
        for (int i = 0, n = N; i < n; i++) await _bounded.PutAsync(i);
    }

    async Task BoundedConsumer()
    {
        for (int i = 0, n = N; i < n; i++)
        {
            await _bounded.GetAsync();
            _bounded.TaskDone();
        }
    }

    /// <summary>A producer and a consumer through a queue of size 1: the producer waits for every slot.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void BoundedQueueProducerConsumer() => _loop.RunUntilComplete(_boundedQueue);
}
