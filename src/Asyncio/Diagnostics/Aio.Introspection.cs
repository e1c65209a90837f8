namespace Asyncio;

public static partial class Aio
{
    /// <summary>
    /// Captures what <paramref name="future"/> (by default the current task) awaits and what awaits it; asyncio's
    /// <c>capture_call_graph()</c>. See <see cref="CallGraph"/> and <see cref="EventLoop.CaptureCallGraph(Future?)"/>.
    /// </summary>
    /// <returns>The graph; <see langword="null"/> when no future is given and no task is running (or no loop runs on this thread).</returns>
    /// <exception cref="InvalidOperationException">Called off the thread of the future's loop while it runs.</exception>
    public static CallGraph? CaptureCallGraph(Future? future = null) =>
        (future?.Loop ?? EventLoop.TryGetRunningLoop())?.CaptureCallGraph(future);

    /// <summary>The call graph of <paramref name="future"/> (by default the current task) drawn as a tree; asyncio's <c>format_call_graph()</c>. Empty when there is none.</summary>
    /// <exception cref="InvalidOperationException">Called off the thread of the future's loop while it runs.</exception>
    public static string FormatCallGraph(Future? future = null) => CaptureCallGraph(future)?.ToString() ?? "";

    /// <summary>Writes <see cref="FormatCallGraph"/> to <paramref name="writer"/> (by default the standard output); asyncio's <c>print_call_graph()</c>.</summary>
    /// <exception cref="InvalidOperationException">Called off the thread of the future's loop while it runs.</exception>
    public static void PrintCallGraph(Future? future = null, TextWriter? writer = null) =>
        (writer ?? Console.Out).Write(FormatCallGraph(future));
}
