using System.Net.Sockets;

namespace Asyncio;

// A child process with streams on the loop: asyncio's asyncio.subprocess.Process together with the parts of
// its SubprocessTransport and SubprocessStreamProtocol that it uses.
//
// The pipes are Unix socket pairs (SpawnNative.cs), so each one is an ordinary stream transport of the loop
// (SocketTransport): reading, writing, flow control, write_eof and closing are the sockets' own, and
// Stdout/Stderr are AsyncStreamReaders and Stdin an AsyncStreamWriter, as for a connection. asyncio uses os.pipe
// (and socket pairs on AIX); a child sees a socket where it would have seen a FIFO, which changes nothing for
// programs that read and write their streams.
//
// The end, as asyncio 3.12 orders it: the process has exited (ReturnCode is set at once) and every pipe is
// closed (the child's ends closed at its exit, or ours by Communicate); then Wait's waiters wake and the stdin
// pipe is closed if the caller left it open. A grandchild that keeps a pipe open keeps Wait waiting, as in
// asyncio. Wait with pipes the caller does not read can fill them and wait for ever: use Communicate.
//
// A loop closed while children still run lets them run (asyncio does not kill them either); a helper thread
// reaps each one when it exits, so none stays a zombie.

/// <summary>
/// A child process started by <see cref="Aio.CreateSubprocessExec(string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, int, bool)"/>
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
public sealed class Subprocess : IDroppedOnClose
{
    readonly EventLoop _loop;
    readonly ITransport?[] _pipes = new ITransport?[3];
    int _openPipes;                 // pipes whose connection is not lost yet
    int _pidfd = -1;
    int? _returnCode;
    bool _finished;                 // exited and every pipe closed: Wait returns
    List<Future<int>>? _waiters;

    Subprocess(EventLoop loop, int pid)
    {
        _loop = loop;
        Pid = pid;
    }

    /// <summary>The child's process id; asyncio's <c>pid</c>.</summary>
    public int Pid { get; }

    /// <summary>
    /// The child's return code once it has exited, else <see langword="null"/>; asyncio's <c>returncode</c>: the
    /// exit code, or minus the number of the signal that ended it (<c>-9</c> after <see cref="Kill"/>).
    /// </summary>
    public int? ReturnCode => _returnCode;

    /// <summary>The writer to the child's standard input, if it was started with <see cref="Stdio.Pipe"/>; else <see langword="null"/>.</summary>
    public AsyncStreamWriter? Stdin { get; private set; }

    /// <summary>The reader of the child's standard output, if it was started with <see cref="Stdio.Pipe"/>; else <see langword="null"/>.</summary>
    public AsyncStreamReader? Stdout { get; private set; }

    /// <summary>The reader of the child's standard error, if it was started with <see cref="Stdio.Pipe"/>; else <see langword="null"/>.</summary>
    public AsyncStreamReader? Stderr { get; private set; }

    // ---- starting ----

    internal static async Task<Subprocess> Start(EventLoop loop, IReadOnlyList<string> argv, Stdio stdin, Stdio stdout, Stdio stderr,
        string? cwd, IReadOnlyDictionary<string, string>? env, int limit, bool newSession)
    {
        if (!SpawnNative.Supported)
            throw new PlatformNotSupportedException("Subprocesses are implemented on Linux only.");
        if (stdin == Stdio.Stdout || stdout == Stdio.Stdout)
            throw new ArgumentException("Stdio.Stdout is for stderr only (asyncio's STDOUT).", stdin == Stdio.Stdout ? nameof(stdin) : nameof(stdout));
        CheckStdio(stdin, nameof(stdin));
        CheckStdio(stdout, nameof(stdout));
        CheckStdio(stderr, nameof(stderr));
        if (limit <= 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "The limit must be positive.");
        if (cwd != null && !Directory.Exists(NoNul(cwd, nameof(cwd)))) throw new DirectoryNotFoundException($"No such directory: '{cwd}'");
        if (env != null)
        {
            foreach (var (k, v) in env)
            {
                if (k.Length == 0 || k.Contains('=')) throw new ArgumentException($"Not an environment variable name: '{k}'.", nameof(env));
                NoNul(k, nameof(env));
                NoNul(v ?? throw new ArgumentException($"The environment variable '{k}' has a null value.", nameof(env)), nameof(env));
            }
        }
        loop.CheckThread("CreateSubprocessExec");

        var ends = new (int Parent, int Child)[3];
        Array.Fill(ends, (-1, -1));
        Subprocess proc;
        try
        {
            var modes = new[] { stdin, stdout, stderr };
            var given = new int[3];
            for (int i = 0; i < 3; i++)
            {
                given[i] = modes[i] switch
                {
                    Stdio.Pipe => (ends[i] = SpawnNative.SocketPair()).Child,
                    Stdio.DevNull => SpawnNative.DevNull,
                    Stdio.Stdout => SpawnNative.ToStdout,
                    _ => SpawnNative.Inherit,
                };
            }
            var environment = env ?? CurrentEnvironment();
            int pid = SpawnNative.Spawn(argv, environment, cwd, given[0], given[1], given[2], newSession);
            proc = new Subprocess(loop, pid);
        }
        catch
        {
            foreach (var (p, c) in ends)
            {
                if (p >= 0) SpawnNative.Close(p);
                if (c >= 0) SpawnNative.Close(c);
            }
            throw;
        }
        foreach (var (_, c) in ends)
            if (c >= 0) SpawnNative.Close(c);

        loop.Subprocesses.Add(proc);
        proc.WatchExit();
        var waiters = new List<Future>();
        for (int i = 0; i < 3; i++)
        {
            if (ends[i].Parent < 0) continue;
            var sock = new Socket(new SafeSocketHandle(ends[i].Parent, ownsHandle: true));
            var reader = i == 0 ? null : new AsyncStreamReader(limit);
            var protocol = reader == null ? new StreamProtocol(loop) : new StreamProtocol(reader) { CloseOnEof = true };
            protocol.Lost = proc.PipeLost;
            var waiter = loop.CreateFuture();
            var transport = loop.MakeTransport(sock, protocol, waiter, null, null, null, null, null, null);
            proc._pipes[i] = transport;
            proc._openPipes++;
            waiters.Add(waiter);
            switch (i)
            {
                case 0: proc.Stdin = new AsyncStreamWriter(transport, protocol, null, loop); break;
                case 1: proc.Stdout = reader; break;
                default: proc.Stderr = reader; break;
            }
        }
        try
        {
            foreach (var w in waiters) await w;
        }
        catch
        {
            // Cancelled while the pipes were connecting: the child runs on, as asyncio's does; its pipes close.
            foreach (var t in proc._pipes) t?.Close();
            throw;
        }
        return proc;
    }

    /// <summary>Returns <paramref name="s"/>, or throws if it contains a NUL character, which would cut it short (Python's "embedded null byte").</summary>
    internal static string NoNul(string s, string name) =>
        s.Contains('\0') ? throw new ArgumentException("A string given to a child process contains a NUL character.", name) : s;

    static void CheckStdio(Stdio mode, string name)
    {
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(name, mode, "Not a Stdio value.");
    }

    static IEnumerable<KeyValuePair<string, string>> CurrentEnvironment()
    {
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            yield return new((string)e.Key, (string?)e.Value ?? "");
    }

    // ---- the exit ----

    static readonly Action<object?> s_pidfdReady = static o => ((Subprocess)o!).PidfdReady();
    static readonly Action<object?> s_exitedElsewhere = static o => ((Subprocess)o!).Reap();

    void WatchExit()
    {
        int fd = SpawnNative.PidfdOpen(Pid);
        if (fd >= 0)
        {
            try
            {
                _loop.AddReader(fd, s_pidfdReady, this);
                _pidfd = fd;
                return;
            }
            catch (NotSupportedException)
            {
                SpawnNative.Close(fd);   // the portable reactor watches sockets only
            }
        }
        WatchOnThread(notify: true);
    }

    /// <summary>asyncio's threaded child watcher: a thread waits for the exit without reaping it, and the loop reaps.</summary>
    void WatchOnThread(bool notify)
    {
        var loop = _loop;
        int pid = Pid;
        var thread = new Thread(() =>
        {
            SpawnNative.WaitExitedNoReap(pid);
            if (notify)
            {
                try
                {
                    // If the loop closes before this runs, it drops it and calls LoopClosed, which reaps.
                    loop.PostThreadsafe(s_exitedElsewhere, this);
                    return;
                }
                catch (InvalidOperationException) { }   // the loop is closed: reap here
            }
            SpawnNative.TryReap(pid, out _);
        })
        {
            IsBackground = true,
            Name = $"asyncio child watcher {pid}",
        };
        thread.Start();
    }

    void PidfdReady()
    {
        if (_returnCode != null) return;
        Reap();
    }

    void Reap()
    {
        if (_returnCode != null) return;
        int? code = SpawnNative.TryReap(Pid, out bool unknown);
        if (code == null) return;   // not yet (a spurious wake-up): the watch stays
        StopWatching();
        if (unknown)
            _loop.CallExceptionHandler(new ExceptionContext($"Unknown child process pid {Pid}, will report returncode 255"));
        _returnCode = code;
        TryFinish();
    }

    void StopWatching()
    {
        if (_pidfd < 0) return;
        _loop.RemoveReader(_pidfd);
        SpawnNative.Close(_pidfd);
        _pidfd = -1;
    }

    void PipeLost()
    {
        _openPipes--;
        TryFinish();
    }

    void TryFinish()
    {
        if (_finished || _returnCode == null || _openPipes > 0) return;
        _finished = true;
        _loop.Subprocesses.Remove(this);
        var waiters = _waiters;
        _waiters = null;
        if (waiters == null) return;
        foreach (var f in waiters)
            if (!f.IsDone) f.SetResult(_returnCode.Value);
    }

    /// <summary>
    /// The loop is closing with this child not reaped: with a pidfd, a thread now waits to reap it; with a
    /// watcher thread, that thread reaps it itself once its post to the closed loop fails.
    /// </summary>
    internal void LoopClosing()
    {
        if (_pidfd < 0) return;
        SpawnNative.Close(_pidfd);   // the reactor is disposed with the loop; the watch goes with it
        _pidfd = -1;
        if (_returnCode == null) WatchOnThread(notify: false);
    }

    /// <summary>The loop closed with the exit's callback (the watcher thread's post, or the pidfd's readiness) not run: reap now.</summary>
    void IDroppedOnClose.LoopClosed()
    {
        if (_returnCode == null && SpawnNative.TryReap(Pid, out _) is { } code) _returnCode = code;
    }

    // ---- waiting ----

    /// <summary>
    /// Waits for the child to exit and returns its <see cref="ReturnCode"/>; asyncio's <c>wait()</c>. It returns
    /// once the child has exited and its pipes are closed. Cancelling the wait leaves the child running.
    /// </summary>
    public Task<int> Wait()
    {
        _loop.CheckThread(nameof(Subprocess), nameof(Wait));
        if (_finished) return Task.FromResult(_returnCode!.Value);
        var f = _loop.CreateFuture<int>();
        (_waiters ??= new()).Add(f);
        return AwaitExit(f);
    }

    async Task<int> AwaitExit(Future<int> f)
    {
        try { return await f; }
        finally { _waiters?.Remove(f); }
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
            catch (SocketException) { }
        }
        stdin.Close();
    }

    async Task<byte[]> ReadToEnd(AsyncStreamReader reader, int fd)
    {
        var data = await reader.Read();
        _pipes[fd]?.Close();
        return data;
    }

    // ---- signals ----

    /// <summary>
    /// Sends signal number <paramref name="signal"/> to the child; asyncio's <c>send_signal()</c>. Nothing happens
    /// once the child's exit has been seen (its pid may belong to another process by then).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="signal"/> is not positive.</exception>
    public void SendSignal(int signal)
    {
        _loop.CheckThread(nameof(Subprocess), nameof(SendSignal));
        if (signal <= 0) throw new ArgumentOutOfRangeException(nameof(signal), signal, "A signal number is positive.");
        if (_returnCode != null) return;
        SpawnNative.Kill(Pid, signal);
    }

    /// <summary>Asks the child to stop (SIGTERM); asyncio's <c>terminate()</c>.</summary>
    public void Terminate() => SendSignal(15);

    /// <summary>Kills the child (SIGKILL); asyncio's <c>kill()</c>.</summary>
    public void Kill() => SendSignal(9);

    /// <inheritdoc/>
    public override string ToString() => $"<Subprocess {Pid} {(_returnCode is { } c ? $"returncode={c}" : "running")}>";
}
