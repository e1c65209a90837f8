using System.Runtime.InteropServices;

namespace Asyncio;

public static partial class Aio
{
    /// <summary>
    /// Starts <paramref name="program"/> with <paramref name="args"/> as a child process; asyncio's
    /// <c>create_subprocess_exec</c>. The program is searched in the child's <c>PATH</c> (that of <paramref name="env"/>,
    /// else this process's) unless it contains a slash, and receives the arguments as they are (no shell, no
    /// quoting). As in Python, each entry is tried in turn and the first that starts runs; a relative entry, an empty
    /// one (the current directory) and a relative program path name a place in the child's working directory
    /// (<paramref name="cwd"/>). Linux only.
    /// </summary>
    /// <param name="program">The program to run (its <c>argv[0]</c>).</param>
    /// <param name="args">Its arguments.</param>
    /// <param name="stdin">The child's standard input: the parent's (default), a pipe (<see cref="Subprocess.Stdin"/>), the null device,
    /// or a file, pipe or socket of the caller's (<see cref="Stdio.From(System.Runtime.InteropServices.SafeHandle)"/>).</param>
    /// <param name="stdout">The child's standard output: as <paramref name="stdin"/> (the pipe is <see cref="Subprocess.Stdout"/>).</param>
    /// <param name="stderr">The child's standard error: as <paramref name="stdout"/>, or <see cref="Stdio.Stdout"/> to merge it into stdout.</param>
    /// <param name="cwd">The child's working directory (default: this process's).</param>
    /// <param name="env">The child's whole environment (default: this process's, as <see cref="Environment.GetEnvironmentVariables()"/> gives it).</param>
    /// <param name="limit">The line limit of the stdout and stderr readers (default 64 KiB).</param>
    /// <param name="startNewSession">Run the child in a new session (setsid), so that signals to this process's group do not reach it.</param>
    /// <param name="passHandles">Open files, pipe ends or sockets that stay open in the child under their numbers (asyncio's
    /// <c>pass_fds</c>; the number is <c>(int)handle.DangerousGetHandle()</c>, or a pipe's <c>GetClientHandleAsString()</c>, to tell
    /// the child). Every other descriptor above the standard streams is closed in the child, inheritable ones too (asyncio's
    /// <c>close_fds</c>). The handles stay the caller's.</param>
    /// <param name="processGroup">The child's process group (asyncio's <c>process_group</c>, Linux's <c>setpgid</c>): 0 for a new
    /// group that the child leads, so that <c>kill(-pid, signal)</c> reaches it and its own children; another number joins that
    /// group. Default: this process's group. Not with <paramref name="startNewSession"/>, which makes a new group already.</param>
    /// <exception cref="FileNotFoundException">The program was not found.</exception>
    /// <exception cref="DirectoryNotFoundException"><paramref name="cwd"/> does not exist, or a part of the program's path is not
    /// a directory (Python's <c>NotADirectoryError</c>).</exception>
    /// <exception cref="UnauthorizedAccessException">The program may not be executed (not executable, or a directory); Python's
    /// <c>PermissionError</c>.</exception>
    /// <exception cref="System.ComponentModel.Win32Exception">Another error of the start, such as a file that is not a program
    /// (<c>ENOEXEC</c>); Python's <c>OSError</c>.</exception>
    /// <exception cref="ArgumentException"><see cref="Stdio.Stdout"/> given for stdin or stdout, a descriptor given that is not
    /// open, a handle to pass that is invalid, not open, not a file descriptor or a standard stream (0-2), an empty program name, a NUL character in a string, or an environment variable name that is empty or contains '='.</exception>
    /// <exception cref="ObjectDisposedException">A handle given for a stream or to pass is closed.</exception>
    /// <exception cref="PlatformNotSupportedException">Not on Linux.</exception>
    public static Task<Subprocess> CreateSubprocessExec(string program, IEnumerable<string>? args = null,
        Stdio stdin = default, Stdio stdout = default, Stdio stderr = default,
        string? cwd = null, IReadOnlyDictionary<string, string>? env = null, int limit = AsyncStreamReader.DefaultLimit,
        bool startNewSession = false, IEnumerable<SafeHandle>? passHandles = null, int? processGroup = null) =>
        Subprocess.Start(EventLoop.GetRunningLoop(), EventLoop.Argv(program, args),
            stdin.Or(Stdio.Inherit), stdout.Or(Stdio.Inherit), stderr.Or(Stdio.Inherit), cwd, env, limit, startNewSession, processGroup, passHandles);

    /// <summary>
    /// Runs <paramref name="command"/> with the shell (<c>/bin/sh -c</c>) as a child process; asyncio's
    /// <c>create_subprocess_shell</c>. The caller quotes what the shell must not interpret. Linux only. The
    /// other arguments are those of <see cref="CreateSubprocessExec(string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, int, bool, IEnumerable{SafeHandle}?, int?)"/>.
    /// </summary>
    /// <param name="command">The shell command line.</param>
    /// <param name="stdin">The child's standard input.</param>
    /// <param name="stdout">The child's standard output.</param>
    /// <param name="stderr">The child's standard error (<see cref="Stdio.Stdout"/> merges it into stdout).</param>
    /// <param name="cwd">The child's working directory.</param>
    /// <param name="env">The child's whole environment.</param>
    /// <param name="limit">The line limit of the stdout and stderr readers.</param>
    /// <param name="startNewSession">Run the child in a new session (setsid).</param>
    /// <param name="passHandles">Handles that stay open in the child under their numbers (asyncio's <c>pass_fds</c>).</param>
    /// <param name="processGroup">The child's process group (asyncio's <c>process_group</c>): 0 for a new one that the child leads.</param>
    public static Task<Subprocess> CreateSubprocessShell(string command,
        Stdio stdin = default, Stdio stdout = default, Stdio stderr = default,
        string? cwd = null, IReadOnlyDictionary<string, string>? env = null, int limit = AsyncStreamReader.DefaultLimit,
        bool startNewSession = false, IEnumerable<SafeHandle>? passHandles = null, int? processGroup = null)
    {
        ArgumentNullException.ThrowIfNull(command);
        return CreateSubprocessExec("/bin/sh", ["-c", command], stdin, stdout, stderr, cwd, env, limit, startNewSession, passHandles, processGroup);
    }
}
