using System.Runtime.InteropServices;
using System.Net.Sockets;

namespace Asyncio;

// A child process and its pipes: asyncio's BaseSubprocessTransport with its child watcher, under both the
// protocol API (EventLoop.SubprocessExec, a SubprocessProtocol) and the stream API (Aio.CreateSubprocessExec,
// Subprocess.cs).
//
// The pipes are real pipes on the epoll reactor (PipeTransport.cs) and Unix socket pairs served by the loop's
// SocketTransport on the portable reactor, which watches sockets only (asyncio uses socket pairs on AIX). A pipe
// cannot be half-closed, so each pipe's protocol closes its transport at the end of stream; on stdin that end
// means the child closed its standard input (or exited).
//
// asyncio's order of protocol calls: ConnectionMade once every pipe is connected, then PipeDataReceived and
// ProcessExited as they come, PipeConnectionLost for each pipe, and ConnectionLost once the child has exited
// and every pipe is closed; Wait's waiters wake after ConnectionLost (asyncio 3.12), and a Wait that begins once
// the return code is known returns it at once (asyncio's _wait()), whatever pipe is still open. The stream API's
// SubprocessStreamProtocol closes the transport once the child has exited and its stdout and stderr are done,
// which closes a stdin pipe still open.
//
// The exit: on the epoll reactor the loop watches a pidfd (pidfd_open, Linux 5.3); elsewhere (the portable
// reactor watches sockets only, or no pidfd) a helper thread waits with waitid(WNOWAIT), which leaves the child
// unreaped, and posts to the loop. The loop's thread reaps (waitpid), so a signal sent from it never reaches a
// recycled pid. A loop closed while children still run lets them run (asyncio does too) and hands each one to a
// helper thread that reaps it when it exits, so none stays a zombie.

/// <summary>
/// The transport of a child process; asyncio's <c>SubprocessTransport</c>, from
/// <see cref="EventLoop.SubprocessExec{TProtocol}(Func{TProtocol}, string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, bool, IEnumerable{SafeHandle}?, int?)"/>.
/// </summary>
public interface ISubprocessTransport : IBaseTransport
{
    /// <summary>The child's process id; asyncio's <c>get_pid()</c>.</summary>
    int Pid { get; }

    /// <summary>The child's return code once it has exited (minus the signal that ended it), else <see langword="null"/>; asyncio's <c>get_returncode()</c>.</summary>
    int? ReturnCode { get; }

    /// <summary>
    /// The transport of pipe <paramref name="fd"/> (0: stdin, an <see cref="IWriteTransport"/>; 1 and 2: stdout and
    /// stderr, <see cref="IReadTransport"/>s), or <see langword="null"/> if that stream is not a pipe; asyncio's <c>get_pipe_transport(fd)</c>.
    /// </summary>
    IBaseTransport? GetPipeTransport(int fd);

    /// <summary>Sends signal number <paramref name="signal"/> to the child (nothing once its exit has been seen); asyncio's <c>send_signal()</c>.</summary>
    /// <exception cref="InvalidOperationException">The loop has closed with the child not reaped: its pid may be another process's by now.</exception>
    void SendSignal(int signal);

    /// <summary>Sends SIGTERM; asyncio's <c>terminate()</c>.</summary>
    void Terminate();

    /// <summary>Sends SIGKILL; asyncio's <c>kill()</c>.</summary>
    void Kill();
}

/// <summary>The child's side of <see cref="ISubprocessTransport"/>; see the file's opening comment.</summary>
internal sealed class SubprocessTransport : ISubprocessTransport, IDroppedOnClose
{
    readonly EventLoop _loop;
    readonly ITransport?[] _pipes = new ITransport?[3];
    readonly bool[] _pipeOpen = new bool[3];
    SubprocessProtocol _protocol;
    readonly bool _streams;         // the stream API: close once the child has exited and stdout/stderr are done
    int _pidfd = -1;
    IoSource? _pidfdSource;         // the pidfd's watch in the reactor, owned by this transport
    int? _returnCode;
    bool _connected;                // ConnectionMade has been called
    bool _exitPending;              // exited before ConnectionMade: ProcessExited comes after it
    bool _closed;
    bool _finished;                 // ConnectionLost called: Wait returns
    bool _abandoned;                // the loop closed with the child unreaped: a helper thread reaps it, its pid is not ours to signal
    List<Future<int>>? _waiters;

    SubprocessTransport(EventLoop loop, int pid, SubprocessProtocol protocol, bool streams)
    {
        _loop = loop;
        Pid = pid;
        _protocol = protocol;
        _streams = streams;
    }

    public int Pid { get; }
    public int? ReturnCode => _returnCode;
    public bool IsClosing => _closed;

    /// <summary>The stdout and stderr readers of the stream API (null where the stream is not a pipe).</summary>
    public AsyncStreamReader? StdoutReader, StderrReader;
    /// <summary>The stdin writer of the stream API.</summary>
    public AsyncStreamWriter? StdinWriter;

    public BaseProtocol Protocol
    {
        get => _protocol;
        set => _protocol = value as SubprocessProtocol ?? throw new ArgumentException("A subprocess transport's protocol is a SubprocessProtocol.", nameof(value));
    }

    public object? GetExtraInfo(string name, object? defaultValue = null) => defaultValue;   // asyncio's "subprocess" is a Popen, which has no counterpart here

    public IBaseTransport? GetPipeTransport(int fd) => fd is >= 0 and <= 2 ? _pipes[fd] : null;

    // ---- starting ----

    /// <summary>
    /// Spawns the child, connects its pipes and calls the protocol's ConnectionMade; asyncio's
    /// <c>_make_subprocess_transport</c>. With <c>streams</c> the pipes feed readers and a writer (limit: the
    /// readers') instead of the protocol. <c>member</c> names the caller in the wrong-thread error.
    /// </summary>
    internal static async Task<SubprocessTransport> Start(EventLoop loop, string member, IReadOnlyList<string> argv, Stdio stdin, Stdio stdout, Stdio stderr,
        string? cwd, IReadOnlyDictionary<string, string>? env, bool newSession, int? processGroup, IEnumerable<SafeHandle>? passHandles,
        SubprocessProtocol protocol, bool streams, int limit)
    {
        if (!SpawnNative.Supported)
            throw new PlatformNotSupportedException("Subprocesses are implemented on Linux only.");
        if (stdin == Stdio.Stdout || stdout == Stdio.Stdout)
            throw new ArgumentException("Stdio.Stdout is for stderr only (asyncio's STDOUT).", stdin == Stdio.Stdout ? nameof(stdin) : nameof(stdout));
        stdin.CheckUsable(nameof(stdin));
        stdout.CheckUsable(nameof(stdout));
        stderr.CheckUsable(nameof(stderr));
        var passed = CheckPassed(passHandles);
        if (processGroup is { } group)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(group, nameof(processGroup));
            if (newSession)
                throw new ArgumentException("startNewSession already makes the child the leader of a new process group; give one or the other.", nameof(processGroup));
        }
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
        loop.CheckThread(member);
        loop.CheckNotClosed();

        var ends = new (int Parent, int Child)[3];
        Array.Fill(ends, (-1, -1));
        SubprocessTransport t;
        try
        {
            var modes = new[] { stdin, stdout, stderr };
            var given = new int[3];
            for (int i = 0; i < 3; i++)
            {
                given[i] = modes[i].Mode switch
                {
                    Stdio.Kind.Pipe => (ends[i] = loop.SupportsFileDescriptors ? SpawnNative.Pipe(parentReads: i != 0) : SpawnNative.SocketPair()).Child,
                    Stdio.Kind.DevNull => SpawnNative.DevNull,
                    Stdio.Kind.Stdout => SpawnNative.ToStdout,
                    // The caller's descriptor, copied: the copy is closed with the pipes' child ends once the child has started.
                    Stdio.Kind.Handle or Stdio.Kind.Descriptor => (ends[i] = (-1, modes[i].Duplicate(StreamName(i)))).Child,
                    _ => SpawnNative.Inherit,
                };
            }
            string? path = env != null ? env.GetValueOrDefault("PATH") : Environment.GetEnvironmentVariable("PATH");
            path ??= SpawnNative.DefaultPath;
            int pid = SpawnWithPassed(passed, keep => SpawnNative.Spawn(argv[0], path, argv, env ?? CurrentEnvironment(), cwd,
                given[0], given[1], given[2], newSession, processGroup ?? -1, keep));
            t = new SubprocessTransport(loop, pid, protocol, streams);
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

        loop.Subprocesses.Add(t);
        int connecting = 0;
        try
        {
            t.WatchExit();
            for (; connecting < 3; connecting++)
                if (ends[connecting].Parent >= 0) t.ConnectPipe(connecting, ends[connecting].Parent, limit);
        }
        catch
        {
            // Nothing should fail here; if something does, leak neither the child nor its descriptors.
            for (int i = connecting + 1; i < 3; i++)
                if (ends[i].Parent >= 0) SpawnNative.Close(ends[i].Parent);
            t.Close();
            throw;
        }
        // The pipes' ConnectionMade calls are queued; this one comes after them and before any data can be read.
        var connected = loop.CreateFuture();
        loop.EnqueueInternal(static o =>
        {
            var (tr, f) = ((SubprocessTransport, Future))o!;
            tr.ConnectionMade(f);
        }, (t, connected));
        try
        {
            await connected;
        }
        catch
        {
            t.Close();   // as asyncio: a transport that failed to start, or whose start was cancelled, kills its child
            throw;
        }
        return t;
    }

    /// <summary>The transport of a pipe's parent end: a pipe transport on the epoll reactor, a socket pair's otherwise.</summary>
    ITransport MakePipeTransport(int fd, int parentEnd, Protocol protocol)
    {
        if (_loop.SupportsFileDescriptors)
            return fd == 0 ? new WritePipeTransport(_loop, parentEnd, protocol) : new ReadPipeTransport(_loop, parentEnd, protocol);
        var sock = new Socket(new SafeSocketHandle(parentEnd, ownsHandle: true));
        return _loop.MakeTransport(sock, protocol, null, null, null, null, null, null, null);
    }

    void ConnectPipe(int fd, int parentEnd, int limit)
    {
        Protocol protocol;
        if (_streams)
        {
            var reader = fd == 0 ? null : new AsyncStreamReader(limit);
            var sp = reader == null ? new StreamProtocol(_loop) : new StreamProtocol(reader) { CloseOnEof = true };
            sp.Lost = e => PipeConnectionLost(fd, e);
            protocol = sp;
            var transport = MakePipeTransport(fd, parentEnd, protocol);
            _pipes[fd] = transport;
            switch (fd)
            {
                case 0: StdinWriter = new AsyncStreamWriter(transport, sp, null, _loop); break;
                case 1: StdoutReader = reader; break;
                default: StderrReader = reader; break;
            }
        }
        else
        {
            protocol = new PipeProtocol(this, fd);
            _pipes[fd] = MakePipeTransport(fd, parentEnd, protocol);
        }
        _pipeOpen[fd] = true;
    }

    void ConnectionMade(Future connected)
    {
        if (connected.IsDone) return;   // cancelled meanwhile: Start closes the transport
        _connected = true;
        try { _protocol.ConnectionMade(this); }
        catch (Exception e)
        {
            // The start fails with it (as a connection's does, docs/differences.md) and kills the child; a protocol
            // its caller never received gets no further callback.
            _connected = false;
            connected.SetException(e);
            return;
        }
        connected.SetResult();
        if (_exitPending) { _exitPending = false; Exited(); }
    }

    /// <summary>The handles to pass to the child (asyncio's <c>pass_fds</c>), checked before anything is made for it.</summary>
    static SafeHandle[] CheckPassed(IEnumerable<SafeHandle>? passHandles)
    {
        if (passHandles == null) return [];
        var passed = passHandles.ToArray();
        foreach (var h in passed)
        {
            ArgumentNullException.ThrowIfNull(h, nameof(passHandles));
            if (h.IsClosed) throw new ObjectDisposedException(h.GetType().Name, "A handle to pass to the child is closed.");
            if (h.IsInvalid) throw new ArgumentException("A handle to pass to the child is invalid.", nameof(passHandles));
            if (!Stdio.IsDescriptor(h))
                throw new ArgumentException($"A handle to pass to the child has the value {h.DangerousGetHandle()}, which is not a file descriptor.", nameof(passHandles));
            if (h.DangerousGetHandle() < 3)
                throw new ArgumentException($"Descriptor {h.DangerousGetHandle()} is a standard stream: give it as stdin, stdout or stderr (Stdio.From).", nameof(passHandles));
        }
        return passed;
    }

    /// <summary>
    /// Runs <paramref name="spawn"/> with the passed handles' descriptors (sorted, once each), none of which can be closed
    /// meanwhile. A descriptor that is not open (a handle that does not own it) fails here, not as an error of the spawn.
    /// </summary>
    /// <exception cref="ArgumentException">A passed descriptor is not open.</exception>
    static int SpawnWithPassed(SafeHandle[] passed, Func<int[], int> spawn)
    {
        var added = new bool[passed.Length];
        try
        {
            for (int i = 0; i < passed.Length; i++) passed[i].DangerousAddRef(ref added[i]);
            var keep = passed.Select(h => (int)h.DangerousGetHandle()).Distinct().Order().ToArray();
            foreach (int fd in keep)
                if (!SpawnNative.IsOpen(fd))
                    throw new ArgumentException($"The descriptor {fd} of a handle to pass to the child is not open.", "passHandles");
            return spawn(keep);
        }
        finally
        {
            for (int i = 0; i < passed.Length; i++)
                if (added[i]) passed[i].DangerousRelease();
        }
    }

    static string StreamName(int fd) => fd switch { 0 => "stdin", 1 => "stdout", _ => "stderr" };

    /// <summary>Returns <paramref name="s"/>, or throws if it contains a NUL character, which would cut it short (Python's "embedded null byte").</summary>
    internal static string NoNul(string s, string name) =>
        s.Contains('\0') ? throw new ArgumentException("A string given to a child process contains a NUL character.", name) : s;

    static IEnumerable<KeyValuePair<string, string>> CurrentEnvironment()
    {
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            yield return new((string)e.Key, (string?)e.Value ?? "");
    }

    // ---- pipes ----

    /// <summary>A pipe's protocol under the protocol API: forwards to the subprocess protocol with the pipe's number.</summary>
    sealed class PipeProtocol(SubprocessTransport owner, int fd) : Asyncio.Protocol
    {
        public override void DataReceived(ReadOnlySpan<byte> data) => owner._protocol.PipeDataReceived(fd, data);
        public override bool EofReceived() => false;   // a pipe cannot be half-closed
        public override void ConnectionLost(Exception? exception) => owner.PipeConnectionLost(fd, exception);
        public override void PauseWriting() => owner._protocol.PauseWriting();
        public override void ResumeWriting() => owner._protocol.ResumeWriting();
    }

    void PipeConnectionLost(int fd, Exception? exception)
    {
        if (!_pipeOpen[fd]) return;
        _pipeOpen[fd] = false;
        if (!_streams && _connected) Call(static (p, a) => p.PipeConnectionLost(a.Fd, a.Exception), (Fd: fd, Exception: exception), "PipeConnectionLost");
        MaybeCloseForStreams();
        TryFinish();
    }

    // ---- the exit ----

    /// <summary>The pidfd's readiness, or the watcher thread's post: the child has exited.</summary>
    static readonly Action<object?> s_reap = static o => ((SubprocessTransport)o!).Reap();

    void WatchExit()
    {
        // The portable reactor watches sockets only; an old kernel or a sandbox may have no pidfd.
        int fd = _loop.SupportsFileDescriptors ? SpawnNative.PidfdOpen(Pid) : -1;
        if (fd < 0)
        {
            WatchOnThread(notify: true);
            return;
        }
        _pidfd = fd;
        var source = _pidfdSource = _loop.AttachOwnedDescriptor(fd, this);
        source.Reader.Callback = s_reap;
        source.Reader.State = this;
        _loop.SetWatchActive(source.Reader, true);
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
                    loop.PostThreadsafe(s_reap, this);
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

    void Reap()
    {
        if (_returnCode != null) return;
        int? code = SpawnNative.TryReap(Pid, out bool unknown);
        if (code == null) return;   // not yet (a spurious wake-up): the watch stays
        ClosePidfd();
        if (unknown)
            _loop.CallExceptionHandler(new ExceptionContext($"Unknown child process pid {Pid}, will report returncode 255"));
        _returnCode = code;
        if (_connected) Exited();
        else
        {
            _exitPending = true;
            TryFinish();
        }
    }

    void Exited()
    {
        if (!_streams) Call(static (p, _) => p.ProcessExited(), 0, "ProcessExited");
        MaybeCloseForStreams();
        TryFinish();
    }

    /// <summary>Stops watching the pidfd and closes it (the watch leaves the reactor first: epoll knows it by number).</summary>
    void ClosePidfd()
    {
        if (_pidfd < 0) return;
        _loop.DetachSource(_pidfdSource!);
        SpawnNative.Close(_pidfd);
        _pidfd = -1;
        _pidfdSource = null;
    }

    /// <summary>asyncio's SubprocessStreamProtocol: once the child has exited and its stdout and stderr are done, close (stdin with them).</summary>
    void MaybeCloseForStreams()
    {
        if (_streams && _returnCode != null && _connected && !_pipeOpen[1] && !_pipeOpen[2]) Close();
    }

    void TryFinish()
    {
        if (_finished || _returnCode == null || _pipeOpen[0] || _pipeOpen[1] || _pipeOpen[2]) return;
        if (!_connected)
        {
            // A start that failed or was cancelled (Start closed the transport): nobody to tell, only to forget it.
            if (!_closed) return;
            _finished = true;
            _loop.Subprocesses.Remove(this);
            return;
        }
        _finished = true;
        _loop.Subprocesses.Remove(this);
        if (!_streams) Call(static (p, _) => p.ConnectionLost(null), 0, "ConnectionLost");
        var waiters = _waiters;
        _waiters = null;
        if (waiters == null) return;
        foreach (var f in waiters)
            if (!f.IsDone) f.SetResult(_returnCode.Value);
    }

    /// <summary>Calls the protocol, reporting what it throws to the loop's exception handler (asyncio's loop calls them as callbacks).</summary>
    void Call<TArg>(Action<SubprocessProtocol, TArg> call, TArg arg, string name)
    {
        try { call(_protocol, arg); }
        catch (Exception e)
        {
            _loop.CallExceptionHandler(new ExceptionContext($"protocol.{name}() failed ({this})", e));
        }
    }

    /// <summary>
    /// The loop is closing with this child not reaped: with a pidfd, a thread now waits to reap it; with a
    /// watcher thread, that thread reaps it itself once its post to the closed loop fails.
    /// </summary>
    internal void LoopClosing()
    {
        _abandoned = true;
        foreach (var p in _pipes) (p as PipeTransportBase)?.LoopClosing();   // their ConnectionLost will never run
        if (_pidfd < 0) return;
        ClosePidfd();
        if (_returnCode == null) WatchOnThread(notify: false);
    }

    /// <summary>The loop closed with the exit's callback (the watcher thread's post, or the pidfd's readiness) not run: reap now.</summary>
    void IDroppedOnClose.LoopClosed()
    {
        if (_returnCode == null && SpawnNative.TryReap(Pid, out _) is { } code) _returnCode = code;
    }

    // ---- waiting, signals, closing ----

    /// <summary>
    /// asyncio's <c>_wait()</c>: the return code at once if it is known; else once the child has exited and every
    /// pipe is closed (the waiters wake with ConnectionLost, as asyncio's in <c>_call_connection_lost</c>).
    /// </summary>
    internal Task<int> Wait()
    {
        if (_returnCode is { } code) return Task.FromResult(code);
        var f = _loop.CreateFuture<int>();
        (_waiters ??= new()).Add(f);
        return AwaitExit(f);
    }

    async Task<int> AwaitExit(Future<int> f)
    {
        try { return await f; }
        finally { _waiters?.Remove(f); }
    }

    public void SendSignal(int signal)
    {
        _loop.CheckThread(nameof(ISubprocessTransport), nameof(SendSignal));
        if (signal <= 0) throw new ArgumentOutOfRangeException(nameof(signal), signal, "A signal number is positive.");
        if (_returnCode != null) return;
        CheckNotAbandoned();
        SpawnNative.Kill(Pid, signal);
    }

    public void Terminate() => SendSignal(15);

    public void Kill() => SendSignal(9);

    /// <summary>Closes every pipe and kills the child if it is still running; asyncio's <c>close()</c>.</summary>
    public void Close()
    {
        _loop.CheckThread(nameof(ISubprocessTransport), nameof(Close));
        if (_closed) return;
        _closed = true;
        foreach (var p in _pipes) p?.Close();
        if (_returnCode == null && !_abandoned) SpawnNative.Kill(Pid, 9);
    }

    /// <summary>Once the loop has closed, a helper thread reaps the child at any time: its pid may then be another process's.</summary>
    void CheckNotAbandoned()
    {
        if (_abandoned) throw new InvalidOperationException($"The loop of child process {Pid} is closed: it is no longer watched, and its pid may belong to another process.");
    }

    public override string ToString() => $"<SubprocessTransport pid={Pid} {(_returnCode is { } c ? $"returncode={c}" : "running")}>";
}
