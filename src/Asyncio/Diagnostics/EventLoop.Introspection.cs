using System.Runtime.InteropServices;
using System.Text;

namespace Asyncio;

// The whole-loop view of task introspection (asyncio's `python -m asyncio pstree`), from code and, through a
// signal, from outside the process (the JVM's thread dump on SIGQUIT). The graphs themselves: CallGraph.cs.

public sealed partial class EventLoop
{
    /// <summary>
    /// Captures what <paramref name="future"/> (by default the current task) awaits and what awaits it; asyncio's
    /// <c>capture_call_graph()</c>. See <see cref="CallGraph"/>. Loop thread only.
    /// </summary>
    /// <returns>The graph; <see langword="null"/> when no future is given and no task is running (a plain callback).</returns>
    /// <exception cref="ArgumentException"><paramref name="future"/> belongs to another loop.</exception>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop runs (its state changes
    /// on the loop thread); from there, ask the loop with <see cref="RunCoroutineThreadsafe{T}(Func{Task{T}}, CancellationToken)"/>.</exception>
    public CallGraph? CaptureCallGraph(Future? future = null)
    {
        CheckThread(nameof(CaptureCallGraph));
        if (future != null && !ReferenceEquals(future.Loop, this))
            throw new ArgumentException("The future belongs to another event loop.", nameof(future));
        future ??= CurrentTask;
        return future == null ? null : new CallGraphBuilder(this).Build(future);
    }

    /// <summary>
    /// Describes every task of the loop that is not done: its name, number and state, each await pending in it
    /// with the async methods behind it, and, nested under it, the tasks it awaits (directly, through a gather,
    /// or as the children of its task group); what asyncio's <c>python -m asyncio pstree</c> shows. Loop thread only.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop runs.</exception>
    public string FormatTasks()
    {
        CheckThread(nameof(FormatTasks));
        var tasks = new List<AioTask>(AllTasks());
        tasks.Sort(static (a, b) => a.Id.CompareTo(b.Id));
        var builder = new CallGraphBuilder(this);
        // Who awaits each task, among the tasks: through the futures between them (a gather, a shield).
        var children = new Dictionary<AioTask, List<AioTask>>(ReferenceEqualityComparer.Instance);
        var awaited = new HashSet<AioTask>(ReferenceEqualityComparer.Instance);
        foreach (var t in tasks)
            foreach (var parent in AwaitingTasks(t))
            {
                if (!children.TryGetValue(parent, out var list)) children[parent] = list = new List<AioTask>();
                list.Add(t);
                awaited.Add(t);
            }
        var sb = new StringBuilder();
        sb.Append(tasks.Count).Append(tasks.Count == 1 ? " task" : " tasks").Append(" pending on the event loop at loop time ")
          .Append(Time().ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        var written = new HashSet<AioTask>(ReferenceEqualityComparer.Instance);
        foreach (var t in tasks)
            if (!awaited.Contains(t)) WriteTask(sb, builder, t, "", children, written);
        // What is left awaits in a cycle (a awaits b, b awaits a): no task of it is a root.
        foreach (var t in tasks)
            if (!written.Contains(t))
            {
                sb.Append("(in a cycle of awaits)\n");
                WriteTask(sb, builder, t, "", children, written);
            }
        return sb.ToString();
    }

    /// <summary>Writes <see cref="FormatTasks"/> to <paramref name="writer"/> (by default the standard error) and flushes it. Loop thread only.</summary>
    /// <exception cref="InvalidOperationException">Called from another thread while the loop runs.</exception>
    public void PrintTasks(TextWriter? writer = null)
    {
        var text = FormatTasks();
        writer ??= Console.Error;
        writer.Write(text);
        writer.Flush();
    }

    /// <summary>
    /// Prints every task (<see cref="PrintTasks"/>) whenever <paramref name="signal"/> arrives, so that a program
    /// that seems stuck can be asked from outside what its tasks wait for: <c>kill -QUIT &lt;pid&gt;</c>, or
    /// Ctrl+\ in its terminal (Ctrl+Break on Windows), as for a JVM's thread dump. Opt-in; built on
    /// <see cref="AddSignalHandler(PosixSignal, Action)"/>, so the signal no longer has its default action (for
    /// SIGQUIT, ending the process with a core dump), and <see cref="RemoveSignalHandler(PosixSignal)"/> or
    /// <see cref="Close"/> stops it. Loop thread only.
    /// </summary>
    /// <remarks>The dump is written by the loop's thread at its next iteration: a loop blocked in a callback cannot
    /// answer (debug mode's watchdog reports that case, <see cref="BlockedLoopThreshold"/>).</remarks>
    /// <param name="signal">The signal; SIGQUIT unless given.</param>
    /// <param name="writer">Where the dump goes; the standard error (as it is at each dump) when <see langword="null"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="signal"/> is not a <see cref="PosixSignal"/> name.</exception>
    /// <exception cref="InvalidOperationException">The loop is closed, or called from another thread while it runs.</exception>
    /// <exception cref="PlatformNotSupportedException">The runtime cannot catch signals here.</exception>
    public void DumpTasksOnSignal(PosixSignal signal = PosixSignal.SIGQUIT, TextWriter? writer = null) =>
        AddSignalHandler(signal, () => PrintTasks(writer));

    /// <summary>As <see cref="DumpTasksOnSignal(PosixSignal, TextWriter?)"/>, for a Unix signal number (10 for SIGUSR1 on Linux).</summary>
    /// <param name="signal">The signal number (see <see cref="AddSignalHandler(int, Action)"/>).</param>
    /// <param name="writer">Where the dump goes; the standard error when <see langword="null"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="signal"/> is not a signal number, or one the C library reserves.</exception>
    /// <exception cref="InvalidOperationException">SIGKILL or SIGSTOP, the loop is closed, or called from another thread while it runs.</exception>
    public void DumpTasksOnSignal(int signal, TextWriter? writer = null) =>
        AddSignalHandler(signal, () => PrintTasks(writer));

    /// <summary>Collects the live sleeps from the timers (for the call graph).</summary>
    internal void CollectSleeps(List<TimerSlot> into) => _timers.CollectSleeps(into);

    /// <summary>The tasks that wait for <paramref name="task"/>, through any futures between them.</summary>
    static List<AioTask> AwaitingTasks(AioTask task)
    {
        var found = new List<AioTask>();
        var seen = new HashSet<Future>(ReferenceEqualityComparer.Instance) { task };
        var pending = new Stack<Future>();
        pending.Push(task);
        while (pending.Count > 0)
            foreach (var f in CallGraphBuilder.AwaitersOf(pending.Pop()))
            {
                if (!seen.Add(f)) continue;
                if (f is AioTask t) { if (!t.IsDone) found.Add(t); }
                else pending.Push(f);
            }
        return found;
    }

    static void WriteTask(StringBuilder sb, CallGraphBuilder builder, AioTask task, string indent, Dictionary<AioTask, List<AioTask>> children, HashSet<AioTask> written)
    {
        var header = builder.Build(task, withAwaitedBy: false);
        if (!written.Add(task))
        {
            sb.Append(indent).Append("* ").Append(CallGraph.Label(task)).Append(": see above\n");
            return;
        }
        sb.Append(indent).Append("* ").Append(CallGraph.Header(task, header.State)).Append('\n');
        if (header.Awaits.Count != 0) CallGraph.WriteAwaits(sb, indent + "    ", header.Awaits);
        else if (header.State == "pending") sb.Append(indent).Append("    (no await of the loop's pending: ready to resume, or awaiting a .NET Task)\n");
        if (children.TryGetValue(task, out var list))
            foreach (var child in list) WriteTask(sb, builder, child, indent + "    ", children, written);
    }
}
