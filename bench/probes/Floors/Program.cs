// The floors under W3 and W4 (docs/design/performance.md, "Floors"): what C# async methods cost on this
// machine with the least possible scheduler, measured in the same process and interleaved, round by
// round, with the library doing the same work, so that a noisy phase of the machine hits both alike.
//
//   dotnet run -c Release --project bench/probes/Floors -- [w3|w4] [ROUNDS]
//
//   w3   two async methods ping-pong an int, 1,000,000 round trips a round: through a scheduler that is
//        a ring of Actions and a one-slot channel with one waiter (no cancellation, no checks, no
//        thread test, custom awaiters); the same awaited through ValueTask over a reusable
//        IValueTaskSource; that with a synchronisation context per task, made current at every hop (what
//        a loop that knows which task runs by its context does); and through two AsyncQueues in Aio.Run
//        (W3 itself)
//   w4   the creation burst of W4: 100,000 async methods each read the clock and suspend, in ns per
//        method: parked on an awaiter that only stores its continuation; the same after a second
//        clock read (a sleep's deadline counts from its call, so every sleep reads the clock); and
//        suspended in Aio.Sleep of 0-100 ms (W4 itself; the round then waits for them)
//   w2 VARIANT   W2's measured round, the first after a 10 % warm-up, in a process of its own (run it
//        several times, alternating the variants): a million objects made and kept in an array, with no
//        scheduler at all, as the least a design that gives each task an object of that size can do:
//        `objects88` (an AioTask's size), `objects88+64` (and a 64-byte object dropped at once, as a first
//        step's cancel scope is), `objects56` (a task of a Future's fields and one more); and `aio`
//        (W2 itself: Aio.CreateTask of a trivial coroutine, then Aio.Gather)
//
// Each w3/w4 line gives the median over the rounds after the first two (warm-up) and the range.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using Asyncio;

string mode = args.Length > 0 ? args[0] : "w3";
if (mode == "w2")
{
    if (args.Length != 2 || !W2Floor.Run(args[1]))
    {
        Console.Error.WriteLine("usage: Floors w2 objects88|objects88+64|objects56|aio");
        return 2;
    }
    return 0;
}
int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 12;
if (mode is not ("w3" or "w4") || rounds < 3)
{
    Console.Error.WriteLine("usage: Floors [w3|w4] [ROUNDS >= 3]   |   Floors w2 VARIANT");
    return 2;
}
if (mode == "w3") W3Floor.Run(rounds);
else W4Floor.Run(rounds);
return 0;

static class Report
{
    public static void Line(string what, List<double> values, string unit)
    {
        var kept = values.Skip(2).Order().ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what,-44} median {kept[kept.Count / 2],8:F2} {unit}   range {kept[0]:F2}-{kept[^1]:F2}"));
    }
}

/// <summary>The least a single-threaded scheduler can do for a ping-pong: a ring of continuations.</summary>
static class Ring
{
    static readonly Action[] s_items = new Action[64];
    static int s_head, s_tail;

    public static void Post(Action continuation) => s_items[s_tail++ & 63] = continuation;

    public static void RunAll()
    {
        while (s_head != s_tail) s_items[s_head++ & 63]();
    }
}

/// <summary>
/// The same ring for continuations handed over by <see cref="IValueTaskSource{TResult}.OnCompleted"/>
/// (delegate and state), optionally making each one's synchronisation context current before it runs, as a
/// loop whose tasks each have their own context must.
/// </summary>
static class StateRing
{
    struct Item
    {
        public Action<object?> Callback;
        public object? State;
        public SynchronizationContext? Context;
    }

    static readonly Item[] s_items = new Item[64];
    static int s_head, s_tail;
    public static bool SwitchContexts;

    public static void Post(Action<object?> callback, object? state, SynchronizationContext? context) =>
        s_items[s_tail++ & 63] = new Item { Callback = callback, State = state, Context = context };

    public static void RunAll()
    {
        var saved = SynchronizationContext.Current;
        SynchronizationContext? current = saved;
        while (s_head != s_tail)
        {
            var item = s_items[s_head++ & 63];
            if (SwitchContexts && !ReferenceEquals(item.Context, current))
            {
                current = item.Context;
                SynchronizationContext.SetSynchronizationContext(current);
            }
            item.Callback(item.State);
        }
        SynchronizationContext.SetSynchronizationContext(saved);
    }
}

/// <summary>The one-slot channel awaited through <see cref="ValueTask{TResult}"/>, its getter a reusable <see cref="IValueTaskSource{TResult}"/>.</summary>
sealed class ValueTaskSlot : IValueTaskSource<int>
{
    int _item;
    bool _full;
    short _version;
    Action<object?>? _cont;
    object? _contState;
    SynchronizationContext? _context;

    public void Put(int item)
    {
        _item = item;
        _full = true;
        if (_cont is { } c)
        {
            _cont = null;
            StateRing.Post(c, _contState, _context);
        }
    }

    public ValueTask<int> Get()
    {
        if (_full)
        {
            _full = false;
            return new ValueTask<int>(_item);
        }
        return new ValueTask<int>(this, ++_version);
    }

    public ValueTaskSourceStatus GetStatus(short token) => _full ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        _cont = continuation;
        _contState = state;
        _context = StateRing.SwitchContexts ? SynchronizationContext.Current : null;
    }

    public int GetResult(short token)
    {
        if (token != _version) throw new InvalidOperationException("a stale ValueTask");
        _full = false;
        return _item;
    }
}

/// <summary>A one-slot channel with at most one waiting getter, awaited without ValueTask.</summary>
sealed class Slot
{
    int _item;
    bool _full;
    Action? _getter;

    public void Put(int item)
    {
        _item = item;
        _full = true;
        if (_getter is { } g)
        {
            _getter = null;
            Ring.Post(g);
        }
    }

    public Awaiter Get() => new(this);

    public readonly struct Awaiter(Slot slot) : ICriticalNotifyCompletion
    {
        public Awaiter GetAwaiter() => this;
        public bool IsCompleted => slot._full;
        public int GetResult()
        {
            slot._full = false;
            return slot._item;
        }
        public void OnCompleted(Action continuation) => slot._getter = continuation;
        public void UnsafeOnCompleted(Action continuation) => slot._getter = continuation;
    }
}

static class W3Floor
{
    const int N = 1_000_000;

    // One loop runs every round, as in W3 (whose warm-up round runs in the loop it measures); the floors
    // run inside a step of its main task, where nothing else is ready.
    public static void Run(int rounds) => Aio.Run(async () =>
    {
        List<double> floor = [], valueTask = [], contexts = [], ours = [];
        for (int r = 0; r < rounds; r++)
        {
            floor.Add(N / FloorRound() / 1e6);
            valueTask.Add(N / ValueTaskRound(switchContexts: false) / 1e6);
            contexts.Add(N / ValueTaskRound(switchContexts: true) / 1e6);
            ours.Add(N / await OursRound() / 1e6);
        }
        Report.Line("ring + one-slot channel (floor)", floor, "M round trips/s");
        Report.Line("  awaited through ValueTask", valueTask, "M round trips/s");
        Report.Line("  and a context per task, switched per hop", contexts, "M round trips/s");
        Report.Line("Aio.Run + two AsyncQueues (W3)", ours, "M round trips/s");
    });

    static double ValueTaskRound(bool switchContexts)
    {
        var a = new ValueTaskSlot();
        var b = new ValueTaskSlot();
        StateRing.SwitchContexts = switchContexts;
        return Timed(() => Start(new SynchronizationContext(), () => Pong(a, b)),
                     () => Start(new SynchronizationContext(), () => Ping(a, b)), StateRing.RunAll);

        // Each side starts with its own context current, so that it captures it at its awaits.
        static Task Start(SynchronizationContext context, Func<Task> body)
        {
            var saved = SynchronizationContext.Current;
            SynchronizationContext.SetSynchronizationContext(StateRing.SwitchContexts ? context : null);
            try { return body(); }
            finally { SynchronizationContext.SetSynchronizationContext(saved); }
        }

        // Ping and Pong are written out for each channel type, not shared through a generic method: over
        // classes that would run the runtime's shared generic code with interface calls, which is not the
        // await being measured.
        static async Task Ping(ValueTaskSlot a, ValueTaskSlot b)
        {
            for (int i = 0; i < N; i++)
            {
                a.Put(i);
                await b.Get();
            }
        }

        static async Task Pong(ValueTaskSlot a, ValueTaskSlot b)
        {
            for (int i = 0; i < N; i++) b.Put(await a.Get());
        }
    }

    static double FloorRound()
    {
        var a = new Slot();
        var b = new Slot();
        return Timed(() => Pong(a, b), () => Ping(a, b), Ring.RunAll);

        static async Task Ping(Slot a, Slot b)
        {
            for (int i = 0; i < N; i++)
            {
                a.Put(i);
                await b.Get();
            }
        }

        static async Task Pong(Slot a, Slot b)
        {
            for (int i = 0; i < N; i++) b.Put(await a.Get());
        }
    }

    /// <summary>Seconds to start both sides (the getter first) and run the scheduler until neither can go on.</summary>
    static double Timed(Func<Task> startPong, Func<Task> startPing, Action runAll)
    {
        long start = Stopwatch.GetTimestamp();
        var pong = startPong();
        var ping = startPing();
        runAll();
        double s = Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (!ping.IsCompleted || !pong.IsCompleted) throw new InvalidOperationException("the floor's ping-pong stalled");
        return s;
    }

    static async Task<double> OursRound()
    {
        var q1 = new AsyncQueue<int>();
        var q2 = new AsyncQueue<int>();
        long start = Stopwatch.GetTimestamp();
        var ping = Aio.CreateTask(async () =>
        {
            for (int i = 0; i < N; i++)
            {
                await q1.PutAsync(i);
                await q2.GetAsync();
            }
        });
        var pong = Aio.CreateTask(async () =>
        {
            for (int i = 0; i < N; i++) await q2.PutAsync(await q1.GetAsync());
        });
        await Aio.Gather(ping, pong);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }
}

static class W4Floor
{
    const int N = 100_000;
    static readonly Action?[] s_parked = new Action?[N];
    static int s_count;

    /// <summary>Suspends for good: the continuation is only stored.</summary>
    readonly struct Park : ICriticalNotifyCompletion
    {
        public Park GetAwaiter() => this;
        public bool IsCompleted => false;
        public void GetResult() { }
        public void OnCompleted(Action continuation) => s_parked[s_count++] = continuation;
        public void UnsafeOnCompleted(Action continuation) => s_parked[s_count++] = continuation;
    }

    public static void Run(int rounds) => Aio.Run(async () =>
    {
        List<double> park = [], clock2 = [], sleep = [];
        var tasks = new Task<double>[N];
        for (int r = 0; r < rounds; r++)
        {
            park.Add(Burst(tasks, Parked));
            clock2.Add(Burst(tasks, ParkedAfterTwoClocks));
            sleep.Add(Burst(tasks, Sleeping));
            await Aio.Gather(tasks);
        }
        Report.Line("clock read + park (floor)", park, "ns/method");
        Report.Line("two clock reads + park (floor of a sleep)", clock2, "ns/method");
        Report.Line("clock read + Aio.Sleep (W4)", sleep, "ns/method");
    });

    static double Burst(Task<double>[] tasks, Func<int, Task<double>> method)
    {
        Array.Clear(s_parked);
        s_count = 0;
        uint x = 12345;   // W4's delays
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < N; i++)
        {
            x = unchecked(x * 1664525u + 1013904223u);
            tasks[i] = method((int)((x >> 8) % 101));
        }
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds * 1e6 / N;
    }

    static async Task<double> Parked(int ms)
    {
        long start = Stopwatch.GetTimestamp();
        await new Park();
        return start + ms;
    }

    static async Task<double> ParkedAfterTwoClocks(int ms)
    {
        long start = Stopwatch.GetTimestamp();
        long due = Stopwatch.GetTimestamp() + ms;
        await new Park();
        return start + due;
    }

    static async Task<double> Sleeping(int ms)
    {
        long start = Stopwatch.GetTimestamp();
        await Aio.Sleep(ms / 1000.0);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds - ms;
    }
}

/// <summary>
/// W2's measured round (the first after a 10 % warm-up) with no scheduler: what making and keeping a million
/// objects of a task's size costs a fresh process on this machine, beside W2 itself. One variant a process.
/// </summary>
static class W2Floor
{
    const int N = 1_000_000;

    // Objects of the sizes measured (16 bytes of header and method table, then the fields, which only take room).
#pragma warning disable CS0649
    sealed class Object56 { public long A, B, C, D, E; }
    sealed class Object88 { public long A, B, C, D, E, F, G, H, I; }
    sealed class Object64 { public long A, B, C, D, E, F; }
#pragma warning restore CS0649

    static object? s_dropped;

    public static bool Run(string variant)
    {
        Func<int, double>? round = variant switch
        {
            "objects88" => n => Objects(n, big: true, scope: false),
            "objects88+64" => n => Objects(n, big: true, scope: true),
            "objects56" => n => Objects(n, big: false, scope: false),
            "aio" => n => Aio.Run(() => Tasks(n)),
            _ => null,
        };
        if (round == null) return false;
        round(N / 10);   // the warm-up every W2 program runs
        double ms = round(N);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"w2 {variant,-13} round 1: {ms,6:F1} ms  {N / ms / 1000,5:F2} M/s  peak RSS {ProcessMemory.PeakRssMb(),4:F0} MB"));
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static double Objects(int n, bool big, bool scope)
    {
        long start = Stopwatch.GetTimestamp();
        var kept = new object[n];
        for (int i = 0; i < n; i++)
        {
            kept[i] = big ? new Object88() : new Object56();
            if (scope) s_dropped = new Object64();
        }
        GC.KeepAlive(kept);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

#pragma warning disable CS1998 // a trivial coroutine, as in W2
    static async Task Noop() { }
#pragma warning restore CS1998

    static readonly Func<Task> s_noop = Noop;

    static async Task<double> Tasks(int n)
    {
        long start = Stopwatch.GetTimestamp();
        var tasks = new AioTask[n];
        for (int i = 0; i < n; i++) tasks[i] = Aio.CreateTask(s_noop);
        await Aio.Gather(tasks);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }
}
