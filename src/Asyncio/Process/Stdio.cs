namespace Asyncio;

/// <summary>
/// What a child's standard stream is connected to; asyncio's <c>None</c>, <c>PIPE</c>, <c>DEVNULL</c> and
/// <c>STDOUT</c> for the <c>stdin</c>, <c>stdout</c> and <c>stderr</c> arguments of
/// <see cref="Aio.CreateSubprocessExec(string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, int, bool)"/>.
/// </summary>
public enum Stdio
{
    /// <summary>The parent's own stream (asyncio's <c>None</c>, the default).</summary>
    Inherit,

    /// <summary>A pipe to this process: <see cref="Subprocess.Stdin"/>, <see cref="Subprocess.Stdout"/> or <see cref="Subprocess.Stderr"/> (asyncio's <c>PIPE</c>).</summary>
    Pipe,

    /// <summary>The null device: reads see end of file, writes are discarded (asyncio's <c>DEVNULL</c>).</summary>
    DevNull,

    /// <summary>For stderr only: the same as the child's stdout (asyncio's <c>STDOUT</c>, a shell's <c>2&gt;&amp;1</c>).</summary>
    Stdout,
}
