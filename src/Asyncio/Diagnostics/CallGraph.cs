using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace Asyncio;

// Task introspection: asyncio 3.14's call graph (capture_call_graph, FutureCallGraph), built from what the loop
// already holds for cancellation, so that nothing is recorded on any await or resume path.
//
// What a task awaits: every await of a loop primitive that has suspended is registered in a cancel scope of
// its task (a Waiter in the scope's intrusive list), and every sleep has a slot in the timer queue that names
// its scope. Walking a task's scope tree and one pass over the timers gives each pending await: the
// operation (Waiter.Describe), the awaited object, and the continuation's state, which is the awaiting
// method's box.
//
// The call stack: an `async Coroutine` method's box is a Coroutine whose slot holds whoever awaits it: the
// box of its caller, the task it is the body of, a combinator. From the box that awaits, that chain leads up
// through the callers to the task (when each caller is a Coroutine too), and each box's state-machine type
// names its method. An `async Task` method's box is the runtime's, and which Task awaits it is kept in private
// runtime fields: the chain stops there, and its methods are not named (no reflection on runtime internals).
// For the running task, the async methods on the thread's own stack stand for its call stack.
//
// Who awaits a future: the nodes in its callback list (a task's awaiter, a task group's watch of its child,
// a gather's node) and the combinator in its observer slot say whom they stand for (WaitNode.AwaitingParty).
// A gather is a future of its own in the graph, awaited by the task that awaits it, as in asyncio.

/// <summary>
/// One async method of a call stack: a method suspended in an await (or running, for the current task); asyncio's
/// <c>FrameCallGraphEntry</c>. Named from the compiler's state machine (there is no line number).
/// </summary>
public sealed class CallGraphFrame
{
    MethodInfo? _method;
    bool _methodResolved;

    internal CallGraphFrame(Type stateMachineType)
    {
        StateMachineType = stateMachineType;
        Name = NameOf(stateMachineType);
    }

    /// <summary>The compiler-generated state machine of the method.</summary>
    public Type StateMachineType { get; }

    /// <summary>The method, read from its <see cref="AsyncStateMachineAttribute"/>; <see langword="null"/> if it cannot be found (trimmed metadata).</summary>
    public MethodInfo? Method
    {
        get
        {
            if (!_methodResolved)
            {
                _method = FindMethod(StateMachineType);
                _methodResolved = true;
            }
            return _method;
        }
    }

    /// <summary>The method's name with its type's: <c>Program.Main</c>, <c>Program.Main.Local</c> (a local function), <c>Program.Main (lambda)</c>.</summary>
    public string Name { get; }

    /// <summary>The frame as a call graph prints it: <c>async Program.Main</c>.</summary>
    public override string ToString() => "async " + Name;

    /// <summary>Reads a method's name from its state machine's: <c>&lt;Main&gt;d__3</c>, <c>&lt;&lt;Main&gt;g__Local|0_0&gt;d</c>, <c>&lt;&lt;Main&gt;b__0_0&gt;d</c>.</summary>
    static string NameOf(Type stateMachine) => NameOf(stateMachine.Name, stateMachine.DeclaringType);

    /// <summary>
    /// The method's name for a state machine named <paramref name="stateMachineName"/> declared in
    /// <paramref name="owner"/>. Top-level statements' method, <c>&lt;Main&gt;$</c>, reads as <c>Main</c>.
    /// </summary>
    internal static string NameOf(string stateMachineName, Type? owner)
    {
        string inner = Between(stateMachineName);
        string method;
        if (inner.StartsWith('<'))
        {
            int close = MatchingClose(inner);
            string outer = Readable(inner[1..close]);
            string rest = inner[(close + 1)..];
            if (rest.StartsWith("g__"))
            {
                string local = rest[3..];
                int bar = local.IndexOf('|');
                method = outer + "." + (bar >= 0 ? local[..bar] : local);
            }
            else method = outer + " (lambda)";
        }
        else method = Readable(inner);
        while (owner != null && owner.Name.StartsWith('<')) owner = owner.DeclaringType;   // a closure class
        return owner == null ? method : TypeName(owner) + "." + method;
    }

    /// <summary>A method name as the compiler wrote it, made readable: top-level statements' <c>&lt;Main&gt;$</c> is <c>Main</c>.</summary>
    static string Readable(string method) => method.StartsWith('<') ? Between(method) : method;

    /// <summary>What lies between a compiler name's first '&lt;' and its matching '&gt;' (the name itself if none).</summary>
    static string Between(string name)
    {
        if (!name.StartsWith('<')) return name;
        int close = MatchingClose(name);
        return close > 0 ? name[1..close] : name;
    }

    /// <summary>The index of the '&gt;' that closes the '&lt;' at the start of <paramref name="name"/>, or -1.</summary>
    static int MatchingClose(string name)
    {
        int depth = 0;
        for (int i = 0; i < name.Length; i++)
        {
            if (name[i] == '<') depth++;
            else if (name[i] == '>' && --depth == 0) return i;
        }
        return -1;
    }

    static string TypeName(Type t)
    {
        int tick = t.Name.IndexOf('`');
        return tick >= 0 ? t.Name[..tick] : t.Name;
    }

    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Diagnostics only: a method trimmed away is not found, and Method is then null, as documented.")]
    static MethodInfo? FindMethod(Type stateMachine)
    {
        var owner = stateMachine.DeclaringType;
        if (owner == null) return null;
        var wanted = stateMachine.IsGenericType ? stateMachine.GetGenericTypeDefinition() : stateMachine;
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var m in owner.GetMethods(all))
            if (m.GetCustomAttribute<AsyncStateMachineAttribute>()?.StateMachineType is { } t
                && (t == wanted || (t.IsGenericType && t.GetGenericTypeDefinition() == wanted)))
                return m;
        return null;
    }
}

/// <summary>
/// An await pending in a task: what it waits for and, as far as it can be known, the async methods that await it.
/// </summary>
public sealed class PendingAwait
{
    internal PendingAwait(string operation, object? target, double? deadline, IReadOnlyList<CallGraphFrame> callStack, bool reachesTask)
    {
        Operation = operation;
        Target = target;
        Deadline = deadline;
        CallStack = callStack;
        ReachesTask = reachesTask;
    }

    /// <summary>The operation, as the API names it: <c>await</c> (a future or task), <c>Sleep</c>, <c>AsyncQueue.GetAsync</c>, <c>AsyncLock.AcquireAsync</c>, ...</summary>
    public string Operation { get; }

    /// <summary>The object awaited: the <see cref="Future"/> or <see cref="AioTask"/>, the queue, the lock, the stream; <see langword="null"/> for a sleep.</summary>
    public object? Target { get; }

    /// <summary>For a sleep, the loop time (<see cref="EventLoop.Time"/>) it ends at (infinity for an endless one); else <see langword="null"/>.</summary>
    public double? Deadline { get; }

    /// <summary>
    /// The async methods that await, innermost first: the <c>async Coroutine</c> method that awaits, then its
    /// callers while they are <c>async Coroutine</c> methods too. Empty when an <c>async Task</c> method awaits
    /// (see docs/design/diagnostics.md).
    /// </summary>
    public IReadOnlyList<CallGraphFrame> CallStack { get; }

    /// <summary>Whether the chain of callers reaches the task's own coroutine (else it ends in a combinator or in code the graph cannot follow).</summary>
    internal bool ReachesTask { get; }

    /// <summary>The await in one line: <c>await Task 'worker' (#2) pending</c>, <c>Sleep until 12.500</c>, <c>AsyncLock.AcquireAsync on &lt;AsyncLock [locked]&gt;</c>.</summary>
    public override string ToString() => Operation switch
    {
        "Sleep" => Deadline is { } d && !double.IsInfinity(d) ? $"Sleep until {d:0.000}" : "Sleep forever",
        "await" => "await " + CallGraph.Label(Target),
        _ => Target == null ? Operation : $"{Operation} on {Target}",
    };
}

/// <summary>
/// What a task or future waits for and who waits for it, captured at one moment; asyncio's <c>FutureCallGraph</c>
/// (<c>asyncio.capture_call_graph</c>). Made by <see cref="Aio.CaptureCallGraph(Future?)"/> or
/// <see cref="EventLoop.CaptureCallGraph(Future?)"/>; immutable. <see cref="ToString"/> draws it as a tree.
/// </summary>
/// <remarks>
/// <para><b>Differences from asyncio.</b> A C# task can have several awaits pending at once (async methods start
/// at once: <c>await Aio.Gather(A(), B())</c> runs A and B inside the task), so a graph lists every pending
/// await (<see cref="Awaits"/>), each with its own call stack. Call stacks hold <c>async Coroutine</c> methods
/// only, without line numbers: the callers of an <c>async Task</c> method are kept where only the runtime can
/// read them. For the running task, <see cref="CallStack"/> holds the async methods on the thread's stack.</para>
/// </remarks>
public sealed class CallGraph
{
    internal CallGraph(Future future, string state, IReadOnlyList<CallGraphFrame> callStack, IReadOnlyList<PendingAwait> awaits, IReadOnlyList<CallGraph> awaitedBy)
    {
        Future = future;
        State = state;
        CallStack = callStack;
        Awaits = awaits;
        AwaitedBy = awaitedBy;
    }

    /// <summary>The task or future the graph is about.</summary>
    public Future Future { get; }

    /// <summary>Its state when captured: <c>running</c> (the current task), <c>not started</c>, <c>pending</c>, <c>finished</c>, <c>cancelled</c>, <c>finished with an exception</c>.</summary>
    public string State { get; }

    /// <summary>
    /// The task's async methods, innermost first: for the running task, those on the thread's stack (the methods
    /// that have run since the task last resumed: the callers that await them are not on it); for a
    /// suspended one, the stack of its await that leads up to its coroutine, if one does (see
    /// <see cref="PendingAwait.CallStack"/>). Empty for a future that is not a task.
    /// </summary>
    public IReadOnlyList<CallGraphFrame> CallStack { get; }

    /// <summary>Every await pending in the task when captured (its own and those of the timeouts and task-group bodies inside it); empty for a future.</summary>
    public IReadOnlyList<PendingAwait> Awaits { get; }

    /// <summary>
    /// The graphs of what awaits this one: tasks that await it, the task running the task group it belongs to, a
    /// gather (or shield, or wait) that combines it, in turn awaited by a task. A cycle of awaits is shown once.
    /// </summary>
    public IReadOnlyList<CallGraph> AwaitedBy { get; }

    /// <summary>Draws the graph as a tree, asyncio's <c>format_call_graph</c> (one line per item, ending in a newline).</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        Write(sb, "");
        return sb.ToString();
    }

    void Write(StringBuilder sb, string indent)
    {
        sb.Append(indent).Append("* ").Append(Header(Future, State)).Append('\n');
        // A suspended task's call stack is that of one of its awaits, shown with it.
        bool shownWithAwait = false;
        foreach (var a in Awaits) shownWithAwait |= ReferenceEquals(a.CallStack, CallStack);
        if (CallStack.Count != 0 && !shownWithAwait)
        {
            sb.Append(indent).Append("+ Call stack:\n");
            foreach (var f in CallStack) sb.Append(indent).Append("|   ").Append(f).Append('\n');
        }
        if (Awaits.Count != 0)
        {
            sb.Append(indent).Append("+ Awaits:\n");
            WriteAwaits(sb, indent + "|   ", Awaits);
        }
        if (AwaitedBy.Count != 0)
        {
            sb.Append(indent).Append("+ Awaited by:\n");
            foreach (var g in AwaitedBy) g.Write(sb, indent + "   ");
        }
    }

    /// <summary>Writes each await on a line, its call stack under it.</summary>
    internal static void WriteAwaits(StringBuilder sb, string indent, IReadOnlyList<PendingAwait> awaits)
    {
        foreach (var a in awaits)
        {
            sb.Append(indent).Append(a).Append('\n');
            foreach (var f in a.CallStack) sb.Append(indent).Append("  in ").Append(f).Append('\n');
        }
    }

    /// <summary>The first line of a future's entry: <c>Task 'worker' (#2) pending</c>, <c>Gather (pending)</c>.</summary>
    internal static string Header(Future future, string state) =>
        future is AioTask t ? $"Task '{t.Name}' (#{t.Id}) {state}" : $"{Kind(future)} ({state})";

    /// <summary>A future named in a line: a task by name and number, another future by kind and state.</summary>
    internal static string Label(object? target) => target switch
    {
        AioTask t => $"Task '{t.Name}' (#{t.Id})",
        Future f => $"{Kind(f)} ({f.StateName})",
        null => "?",
        _ => target.ToString() ?? target.GetType().Name,
    };

    /// <summary>A future's kind in the public API's words (the combinators' futures are internal types).</summary>
    static string Kind(Future f)
    {
        if (f is TaskGroupWait) return "TaskGroup's children";
        string name = f.GetType().Name;
        return name.StartsWith("GatheringFuture", StringComparison.Ordinal) ? "Gather"
            : name.StartsWith("MirrorFuture", StringComparison.Ordinal) ? "Shield"
            : name.StartsWith("WaitFuture", StringComparison.Ordinal) ? "Wait"
            : "Future";
    }
}

/// <summary>Builds call graphs from the loop's state, on its thread (see the file's opening comment).</summary>
internal sealed class CallGraphBuilder
{
    readonly EventLoop _loop;
    readonly AioTask? _current;
    Dictionary<CancelScope, List<TimerSlot>>? _sleeps;

    public CallGraphBuilder(EventLoop loop)
    {
        _loop = loop;
        _current = loop.CurrentTask;
    }

    /// <summary>The graph of <paramref name="future"/>, with everything that awaits it unless <paramref name="withAwaitedBy"/> is false.</summary>
    public CallGraph Build(Future future, bool withAwaitedBy = true) =>
        Build(future, withAwaitedBy ? new HashSet<Future>(ReferenceEqualityComparer.Instance) : null);

    CallGraph Build(Future future, HashSet<Future>? path)
    {
        IReadOnlyList<PendingAwait> awaits = [];
        IReadOnlyList<CallGraphFrame> stack = [];
        if (future is AioTask task)
        {
            awaits = AwaitsOf(task);
            if (ReferenceEquals(task, _current)) stack = ThreadStack();
            else foreach (var a in awaits)
                if (a.ReachesTask) { stack = a.CallStack; break; }
        }
        var awaitedBy = new List<CallGraph>();
        if (path != null && path.Add(future))
        {
            foreach (var awaiter in AwaitersOf(future)) awaitedBy.Add(Build(awaiter, path));
            path.Remove(future);
        }
        return new CallGraph(future, StateOf(future), stack, awaits, awaitedBy);
    }

    string StateOf(Future future) => future switch
    {
        AioTask t when ReferenceEquals(t, _current) => "running",
        AioTask { IsStarted: false, IsDone: false } => "not started",
        _ => future.StateName,
    };

    /// <summary>The futures (tasks included) that wait for <paramref name="future"/>, each once, in registration order.</summary>
    public static List<Future> AwaitersOf(Future future)
    {
        var list = new List<Future>();
        void Add(object? party)
        {
            if (party is Future f && !ReferenceEquals(f, future) && !list.Contains(f)) list.Add(f);
        }
        if (future.Observer is ChildSet set) Add(set.OwnerFuture);
        for (var n = future.FirstNode; n != null; n = n.Next) Add(n.AwaitingParty);
        return list;
    }

    /// <summary>The awaits pending in <paramref name="task"/>'s scopes: its waiters, then its sleeps, scope by scope.</summary>
    public IReadOnlyList<PendingAwait> AwaitsOf(AioTask task)
    {
        var scope = task.ScopeIfAny;
        if (scope == null || task.IsDone) return [];
        var list = new List<PendingAwait>();
        AddAwaits(task, scope, list);
        return list;
    }

    void AddAwaits(AioTask task, CancelScope scope, List<PendingAwait> into)
    {
        for (var w = scope.FirstWaiter; w != null; w = w.ScopeNext)
        {
            var (operation, target) = w.Describe();
            var stack = StackFrom(w.ContinuationState, task, out bool reaches);
            into.Add(new PendingAwait(operation, target, null, stack, reaches));
        }
        if (SleepsOf(scope) is { } sleeps)
            foreach (var s in sleeps)
            {
                var stack = StackFrom(FlowingContinuation.Unwrap(s.State), task, out bool reaches);
                into.Add(new PendingAwait("Sleep", null, EventLoop.DeadlineToSeconds(s.Due), stack, reaches));
            }
        for (var c = scope.FirstChild; c != null; c = c.NextSibling) AddAwaits(task, c, into);
    }

    /// <summary>The live sleeps of <paramref name="scope"/>, earliest first; the timers are read once per builder.</summary>
    List<TimerSlot>? SleepsOf(CancelScope scope)
    {
        if (_sleeps == null)
        {
            _sleeps = new Dictionary<CancelScope, List<TimerSlot>>(ReferenceEqualityComparer.Instance);
            var all = new List<TimerSlot>();
            _loop.CollectSleeps(all);
            all.Sort(static (a, b) => a.Due != b.Due ? a.Due.CompareTo(b.Due) : a.Seq.CompareTo(b.Seq));
            foreach (var s in all)
            {
                if (s.Scope == null) continue;
                if (!_sleeps.TryGetValue(s.Scope, out var of)) _sleeps[s.Scope] = of = new List<TimerSlot>();
                of.Add(s);
            }
        }
        return _sleeps.GetValueOrDefault(scope);
    }

    /// <summary>
    /// The async methods behind a suspended continuation, innermost first: a coroutine's box, then the boxes that
    /// await it, up to the task's body or the first awaiter that is not a box.
    /// </summary>
    static IReadOnlyList<CallGraphFrame> StackFrom(object? state, AioTask task, out bool reachesTask)
    {
        reachesTask = false;
        if (state is Task t)
        {
            // An async Task method: named nowhere this library can read; it is the task's body, or some method inside.
            reachesTask = ReferenceEquals(t, task.GetCoroutine());
            return [];
        }
        if (state is not Coroutine { StateMachineType: not null } innermost) return [];
        Coroutine? box = innermost;
        var frames = new List<CallGraphFrame>();
        var seen = new HashSet<Coroutine>(ReferenceEqualityComparer.Instance);
        while (box != null && seen.Add(box))
        {
            frames.Add(new CallGraphFrame(box.StateMachineType!));
            var waiting = box.Waiting;
            box = null;
            if (waiting == null) break;
            foreach (var w in Coroutine.WaitersOf(waiting))
            {
                if (ReferenceEquals(w, task)) reachesTask = true;
                else if (w is Coroutine { StateMachineType: not null } caller) { box = caller; break; }
            }
        }
        return frames;
    }

    /// <summary>The async methods on the thread's stack, innermost first (the running task's call stack).</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Diagnostics only: without the metadata (trimmed, native AOT) a frame has no method and is left out; the stack is then empty, as documented.")]
    static IReadOnlyList<CallGraphFrame> ThreadStack()
    {
        var frames = new List<CallGraphFrame>();
        bool inCapture = true;   // the frames of the capture itself come first (Aio.CaptureCallGraph, EventLoop.CaptureCallGraph)
        foreach (var f in new StackTrace(false).GetFrames())
        {
            var method = f.GetMethod();
            if (inCapture && method?.DeclaringType?.Assembly == typeof(EventLoop).Assembly && method.DeclaringType.Namespace == nameof(Asyncio)
                && !typeof(IAsyncStateMachine).IsAssignableFrom(method.DeclaringType)) continue;
            inCapture = false;
            if (method?.DeclaringType == typeof(EventLoop)) break;   // the loop that runs the task: what lies below is not the task's
            if (method is { Name: "MoveNext", DeclaringType: { } type } && typeof(IAsyncStateMachine).IsAssignableFrom(type))
                frames.Add(new CallGraphFrame(type));
        }
        return frames;
    }
}
