using System.Runtime.InteropServices;
using System.Net.Sockets;

namespace Asyncio;

// A child process with streams on the loop: asyncio's asyncio.subprocess.Process, over the child's transport
// (SubprocessTransport.cs) in its stream form, where the pipes feed AsyncStreamReaders and an AsyncStreamWriter.
//
// When Wait returns, as asyncio 3.12 orders it: called before the exit, once the child has exited (ReturnCode is
// set at once) and every pipe is closed (the child's ends closed at its exit, or ours by Communicate); a stdin pipe
// the caller left open is closed once the child has exited and its stdout and stderr are done (asyncio's
// SubprocessStreamProtocol). A grandchild that keeps stdout open keeps such a Wait waiting, as in asyncio. Called
// once ReturnCode is set, it returns it at once (asyncio's _wait()), pipes open or not. Wait with pipes the caller
// does not read can fill them and wait for ever: use Communicate, which reads them to their end itself.

/// <summary>
/// A child process started by <see cref="Aio.CreateSubprocessExec(string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, int, bool, IEnumerable{SafeHandle}?, int?)"/>
/// or <see cref="Aio.CreateSubprocessShell"/>; asyncio's <c>asyncio.subprocess.Process</c>. Loop thread only.
/// </summary>
/// <remarks>
/// <para>Its standard streams are <see cref="Stdin"/>, <see cref="Stdout"/> and <see cref="Stderr"/> when they were
/// started as <see cref="Stdio.Pipe"/>. Read them while the child runs, or use <see cref="Communicate"/>: a child
/// blocks once it has written more than the pipe and the reader's buffer hold, and <see cref="Wait"/> would then
/// wait for ever (asyncio's documented deadlock).</para>
/// <para>Cancelling <see cref="Wait"/> or <see cref="Communicate"/> does not stop the child; call <see cref="Kill"/>
/// or <see cref="Terminate"/> (for example when <see cref="Aio.WaitFor{T}(Func{Task{T}}, double?)"/> times out).</para>
/// </remarks>
public sealed class Subprocess
{
    readonly EventLoop _loop;
    readonly SubprocessTransport _transport;

    Subprocess(EventLoop loop, SubprocessTransport transport)
    {
        _loop = loop;
        _transport = transport;
    }

    /// <summary>The child's process id; asyncio's <c>pid</c>.</summary>
    public int Pid => _transport.Pid;

    /// <summary>
    /// The child's return code once it has exited, else <see langword="null"/>; asyncio's <c>returncode</c>: the
    /// exit code, or minus the number of the signal that ended it (<c>-9</c> after <see cref="Kill"/>).
    /// </summary>
    public int? ReturnCode => _transport.ReturnCode;

    /// <summary>The writer to the child's standard input, if it was started with <see cref="Stdio.Pipe"/>; else <see langword="null"/>.</summary>
    public AsyncStreamWriter? Stdin => _transport.StdinWriter;

    /// <summary>The reader of the child's standard output, if it was started with <see cref="Stdio.Pipe"/>; else <see langword="null"/>.</summary>
    public AsyncStreamReader? Stdout => _transport.StdoutReader;

    /// <summary>The reader of the child's standard error, if it was started with <see cref="Stdio.Pipe"/>; else <see langword="null"/>.</summary>
    public AsyncStreamReader? Stderr => _transport.StderrReader;

    /// <summary>The stream API's protocol: the pipes feed the readers themselves, so it has nothing to do.</summary>
    sealed class StreamsProtocol : SubprocessProtocol;

    internal static async Task<Subprocess> Start(EventLoop loop, IReadOnlyList<string> argv, Stdio stdin, Stdio stdout, Stdio stderr,
        string? cwd, IReadOnlyDictionary<string, string>? env, int limit, bool newSession, int? processGroup, IEnumerable<SafeHandle>? passHandles)
    {
        var t = await SubprocessTransport.Start(loop, "CreateSubprocessExec", argv, stdin, stdout, stderr, cwd, env, newSession, processGroup, passHandles,
            new StreamsProtocol(), streams: true, limit);
        return new Subprocess(loop, t);
    }

    // ---- waiting ----

    /// <summary>
    /// Waits for the child to exit and returns its <see cref="ReturnCode"/>; asyncio's <c>wait()</c>. Called while
    /// the child runs, it returns once the child has exited and its pipes are closed, so that the readers then hold
    /// all of its output (a grandchild that keeps a pipe open keeps it waiting). Called once <see cref="ReturnCode"/>
    /// is set, it returns at once, whether the pipes are closed or not. Cancelling the wait leaves the child running.
    /// </summary>
    public Task<int> Wait()
    {
        _loop.CheckThread(nameof(Subprocess), nameof(Wait));
        return _transport.Wait();
    }

    /// <summary>
    /// Sends <paramref name="input"/> to the child's standard input and closes it, reads its standard output and
    /// standard error to their end, and waits for it to exit; asyncio's <c>communicate()</c>. A child that exits
    /// without reading its input is not an error. Cancelling it leaves the child running.
    /// </summary>
    /// <param name="input">What to write to the child's standard input (needs <see cref="Stdio.Pipe"/> for stdin unless empty).</param>
    /// <returns>Everything the child wrote to each stream started with <see cref="Stdio.Pipe"/> (<see langword="null"/> for the others).</returns>
    /// <exception cref="InvalidOperationException"><paramref name="input"/> is not empty and the child's stdin is not a pipe.</exception>
    public async Task<(byte[]? Stdout, byte[]? Stderr)> Communicate(ReadOnlyMemory<byte> input = default)
    {
        _loop.CheckThread(nameof(Subprocess), nameof(Communicate));
        if (!input.IsEmpty && Stdin == null)
            throw new InvalidOperationException("Cannot send input: the child's stdin is not a pipe (start it with stdin: Stdio.Pipe).");
        var feed = Stdin != null ? FeedStdin(Stdin, input) : Task.CompletedTask;
        var stdout = Stdout != null ? ReadToEnd(Stdout, 1) : null;
        var stderr = Stderr != null ? ReadToEnd(Stderr, 2) : null;
        await feed;
        var o = stdout != null ? await stdout : null;
        var e = stderr != null ? await stderr : null;
        await Wait();
        return (o, e);
    }

    static async Task FeedStdin(AsyncStreamWriter stdin, ReadOnlyMemory<byte> input)
    {
        if (!input.IsEmpty && !stdin.IsClosing)
        {
            stdin.Write(input.Span);
            // A child that exits (or closes its stdin) without reading it all is not an error (asyncio ignores
            // BrokenPipeError and ConnectionResetError here).
            try { await stdin.Drain(); }
            catch (IOException) { }        // a pipe's EPIPE
            catch (SocketException) { }    // a socket pair's (the portable reactor)
        }
        stdin.Close();
    }

    async Task<byte[]> ReadToEnd(AsyncStreamReader reader, int fd)
    {
        var data = await reader.Read();
        _transport.GetPipeTransport(fd)?.Close();
        return data;
    }

    // ---- signals ----

    /// <summary>
    /// Sends signal number <paramref name="signal"/> to the child; asyncio's <c>send_signal()</c>. Nothing happens
    /// once the child's exit has been seen (its pid may belong to another process by then).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="signal"/> is not positive.</exception>
    /// <exception cref="InvalidOperationException">The loop has closed with the child not reaped by it: its pid may be another process's by now.</exception>
    public void SendSignal(int signal)
    {
        _loop.CheckThread(nameof(Subprocess), nameof(SendSignal));
        _transport.SendSignal(signal);
    }

    /// <summary>Asks the child to stop (SIGTERM); asyncio's <c>terminate()</c>.</summary>
    public void Terminate() => SendSignal(15);

    /// <summary>Kills the child (SIGKILL); asyncio's <c>kill()</c>.</summary>
    public void Kill() => SendSignal(9);

    /// <inheritdoc/>
    public override string ToString() => $"<Subprocess {Pid} {(ReturnCode is { } c ? $"returncode={c}" : "running")}>";
}
