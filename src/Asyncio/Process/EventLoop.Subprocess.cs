using System.Runtime.InteropServices;

namespace Asyncio;

public sealed partial class EventLoop
{
    HashSet<SubprocessTransport>? _subprocesses;

    /// <summary>The children of this loop that have not finished (SubprocessTransport.cs).</summary>
    internal HashSet<SubprocessTransport> Subprocesses => _subprocesses ??= new();

    /// <summary>Hands the children still running to helper threads that reap them (called by <see cref="Close"/>).</summary>
    void CloseSubprocesses()
    {
        if (_subprocesses == null) return;
        foreach (var p in _subprocesses) p.LoopClosing();
        _subprocesses.Clear();
    }

    /// <summary>
    /// Starts <paramref name="program"/> with <paramref name="args"/> as a child process whose pipes report to a
    /// protocol; asyncio's <c>loop.subprocess_exec</c>. Every standard stream is a pipe unless told otherwise, as in
    /// asyncio. Most programs use the stream form, <see cref="Aio.CreateSubprocessExec"/>. Linux only. Loop thread only.
    /// </summary>
    /// <param name="protocolFactory">Makes the protocol.</param>
    /// <param name="program">The program to run (its <c>argv[0]</c>), searched in the child's <c>PATH</c> unless it contains a slash, as
    /// <see cref="Aio.CreateSubprocessExec"/> searches it (relative entries and paths in <paramref name="cwd"/>).</param>
    /// <param name="args">Its arguments, passed as they are.</param>
    /// <param name="stdin">The child's standard input (default <see cref="Stdio.Pipe"/>: <c>GetPipeTransport(0)</c>); <see cref="Stdio.Inherit"/>,
    /// <see cref="Stdio.DevNull"/> or a file, pipe or socket of the caller's (<see cref="Stdio.From(System.Runtime.InteropServices.SafeHandle)"/>) otherwise.</param>
    /// <param name="stdout">The child's standard output (default <see cref="Stdio.Pipe"/>: <see cref="SubprocessProtocol.PipeDataReceived"/> with fd 1).</param>
    /// <param name="stderr">The child's standard error (default <see cref="Stdio.Pipe"/>; <see cref="Stdio.Stdout"/> merges it into stdout).</param>
    /// <param name="cwd">The child's working directory.</param>
    /// <param name="env">The child's whole environment (default: this process's).</param>
    /// <param name="startNewSession">Run the child in a new session (setsid).</param>
    /// <param name="passHandles">Handles that stay open in the child under their numbers (asyncio's <c>pass_fds</c>); every other
    /// descriptor above the standard streams is closed in the child (its <c>close_fds</c>).</param>
    /// <param name="processGroup">The child's process group (asyncio's <c>process_group</c>): 0 for a new one that the child leads;
    /// not with <paramref name="startNewSession"/>.</param>
    /// <returns>The transport and the protocol, once the protocol's <see cref="BaseProtocol.ConnectionMade"/> has returned.
    /// If it throws, or the call is cancelled, the child is killed.</returns>
    /// <exception cref="FileNotFoundException">The program was not found.</exception>
    /// <exception cref="UnauthorizedAccessException">The program may not be executed.</exception>
    /// <exception cref="PlatformNotSupportedException">Not on Linux.</exception>
    public async Task<(ISubprocessTransport Transport, TProtocol Protocol)> SubprocessExec<TProtocol>(Func<TProtocol> protocolFactory,
        string program, IEnumerable<string>? args = null, Stdio stdin = default, Stdio stdout = default, Stdio stderr = default,
        string? cwd = null, IReadOnlyDictionary<string, string>? env = null, bool startNewSession = false,
        IEnumerable<SafeHandle>? passHandles = null, int? processGroup = null)
        where TProtocol : SubprocessProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        var argv = Argv(program, args);
        var protocol = protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
        var t = await SubprocessTransport.Start(this, nameof(SubprocessExec), argv,
            stdin.Or(Stdio.Pipe), stdout.Or(Stdio.Pipe), stderr.Or(Stdio.Pipe), cwd, env, startNewSession, processGroup, passHandles,
            protocol, streams: false, limit: AsyncStreamReader.DefaultLimit);
        return (t, protocol);
    }

    /// <summary>
    /// Runs <paramref name="command"/> with <c>/bin/sh -c</c> as a child process whose pipes report to a protocol;
    /// asyncio's <c>loop.subprocess_shell</c>. The other arguments are those of
    /// <see cref="SubprocessExec{TProtocol}(Func{TProtocol}, string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, bool, IEnumerable{SafeHandle}?, int?)"/>.
    /// </summary>
    /// <param name="protocolFactory">Makes the protocol.</param>
    /// <param name="command">The shell command line.</param>
    /// <param name="stdin">The child's standard input.</param>
    /// <param name="stdout">The child's standard output.</param>
    /// <param name="stderr">The child's standard error.</param>
    /// <param name="cwd">The child's working directory.</param>
    /// <param name="env">The child's whole environment.</param>
    /// <param name="startNewSession">Run the child in a new session (setsid).</param>
    /// <param name="passHandles">Handles that stay open in the child under their numbers (asyncio's <c>pass_fds</c>).</param>
    /// <param name="processGroup">The child's process group (asyncio's <c>process_group</c>): 0 for a new one that the child leads.</param>
    public Task<(ISubprocessTransport Transport, TProtocol Protocol)> SubprocessShell<TProtocol>(Func<TProtocol> protocolFactory,
        string command, Stdio stdin = default, Stdio stdout = default, Stdio stderr = default,
        string? cwd = null, IReadOnlyDictionary<string, string>? env = null, bool startNewSession = false,
        IEnumerable<SafeHandle>? passHandles = null, int? processGroup = null)
        where TProtocol : SubprocessProtocol
    {
        ArgumentNullException.ThrowIfNull(command);
        return SubprocessExec(protocolFactory, "/bin/sh", ["-c", command], stdin, stdout, stderr, cwd, env, startNewSession, passHandles, processGroup);
    }

    /// <summary>The argument vector of a child: the program, then the arguments, each checked.</summary>
    internal static List<string> Argv(string program, IEnumerable<string>? args)
    {
        ArgumentException.ThrowIfNullOrEmpty(program);
        var argv = new List<string> { SubprocessTransport.NoNul(program, nameof(program)) };
        if (args != null)
        {
            foreach (var a in args)
            {
                ArgumentNullException.ThrowIfNull(a, nameof(args));
                argv.Add(SubprocessTransport.NoNul(a, nameof(args)));
            }
        }
        return argv;
    }
}
