using System.IO.Pipes;
using System.Net.Sockets;
using System.Text;
using Asyncio.Tests.Net;
using Microsoft.Win32.SafeHandles;

namespace Asyncio.Tests.Processes;

/// <summary>
/// asyncio's file descriptor or file object as a child's standard stream (<c>stdout=f</c>, <c>stdin=r</c> of an
/// <c>os.pipe()</c>): <see cref="Stdio.From(System.Runtime.InteropServices.SafeHandle)"/> and
/// <see cref="Stdio.FromDescriptor"/>, on each reactor (neither watches the caller's descriptor).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public abstract class SubprocessHandleTests : IDisposable
{
    protected abstract bool Portable { get; }

    readonly string _dir = Directory.CreateTempSubdirectory("aio-stdio-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    string PathOf(string name) => Path.Combine(_dir, name);

    static string S(byte[]? b) => b == null ? "<null>" : Encoding.UTF8.GetString(b);

    /// <summary>How many of this process's descriptors are open on <paramref name="path"/> (other tests' descriptors never are).</summary>
    static int OpenOn(string path) =>
        new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos().Count(f =>
        {
            try { return f.LinkTarget == path; }
            catch (IOException) { return false; }   // closed while listed
        });

    [Fact]
    public void Stdout_AFileHandle_TheChildWritesTheFile_AndTheHandleStaysTheCallers()
    {
        Run(async () =>
        {
            string path = PathOf("out.txt");
            using var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
            var p = await Aio.CreateSubprocessExec("echo", ["hello"], stdout: Stdio.From(h));
            Assert.Null(p.Stdout);
            var (o, e) = await p.Communicate();
            Assert.Null(o);
            Assert.Null(e);
            Assert.Equal(0, p.ReturnCode);
            Assert.Equal("hello\n", File.ReadAllText(path));
            Assert.False(h.IsClosed);
            RandomAccess.Write(h, "more\n"u8, fileOffset: 6);
            Assert.Equal("hello\nmore\n", File.ReadAllText(path));
            Assert.Equal(1, OpenOn(path));   // the child's copy is gone
        });
    }

    [Fact]
    public void Stdin_AFileHandle_TheChildReadsTheFile()
    {
        Run(async () =>
        {
            string path = PathOf("in.txt");
            File.WriteAllText(path, "one\ntwo\n");
            using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            var p = await Aio.CreateSubprocessExec("sort", ["-r"], stdin: Stdio.From(h), stdout: Stdio.Pipe);
            Assert.Null(p.Stdin);
            Assert.Equal("two\none\n", S((await p.Communicate()).Stdout));
        });
    }

    [Fact]
    public void Pipeline_TwoChildrenJoinedByAPipe_AsWithOsPipe()
    {
        Run(async () =>
        {
            // `printf 'b\na\n' | sort`: the first child writes the pipe, the second reads it.
            var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
            Subprocess writer, reader;
            try
            {
                writer = await Aio.CreateSubprocessExec("printf", ["b\\na\\n"], stdout: Stdio.From(pipe.SafePipeHandle));
                reader = await Aio.CreateSubprocessExec("sort", stdin: Stdio.From(pipe.ClientSafePipeHandle), stdout: Stdio.Pipe);
            }
            finally
            {
                // The parent lets go of both ends, so the reader sees end of file once the writer has exited.
                pipe.DisposeLocalCopyOfClientHandle();
                pipe.Dispose();
            }
            var (o, _) = await reader.Communicate();
            Assert.Equal("a\nb\n", S(o));
            Assert.Equal(0, await writer.Wait());
            Assert.Equal(0, reader.ReturnCode);
        });
    }

    [Fact]
    public void Stdout_ASocket_TheChildWritesIntoTheConnection()
    {
        Run(async () =>
        {
            var (a, b) = NetTest.SocketPair();
            using (a)
            using (b)
            {
                var p = await Aio.CreateSubprocessExec("echo", ["over a socket"], stdout: Stdio.From(b.SafeHandle));
                Assert.Equal(0, await p.Wait());
                b.Shutdown(SocketShutdown.Send);   // the child's copy is closed: ours is the last writer
                var buffer = new byte[64];
                int n = 0, got;
                while ((got = a.Receive(buffer, n, buffer.Length - n, SocketFlags.None)) > 0) n += got;
                Assert.Equal("over a socket\n", Encoding.UTF8.GetString(buffer, 0, n));
            }
        });
    }

    [Fact]
    public void Stderr_Stdout_FollowsAGivenStdout()
    {
        Run(async () =>
        {
            string path = PathOf("both.txt");
            using var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
            var p = await Aio.CreateSubprocessShell("echo out; echo err >&2", stdout: Stdio.From(h), stderr: Stdio.Stdout);
            Assert.Equal(0, await p.Wait());
            Assert.Equal("out\nerr\n", File.ReadAllText(path));
        });
    }

    [Fact]
    public void Stderr_AFileHandle_StdoutStaysAPipe()
    {
        Run(async () =>
        {
            string path = PathOf("err.txt");
            using var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
            var p = await Aio.CreateSubprocessShell("echo out; echo err >&2", stdout: Stdio.Pipe, stderr: Stdio.From(h));
            var (o, e) = await p.Communicate();
            Assert.Equal("out\n", S(o));
            Assert.Null(e);
            Assert.Equal("err\n", File.ReadAllText(path));
        });
    }

    [Fact]
    public void FromDescriptor_TheChildGetsACopyOfThatDescriptor()
    {
        Run(async () =>
        {
            string path = PathOf("fd.txt");
            using var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
            int fd = (int)h.DangerousGetHandle();
            var p = await Aio.CreateSubprocessShell("echo by number", stdout: Stdio.FromDescriptor(fd));
            Assert.Equal(0, await p.Wait());
            Assert.Equal("by number\n", File.ReadAllText(path));
            Assert.Equal(1, OpenOn(path));
        });
    }

    [Fact]
    public void HandleClosedByTheCallerAfterTheStart_TheChildKeepsItsCopy()
    {
        Run(async () =>
        {
            string path = PathOf("late.txt");
            var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
            var p = await Aio.CreateSubprocessShell("read go; echo late", stdin: Stdio.Pipe, stdout: Stdio.From(h));
            h.Dispose();
            p.Stdin!.Write("go\n"u8);
            await p.Stdin.Drain();
            Assert.Equal(0, await p.Wait());
            Assert.Equal("late\n", File.ReadAllText(path));
        });
    }

    [Theory]
    [InlineData(FileMode.Create)]
    [InlineData(FileMode.Append)]   // no way out: .NET opens it without O_APPEND
    public void FileStreamTrap_AsDocumented_TheStreamsNextWriteOverwritesTheChilds(FileMode mode)
    {
        Run(async () =>
        {
            string path = PathOf("trap.txt");
            using (var fs = new FileStream(path, mode, FileAccess.Write))
            {
                fs.Write("abc"u8);
                var p = await Aio.CreateSubprocessExec("printf", ["x"], stdout: Stdio.From(fs.SafeFileHandle));
                Assert.Equal(0, await p.Wait());
                fs.Write("def"u8);
            }
            Assert.Equal("abcdef", File.ReadAllText(path));
        });
    }

    [Fact]
    public void NonBlockingTrap_AsDocumented_APipeStreamUsedAsynchronously_TheChildsLargeWriteFails()
    {
        Run(async () =>
        {
            // Nobody reads the pipe: a blocking write would wait for ever, a non-blocking one fails once it is full.
            using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
            await pipe.WriteAsync(new byte[] { 1 });   // .NET makes the descriptor non-blocking here, for good
            var env = new Dictionary<string, string> { ["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/bin:/usr/bin", ["LC_ALL"] = "C" };
            var p = await Aio.CreateSubprocessShell("head -c 1000000 /dev/zero", stdout: Stdio.From(pipe.SafePipeHandle), stderr: Stdio.Pipe, env: env);
            var (_, e) = await p.Communicate();
            Assert.NotEqual(0, p.ReturnCode);
            Assert.Contains("Resource temporarily unavailable", S(e));
        });
    }

    /// <summary>Whether descriptor <paramref name="fd"/> is open in a child started with <paramref name="passHandles"/>.</summary>
    static async Task<bool> OpenInChild(int fd, IEnumerable<System.Runtime.InteropServices.SafeHandle>? passHandles = null)
    {
        var p = await Aio.CreateSubprocessExec("sh", ["-c", "[ -e /proc/$$/fd/$0 ] && echo open || echo closed", fd.ToString()],
            stdout: Stdio.Pipe, passHandles: passHandles);
        return S((await p.Communicate()).Stdout) switch { "open\n" => true, "closed\n" => false, var o => throw new Xunit.Sdk.XunitException(o) };
    }

    [Fact]
    public void InheritableDescriptor_IsClosedInTheChild_AsCloseFds()
    {
        Run(async () =>
        {
            // Not close-on-exec: without asyncio's close_fds every child would inherit it (and keep the pipe open).
            using var pipe = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.Inheritable);
            Assert.False(await OpenInChild(int.Parse(pipe.GetClientHandleAsString())));
            Assert.True(await OpenInChild(1));
            Assert.True(await OpenInChild(2));
        });
    }

    [Fact]
    public void PassHandles_StayOpenInTheChildUnderTheirNumbers_TheOthersAreClosed()
    {
        Run(async () =>
        {
            using var inheritable = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.Inheritable);
            using var pipe = new AnonymousPipeServerStream(PipeDirection.In);   // close-on-exec
            using var file = File.OpenHandle(PathOf("passed.txt"), FileMode.Create, FileAccess.Write);
            int fdInheritable = int.Parse(inheritable.GetClientHandleAsString()), fdPipe = int.Parse(pipe.GetClientHandleAsString());
            int fdFile = (int)file.DangerousGetHandle();
            Assert.True(await OpenInChild(fdPipe, [pipe.ClientSafePipeHandle, file]));
            Assert.True(await OpenInChild(fdFile, [file, pipe.ClientSafePipeHandle, file]));   // any order, repeats allowed
            Assert.False(await OpenInChild(fdInheritable, [pipe.ClientSafePipeHandle, file]));   // between or beside passed ones, still closed
            Assert.False(await OpenInChild(fdPipe, [file]));

            // The child writes into the passed pipe end; the parent reads it.
            var p = await Aio.CreateSubprocessExec("sh", ["-c", "echo through fd $0 > /proc/$$/fd/$0", fdPipe.ToString()],
                passHandles: [pipe.ClientSafePipeHandle]);
            pipe.DisposeLocalCopyOfClientHandle();
            Assert.Equal(0, await p.Wait());
            string expected = $"through fd {fdPipe}\n";
            var buffer = new byte[64];
            int n = 0, got;
            while (n < expected.Length && (got = await pipe.ReadAsync(buffer.AsMemory(n))) > 0) n += got;
            Assert.Equal(expected, Encoding.UTF8.GetString(buffer, 0, n));
        });
    }

    [Fact]
    public void WithoutClosefrom_TheDescriptorsOpenHereAreClosedOneByOne()
    {
        Run(async () =>
        {
            // The path for a libc without posix_spawn_file_actions_addclosefrom_np, for this thread's (the loop's) spawns only.
            using var inheritable = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.Inheritable);
            using var pipe = new AnonymousPipeServerStream(PipeDirection.In);
            int fdInheritable = int.Parse(inheritable.GetClientHandleAsString()), fdPipe = int.Parse(pipe.GetClientHandleAsString());
            SpawnNative.CloseOneByOne = true;
            try
            {
                Assert.False(await OpenInChild(fdInheritable));
                Assert.False(await OpenInChild(fdInheritable, [pipe.ClientSafePipeHandle]));
                Assert.True(await OpenInChild(fdPipe, [pipe.ClientSafePipeHandle]));
            }
            finally { SpawnNative.CloseOneByOne = false; }
        });
    }

    [Fact]
    public void PassHandles_BadInput_ClearExceptions()
    {
        Run(async () =>
        {
            var closed = File.OpenHandle(PathOf("closed.txt"), FileMode.Create, FileAccess.Write);
            closed.Dispose();
            await Assert.ThrowsAsync<ObjectDisposedException>(() => Aio.CreateSubprocessExec("true", passHandles: [closed]));
            await Assert.ThrowsAsync<ArgumentNullException>(() => Aio.CreateSubprocessExec("true", passHandles: [null!]));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("true", passHandles: [new SafeFileHandle(-1, ownsHandle: false)]));
            var e = await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("true", passHandles: [new SafeFileHandle(1, ownsHandle: false)]));
            Assert.StartsWith("Descriptor 1 is a standard stream", e.Message);
            var p = await Aio.CreateSubprocessExec("true", passHandles: []);
            Assert.Equal(0, await p.Wait());
        });
    }

    [Fact]
    public void PassHandles_ADescriptorNotOpen_AnArgumentException_NotASpawnError()
    {
        Run(async () =>
        {
            // Below the descriptor limit (the child's dup2 onto itself would fail: "Cannot start 'true'") and above it.
            foreach (int fd in new[] { 15000, 1 << 20 })
            {
                var e = await Assert.ThrowsAsync<ArgumentException>(() =>
                    Aio.CreateSubprocessExec("true", passHandles: [new SafeFileHandle(fd, ownsHandle: false)]));
                Assert.Equal("passHandles", e.ParamName);
                Assert.Contains($"{fd}", e.Message);
            }
        });
    }

    /// <summary>A handle whose value is not a descriptor (a pointer, say).</summary>
    sealed class NotADescriptor(long value) : System.Runtime.InteropServices.SafeHandle((nint)value, ownsHandle: false)
    {
        public override bool IsInvalid => false;
        protected override bool ReleaseHandle() => true;
    }

    [Fact]
    public void AHandleThatIsNotADescriptor_IsRejected_NotTruncatedToAnotherDescriptor()
    {
        Run(async () =>
        {
            // 0x1_0000_0001 cut to an int is 1: the child's stdout would silently be this process's.
            var h = new NotADescriptor(0x1_0000_0001);
            Assert.Throws<ArgumentException>(() => Stdio.From(h));
            Assert.Throws<ArgumentException>(() => Stdio.From(new NotADescriptor(-5)));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("true", passHandles: [h]));
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("true", passHandles: [new NotADescriptor(0x1_0000_0005)]));
        });
    }

    [Fact]
    public void ProtocolApi_AGivenStreamHasNoPipeTransport_TheOthersKeepTheirPipes()
    {
        Run(async () =>
        {
            string path = PathOf("protocol.txt");
            using var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
            var loop = Aio.GetRunningLoop();
            var exited = loop.CreateFuture();
            var (t, _) = await loop.SubprocessExec(() => new ExitProtocol(exited), "sh", ["-c", "cat; echo err >&2"],
                stdout: Stdio.From(h), stderr: Stdio.DevNull);
            Assert.IsAssignableFrom<IWriteTransport>(t.GetPipeTransport(0));   // omitted: the protocol API's default, a pipe
            Assert.Null(t.GetPipeTransport(1));
            Assert.Null(t.GetPipeTransport(2));
            var stdin = (IWriteTransport)t.GetPipeTransport(0)!;
            stdin.Write("through cat\n"u8);
            stdin.WriteEof();
            await exited;
            Assert.Equal(0, t.ReturnCode);
            Assert.Equal("through cat\n", File.ReadAllText(path));
        });
    }

    sealed class ExitProtocol(Future exited) : SubprocessProtocol
    {
        public override void ProcessExited() => exited.SetResult();
    }

    [Fact]
    public void BadHandles_ClearExceptions_NothingLeaked()
    {
        Run(async () =>
        {
            Assert.Throws<ArgumentNullException>(() => Stdio.From(null!));
            Assert.Throws<ArgumentException>(() => Stdio.From(new SafeFileHandle(-1, ownsHandle: false)));
            Assert.Throws<ArgumentOutOfRangeException>(() => Stdio.FromDescriptor(-1));

            string path = PathOf("bad.txt");
            var closed = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
            var given = Stdio.From(closed);
            closed.Dispose();
            await Assert.ThrowsAsync<ObjectDisposedException>(() => Aio.CreateSubprocessExec("true", stdout: given));

            // A descriptor that is not open: an ArgumentException naming the stream.
            var e = await Assert.ThrowsAsync<ArgumentException>(() =>
                Aio.CreateSubprocessExec("true", stdin: Stdio.Pipe, stdout: Stdio.FromDescriptor(1 << 20)));
            Assert.Equal("stdout", e.ParamName);

            using var h = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.CreateSubprocessExec("cat", stdin: Stdio.From(h), stdout: Stdio.Stdout));
            // A start that fails after the copy was made (no such program) closes the copy.
            await Assert.ThrowsAsync<FileNotFoundException>(() => Aio.CreateSubprocessExec("no-such-program-aio-test", stdout: Stdio.From(h)));
            Assert.Equal(1, OpenOn(path));
            Assert.False(h.IsClosed);

            // The loop still starts a good child with the same handle.
            var p = await Aio.CreateSubprocessExec("echo", ["ok"], stdout: Stdio.From(h));
            Assert.Equal(0, await p.Wait());
            Assert.Equal("ok\n", File.ReadAllText(path));
        });
    }

    [Fact]
    public void Values_CompareAndPrintAsWritten()
    {
        using var h = File.OpenHandle(PathOf("v.txt"), FileMode.Create, FileAccess.Write);
        Assert.Equal(Stdio.Default, default);
        Assert.NotEqual(Stdio.Inherit, Stdio.Default);
        Assert.True(Stdio.Pipe == Stdio.Pipe);
        Assert.True(Stdio.Pipe != Stdio.DevNull);
        Assert.Equal(Stdio.From(h), Stdio.From(h));
        Assert.NotEqual(Stdio.From(h), Stdio.FromDescriptor((int)h.DangerousGetHandle()));
        Assert.Equal(Stdio.FromDescriptor(7).GetHashCode(), Stdio.FromDescriptor(7).GetHashCode());
        Assert.Equal("Stdio.Pipe", Stdio.Pipe.ToString());
        Assert.Equal("Stdio.Default", default(Stdio).ToString());
        Assert.Equal("Stdio.FromDescriptor(7)", Stdio.FromDescriptor(7).ToString());
        Assert.Equal("Stdio.From(SafeFileHandle)", Stdio.From(h).ToString());
    }
}

public sealed class EpollSubprocessHandleTests : SubprocessHandleTests
{
    protected override bool Portable => false;
}

public sealed class PortableSubprocessHandleTests : SubprocessHandleTests
{
    protected override bool Portable => true;
}

/// <summary>The one-by-one test of both reactors run at once (xUnit may run the two classes in parallel).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class CloseOneByOneSwitchTests
{
    [Fact]
    public async Task TheFallbackTestsRunConcurrently_TheProcessWideDetectionIsLeftAlone()
    {
        // With a process-wide switch saved and restored by each test, an overlap left it set for the rest of the run
        // (14 times out of 20 here), and every later child took the fallback path unnoticed.
        for (int i = 0; i < 10; i++)
        {
            using var epoll = new EpollSubprocessHandleTests();
            using var portable = new PortableSubprocessHandleTests();
            var a = Task.Run(epoll.WithoutClosefrom_TheDescriptorsOpenHereAreClosedOneByOne);
            var b = Task.Run(async () =>
            {
                await Task.Delay(20);
                portable.WithoutClosefrom_TheDescriptorsOpenHereAreClosedOneByOne();
            });
            await Task.WhenAll(a, b);
            Assert.False(SpawnNative.NoCloseFrom);
            Assert.False(SpawnNative.CloseOneByOne);
        }
    }
}
