using System.Runtime.InteropServices;

namespace Asyncio;

/// <summary>
/// What a child's standard stream is connected to; asyncio's <c>None</c>, <c>PIPE</c>, <c>DEVNULL</c>, <c>STDOUT</c>,
/// a file descriptor or a file object, for the <c>stdin</c>, <c>stdout</c> and <c>stderr</c> arguments of
/// <see cref="Aio.CreateSubprocessExec(string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, int, bool, IEnumerable{SafeHandle}?, int?)"/>
/// and <see cref="EventLoop.SubprocessExec{TProtocol}(Func{TProtocol}, string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, bool, IEnumerable{SafeHandle}?, int?)"/>.
/// </summary>
/// <remarks>
/// <para><c>default(Stdio)</c>, what an omitted argument is, stands for the call's own default, as in asyncio: the
/// parent's stream for <see cref="Aio.CreateSubprocessExec(string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, int, bool, IEnumerable{SafeHandle}?, int?)"/>,
/// a pipe for <see cref="EventLoop.SubprocessExec{TProtocol}(Func{TProtocol}, string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, bool, IEnumerable{SafeHandle}?, int?)"/>.</para>
/// <para>With <see cref="From(SafeHandle)"/> or <see cref="FromDescriptor"/> the child gets its own copy of the
/// descriptor, made when it starts: the handle stays the caller's, who may close it as soon as the start has
/// returned. A child and its parent sharing an open file share its offset, but .NET's <see cref="FileStream"/> keeps a
/// position of its own, which the child's writes do not move (the stream's next write overwrites them): give the
/// child a handle that only it writes through (for example from <see cref="File.OpenHandle"/>); .NET's
/// <see cref="FileMode.Append"/> does not open the file with <c>O_APPEND</c>, so it does not help.</para>
/// <para>The child also shares the open file's <c>O_NONBLOCK</c> flag. .NET makes a socket's or a pipe stream's
/// descriptor non-blocking at its first asynchronous operation (<see cref="System.Net.Sockets.Socket.Blocking"/> still
/// says <see langword="true"/>), and a child writing more than the buffer holds then fails with <c>EAGAIN</c>: give a
/// child a socket or pipe that .NET has not used asynchronously.</para>
/// </remarks>
public readonly struct Stdio : IEquatable<Stdio>
{
    internal enum Kind : byte { Default, Inherit, Pipe, DevNull, Stdout, Handle, Descriptor }

    readonly SafeHandle? _handle;
    readonly int _fd;
    internal readonly Kind Mode;

    Stdio(Kind mode, SafeHandle? handle = null, int fd = -1)
    {
        Mode = mode;
        _handle = handle;
        _fd = fd;
    }

    /// <summary>The call's own default (what an omitted argument is): <see cref="Inherit"/> for the stream API, <see cref="Pipe"/> for the protocol API.</summary>
    public static Stdio Default => default;

    /// <summary>The parent's own stream (asyncio's <c>None</c>).</summary>
    public static Stdio Inherit => new(Kind.Inherit);

    /// <summary>A pipe to this process: <see cref="Subprocess.Stdin"/>, <see cref="Subprocess.Stdout"/> or <see cref="Subprocess.Stderr"/> (asyncio's <c>PIPE</c>).</summary>
    public static Stdio Pipe => new(Kind.Pipe);

    /// <summary>The null device: reads see end of file, writes are discarded (asyncio's <c>DEVNULL</c>).</summary>
    public static Stdio DevNull => new(Kind.DevNull);

    /// <summary>For stderr only: the same as the child's stdout, whatever that is (asyncio's <c>STDOUT</c>, a shell's <c>2&gt;&amp;1</c>).</summary>
    public static Stdio Stdout => new(Kind.Stdout);

    /// <summary>
    /// The open file, pipe end or socket behind <paramref name="handle"/> (asyncio's file object): a
    /// <see cref="Microsoft.Win32.SafeHandles.SafeFileHandle"/> from <see cref="File.OpenHandle"/>, a pipe end
    /// (<see cref="System.IO.Pipes.AnonymousPipeServerStream.ClientSafePipeHandle"/>), a socket's
    /// <see cref="System.Net.Sockets.Socket.SafeHandle"/>. The child gets a copy; the handle stays the caller's.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="handle"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="handle"/> is invalid, or its value is not a file descriptor (negative or beyond <see cref="int.MaxValue"/>).</exception>
    public static Stdio From(SafeHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (handle.IsInvalid) throw new ArgumentException("The handle is invalid.", nameof(handle));
        if (!IsDescriptor(handle)) throw new ArgumentException($"The handle's value {handle.DangerousGetHandle()} is not a file descriptor.", nameof(handle));
        return new(Kind.Handle, handle);
    }

    /// <summary>Whether the value of <paramref name="handle"/> can be a file descriptor (an <c>int</c> from 0 up): one that is not, a pointer, would be cut to some other descriptor's number.</summary>
    internal static bool IsDescriptor(SafeHandle handle) => handle.DangerousGetHandle() is >= 0 and <= int.MaxValue;

    /// <summary>The open file descriptor <paramref name="fd"/> of this process (asyncio's integer descriptor). The child gets a copy; the descriptor stays the caller's.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fd"/> is negative.</exception>
    public static Stdio FromDescriptor(int fd)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        return new(Kind.Descriptor, fd: fd);
    }

    /// <summary>This value, or <paramref name="fallback"/> if it is <see cref="Default"/> (the call resolves its default).</summary>
    internal Stdio Or(Stdio fallback) => Mode == Kind.Default ? fallback : this;

    /// <summary>Throws if the caller's handle was closed since (before anything is made for the child).</summary>
    internal void CheckUsable(string paramName)
    {
        if (Mode == Kind.Handle && _handle!.IsClosed)
            throw new ObjectDisposedException(_handle.GetType().Name, $"The handle given for the child's {paramName} is closed.");
    }

    /// <summary>
    /// A close-on-exec copy of the caller's descriptor numbered 3 or above, for the child's stream
    /// <paramref name="paramName"/>: above the standard streams so that putting one in place cannot overwrite another
    /// before it is copied. The caller closes it once the child has started.
    /// </summary>
    /// <exception cref="ArgumentException">The descriptor is not open.</exception>
    internal int Duplicate(string paramName)
    {
        if (Mode == Kind.Descriptor) return SpawnNative.Duplicate(_fd, paramName);
        bool added = false;
        try
        {
            _handle!.DangerousAddRef(ref added);
            return SpawnNative.Duplicate((int)_handle.DangerousGetHandle(), paramName);
        }
        catch (ObjectDisposedException)
        {
            throw new ObjectDisposedException(_handle!.GetType().Name, $"The handle given for the child's {paramName} is closed.");
        }
        finally
        {
            if (added) _handle!.DangerousRelease();
        }
    }

    /// <inheritdoc/>
    public bool Equals(Stdio other) => Mode == other.Mode && ReferenceEquals(_handle, other._handle) && _fd == other._fd;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Stdio other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Mode, _handle, _fd);

    /// <summary>Whether two values connect a stream to the same thing.</summary>
    public static bool operator ==(Stdio left, Stdio right) => left.Equals(right);

    /// <summary>Whether two values connect a stream to different things.</summary>
    public static bool operator !=(Stdio left, Stdio right) => !left.Equals(right);

    /// <summary>The value as it is written in code: <c>Stdio.Pipe</c>, <c>Stdio.FromDescriptor(5)</c>, <c>Stdio.From(SafeFileHandle)</c>.</summary>
    public override string ToString() => Mode switch
    {
        Kind.Handle => $"Stdio.From({_handle!.GetType().Name})",
        Kind.Descriptor => $"Stdio.FromDescriptor({_fd})",
        _ => $"Stdio.{Mode}",
    };
}
