using System.Runtime.InteropServices;

namespace Asyncio;

// CreateUnixServer removes a stale socket file before it binds (a socket file nobody listens on refuses
// connections), but a regular file refuses connections too and must be left alone, as asyncio checks
// S_ISSOCK before it unlinks. .NET's file APIs do not report a file's type, hence this probe.

/// <summary>Tells a socket file from other files; .NET's file APIs do not report a file's type.</summary>
internal static partial class UnixFileProbe
{
    /// <summary>
    /// Whether <paramref name="path"/> names a socket file. On Unix only a socket fails <c>open()</c> with
    /// ENXIO (Linux) or EOPNOTSUPP (macOS, the BSDs); O_NONBLOCK keeps a FIFO's open from waiting for a
    /// writer. On Windows a socket file is a reparse point.
    /// </summary>
    public static bool IsSocket(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            try { return (File.GetAttributes(path) & FileAttributes.ReparsePoint) != 0; }
            catch (IOException) { return false; }
        }
        bool linux = OperatingSystem.IsLinux();
        int fd = open(path, linux ? 0x800 : 0x4); // O_RDONLY | O_NONBLOCK
        if (fd >= 0)
        {
            close(fd);
            return false;
        }
        int errno = Marshal.GetLastPInvokeError();
        return errno == 6 /* ENXIO */ || errno == (linux ? 95 : 102) /* EOPNOTSUPP */;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
