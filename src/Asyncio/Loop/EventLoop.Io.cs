using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Asyncio;

// The loop's I/O facet: asyncio's add_reader/add_writer family, the sock_* coroutines, and name
// resolution. Transports, servers and streams (Net/) are built on the internal half of this file.
//
// Every descriptor or socket the loop watches has one IoSource in _ioSources, keyed by descriptor (on
// Unix a socket's handle is its descriptor, so AddReader(socket) and AddReader(fd) meet). A source that
// no transport owns is detached from the reactor as soon as neither of its watches is active, as
// asyncio's selector unregisters a descriptor with no reader and no writer; a closed descriptor thus
// never stays in the kernel's set, and a reused descriptor number starts clean.
//
// The sock_* coroutines wait for readiness and then perform the operation, instead of performing it in
// the readiness callback as asyncio does. The difference matters under cancellation: a task cancelled
// after the socket became readable but before it resumed has consumed nothing, so no received bytes or
// accepted connection can be lost (asyncio loses them in that window). The waits go through the Waiter
// protocol (IoWaiter), so they take part in task cancellation, and the coroutines use the pooling
// ValueTask builder, so a wait allocates nothing in steady state.

public sealed partial class EventLoop
{
    readonly Dictionary<nint, IoSource> _ioSources = new();

    // ---- add_reader / add_writer ----

    /// <summary>
    /// Calls <paramref name="callback"/> whenever <paramref name="socket"/> is readable, until
    /// <see cref="RemoveReader(Socket)"/>; asyncio's <c>add_reader</c>. A second call replaces the callback.
    /// Loop thread only.
    /// </summary>
    /// <exception cref="InvalidOperationException">A transport or server of this loop uses the socket, or a sock_* call
    /// is waiting for it to become readable.</exception>
    public void AddReader(Socket socket, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        AddReader(socket, s_invokeAction, callback);
    }

    /// <summary>As <see cref="AddReader(Socket, Action)"/>, with a state argument (no allocation when the delegate is cached).</summary>
    public void AddReader(Socket socket, Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(callback);
        CheckThread(nameof(AddReader));
        CheckNotClosed();
        SetUserWatch(GetSource(socket, nameof(AddReader)).Reader, callback, state, nameof(AddReader));
    }

    /// <summary>
    /// Calls <paramref name="callback"/> whenever file descriptor <paramref name="fd"/> is readable;
    /// asyncio's <c>add_reader</c> for a descriptor (a pipe, an eventfd, a socket).
    /// </summary>
    /// <exception cref="NotSupportedException">The reactor watches sockets only (the portable reactor).</exception>
    public void AddReader(int fd, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        AddReader(fd, s_invokeAction, callback);
    }

    /// <summary>As <see cref="AddReader(int, Action)"/>, with a state argument.</summary>
    public void AddReader(int fd, Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckThread(nameof(AddReader));
        CheckNotClosed();
        SetUserWatch(GetSource(fd, nameof(AddReader)).Reader, callback, state, nameof(AddReader));
    }

    /// <summary>Stops watching <paramref name="socket"/> for reading; asyncio's <c>remove_reader</c>.</summary>
    /// <returns>Whether a reader was registered (a pending sock_* call's wait is no reader: it is left alone).</returns>
    public bool RemoveReader(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return RemoveUserWatch(KeyOf(socket), write: false, nameof(RemoveReader));
    }

    /// <summary>Stops watching descriptor <paramref name="fd"/> for reading; asyncio's <c>remove_reader</c>.</summary>
    /// <returns>Whether a reader was registered.</returns>
    public bool RemoveReader(int fd) => RemoveUserWatch(fd, write: false, nameof(RemoveReader));

    /// <summary>
    /// Calls <paramref name="callback"/> whenever <paramref name="socket"/> is writable, until
    /// <see cref="RemoveWriter(Socket)"/>; asyncio's <c>add_writer</c>. Loop thread only.
    /// </summary>
    /// <exception cref="InvalidOperationException">A transport or server of this loop uses the socket, or a sock_* call
    /// is waiting for it to become writable.</exception>
    public void AddWriter(Socket socket, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        AddWriter(socket, s_invokeAction, callback);
    }

    /// <summary>As <see cref="AddWriter(Socket, Action)"/>, with a state argument.</summary>
    public void AddWriter(Socket socket, Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(callback);
        CheckThread(nameof(AddWriter));
        CheckNotClosed();
        SetUserWatch(GetSource(socket, nameof(AddWriter)).Writer, callback, state, nameof(AddWriter));
    }

    /// <summary>Calls <paramref name="callback"/> whenever descriptor <paramref name="fd"/> is writable; asyncio's <c>add_writer</c>.</summary>
    /// <exception cref="NotSupportedException">The reactor watches sockets only (the portable reactor).</exception>
    public void AddWriter(int fd, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        AddWriter(fd, s_invokeAction, callback);
    }

    /// <summary>As <see cref="AddWriter(int, Action)"/>, with a state argument.</summary>
    public void AddWriter(int fd, Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckThread(nameof(AddWriter));
        CheckNotClosed();
        SetUserWatch(GetSource(fd, nameof(AddWriter)).Writer, callback, state, nameof(AddWriter));
    }

    /// <summary>Stops watching <paramref name="socket"/> for writing; asyncio's <c>remove_writer</c>.</summary>
    /// <returns>Whether a writer was registered.</returns>
    public bool RemoveWriter(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return RemoveUserWatch(KeyOf(socket), write: true, nameof(RemoveWriter));
    }

    /// <summary>Stops watching descriptor <paramref name="fd"/> for writing; asyncio's <c>remove_writer</c>.</summary>
    /// <returns>Whether a writer was registered.</returns>
    public bool RemoveWriter(int fd) => RemoveUserWatch(fd, write: true, nameof(RemoveWriter));

    // A watch that a sock_* call is waiting on belongs to that call: replacing its callback or removing it
    // would leave the call waiting forever (and its cancellation would then remove the new reader).
    void SetUserWatch(IoWatch watch, Action<object?> callback, object? state, string member)
    {
        if (watch.State is IoWaiter)
            throw new InvalidOperationException($"{member}: a sock_* call is waiting on this socket in the same direction; it cannot be watched at the same time.");
        watch.Callback = callback;
        watch.State = state;
        SetWatchActive(watch, true);
    }

    bool RemoveUserWatch(nint key, bool write, string member)
    {
        CheckThread(member);
        if (IsClosed || !_ioSources.TryGetValue(key, out var source)) return false;
        if (source.Owner != null) ThrowOwned(key, source.Owner);
        var watch = write ? source.Writer : source.Reader;
        if (!watch.Active || watch.State is IoWaiter) return false;
        watch.Callback = null;
        watch.State = null;
        SetWatchActive(watch, false);
        return true;
    }

    // ---- sources (internal API for Net/) ----

    static nint KeyOf(Socket socket) => socket.Handle;

    static int FdOf(nint key) => OperatingSystem.IsWindows() ? -1 : (int)key;

    /// <summary>Whether the reactor can watch raw file descriptors (the epoll reactor can).</summary>
    internal bool SupportsFileDescriptors => _reactor.SupportsFileDescriptors;

    IoSource GetSource(Socket socket, string member)
    {
        nint key = KeyOf(socket);
        if (_ioSources.TryGetValue(key, out var source))
        {
            if (source.Owner != null) ThrowOwned(key, source.Owner);
            return source;
        }
        return AttachNew(socket, FdOf(key), key, null);
    }

    IoSource GetSource(int fd, string member)
    {
        if (fd < 0) throw new ArgumentOutOfRangeException(nameof(fd), fd, "A file descriptor cannot be negative.");
        if (_ioSources.TryGetValue(fd, out var source))
        {
            if (source.Owner != null) ThrowOwned(fd, source.Owner);
            return source;
        }
        if (!_reactor.SupportsFileDescriptors)
            throw new NotSupportedException($"EventLoop.{member}: this loop's reactor watches sockets only; pass a Socket (raw descriptors need the epoll reactor on Linux).");
        return AttachNew(null, fd, fd, null);
    }

    IoSource AttachNew(Socket? socket, int fd, nint key, object? owner)
    {
        var s = _freeSources ?? new IoSource(this);
        _freeSources = s.NextFree;
        s.NextFree = null;
        s.Socket = socket;
        s.Fd = fd;
        s.Key = key;
        s.Owner = owner;
        _reactor.Attach(s);
        s.Attached = true;
        _ioSources.Add(key, s);
        return s;
    }

    IoSource? _freeSources;

    /// <summary>Registers a socket that a transport or server owns for its lifetime (no interest yet).</summary>
    /// <exception cref="InvalidOperationException">The socket is already watched.</exception>
    internal IoSource AttachOwned(Socket socket, object owner)
    {
        nint key = KeyOf(socket);
        if (_ioSources.TryGetValue(key, out var existing))
        {
            if (existing.Owner != null) ThrowOwned(key, existing.Owner);
            throw new InvalidOperationException($"The socket (descriptor {key}) has a reader or writer registered with AddReader/AddWriter or a pending sock_* call; remove it first.");
        }
        return AttachNew(socket, FdOf(key), key, owner);
    }

    /// <summary>Attaches a raw descriptor (a child's pipe) owned by <paramref name="owner"/>; the epoll reactor only (<see cref="SupportsFileDescriptors"/>).</summary>
    internal IoSource AttachOwnedDescriptor(int fd, object owner)
    {
        if (_ioSources.TryGetValue(fd, out var existing))
        {
            if (existing.Owner != null) ThrowOwned(fd, existing.Owner);
            throw new InvalidOperationException($"Descriptor {fd} has a reader or writer registered with AddReader/AddWriter; remove it first.");
        }
        return AttachNew(null, fd, fd, owner);
    }

    /// <summary>Turns a watch on or off; a source nobody owns is detached once both its watches are off.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetWatchActive(IoWatch watch, bool active)
    {
        if (watch.Active == active) return;
        watch.Active = active;
        var source = watch.Source;
        if (!source.Attached) return;
        _reactor.Update(source);
        if (!active && source.Owner == null && source.Idle) DetachSource(source);
    }

    /// <summary>Stops watching a source (call before closing its socket).</summary>
    internal void DetachSource(IoSource source)
    {
        if (!source.Attached) return;
        source.Attached = false;
        source.Reader.Active = source.Writer.Active = false;
        _ioSources.Remove(source.Key);
        if (!IsClosed) _reactor.Detach(source);
        source.Socket = null;
        source.Owner = null;
        source.Reader.Callback = source.Writer.Callback = null;
        source.Reader.State = source.Writer.State = null;
        source.NextFree = _freeSources;
        _freeSources = source;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowOwned(nint key, object owner) =>
        throw new InvalidOperationException($"File descriptor {key} is used by {owner}; it cannot be watched or used by sock_* calls at the same time.");

    /// <summary>Waits until <paramref name="socket"/> is readable (or writable); the wait takes part in cancellation.</summary>
    internal ValueTask WaitReady(Socket socket, bool write, string member)
    {
        var source = GetSource(socket, member);
        return IoWaiter.Start(this, write ? source.Writer : source.Reader, member);
    }

    // ---- sock_* ----

    static void CheckNonBlocking(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (socket.Blocking)
            throw new ArgumentException("The socket must be non-blocking: set Blocking = false before handing it to the loop.", nameof(socket));
    }

    /// <summary>
    /// Receives up to <paramref name="size"/> bytes from <paramref name="socket"/>, waiting until some
    /// arrive; asyncio's <c>sock_recv</c>. An empty array means the peer closed its side (or
    /// <paramref name="size"/> is 0: that returns at once). Cancelling the waiting task consumes nothing.
    /// </summary>
    /// <exception cref="ArgumentException">The socket is blocking.</exception>
    /// <exception cref="SocketException">The receive failed.</exception>
    public async ValueTask<byte[]> SockRecv(Socket socket, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var buffer = new byte[size];
        int n = await RecvInto(socket, buffer, nameof(SockRecv)).ConfigureAwait(true);
        if (n != size) Array.Resize(ref buffer, n);
        return buffer;
    }

    /// <summary>
    /// Receives into <paramref name="buffer"/>, waiting until data arrives; asyncio's <c>sock_recv_into</c>.
    /// Returns the number of bytes received (0 at end of stream). Allocates nothing in steady state.
    /// </summary>
    /// <remarks>An empty <paramref name="buffer"/> returns 0 at once, as <c>recv</c> of 0 bytes does in asyncio
    /// (.NET's zero-byte receive would instead wait until data is readable).</remarks>
    /// <exception cref="ArgumentException">The socket is blocking.</exception>
    /// <exception cref="SocketException">The receive failed.</exception>
    public ValueTask<int> SockRecvInto(Socket socket, Memory<byte> buffer) => RecvInto(socket, buffer, nameof(SockRecvInto));

    /// <summary><see cref="SockRecvInto"/>, with the public method's name for errors.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    async ValueTask<int> RecvInto(Socket socket, Memory<byte> buffer, string member)
    {
        CheckNonBlocking(socket);
        CheckThread(member);
        if (buffer.IsEmpty) return 0;
        while (true)
        {
            int n = socket.Receive(buffer.Span, SocketFlags.None, out var error);
            if (error == SocketError.Success) return n;
            if (error is not (SocketError.WouldBlock or SocketError.Interrupted)) throw new SocketException((int)error);
            await WaitReady(socket, write: false, member).ConfigureAwait(true);
        }
    }

    /// <summary>Receives one datagram of at most <paramref name="size"/> bytes and its sender; asyncio's <c>sock_recvfrom</c>.</summary>
    /// <exception cref="SocketException">The receive failed.</exception>
    public async ValueTask<(byte[] Data, EndPoint RemoteEndPoint)> SockRecvFrom(Socket socket, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var buffer = new byte[size];
        var (n, ep) = await SockRecvFromInto(socket, buffer).ConfigureAwait(true);
        if (n != size) Array.Resize(ref buffer, n);
        return (buffer, ep);
    }

    /// <summary>Receives one datagram into <paramref name="buffer"/>; asyncio's <c>sock_recvfrom_into</c>.</summary>
    /// <remarks>A datagram longer than the buffer is cut to it (the rest is discarded). A sender without an address (an
    /// unbound Unix datagram socket) is reported as a <see cref="UnixDomainSocketEndPoint"/> without a path, where asyncio gives <c>None</c>.</remarks>
    /// <exception cref="SocketException">The receive failed.</exception>
    public async ValueTask<(int Count, EndPoint RemoteEndPoint)> SockRecvFromInto(Socket socket, Memory<byte> buffer)
    {
        CheckNonBlocking(socket);
        CheckThread(nameof(SockRecvFromInto));
        while (true)
        {
            EndPoint ep = AnyEndPoint(socket.AddressFamily);
            try
            {
                int n = socket.ReceiveFrom(buffer.Span, SocketFlags.None, ref ep);
                return (n, ep);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
            {
            }
            await WaitReady(socket, write: false, nameof(SockRecvFromInto)).ConfigureAwait(true);
        }
    }

    /// <summary>
    /// The end point a receive-from starts with; .NET hands it back unchanged when the kernel reports no
    /// sender address, as for a Unix datagram from an unbound socket.
    /// </summary>
    internal static EndPoint AnyEndPoint(AddressFamily family) => family switch
    {
        AddressFamily.InterNetworkV6 => new IPEndPoint(IPAddress.IPv6Any, 0),
        AddressFamily.Unix => s_unnamedUnix,
        _ => new IPEndPoint(IPAddress.Any, 0),
    };

    // An unnamed Unix address (no path: ToString() is empty), asyncio's None/'' for such a sender. It cannot
    // be made with the constructor; it must not be a real name either ("\0" is the abstract name "@", which
    // a reply would reach). Immutable, so one serves every receive.
    static readonly EndPoint s_unnamedUnix =
        new UnixDomainSocketEndPoint("unnamed").Create(new SocketAddress(AddressFamily.Unix, 2));

    /// <summary>
    /// Sends all of <paramref name="data"/>, waiting while the socket's buffer is full; asyncio's
    /// <c>sock_sendall</c>. If the task is cancelled part of the data may have been sent, as in asyncio.
    /// </summary>
    /// <exception cref="SocketException">The send failed.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SockSendAll(Socket socket, ReadOnlyMemory<byte> data)
    {
        CheckNonBlocking(socket);
        CheckThread(nameof(SockSendAll));
        while (!data.IsEmpty)
        {
            int n = socket.Send(data.Span, SocketFlags.None, out var error);
            if (error == SocketError.Success)
            {
                data = data[n..];
                if (data.IsEmpty) return;
            }
            else if (error is not (SocketError.WouldBlock or SocketError.Interrupted)) throw new SocketException((int)error);
            await WaitReady(socket, write: true, nameof(SockSendAll)).ConfigureAwait(true);
        }
    }

    /// <summary>Sends one datagram to <paramref name="remote"/>, waiting while the socket's buffer is full; asyncio's <c>sock_sendto</c>.</summary>
    /// <returns>The number of bytes sent.</returns>
    /// <exception cref="SocketException">The send failed.</exception>
    public async ValueTask<int> SockSendTo(Socket socket, ReadOnlyMemory<byte> data, EndPoint remote)
    {
        CheckNonBlocking(socket);
        ArgumentNullException.ThrowIfNull(remote);
        CheckThread(nameof(SockSendTo));
        while (true)
        {
            try
            {
                return socket.SendTo(data.Span, SocketFlags.None, remote);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
            {
            }
            await WaitReady(socket, write: true, nameof(SockSendTo)).ConfigureAwait(true);
        }
    }

    /// <summary>
    /// Connects <paramref name="socket"/> to <paramref name="remote"/>; asyncio's <c>sock_connect</c>. A
    /// <see cref="DnsEndPoint"/> is resolved first (the first address of the socket's family is used).
    /// </summary>
    /// <exception cref="SocketException">The connection failed (for example <see cref="SocketError.ConnectionRefused"/>).</exception>
    public async ValueTask SockConnect(Socket socket, EndPoint remote)
    {
        CheckNonBlocking(socket);
        ArgumentNullException.ThrowIfNull(remote);
        CheckThread(nameof(SockConnect));
        if (remote is DnsEndPoint dns)
        {
            var infos = await GetAddrInfo(dns.Host, dns.Port, socket.AddressFamily, socket.SocketType, socket.ProtocolType);
            if (infos.Count == 0) throw new SocketException((int)SocketError.HostNotFound);
            remote = infos[0].EndPoint;
        }
        try
        {
            socket.Connect(remote);
            return;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.AlreadyInProgress)
        {
        }
        await WaitReady(socket, write: true, nameof(SockConnect)).ConfigureAwait(true);
        int error = (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
        if (error != 0) throw new SocketException(error);
    }

    /// <summary>
    /// Accepts a connection on a listening socket, waiting until one arrives; asyncio's <c>sock_accept</c>.
    /// The new socket is non-blocking. Cancelling the waiting task accepts nothing.
    /// </summary>
    /// <exception cref="SocketException">The accept failed.</exception>
    public async ValueTask<(Socket Socket, EndPoint RemoteEndPoint)> SockAccept(Socket socket)
    {
        CheckNonBlocking(socket);
        CheckThread(nameof(SockAccept));
        while (true)
        {
            try
            {
                var conn = socket.Accept();
                conn.Blocking = false;
                return (conn, conn.RemoteEndPoint!);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted or SocketError.ConnectionAborted)
            {
            }
            await WaitReady(socket, write: false, nameof(SockAccept)).ConfigureAwait(true);
        }
    }

    // ---- name resolution ----

    /// <summary>
    /// Resolves <paramref name="host"/> and <paramref name="port"/> to socket addresses on a worker thread;
    /// asyncio's <c>getaddrinfo</c>. A literal address is returned without a lookup. Each address is listed
    /// once per socket type asked for (stream and datagram when <paramref name="type"/> is
    /// <see cref="SocketType.Unknown"/>).
    /// </summary>
    /// <param name="host">A host name or address literal; <see langword="null"/> for the wildcard address (asyncio's passive lookup) or loopback.</param>
    /// <param name="port">The port to put in every address.</param>
    /// <param name="family"><see cref="AddressFamily.Unspecified"/> for any, or the family to keep.</param>
    /// <param name="type">The socket type to report.</param>
    /// <param name="protocol">The protocol to report.</param>
    /// <param name="passive">With a <see langword="null"/> host: the wildcard address (for binding) instead of loopback.</param>
    /// <exception cref="SocketException">The name could not be resolved.</exception>
    public Future<IReadOnlyList<AddrInfo>> GetAddrInfo(string? host, int port, AddressFamily family = AddressFamily.Unspecified,
        SocketType type = SocketType.Unknown, ProtocolType protocol = ProtocolType.Unspecified, bool passive = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort);
        CheckThread(nameof(GetAddrInfo));
        IPAddress[]? literal = null;
        if (host == null)
            literal = passive ? [IPAddress.IPv6Any, IPAddress.Any] : [IPAddress.IPv6Loopback, IPAddress.Loopback];
        else if (IPAddress.TryParse(host, out var a)) literal = [a];
        if (literal != null)
        {
            var f = new Future<IReadOnlyList<AddrInfo>>(this);
            f.SetResult(MakeAddrInfos(literal, port, family, type, protocol, host ?? ""));
            return f;
        }
        return RunInExecutor<IReadOnlyList<AddrInfo>>(null, () =>
        {
            var entry = Dns.GetHostEntry(host!, family is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 ? family : AddressFamily.Unspecified);
            var list = MakeAddrInfos(entry.AddressList, port, family, type, protocol, entry.HostName);
            if (list.Count == 0) throw new SocketException((int)SocketError.HostNotFound);
            return list;
        });
    }

    static List<AddrInfo> MakeAddrInfos(IPAddress[] addresses, int port, AddressFamily family, SocketType type, ProtocolType protocol, string canonical)
    {
        var list = new List<AddrInfo>();
        foreach (var addr in addresses)
        {
            if (family != AddressFamily.Unspecified && addr.AddressFamily != family) continue;
            if (addr.AddressFamily == AddressFamily.InterNetworkV6 && !Socket.OSSupportsIPv6) continue;
            if (type is SocketType.Unknown or SocketType.Stream)
                list.Add(new AddrInfo(addr.AddressFamily, SocketType.Stream, protocol == ProtocolType.Unspecified ? ProtocolType.Tcp : protocol, canonical, new IPEndPoint(addr, port)));
            if (type is SocketType.Unknown or SocketType.Dgram)
                list.Add(new AddrInfo(addr.AddressFamily, SocketType.Dgram, protocol == ProtocolType.Unspecified ? ProtocolType.Udp : protocol, canonical, new IPEndPoint(addr, port)));
            if (type is not (SocketType.Unknown or SocketType.Stream or SocketType.Dgram))
                list.Add(new AddrInfo(addr.AddressFamily, type, protocol, canonical, new IPEndPoint(addr, port)));
        }
        return list;
    }

    /// <summary>
    /// Looks up the host name and service of <paramref name="endPoint"/> on a worker thread; asyncio's
    /// <c>getnameinfo</c>. The service is always the port number (.NET has no services database); the host
    /// falls back to the numeric address when the lookup fails, as <c>getnameinfo</c> without
    /// <c>NI_NAMEREQD</c> does.
    /// </summary>
    public Future<(string Host, string Service)> GetNameInfo(IPEndPoint endPoint, bool numericHost = false)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        CheckThread(nameof(GetNameInfo));
        string service = endPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (numericHost)
        {
            var f = new Future<(string, string)>(this);
            f.SetResult((endPoint.Address.ToString(), service));
            return f;
        }
        return RunInExecutor(null, () =>
        {
            string host;
            try { host = Dns.GetHostEntry(endPoint.Address).HostName; }
            catch (SocketException) { host = endPoint.Address.ToString(); }
            return (host, service);
        });
    }
}

/// <summary>One result of <see cref="EventLoop.GetAddrInfo"/>: asyncio's <c>(family, type, proto, canonname, sockaddr)</c> tuple.</summary>
/// <param name="Family">The address family.</param>
/// <param name="SocketType">The socket type.</param>
/// <param name="Protocol">The protocol.</param>
/// <param name="CanonicalName">The canonical host name (empty for literal addresses).</param>
/// <param name="EndPoint">The address and port.</param>
public readonly record struct AddrInfo(AddressFamily Family, SocketType SocketType, ProtocolType Protocol, string CanonicalName, IPEndPoint EndPoint);

/// <summary>A wait for readiness of one watch (pooled); see the Waiter protocol.</summary>
internal sealed class IoWaiter : Waiter
{
    IoWatch? _watch;

    public static ValueTask Start(EventLoop loop, IoWatch watch, string member)
    {
        if (watch.Active)
            throw new InvalidOperationException($"{member}: this socket is already watched in the same direction, by another coroutine's wait or by AddReader/AddWriter (RemoveReader/RemoveWriter first).");
        var w = WaiterPool<IoWaiter>.Rent();
        w.Init(loop);
        w._watch = watch;
        watch.Callback = s_ready;
        watch.State = w;
        loop.SetWatchActive(watch, true);
        return new ValueTask(w, w.Version);
    }

    static readonly Action<object?> s_ready = static o =>
    {
        var w = (IoWaiter)o!;
        w.Disarm();
        w.Wake();
    };

    void Disarm()
    {
        var watch = _watch!;
        watch.Callback = null;
        watch.State = null;
        Loop.SetWatchActive(watch, false);
    }

    protected override void RemoveFromPrimitive() => Disarm();

    internal override (string Operation, object? Target) Describe() => 
        (ReferenceEquals(_watch, _watch?.Source.Writer) ? "socket writable" : "socket readable", _watch?.Source.Owner ?? _watch?.Source.Socket);

    protected override void ReturnToPool()
    {
        _watch = null;
        WaiterPool<IoWaiter>.Return(this);
    }
}
