using System.Runtime.ExceptionServices;

namespace Asyncio;

// One event loop per core (DESIGN.md section 4, "Scale across cores"). A loop is one thread by design; a program
// that wants every core runs several loops, each with its own tasks, and shares nothing between them but what it
// shares on purpose: typically a listening port, each loop's server bound to it with SO_REUSEPORT so that the
// kernel spreads the connections (asyncio's create_server(reuse_port=True) in one process per core, nginx's
// workers, Tokio's "thread per core" servers).
//
// Aio.RunOnCores is Aio.Run for N loops: each on a thread of its own, each a Runner, all waited for. The mains
// form one group: the first that fails cancels the others, as a task group's first failure cancels its siblings,
// and the failures come back together in an ExceptionGroup. Ctrl+C reaches every runner, so it cancels every main.

public static partial class Aio
{
    /// <summary>
    /// Runs <paramref name="main"/> on several event loops at once, each on a thread of its own (by default one per
    /// processor), and returns once every one has ended: <see cref="Run(Func{Task}, LoopOptions?)"/> for every core.
    /// <paramref name="main"/> receives the loop's index, 0 to the count less one. The loops share nothing: each
    /// object belongs to the loop that made it, and loops talk through thread-safe means
    /// (<see cref="EventLoop.CallSoonThreadsafe(Action)"/>, <see cref="EventLoop.RunCoroutineThreadsafe(Func{Task}, CancellationToken)"/>,
    /// .NET's channels). The usual use is a server per loop on one port with <c>reusePort: true</c>, the kernel
    /// spreading the connections between them.
    /// </summary>
    /// <param name="main">The coroutine each loop runs, given the loop's index.</param>
    /// <param name="loops">How many loops; 0 (the default) for one per processor (<see cref="Environment.ProcessorCount"/>).</param>
    /// <param name="options">The options of every loop.</param>
    /// <exception cref="ArgumentNullException"><paramref name="main"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="loops"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">An event loop is running on this thread (a loop cannot wait for others).</exception>
    /// <exception cref="ExceptionGroup">One or more mains failed. The first failure cancels the other mains; the group holds every failure.</exception>
    /// <exception cref="CancelledError">No main failed, and one or more were cancelled (Ctrl+C cancels them all). A main
    /// that ends cancelled on its own (any <see cref="OperationCanceledException"/>) does not cancel the others, as a task
    /// group's cancelled child does not cancel its siblings.</exception>
    public static void RunOnCores(Func<int, Task> main, int loops = 0, LoopOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        RunOnCores<bool>(async index => { await main(index).ConfigureAwait(true); return true; }, loops, options);
    }

    /// <summary>
    /// Runs <paramref name="main"/> on several event loops at once and returns their results by loop index; see
    /// <see cref="RunOnCores(Func{int, Task}, int, LoopOptions?)"/>.
    /// </summary>
    /// <param name="main">The coroutine each loop runs, given the loop's index.</param>
    /// <param name="loops">How many loops; 0 (the default) for one per processor.</param>
    /// <param name="options">The options of every loop.</param>
    /// <returns>Each loop's result, at its index.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="main"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="loops"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">An event loop is running on this thread.</exception>
    /// <exception cref="ExceptionGroup">One or more mains failed; the first failure cancelled the others.</exception>
    /// <exception cref="CancelledError">No main failed, and one or more were cancelled.</exception>
    public static T[] RunOnCores<T>(Func<int, Task<T>> main, int loops = 0, LoopOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        ArgumentOutOfRangeException.ThrowIfNegative(loops);
        if (EventLoop.TryGetRunningLoop() != null)
            throw new InvalidOperationException("Aio.RunOnCores() cannot be called while an event loop is running on this thread: a loop cannot block to wait for others. Call it from the program's main thread.");
        int count = loops == 0 ? Environment.ProcessorCount : loops;
        var group = new CoreGroup(count);
        var results = new T[count];
        var errors = new Exception?[count];
        var threads = new Thread[count];
        for (int i = 0; i < count; i++)
        {
            int index = i;
            threads[i] = new Thread(() =>
            {
                try
                {
                    using var runner = new Runner(options);
                    results[index] = runner.Run(() => group.Run(index, main));
                }
                catch (Exception e)
                {
                    errors[index] = e;
                }
            })
            { Name = $"Asyncio loop {index}" };
            threads[i].Start();
        }
        foreach (var thread in threads) thread.Join();

        var failures = errors.Where(e => e != null && e is not OperationCanceledException).Select(e => e!).ToList();
        if (failures.Count > 0)
            throw new ExceptionGroup($"{failures.Count} of the {count} loops' mains failed (Aio.RunOnCores)", failures);
        if (errors.FirstOrDefault(e => e != null) is { } cancelled) ExceptionDispatchInfo.Throw(cancelled);   // its own stack trace kept
        return results;
    }

    /// <summary>The mains of one <see cref="RunOnCores{T}"/>: the first failure cancels the others (internal for tests, which run its mains one after the other).</summary>
    internal sealed class CoreGroup(int count)
    {
        readonly (EventLoop Loop, AioTask Task)?[] _mains = new (EventLoop, AioTask)?[count];
        bool _failed;   // under the lock

        public async Task<T> Run<T>(int index, Func<int, Task<T>> main)
        {
            var loop = GetRunningLoop();
            var task = CurrentTask!;
            bool cancelNow;   // the group failed before this loop began: main is not called
            lock (this)
            {
                _mains[index] = (loop, task);
                cancelNow = _failed;
            }
            if (cancelNow) throw new CancelledError("another loop's main failed");   // main does not start at all
            try
            {
                return await main(index).ConfigureAwait(true);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Failed(index);
                throw;
            }
        }

        void Failed(int index)
        {
            (EventLoop Loop, AioTask Task)?[] others;
            lock (this)
            {
                if (_failed) return;
                _failed = true;
                others = ((EventLoop, AioTask)?[])_mains.Clone();
            }
            for (int i = 0; i < others.Length; i++)
            {
                if (i == index || others[i] is not { } other) continue;
                var (loop, task) = other;
                try { loop.CallSoonThreadsafe(() => task.Cancel("another loop's main failed")); }
                catch (InvalidOperationException) { /* that loop has closed: its main is over */ }
            }
        }
    }
}
