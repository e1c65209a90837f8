using System.Net;
using System.Net.Sockets;

namespace Asyncio.Tests.Net;

/// <summary>Helpers for network tests: loopback only, every test bounded in time.</summary>
public static class NetTest
{
    /// <summary>The bound on one network test's body, in seconds (real time).</summary>
    public const double Bound = 30;

    /// <summary>Runs <paramref name="body"/> on a real-time loop with the given reactor, bounded by <see cref="Bound"/>.</summary>
    public static void Run(bool portable, Func<Task> body) =>
        AioTest.Run(() => Aio.Timeout(Bound, body), new LoopOptions { PortableReactor = portable });

    /// <summary>As <see cref="Run"/>, returning the errors the loop reported instead of failing on them.</summary>
    public static List<ExceptionContext> RunCollectingErrors(bool portable, Func<Task> body) =>
        AioTest.RunCollectingErrors(() => Aio.Timeout(Bound, body), new LoopOptions { PortableReactor = portable });

    /// <summary>A connected pair of non-blocking TCP sockets on 127.0.0.1.</summary>
    public static (Socket A, Socket B) SocketPair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var a = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        a.Connect(listener.LocalEndPoint!);
        var b = listener.Accept();
        a.Blocking = false;
        b.Blocking = false;
        a.NoDelay = b.NoDelay = true;
        return (a, b);
    }

    /// <summary>A non-blocking TCP socket listening on 127.0.0.1 at a free port.</summary>
    public static Socket Listener(int backlog = 128)
    {
        var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        l.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        l.Listen(backlog);
        l.Blocking = false;
        return l;
    }

    /// <summary>A port on 127.0.0.1 that nothing listens on (bound then released).</summary>
    public static int ClosedPort() => ClosedPorts(1)[0];

    /// <summary>
    /// <paramref name="count"/> distinct ports of 127.0.0.1 that nothing listens on. Two calls of
    /// <see cref="ClosedPort"/> may return the same port, and a socket bound to a port and connected to that
    /// same port connects to itself (TCP's simultaneous open) instead of being refused.
    /// </summary>
    public static int[] ClosedPorts(int count)
    {
        var sockets = new Socket[count];
        try
        {
            for (int i = 0; i < count; i++)
            {
                sockets[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                sockets[i].Bind(new IPEndPoint(IPAddress.Loopback, 0));
            }
            return sockets.Select(s => ((IPEndPoint)s.LocalEndPoint!).Port).ToArray();
        }
        finally
        {
            foreach (var s in sockets) s?.Dispose();
        }
    }

    /// <summary>A fresh path for a Unix domain socket in the temporary directory (the caller deletes the file).</summary>
    public static string UnixSocketPath() => Path.Combine(Path.GetTempPath(), $"aio-{Guid.NewGuid():N}.sock");

    /// <summary>Runs <paramref name="body"/> with a fresh Unix socket path, deleted afterwards; nothing where Unix sockets are unsupported.</summary>
    public static void RunWithUnixPath(bool portable, Func<string, Task> body)
    {
        if (!Socket.OSSupportsUnixDomainSockets) return;
        var path = UnixSocketPath();
        try { Run(portable, () => body(path)); }
        finally { File.Delete(path); }
    }

    /// <summary>Deterministic test data of <paramref name="n"/> bytes.</summary>
    public static byte[] Data(int n, int seed = 1)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }
}
