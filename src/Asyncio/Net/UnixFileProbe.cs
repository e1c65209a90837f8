using System.Runtime.InteropServices;

namespace Asyncio;

// CreateUnixServer removes a stale socket file before it binds (a socket file nobody listens on refuses
// connections), but a regular file refuses connections too and must be left alone, as asyncio checks
// S_ISSOCK before it unlinks. .NET's file APIs do not report a file's type, hence this probe.
//
// Connecting to learn whether a server listens costs a live server one short connection. On Linux,
// /proc/net/unix lists the path every socket of this network namespace is bound to, so a live server there
// is found without connecting. The list is only trusted to say "in use": a server in another network
// namespace that shares the file system (a container and its host) is not in it, nor is one that bound a
// spelling of the path other than ours (relative to another directory, through a symbolic link), so a path
// not found there is still probed by connecting.

/// <summary>Tells a socket file from other files, and finds bound socket paths; .NET's file APIs do neither.</summary>
internal static partial class UnixFileProbe
{
    const string UnixTable = "/proc/net/unix";

    /// <summary>
    /// Whether a socket of this network namespace is bound to <paramref name="path"/> (or to its full path), by
    /// /proc/net/unix; <see langword="false"/> when not found or not known (not Linux, no procfs).
    /// </summary>
    public static bool IsBoundHere(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        byte[] table;
        try { table = File.ReadAllBytes(UnixTable); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        return IsListed(table, path) || IsListed(table, Path.GetFullPath(path));
    }

    /// <summary>
    /// Whether the /proc/net/unix text <paramref name="table"/> has a socket bound to <paramref name="path"/>.
    /// A line is "Num RefCount Protocol Flags Type St Inode" and, for a bound socket, a space and the path as
    /// bound, byte for byte (the kernel escapes nothing: a path with a line break cannot be matched).
    /// </summary>
    internal static bool IsListed(ReadOnlySpan<byte> table, string path)
    {
        if (path.Contains('\n')) return false;
        byte[] want = System.Text.Encoding.UTF8.GetBytes(path);
        bool header = true;
        foreach (var range in table.Split((byte)'\n'))
        {
            var line = table[range];
            if (header) { header = false; continue; }
            int pos = 0;
            for (int field = 0; field < 7; field++)
            {
                while (pos < line.Length && line[pos] == (byte)' ') pos++;
                while (pos < line.Length && line[pos] != (byte)' ') pos++;
            }
            if (pos < line.Length && line[(pos + 1)..].SequenceEqual(want)) return true;
        }
        return false;
    }

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
