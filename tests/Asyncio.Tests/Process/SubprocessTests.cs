using System.Text;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Processes;

/// <summary>
/// asyncio's subprocesses (create_subprocess_exec/shell, Process), on each reactor: the epoll one watches the
/// exit through a pidfd, the portable one through a helper thread. Children are standard programs of every
/// Linux system (sh, cat, echo, env, pwd, sleep); every body is bounded by <see cref="NetTest.Bound"/>.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public abstract class SubprocessTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    static string S(byte[]? b) => b == null ? "<null>" : Encoding.UTF8.GetString(b);

    /// <summary>A shell command whose stdout is a pipe unless told otherwise.</summary>
    static Task<Subprocess> Sh(string command, Stdio stdin = default, Stdio stdout = default, Stdio stderr = default, int? processGroup = null) =>
        Aio.CreateSubprocessExec("sh", ["-c", command], stdin, stdout == default ? Stdio.Pipe : stdout, stderr, processGroup: processGroup);

    [Fact]
    public void CreateSubprocessExec_StdoutPipe_CommunicateReturnsOutputAndZero()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("echo", ["hello", "world"], stdout: Stdio.Pipe);
            Assert.True(p.Pid > 0);
            Assert.Null(p.Stdin);
            Assert.Null(p.Stderr);
            var (o, e) = await p.Communicate();
            Assert.Equal("hello world\n", S(o));
            Assert.Null(e);
            Assert.Equal(0, p.ReturnCode);
        });
    }

    [Fact]
    public void Args_ArePassedAsTheyAre_NoShellInterpretation()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("echo", ["$HOME", "a  b", "'q'"], stdout: Stdio.Pipe);
            var (o, _) = await p.Communicate();
            Assert.Equal("$HOME a  b 'q'\n", S(o));
        });
    }

    [Fact]
    public void ReturnCode_IsTheExitCode_AndNullWhileRunning()
    {
        Run(async () =>
        {
            var p = await Sh("read line; exit 3", stdin: Stdio.Pipe, stdout: Stdio.Inherit);
            Assert.Null(p.ReturnCode);
            p.Stdin!.Write("go\n"u8);
            Assert.Equal(3, await p.Wait());
            Assert.Equal(3, p.ReturnCode);
            Assert.Equal(3, await p.Wait());   // again, at once
        });
    }

    [Theory]
    [InlineData(true, -9)]     // Kill: SIGKILL
    [InlineData(false, -15)]   // Terminate: SIGTERM
    public void KillAndTerminate_ReturnCodeIsMinusTheSignal(bool kill, int expected)
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("sleep", ["30"]);
            if (kill) p.Kill(); else p.Terminate();
            Assert.Equal(expected, await p.Wait());
        });
    }

    [Fact]
    public void SendSignal_DeliversTheSignal_TheChildsTrapRuns()
    {
        Run(async () =>
        {
            // The child says it is ready once its trap is set, so the signal cannot come before it.
            var p = await Sh("trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done");
            Assert.Equal("ready\n", S(await p.Stdout!.ReadLine()));
            p.SendSignal(10);   // SIGUSR1
            Assert.Equal("got-usr1\n", S(await p.Stdout.ReadLine()));
            Assert.Equal(7, await p.Wait());
        });
    }

    [Fact]
    public void SendSignal_AfterTheExit_DoesNothing()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("true");
            Assert.Equal(0, await p.Wait());
            p.Kill();
            p.SendSignal(15);
            Assert.Equal(0, p.ReturnCode);
            Assert.Throws<ArgumentOutOfRangeException>(() => p.SendSignal(0));
        });
    }

    [Fact]
    public void Child_GetsDefaultSignalDispositions_SigpipeIsNotIgnored()
    {
        // The .NET runtime ignores SIGPIPE, and exec keeps an ignored signal ignored: without the reset a
        // child could not die of SIGPIPE, and `yes | head` would never end by it.
        Run(async () =>
        {
            var p = await Sh("kill -PIPE $$; echo survived");
            var (o, _) = await p.Communicate();
            Assert.Equal("", S(o));
            Assert.Equal(-13, p.ReturnCode);
        });
    }

    [Fact]
    public void Communicate_LargeInput_ThroughCat_ComesBackWhole()
    {
        Run(async () =>
        {
            var input = new byte[3 * 1024 * 1024];
            for (int i = 0; i < input.Length; i++) input[i] = (byte)(i * 7 + i / 4096);
            var p = await Aio.CreateSubprocessExec("cat", stdin: Stdio.Pipe, stdout: Stdio.Pipe);
            var (o, e) = await p.Communicate(input);
            Assert.Null(e);
            Assert.Equal(input.Length, o!.Length);
            Assert.True(input.AsSpan().SequenceEqual(o));
            Assert.Equal(0, p.ReturnCode);
        });
    }

    [Fact]
    public void Communicate_ChildExitsWithoutReadingItsInput_IsNotAnError()
    {
        Run(async () =>
        {
            var p = await Sh("exec 0<&-; echo done", stdin: Stdio.Pipe);
            var (o, _) = await p.Communicate(new byte[4 * 1024 * 1024]);
            Assert.Equal("done\n", S(o));
            Assert.Equal(0, p.ReturnCode);
        });
    }

    [Fact]
    public void Communicate_InputWithoutStdinPipe_Throws()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("true");
            await Assert.ThrowsAsync<InvalidOperationException>(() => p.Communicate("x"u8.ToArray()));
            Assert.Equal(0, await p.Wait());
        });
    }

    [Fact]
    public void Stdin_WriteThenWriteEof_CatEchoesAndEnds()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("cat", stdin: Stdio.Pipe, stdout: Stdio.Pipe);
            p.Stdin!.Write("one\n"u8);
            await p.Stdin.Drain();
            Assert.Equal("one\n", S(await p.Stdout!.ReadLine()));
            p.Stdin.Write("two\n"u8);
            p.Stdin.WriteEof();
            Assert.Equal("two\n", S(await p.Stdout.Read()));
            Assert.True(p.Stdout.AtEof);
            Assert.Equal(0, await p.Wait());
        });
    }

    [Fact]
    public void Stdout_ReadLine_StreamsWhileTheChildRuns()
    {
        Run(async () =>
        {
            var p = await Sh("echo first; read x; echo second", stdin: Stdio.Pipe);
            Assert.Equal("first\n", S(await p.Stdout!.ReadLine()));
            Assert.Null(p.ReturnCode);
            p.Stdin!.Write("\n"u8);
            Assert.Equal("second\n", S(await p.Stdout.ReadLine()));
            Assert.Equal("", S(await p.Stdout.ReadLine()));   // end of stream
            Assert.Equal(0, await p.Wait());
        });
    }

    [Fact]
    public void Stderr_Pipe_IsSeparateFromStdout()
    {
        Run(async () =>
        {
            var p = await Sh("echo out; echo err >&2", stderr: Stdio.Pipe);
            var (o, e) = await p.Communicate();
            Assert.Equal("out\n", S(o));
            Assert.Equal("err\n", S(e));
        });
    }

    [Fact]
    public void Stderr_Stdout_MergesIntoStdoutInOrder()
    {
        Run(async () =>
        {
            var p = await Sh("echo 1; echo 2 >&2; echo 3; echo 4 >&2", stderr: Stdio.Stdout);
            Assert.Null(p.Stderr);
            var (o, e) = await p.Communicate();
            Assert.Equal("1\n2\n3\n4\n", S(o));
            Assert.Null(e);
        });
    }

    [Fact]
    public void DevNull_Stdin_ReadsEndOfFile_Stdout_Discards()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("cat", stdin: Stdio.DevNull, stdout: Stdio.Pipe);
            var (o, _) = await p.Communicate();
            Assert.Equal("", S(o));
            Assert.Equal(0, p.ReturnCode);

            var q = await Sh("echo gone; echo kept >&2", stdout: Stdio.DevNull, stderr: Stdio.Pipe);
            Assert.Null(q.Stdout);
            var (o2, e2) = await q.Communicate();
            Assert.Null(o2);
            Assert.Equal("kept\n", S(e2));
        });
    }

    [Fact]
    public void Cwd_IsTheChildsWorkingDirectory()
    {
        Run(async () =>
        {
            var dir = Directory.CreateTempSubdirectory("aio-cwd-").FullName;
            try
            {
                var p = await Aio.CreateSubprocessExec("pwd", stdout: Stdio.Pipe, cwd: dir);
                var (o, _) = await p.Communicate();
                Assert.Equal(dir + "\n", S(o));
            }
            finally { Directory.Delete(dir); }
        });
    }

    [Fact]
    public void Env_IsTheChildsWholeEnvironment()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("env", stdout: Stdio.Pipe,
                env: new Dictionary<string, string> { ["AIO_ONE"] = "1", ["AIO_TWO"] = "two words" });
            var (o, _) = await p.Communicate();
            var lines = S(o).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray();
            Assert.Equal(["AIO_ONE=1", "AIO_TWO=two words"], lines);
        });
    }

    [Fact]
    public void Env_Default_IsThisProcesssEnvironment_IncludingSetEnvironmentVariable()
    {
        Run(async () =>
        {
            Environment.SetEnvironmentVariable("AIO_SUBPROCESS_TEST", "from-dotnet");
            try
            {
                var p = await Sh("echo \"$AIO_SUBPROCESS_TEST\"");
                var (o, _) = await p.Communicate();
                Assert.Equal("from-dotnet\n", S(o));
            }
            finally { Environment.SetEnvironmentVariable("AIO_SUBPROCESS_TEST", null); }
        });
    }

    [Fact]
    public void CreateSubprocessShell_RunsTheCommandLineWithSh()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessShell("echo $((1 + 2)) | cat; exit 4", stdout: Stdio.Pipe);
            var (o, _) = await p.Communicate();
            Assert.Equal("3\n", S(o));
            Assert.Equal(4, p.ReturnCode);
        });
    }

    [Fact]
    public void StartNewSession_ChildLeadsItsOwnSession()
    {
        Run(async () =>
        {
            // Field 6 of /proc/self/stat is the session id; a session leader's is its own pid.
            var p = await Aio.CreateSubprocessExec("sh", ["-c", "cut -d' ' -f6 /proc/$$/stat"], stdout: Stdio.Pipe, startNewSession: true);
            var (o, _) = await p.Communicate();
            Assert.Equal(p.Pid.ToString(), S(o).Trim());

            var q = await Aio.CreateSubprocessExec("sh", ["-c", "cut -d' ' -f6 /proc/$$/stat"], stdout: Stdio.Pipe);
            var (o2, _) = await q.Communicate();
            Assert.NotEqual(q.Pid.ToString(), S(o2).Trim());
        });
    }

    /// <summary>Field 5 of /proc/PID/stat, the process group (after the command's parentheses, which may hold spaces).</summary>
    static int GroupOf(string stat) => int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[2]);

    [Fact]
    public void ProcessGroup_ZeroLeadsANewOne_ANumberJoinsIt_NoneStaysInOurs()
    {
        Run(async () =>
        {
            const string PrintGroup = "cut -d' ' -f5 /proc/$$/stat; read wait; exit 0";
            var leader = await Sh(PrintGroup, stdin: Stdio.Pipe, processGroup: 0);
            Assert.Equal(leader.Pid, int.Parse(S(await leader.Stdout!.ReadLine())));
            var member = await Sh(PrintGroup, stdin: Stdio.Pipe, processGroup: leader.Pid);
            Assert.Equal(leader.Pid, int.Parse(S(await member.Stdout!.ReadLine())));
            var plain = await Sh(PrintGroup, stdin: Stdio.Pipe);
            Assert.Equal(GroupOf(File.ReadAllText("/proc/self/stat")), int.Parse(S(await plain.Stdout!.ReadLine())));
            foreach (var p in new[] { leader, member, plain })
            {
                p.Stdin!.Close();
                Assert.Equal(0, await p.Wait());
            }

            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Aio.CreateSubprocessExec("true", processGroup: -1));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("true", startNewSession: true, processGroup: 0));
            var e = await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("true", processGroup: leader.Pid));   // a group gone
            Assert.Equal("processGroup", e.ParamName);
        });
    }

    [Fact]
    public void BadInput_ClearExceptions()
    {
        Run(async () =>
        {
            await Assert.ThrowsAsync<FileNotFoundException>(() => Aio.CreateSubprocessExec("no-such-program-aio-test"));
            await Assert.ThrowsAsync<FileNotFoundException>(() => Aio.CreateSubprocessExec("/nonexistent/prog"));
            await Assert.ThrowsAsync<DirectoryNotFoundException>(() => Aio.CreateSubprocessExec("true", cwd: "/nonexistent-aio-dir"));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("cat", stdin: Stdio.Stdout));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("cat", stdout: Stdio.Stdout));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Aio.CreateSubprocessExec("cat", limit: 0));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec(""));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("echo", ["a\0b"]));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessShell("echo a\0b"));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("env", env: new Dictionary<string, string> { ["A=B"] = "1" }));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("env", env: new Dictionary<string, string> { [""] = "1" }));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("env", env: new Dictionary<string, string> { ["A"] = "\0" }));
            var notExecutable = Path.GetTempFileName();   // made without any execute bit
            try { await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Aio.CreateSubprocessExec(notExecutable)); }
            finally { File.Delete(notExecutable); }
            // The loop still works and a good child still starts after the failures.
            var p = await Aio.CreateSubprocessExec("echo", ["ok"], stdout: Stdio.Pipe);
            Assert.Equal("ok\n", S((await p.Communicate()).Stdout));
        });
    }

    [Fact]
    public void Wait_Cancelled_ChildKeepsRunning_OtherWaitersStillWoken()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("sleep", ["30"]);
            var other = Aio.CreateTask(() => p.Wait());
            await Assert.ThrowsAsync<TimeoutException>(() => Aio.WaitFor(() => p.Wait(), 0.05));
            Assert.Null(p.ReturnCode);
            Assert.False(other.IsDone);
            p.Kill();
            Assert.Equal(-9, await other);
        });
    }

    [Fact]
    public void Wait_ReturnsOnlyOnceThePipesAreRead_DataIsNotLost()
    {
        Run(async () =>
        {
            // Output larger than any pipe buffer: the child cannot exit before it is read.
            var p = await Sh("head -c 1000000 /dev/zero");
            var wait = Aio.CreateTask(() => p.Wait());
            var data = await p.Stdout!.Read();
            int total = data.Length;
            while (data.Length > 0) total += (data = await p.Stdout.Read()).Length;
            Assert.Equal(1_000_000, total);
            Assert.Equal(0, await wait);
        });
    }

    /// <summary>
    /// asyncio's <c>_wait()</c>: a wait that begins once the return code is known returns it at once, even while a
    /// grandchild holds stdout open; a wait that began before the exit still waits for every pipe to close. The
    /// grandchild (sleep 60, in the child's new process group) is killed at the end; nothing waits on a clock.
    /// </summary>
    [Fact]
    public void Wait_AfterTheExitIsKnown_ReturnsAtOnce_ABeforeWaitStillWaitsForThePipes()
    {
        Run(async () =>
        {
            var p = await Sh("head -n 1 >/dev/null; sleep 60 & echo hi", stdin: Stdio.Pipe, processGroup: 0);
            bool groupGone = false;   // once it is, its number may be another group's: no signal then
            try
            {
                Assert.Null(p.ReturnCode);   // it waits for a line
                var early = p.Wait();
                p.Stdin!.Write("go\n"u8);
                Assert.Equal("hi\n", S(await p.Stdout!.ReadLine()));
                while (p.ReturnCode == null) await Aio.Sleep(0.01);   // the shell exits at once; bounded by the test's bound
                Assert.Equal(0, p.ReturnCode);

                var late = p.Wait();
                Assert.True(late.IsCompleted, "Wait after the exit is known returns at once");
                Assert.Equal(0, await late);
                Assert.False(early.IsCompleted, "a Wait begun before the exit waits for stdout, which the grandchild holds");

                SpawnNative.Kill(-p.Pid, 9);   // the grandchild: stdout closes
                groupGone = true;
                Assert.Equal(0, await early);
                Assert.Equal(0, await p.Wait());
            }
            finally
            {
                if (!groupGone) SpawnNative.Kill(-p.Pid, 9);
            }
        });
    }

    [Fact]
    public void Communicate_AfterTheExitIsKnown_StillReadsToTheEnd()
    {
        Run(async () =>
        {
            // The grandchild (cat) writes what Communicate sends after the shell has exited: Communicate reads stdout
            // to its end, not to the exit.
            var p = await Sh("exec 3<&0; head -n 1 >/dev/null; cat <&3 & echo early", stdin: Stdio.Pipe, processGroup: 0);
            bool groupGone = false;   // cat ends at the end of its input; its group's number may then be another's
            try
            {
                p.Stdin!.Write("go\n"u8);
                Assert.Equal("early\n", S(await p.Stdout!.ReadLine()));
                while (p.ReturnCode == null) await Aio.Sleep(0.01);
                Assert.Equal("late\n", S((await p.Communicate("late\n"u8.ToArray())).Stdout));   // stdout's end: cat is gone
                groupGone = true;
                Assert.Equal(0, p.ReturnCode);
            }
            finally
            {
                if (!groupGone) SpawnNative.Kill(-p.Pid, 9);
            }
        });
    }

    [Fact]
    public void Program_IsSearchedInTheChildsPath_AsPythonDoes()
    {
        Run(async () =>
        {
            var dir = Directory.CreateTempSubdirectory("aio-path-").FullName;
            try
            {
                string tool = Path.Combine(dir, "aio-test-tool");
                File.WriteAllText(tool, "#!/bin/sh\necho found \"$1\"\n");
                File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                string denied = Path.Combine(dir, "aio-test-denied");
                File.WriteAllText(denied, "#!/bin/sh\n");   // no execute bit

                // The PATH of the environment given to the child (libc's posix_spawnp would search this process's).
                var p = await Aio.CreateSubprocessExec("aio-test-tool", ["env"], stdout: Stdio.Pipe,
                    env: new Dictionary<string, string> { ["PATH"] = "/nonexistent:" + dir });
                Assert.Equal("found env\n", S((await p.Communicate()).Stdout));

                // Without env: this process's PATH as .NET sees it, changes by SetEnvironmentVariable included.
                await Assert.ThrowsAsync<FileNotFoundException>(() => Aio.CreateSubprocessExec("aio-test-tool"));
                string? saved = Environment.GetEnvironmentVariable("PATH");
                Environment.SetEnvironmentVariable("PATH", saved + ":" + dir);
                try
                {
                    var q = await Aio.CreateSubprocessExec("aio-test-tool", ["dotnet"], stdout: Stdio.Pipe);
                    Assert.Equal("found dotnet\n", S((await q.Communicate()).Stdout));
                    await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Aio.CreateSubprocessExec("aio-test-denied"));
                }
                finally { Environment.SetEnvironmentVariable("PATH", saved); }

                // An environment without PATH searches the default path (/bin:/usr/bin), where sh is.
                var r = await Aio.CreateSubprocessExec("sh", ["-c", "echo ok"], stdout: Stdio.Pipe, env: new Dictionary<string, string>());
                Assert.Equal("ok\n", S((await r.Communicate()).Stdout));
            }
            finally { Directory.Delete(dir, recursive: true); }
        });
    }

    /// <summary>A file <paramref name="name"/> in <paramref name="dir"/> (made if missing) holding <paramref name="text"/>; executable unless told.</summary>
    static void Script(string dir, string name, string text, bool executable = true)
    {
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, name);
        File.WriteAllText(file, text);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | (executable ? UnixFileMode.UserExecute : 0));
    }

    /// <summary>
    /// A relative PATH entry, or an empty one (the current directory), names a directory of the child's working
    /// directory, as in Python, whose child joins each entry with the program and runs it after its chdir: the file
    /// the search checks is the file the child runs. A relative program path resolves there too.
    /// </summary>
    [Fact]
    public void Program_RelativeAndEmptyPathEntries_ResolveInTheChildsWorkingDirectory()
    {
        Run(async () =>
        {
            var root = Directory.CreateTempSubdirectory("aio-cwd-path-").FullName;
            string tool = "aio-cwd-tool-" + Guid.NewGuid().ToString("N");
            // This process's working directory holds a file of that name that may not be executed: it is not the child's.
            string here = Path.Combine(Directory.GetCurrentDirectory(), tool);
            try
            {
                string bin = Path.Combine(root, "procbin");
                Script(bin, tool, "#!/bin/sh\necho child \"$1\"\n");
                File.WriteAllText(here, "#!/bin/sh\necho parent\n");
                async Task<string> RunTool(string path, string cwd, string program)
                {
                    var p = await Aio.CreateSubprocessExec(program, ["hi"], stdout: Stdio.Pipe, cwd: cwd,
                        env: new Dictionary<string, string> { ["PATH"] = path });
                    return S((await p.Communicate()).Stdout);
                }
                Assert.Equal("child hi\n", await RunTool(".", bin, tool));
                Assert.Equal("child hi\n", await RunTool(":/bin", bin, tool));      // an empty entry
                Assert.Equal("child hi\n", await RunTool("/bin:", bin, tool));
                Assert.Equal("child hi\n", await RunTool("procbin", root, tool));
                Assert.Equal("child hi\n", await RunTool("/nonexistent:./procbin", root, tool));
                Assert.Equal("child hi\n", await RunTool("", bin, "./" + tool));    // a program with a slash
                Assert.Equal("child hi\n", await RunTool("", root, "procbin/" + tool));
                // Not in the child's working directory: not found, whatever this process's holds.
                await Assert.ThrowsAsync<FileNotFoundException>(() => RunTool(".", root, tool));
                // Without cwd the child's working directory is this process's.
                await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Aio.CreateSubprocessExec(tool, env: new Dictionary<string, string> { ["PATH"] = "." }));
            }
            finally
            {
                File.Delete(here);
                Directory.Delete(root, recursive: true);
            }
        });
    }

    /// <summary>
    /// The search tries each PATH entry in turn as Python's child does (execve of each joined path): the first that
    /// starts wins, whatever failed before it. If none starts, the error is the first that is not "no such file" or
    /// "not a directory" (a directory of the program's name: permission denied, as execve says), else the last.
    /// </summary>
    [Fact]
    public void Program_SearchTriesEveryPathEntry_ReportsTheFirstErrorThatIsNotNotFound()
    {
        Run(async () =>
        {
            var root = Directory.CreateTempSubdirectory("aio-path-order-").FullName;
            try
            {
                const string Tool = "tool";
                Directory.CreateDirectory(Path.Combine(root, "isdir", Tool));                        // execve: EACCES
                Script(Path.Combine(root, "noexec"), Tool, "#!/bin/sh\necho noexec\n", executable: false);  // EACCES
                Script(Path.Combine(root, "badfmt"), Tool, "\u0001\u0002\u0003 not a program");     // ENOEXEC
                Script(Path.Combine(root, "badinterp"), Tool, "#!/nonexistent/interpreter\n");       // ENOENT
                Script(Path.Combine(root, "good"), Tool, "#!/bin/sh\necho good\n");
                // Absolute entries (the directories of root, /nonexistent, /etc/passwd), whatever the working directory.
                Task<Subprocess> Start(params string[] dirs) => Aio.CreateSubprocessExec(Tool, stdout: Stdio.Pipe,
                    env: new Dictionary<string, string> { ["PATH"] = string.Join(':', dirs.Select(d => Path.Combine(root, d))) });

                foreach (var first in new[] { "isdir", "noexec", "badfmt", "badinterp", "/nonexistent", "/etc/passwd" })
                {
                    var p = await Start(first, "good");
                    Assert.Equal("good\n", S((await p.Communicate()).Stdout));
                }
                await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Start("isdir"));
                await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Start("/nonexistent", "isdir", "badinterp"));
                await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Start("isdir", "badfmt"));
                Assert.Equal(8, (await Assert.ThrowsAsync<System.ComponentModel.Win32Exception>(() => Start("badfmt", "noexec"))).NativeErrorCode);
                await Assert.ThrowsAsync<FileNotFoundException>(() => Start("badinterp"));
                await Assert.ThrowsAsync<FileNotFoundException>(() => Start("/etc/passwd", "/nonexistent"));
                await Assert.ThrowsAsync<DirectoryNotFoundException>(() => Start("/nonexistent", "/etc/passwd"));   // the last: not a directory
            }
            finally { Directory.Delete(root, recursive: true); }
        });
    }

    [Fact]
    public void ManyArguments_AllReachTheChild()
    {
        Run(async () =>
        {
            var args = Enumerable.Range(0, 20_000).Select(i => i.ToString()).ToArray();
            var p = await Aio.CreateSubprocessExec("sh", ["-c", "echo $#", "sh", .. args], stdout: Stdio.Pipe);
            var (o, _) = await p.Communicate();
            Assert.Equal("20000\n", S(o));
        });
    }

    [Fact]
    public void ManyChildren_AtOnce_AllReportTheirOwnCodes()
    {
        Run(async () =>
        {
            var procs = new List<Subprocess>();
            for (int i = 0; i < 20; i++) procs.Add(await Sh($"echo {i}; exit {i}"));
            for (int i = 0; i < procs.Count; i++)
            {
                var (o, _) = await procs[i].Communicate();
                Assert.Equal($"{i}\n", S(o));
                Assert.Equal(i, procs[i].ReturnCode);
            }
        });
    }

    [Fact]
    public void LoopClosedWithTheChildRunning_ChildIsReapedWhenItExits()
    {
        int pid = 0;
        Subprocess? child = null;
        Run(async () =>
        {
            child = await Aio.CreateSubprocessExec("sleep", ["0.3"]);
            pid = child.Pid;
        });
        // Its pid is no longer the loop's to signal: once reaped by the helper, it may be another process's.
        Assert.Throws<InvalidOperationException>(() => child!.Kill());
        // After the loop is gone, a helper thread reaps the child when it exits: no zombie stays.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (File.Exists($"/proc/{pid}/stat") && waited.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(20);
        Assert.False(File.Exists($"/proc/{pid}/stat"), $"child {pid} was not reaped");
    }

    [Fact]
    public void Wait_FromAnotherThread_Throws()
    {
        Run(async () =>
        {
            var p = await Aio.CreateSubprocessExec("true");
            var e = await Task.Run(() => Record.Exception(() => { _ = p.Wait(); }));
            Assert.IsType<InvalidOperationException>(e);
            Assert.Equal(0, await p.Wait());
        });
    }
}

public sealed class EpollSubprocessTests : SubprocessTests
{
    protected override bool Portable => false;

    [Fact]
    public void StdinPipe_WriteEofWithDataPending_ClosingAtOnce_EveryByteArrives_OtherThreadsRefused()
    {
        NetTest.Run(false, async () =>
        {
            var p = await Aio.CreateSubprocessExec("wc", ["-c"], stdin: Stdio.Pipe, stdout: Stdio.Pipe);
            var stdin = p.Stdin!;
            stdin.Write(new byte[4 * 1024 * 1024]);   // more than the pipe takes: most of it waits in the buffer
            var fromElsewhere = await Task.Run(() => Record.Exception(() => stdin.Write("x"u8)));
            Assert.IsType<InvalidOperationException>(fromElsewhere);
            stdin.WriteEof();
            Assert.True(stdin.IsClosing);   // as asyncio's write_eof of a pipe, at once
            var (o, _) = await p.Communicate();
            Assert.Equal("4194304", Encoding.UTF8.GetString(o!).Trim());
        });
    }

    /// <summary>A loop closed with a child's pipe still open closes the pipe: no descriptor is left behind.</summary>
    [Fact]
    public void LoopClosedWithAPipeOpen_ThePipeIsClosed()
    {
        int fd = -1;
        string? target = null;
        NetTest.Run(false, async () =>
        {
            var p = await Aio.CreateSubprocessExec("sleep", ["0.3"], stdout: Stdio.Pipe);
            fd = ((PipeTransportBase)Aio.GetRunningLoop().Subprocesses.Single(t => t.Pid == p.Pid).GetPipeTransport(1)!).Fd;
            target = new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
        });
        Assert.StartsWith("pipe:", target);
        // The number may be reused by now (tests run in parallel), but not for this pipe.
        Assert.NotEqual(target, File.Exists($"/proc/self/fd/{fd}") ? new FileInfo($"/proc/self/fd/{fd}").LinkTarget : null);
    }

    /// <summary>On the epoll reactor the streams are real pipes: a child may open /dev/stdout, /dev/stderr, /dev/stdin.</summary>
    [Fact]
    public void Pipes_AreFifos_AChildCanOpenDevStdoutAndDevStdin()
    {
        NetTest.Run(false, async () =>
        {
            var p = await Aio.CreateSubprocessExec("sh",
                ["-c", "[ -p /dev/stdin ] && [ -p /dev/stdout ] && echo fifo; echo out > /dev/stdout; echo err | tee /dev/stderr; cat /dev/stdin"],
                stdin: Stdio.Pipe, stdout: Stdio.Pipe, stderr: Stdio.Pipe);
            var (o, e) = await p.Communicate("in\n"u8.ToArray());
            Assert.Equal("fifo\nout\nerr\nin\n", Encoding.UTF8.GetString(o!));
            Assert.Equal("err\n", Encoding.UTF8.GetString(e!));
            Assert.Equal(0, p.ReturnCode);
        });
    }
}

public sealed class PortableSubprocessTests : SubprocessTests
{
    protected override bool Portable => true;
}
