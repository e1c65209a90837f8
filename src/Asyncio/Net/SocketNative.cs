using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Asyncio;

// The stream transport's hot path on Linux: recv and send straight on the descriptor, as the minimal C
// server does, instead of through Socket.Receive/Send (which add a handle reference count, argument
// checks and a second native shim per call). Everything else (accept, connect, options, close) stays on
// the Socket object, which keeps owning the descriptor. Elsewhere the transport uses Socket.Receive/Send.
//
// Results: the byte count, or a negative SocketError. The errno values are Linux's; the ones a stream
// socket can report from recv/send are mapped to the SocketError that .NET reports for them.

internal static unsafe partial class SocketNative
{
    /// <summary>Whether the direct calls are used (Linux).</summary>
    public static readonly bool Enabled = OperatingSystem.IsLinux();

    const int MSG_NOSIGNAL = 0x4000;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Receive(int fd, byte* buffer, int length, out SocketError error)
    {
        nint n = recv(fd, buffer, length, 0);
        if (n >= 0) { error = SocketError.Success; return (int)n; }
        error = MapErrno(Marshal.GetLastPInvokeError());
        return 0;
    }

    /// <summary>
    /// One receive into two buffers (<c>readv</c>): <paramref name="first"/> is filled before any byte goes to
    /// <paramref name="second"/>.
    /// </summary>
    public static int Receive(int fd, byte* first, int firstLength, byte* second, int secondLength, out SocketError error)
    {
        IoVec* iov = stackalloc IoVec[2];
        iov[0] = new IoVec { Base = first, Length = (nuint)firstLength };
        iov[1] = new IoVec { Base = second, Length = (nuint)secondLength };
        nint n = readv(fd, iov, 2);
        if (n >= 0) { error = SocketError.Success; return (int)n; }
        error = MapErrno(Marshal.GetLastPInvokeError());
        return 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    struct IoVec { public byte* Base; public nuint Length; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Send(int fd, byte* buffer, int length, out SocketError error)
    {
        nint n = send(fd, buffer, length, MSG_NOSIGNAL);
        if (n >= 0) { error = SocketError.Success; return (int)n; }
        error = MapErrno(Marshal.GetLastPInvokeError());
        return 0;
    }

    static SocketError MapErrno(int errno) => errno switch
    {
        11 => SocketError.WouldBlock,            // EAGAIN
        4 => SocketError.Interrupted,            // EINTR
        104 => SocketError.ConnectionReset,      // ECONNRESET
        32 => SocketError.Shutdown,              // EPIPE
        103 => SocketError.ConnectionAborted,    // ECONNABORTED
        110 => SocketError.TimedOut,             // ETIMEDOUT
        107 => SocketError.NotConnected,         // ENOTCONN
        113 => SocketError.HostUnreachable,      // EHOSTUNREACH
        101 => SocketError.NetworkUnreachable,   // ENETUNREACH
        100 => SocketError.NetworkDown,          // ENETDOWN
        111 => SocketError.ConnectionRefused,    // ECONNREFUSED
        9 => SocketError.OperationAborted,       // EBADF (closed under us)
        105 => SocketError.NoBufferSpaceAvailable, // ENOBUFS
        _ => SocketError.SocketError,
    };

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(int fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint readv(int fd, IoVec* iov, int iovcnt);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(int fd, byte* buf, nint len, int flags);
}
