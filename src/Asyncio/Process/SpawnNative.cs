using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;

namespace Asyncio;

// Starting a child process and learning how it ended, straight on libc (Linux).
//
// Spawning: posix_spawn of the program, looked up in the child's PATH as Python's subprocess does (Candidates and
// Spawn: each entry joined with the program and tried in turn, a relative one in the child's working directory;
// libc's posix_spawnp would search libc's environ, which is neither the child's nor .NET's), with
// file actions that put each standard stream in place (one end of a pipe or socket pair, /dev/null, the parent's own,
// a copy of a descriptor the caller gave, or stderr onto stdout) and attributes that give the child default signal dispositions and an empty signal
// mask. The .NET runtime ignores SIGPIPE; exec keeps an ignored signal
// ignored, so without SETSIGDEF a child such as `yes | head` would never die of a broken pipe (Python's
// subprocess resets it too). Every descriptor .NET opens is close-on-exec, and so are the pipes and socket pairs made
// here, and the file actions close every other descriptor above 2 that is not close-on-exec (inherited by this
// process, or made inheritable), as Python's close_fds does: the child gets its three streams, the descriptors the
// caller passes (pass_fds), and nothing else.
//
// The exit: waitpid on the loop's thread, after a pidfd (pidfd_open, Linux 5.3) became readable in the
// reactor, or after a helper thread saw the exit with waitid(WNOWAIT), which leaves the child unreaped. Either
// way the child is reaped on the loop's thread, so a signal sent from the loop never reaches a recycled pid.
//
// Status words: the layout every Linux libc uses (low 7 bits the terminating signal, 0 for a normal exit whose
// code is in bits 8-15).

internal static unsafe partial class SpawnNative
{
    /// <summary>Whether subprocesses are supported here.</summary>
    public static bool Supported => OperatingSystem.IsLinux();

    const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;
    const int O_RDWR = 2;
    const short POSIX_SPAWN_SETPGROUP = 0x02, POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSIGMASK = 0x08, POSIX_SPAWN_SETSID = 0x80;
    const int WNOHANG = 1, WEXITED = 4, WNOWAIT = 0x01000000, P_PID = 1;
    const int ENOENT = 2, EINTR = 4, EACCES = 13, ENOTDIR = 20, X_OK = 1;
    const long SYS_pidfd_open = 434;   // the same number on every Linux architecture (new system calls share one table)

    /// <summary>A connected pair of Unix stream sockets, both close-on-exec.</summary>
    public static (int Parent, int Child) SocketPair()
    {
        int* fds = stackalloc int[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw Error(Marshal.GetLastPInvokeError(), "socketpair");
        return (fds[0], fds[1]);
    }

    /// <summary>
    /// A pipe, both ends close-on-exec, with the parent's end non-blocking: <paramref name="parentReads"/> says which
    /// end is the parent's (the read end for the child's stdout and stderr, the write end for its stdin).
    /// </summary>
    public static (int Parent, int Child) Pipe(bool parentReads)
    {
        int* fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw Error(Marshal.GetLastPInvokeError(), "pipe2");
        int parent = parentReads ? fds[0] : fds[1], child = parentReads ? fds[1] : fds[0];
        if (SetNonBlocking(parent, true) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            close(parent);
            close(child);
            throw Error(errno, "fcntl");
        }
        return (parent, child);
    }

    /// <summary>The open file's status flags (<c>F_GETFL</c>), or -1 with the error in the last P/Invoke error.</summary>
    public static int StatusFlags(int fd) => fcntl(fd, F_GETFL, 0);

    /// <summary>
    /// Sets or clears <see cref="O_NONBLOCK"/> on the open file, changing no other flag. Returns the flags as they
    /// were, or -1 with the error in the last P/Invoke error.
    /// </summary>
    public static int SetNonBlocking(int fd, bool on)
    {
        int flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0) return -1;
        int wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        return wanted == flags || fcntl(fd, F_SETFL, wanted) == 0 ? flags : -1;
    }

    public const int O_NONBLOCK = 0x800;
    const int O_CLOEXEC = 0x80000, F_GETFD = 1, F_GETFL = 3, F_SETFL = 4, F_DUPFD_CLOEXEC = 1030, EBADF = 9;

    /// <summary>A close-on-exec copy of <paramref name="fd"/> numbered 3 or above (a child's stream given by the caller, Stdio.cs).</summary>
    /// <exception cref="ArgumentException"><paramref name="fd"/> is not an open descriptor.</exception>
    public static int Duplicate(int fd, string paramName)
    {
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy >= 0) return copy;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == EBADF) throw new ArgumentException($"The descriptor {fd} given for the child's {paramName} is not open.", paramName);
        throw Error(errno, "fcntl");
    }

    /// <summary>Whether <paramref name="fd"/> is an open descriptor of this process (<c>F_GETFD</c> succeeds).</summary>
    public static bool IsOpen(int fd) => fcntl(fd, F_GETFD, 0) >= 0;

    /// <summary>What a child's standard stream is given: -1 to inherit the parent's, -2 for /dev/null, -3 for the child's stdout, else a descriptor to duplicate.</summary>
    public const int Inherit = -1, DevNull = -2, ToStdout = -3;

    /// <summary>
    /// Starts the first of the paths to try for <paramref name="program"/> in <paramref name="path"/> (the child's PATH;
    /// <see cref="Candidates"/>) that the child can execute, with <paramref name="argv"/> and the given standard
    /// streams; returns its pid. The strings contain no NUL (the caller checks). A <paramref name="processGroup"/>
    /// of 0 or more puts the child in that process group (0: a new one, led by the child); -1 leaves it in ours. The descriptors in
    /// <paramref name="keep"/> (above 2, sorted, without repeats) stay open in the child under their numbers (asyncio's
    /// <c>pass_fds</c>); every other one above 2 is closed (its <c>close_fds</c>).
    /// </summary>
    /// <remarks>
    /// Python's child (<c>_posixsubprocess</c>) calls <c>execve</c> on each candidate in turn after its <c>chdir</c>:
    /// the first that succeeds runs; if none does, the error is the first that is not <c>ENOENT</c> or
    /// <c>ENOTDIR</c>, else the last. Here each candidate is given to <c>posix_spawn</c> as it is, so that a relative
    /// one resolves in the child's working directory, in the same order with the same errors. A candidate that
    /// <c>access(X_OK)</c>, checked here against <paramref name="cwd"/>, says cannot run (missing, not executable,
    /// a directory) is not spawned, only counted with the error <c>execve</c> would give; one that passes is spawned,
    /// and whatever <c>execve</c> says then (a bad format, a missing interpreter) counts the same way.
    /// </remarks>
    /// <exception cref="FileNotFoundException">The program was not found.</exception>
    /// <exception cref="DirectoryNotFoundException">A part of the program's path is not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">The program or the working directory may not be used.</exception>
    /// <exception cref="Win32Exception">Another error of the spawn.</exception>
    public static int Spawn(string program, string path, IReadOnlyList<string> argv,
        IEnumerable<KeyValuePair<string, string>> env, string? cwd, int stdin, int stdout, int stderr, bool newSession, int processGroup, int[] keep)
    {
        // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336; room for any libc's.
        const int OpaqueSize = 1024, SigSetSize = 128;
        byte* actions = (byte*)NativeMemory.AllocZeroed(OpaqueSize);
        byte* attr = (byte*)NativeMemory.AllocZeroed(OpaqueSize);
        byte* sigs = stackalloc byte[SigSetSize];
        var strings = new List<nint>();
        try
        {
            Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(posix_spawnattr_init(attr), "posix_spawnattr_init");
            AddStream(actions, stdin, 0, strings);
            AddStream(actions, stdout, 1, strings);
            AddStream(actions, stderr, 2, strings);
            KeepOnly(actions, keep);
            if (cwd != null) Check(posix_spawn_file_actions_addchdir_np(actions, Utf8(cwd, strings)), "posix_spawn_file_actions_addchdir_np");

            short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
            if (newSession) flags |= POSIX_SPAWN_SETSID;
            if (processGroup >= 0)
            {
                flags |= POSIX_SPAWN_SETPGROUP;
                Check(posix_spawnattr_setpgroup(attr, processGroup), "posix_spawnattr_setpgroup");
            }
            Check(posix_spawnattr_setflags(attr, flags), "posix_spawnattr_setflags");
            sigemptyset(sigs);
            Check(posix_spawnattr_setsigmask(attr, sigs), "posix_spawnattr_setsigmask");
            for (int sig = 1; sig < 32; sig++)
                if (sig is not (9 or 19)) sigaddset(sigs, sig);   // every standard signal but SIGKILL and SIGSTOP
            Check(posix_spawnattr_setsigdefault(attr, sigs), "posix_spawnattr_setsigdefault");

            byte** argvp = Pointers(argv.Count + 1, strings);
            for (int i = 0; i < argv.Count; i++) argvp[i] = Utf8(argv[i], strings);
            var envList = new List<nint>();
            foreach (var (k, v) in env) envList.Add((nint)Utf8(k + "=" + v, strings));
            byte** envp = Pointers(envList.Count + 1, strings);
            for (int i = 0; i < envList.Count; i++) envp[i] = (byte*)envList[i];

            int firstError = 0, lastError = ENOENT;
            foreach (var candidate in Candidates(program, path))
            {
                int err = Probe(candidate, cwd);
                if (err == 0)
                {
                    int pid;
                    err = posix_spawn(&pid, Utf8(candidate, strings), actions, attr, argvp, envp);
                    if (err == 0) return pid;
                    // setpgid fails with EPERM for a group of another session and ESRCH for none: the caller's number, not the program.
                    if (processGroup > 0 && err is 1 or 3)
                        throw new ArgumentException($"Cannot put the child in process group {processGroup}: {new Win32Exception(err).Message}.", nameof(processGroup));
                }
                if (err is not (ENOENT or ENOTDIR) && firstError == 0) firstError = err;
                lastError = err;
            }
            throw SpawnError(firstError != 0 ? firstError : lastError, program, path, cwd);
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
            foreach (var p in strings) NativeMemory.Free((void*)p);
        }
    }

    /// <summary>
    /// The paths to try, in order, for <paramref name="program"/>: itself if it contains a slash, else each entry of
    /// <paramref name="path"/> (colon-separated) joined with it, an empty entry giving the name alone, as Python's
    /// subprocess builds its list from <c>os.get_exec_path(env)</c>. <paramref name="path"/> is the child's PATH. A
    /// relative path is the child's to resolve, in its working directory.
    /// </summary>
    static string[] Candidates(string program, string path) =>
        program.Contains('/') ? [program] : Array.ConvertAll(path.Split(':'), dir => dir.Length == 0 ? program : Path.Join(dir, program));

    /// <summary>
    /// What <c>execve</c> of <paramref name="candidate"/> in the working directory <paramref name="cwd"/> (this
    /// process's if null) would fail with, as far as can be told here (0: try it): <c>access(X_OK)</c>'s error, or
    /// <c>EACCES</c> for a directory, which <c>access</c> lets pass.
    /// </summary>
    static int Probe(string candidate, string? cwd)
    {
        // A relative cwd is relative to this process's directory, as the child's chdir takes it; Path.Combine keeps an absolute candidate.
        string here = cwd == null ? candidate : Path.Combine(cwd, candidate);
        if (access(here, X_OK) != 0) return Marshal.GetLastPInvokeError();
        return Directory.Exists(here) ? EACCES : 0;
    }

    /// <summary>The search path when the child's environment has no PATH (Python's <c>os.defpath</c>).</summary>
    public const string DefaultPath = "/bin:/usr/bin";

    static void AddStream(byte* actions, int source, int target, List<nint> strings)
    {
        switch (source)
        {
            case Inherit: return;
            case DevNull:
                Check(posix_spawn_file_actions_addopen(actions, target, Utf8("/dev/null", strings), O_RDWR, 0), "posix_spawn_file_actions_addopen");
                return;
            case ToStdout:
                Check(posix_spawn_file_actions_adddup2(actions, 1, target), "posix_spawn_file_actions_adddup2");
                return;
            default:
                Check(posix_spawn_file_actions_adddup2(actions, source, target), "posix_spawn_file_actions_adddup2");
                return;
        }
    }

    /// <summary>
    /// Closes in the child every descriptor above 2 but <paramref name="keep"/>, after the standard streams are in place.
    /// A kept descriptor is duplicated onto itself, which clears its close-on-exec flag in the child (POSIX.1-2024; glibc
    /// since 2.29, musl). Above the highest kept one, <c>posix_spawn_file_actions_addclosefrom_np</c> (glibc 2.34) closes
    /// everything; below it, and where that call is missing, the descriptors open here now are closed one by one (the
    /// child's close of one that is closed meanwhile fails with EBADF, which libc ignores).
    /// </summary>
    static void KeepOnly(byte* actions, int[] keep)
    {
        foreach (int fd in keep) Check(posix_spawn_file_actions_adddup2(actions, fd, fd), "posix_spawn_file_actions_adddup2");
        int from = keep.Length > 0 ? keep[^1] + 1 : 3;
        bool closesFrom = false;
        if (!NoCloseFrom && !CloseOneByOne)
        {
            try { closesFrom = posix_spawn_file_actions_addclosefrom_np(actions, from) == 0; }
            catch (EntryPointNotFoundException) { NoCloseFrom = true; }
        }
        if (closesFrom && from == 3) return;
        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), out int fd) && fd >= 3 && (fd < from || !closesFrom) && Array.BinarySearch(keep, fd) < 0)
                Check(posix_spawn_file_actions_addclose(actions, fd), "posix_spawn_file_actions_addclose");
        }
    }

    /// <summary>Whether this libc lacks <c>posix_spawn_file_actions_addclosefrom_np</c> (glibc before 2.34, musl), found on first use.</summary>
    internal static bool NoCloseFrom;

    /// <summary>
    /// Tests: spawns on this thread (a loop's) close the descriptors one by one, as without <c>addclosefrom_np</c>.
    /// Per thread, so that tests running in parallel neither see it nor can leave it set for the rest of the run.
    /// </summary>
    [ThreadStatic] internal static bool CloseOneByOne;

    /// <summary>A null-filled array of <paramref name="count"/> pointers (argv and envp end with a null one), freed with the strings.</summary>
    static byte** Pointers(int count, List<nint> owned)
    {
        byte** p = (byte**)NativeMemory.AllocZeroed((nuint)count, (nuint)sizeof(byte*));
        owned.Add((nint)p);
        return p;
    }

    static byte* Utf8(string s, List<nint> owned)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        owned.Add((nint)p);
        fixed (char* c = s) Encoding.UTF8.GetBytes(c, s.Length, p, n);
        p[n] = 0;
        return p;
    }

    static void Check(int err, string call)
    {
        if (err != 0) throw Error(err, call);
    }

    /// <summary>
    /// The exception for <paramref name="err"/>, the error of starting <paramref name="program"/> (searched in
    /// <paramref name="path"/> unless it has a slash), as .NET maps these errors for files (Python's
    /// <c>FileNotFoundError</c>, <c>NotADirectoryError</c>, <c>PermissionError</c>, <c>OSError</c>).
    /// </summary>
    static Exception SpawnError(int err, string program, string path, string? cwd)
    {
        string where = (program.Contains('/') ? "" : $" (searched in PATH '{path}')") + (cwd != null ? $" (working directory '{cwd}')" : "");
        return err switch
        {
            ENOENT => new FileNotFoundException($"No such file or directory: '{program}'{where}", program),
            ENOTDIR => new DirectoryNotFoundException($"Not a directory: a part of the path of '{program}'{where}"),
            EACCES => new UnauthorizedAccessException($"Permission denied: '{program}'{where}"),
            _ => new Win32Exception(err, $"Cannot start '{program}': {new Win32Exception(err).Message}{where}"),
        };
    }

    static Win32Exception Error(int err, string call) => new(err, $"{call} failed: {new Win32Exception(err).Message}");

    /// <summary>A pidfd for <paramref name="pid"/>, or -1 where the kernel has none (before Linux 5.3, or a sandbox that forbids it).</summary>
    public static int PidfdOpen(int pid)
    {
        nint fd = syscall((nint)SYS_pidfd_open, pid, 0);
        return fd >= 0 ? (int)fd : -1;
    }

    public static void Close(int fd) => close(fd);

    /// <summary>
    /// Reaps <paramref name="pid"/> if it has ended: its return code as asyncio gives it (the exit code, or minus
    /// the signal that ended it), 255 if it was reaped elsewhere (asyncio's answer too), or null if still running.
    /// </summary>
    public static int? TryReap(int pid, out bool unknown)
    {
        unknown = false;
        int status;
        while (true)
        {
            int r = waitpid(pid, &status, WNOHANG);
            if (r == pid) return Decode(status);
            if (r == 0) return null;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR) continue;
            unknown = true;   // ECHILD: someone else reaped it
            return 255;
        }
    }

    static int Decode(int status)
    {
        int sig = status & 0x7f;
        return sig == 0 ? (status >> 8) & 0xff : -sig;
    }

    /// <summary>Blocks until <paramref name="pid"/> has ended, without reaping it (waitid with WNOWAIT).</summary>
    public static void WaitExitedNoReap(int pid)
    {
        byte* info = stackalloc byte[128];   // siginfo_t
        while (waitid(P_PID, pid, info, WEXITED | WNOWAIT) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR) return;   // ECHILD: nothing to wait for; TryReap will say so
        }
    }

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>.</summary>
    public static void Kill(int pid, int signal)
    {
        if (kill(pid, signal) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == 3) return;   // ESRCH: not ours any more (the callers send only to a child not reaped, which a zombie still is)
            throw Error(errno, "kill");
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socketpair(int domain, int type, int protocol, int* fds);
    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(byte* actions);
    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(byte* actions);
    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(byte* actions, int fd, int newfd);
    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_addopen(byte* actions, int fd, byte* path, int oflag, int mode);
    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_addchdir_np(byte* actions, byte* path);
    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_addclose(byte* actions, int fd);
    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_addclosefrom_np(byte* actions, int from);
    [LibraryImport("libc")]
    private static partial int posix_spawnattr_init(byte* attr);
    [LibraryImport("libc")]
    private static partial int posix_spawnattr_destroy(byte* attr);
    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setflags(byte* attr, short flags);
    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setpgroup(byte* attr, int pgroup);
    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigmask(byte* attr, byte* sigset);
    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigdefault(byte* attr, byte* sigset);
    [LibraryImport("libc")]
    private static partial int sigemptyset(byte* set);
    [LibraryImport("libc")]
    private static partial int sigaddset(byte* set, int signum);
    [LibraryImport("libc")]
    private static partial int posix_spawn(int* pid, byte* path, byte* actions, byte* attr, byte** argv, byte** envp);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access(string path, int mode);
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint syscall(nint number, nint pid, nint flags);   // variadic in C: every argument a long
    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, int* status, int options);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitid(int idtype, int id, byte* info, int options);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int pipe2(int* fds, int flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);   // variadic in C; its int argument is passed as an int
}
