using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Asyncio;

// The reactor for platforms without epoll (and for tests of this path on Linux).
//
// The loop waits on a wait handle that Wake() and the I/O poller set. Timeouts are rounded up to whole
// milliseconds, so a timer is never early but may be up to a millisecond late.
//
// I/O readiness comes from a poller thread that asks .NET's portable readiness call, Socket.Select (poll
// on Unix, select on Windows), about every socket with an active watch, and marshals what it finds to
// the loop: it appends (source, directions) to _fired under the lock and sets the wait handle; the loop's
// Poll takes the list and fires the watches, which queue their callbacks on the ready queue exactly as
// the epoll reactor does. .NET's completion-based operations (ReceiveAsync and friends) were considered
// and rejected as the base: they cannot express "writable" or "a connection is waiting to be accepted"
// without performing the operation, and the loop's contract (asyncio's add_reader/add_writer, and the
// transports built on it) is readiness. Both reactors pass the same conformance suite.
//
// Delivery is one-shot per direction: a direction the poller reported is left out of its next Select
// (PortFired) until the loop has run the callbacks of that batch and polls again, when it is re-armed.
// Without that the poller would report a level-triggered readiness over and over while the loop has not
// yet had the chance to consume it. Interest changes and re-arming wake the poller out of Select through
// a loopback datagram socket (the only self-pipe that Select can watch on every platform).
//
// Only sockets can be watched here: raw file descriptors throw NotSupportedException, as asyncio's
// proactor loop does on Windows.

/// <summary>
/// The reactor for platforms without epoll: a wait handle for wake-ups and a poller thread built on
/// <c>Socket.Select</c> for I/O readiness. See the file's opening comment.
/// </summary>
internal sealed class PortableReactor : IReactor
{
    const int ReadBit = 1, WriteBit = 2;

    readonly ManualResetEventSlim _event = new(false, spinCount: 0);
    readonly object _lock = new();
    readonly HashSet<IoSource> _sources = new();                // guarded by _lock
    List<(IoSource Source, int Bits)> _fired = new();           // guarded by _lock
    List<(IoSource Source, int Bits)> _firedTaken = new();      // loop thread
    readonly List<IoSource> _rearm = new();                     // loop thread
    Thread? _poller;
    Socket? _wakeRecv, _wakeSend;
    EndPoint? _wakeEndPoint;
    int _pollerWakePending;
    long _epoch;                 // snapshots taken by the poller (guarded by _lock)
    volatile bool _disposed;
    int _attached;

    public bool HasRegistrations => _attached != 0;

    public bool SupportsFileDescriptors => false;

    public void Poll(long timeoutTicks)
    {
        if (_rearm.Count != 0)
        {
            lock (_lock)
                foreach (var s in _rearm) s.PortFired = 0;
            _rearm.Clear();
            WakePoller();
        }
        if (timeoutTicks != 0)
        {
            int ms = ReactorTimeout.ToMilliseconds(timeoutTicks);
            _event.Wait(ms);
        }
        _event.Reset();
        if (_poller == null) return;
        lock (_lock)
        {
            if (_fired.Count == 0) return;
            (_fired, _firedTaken) = (_firedTaken, _fired);
        }
        foreach (var (source, bits) in _firedTaken)
        {
            if (!source.Attached) continue;
            if ((bits & ReadBit) != 0) source.Reader.Fire();
            if ((bits & WriteBit) != 0) source.Writer.Fire();
            _rearm.Add(source);
        }
        _firedTaken.Clear();
    }

    public void Wake() => _event.Set();

    public void Attach(IoSource source)
    {
        if (source.Socket == null)
            throw new NotSupportedException("The portable reactor watches sockets only; raw file descriptors need the epoll reactor (Linux).");
        EnsurePoller();
        lock (_lock)
        {
            source.PortWant = 0;
            source.PortFired = 0;
            _sources.Add(source);
        }
        _attached++;
    }

    public void Update(IoSource source)
    {
        int want = (source.Reader.Active ? ReadBit : 0) | (source.Writer.Active ? WriteBit : 0);
        lock (_lock)
        {
            if (want == source.PortWant) return;
            source.PortWant = want;
        }
        WakePoller();
    }

    public void Detach(IoSource source)
    {
        lock (_lock)
        {
            _sources.Remove(source);
            source.PortWant = 0;
            if (source.PortInSelect)
            {
                // Select holds a reference on every socket it watches, and .NET closes a socket that
                // another thread is using abortively (the peer would see a reset). Wait until the poller
                // has left Select and let go of it: the caller closes the socket next.
                long epoch = _epoch;
                WakePoller();
                var deadline = Environment.TickCount64 + 2000;
                while (_epoch == epoch && !_disposed && Environment.TickCount64 < deadline) Monitor.Wait(_lock, 100);
            }
        }
        _attached--;
        WakePoller();
    }

    void EnsurePoller()
    {
        if (_poller != null) return;
        var family = Socket.OSSupportsIPv4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
        var loopback = family == AddressFamily.InterNetwork ? IPAddress.Loopback : IPAddress.IPv6Loopback;
        _wakeRecv = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
        _wakeRecv.Bind(new IPEndPoint(loopback, 0));
        _wakeRecv.Blocking = false;
        _wakeEndPoint = _wakeRecv.LocalEndPoint!;
        _wakeSend = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
        _wakeSend.Blocking = false;
        _poller = new Thread(PollerMain) { IsBackground = true, Name = "Asyncio portable reactor" };
        _poller.Start();
    }

    void WakePoller()
    {
        if (_wakeSend == null || Interlocked.Exchange(ref _pollerWakePending, 1) != 0) return;
        try { _wakeSend.SendTo(s_oneByte, _wakeEndPoint!); }
        catch (SocketException) { Volatile.Write(ref _pollerWakePending, 0); }
        catch (ObjectDisposedException) { }
    }

    static readonly byte[] s_oneByte = [1];

    void PollerMain()
    {
        var reads = new List<Socket>();
        var writes = new List<Socket>();
        var errors = new List<Socket>();
        var bySocket = new Dictionary<Socket, IoSource>(ReferenceEqualityComparer.Instance);
        var drain = new byte[64];
        while (!_disposed)
        {
            reads.Clear(); writes.Clear(); errors.Clear();
            reads.Add(_wakeRecv!);
            lock (_lock)
            {
                foreach (var s in bySocket.Values) s.PortInSelect = false;
                bySocket.Clear();
                _epoch++;
                Monitor.PulseAll(_lock);
                foreach (var s in _sources)
                {
                    int m = s.PortWant & ~s.PortFired;
                    if (m == 0) continue;
                    var sock = s.Socket!;
                    if (sock.SafeHandle.IsClosed) continue;
                    bySocket[sock] = s;
                    s.PortInSelect = true;
                    if ((m & ReadBit) != 0) reads.Add(sock);
                    if ((m & WriteBit) != 0) writes.Add(sock);
                    errors.Add(sock);
                }
            }
            try
            {
                Socket.Select(reads, writes, errors, 1_000_000);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                // A socket was closed between the snapshot and the call: take a new snapshot.
                if (_disposed) return;
                Thread.Sleep(1);
                continue;
            }
            if (_disposed) return;
            bool any = false;
            lock (_lock)
            {
                foreach (var sock in reads)
                    if (bySocket.TryGetValue(sock, out var s)) any |= Report(s, ReadBit);
                foreach (var sock in writes)
                    if (bySocket.TryGetValue(sock, out var s)) any |= Report(s, WriteBit);
                foreach (var sock in errors)
                    if (bySocket.TryGetValue(sock, out var s)) any |= Report(s, s.PortWant);
            }
            if (reads.Contains(_wakeRecv!))
            {
                // Drain first, then let the next WakePoller send again. The other order loses wake-ups for
                // good: a datagram sent between the clearing and the draining would be drained with the flag
                // left set, and every later WakePoller would then skip its send, leaving interest changes,
                // re-arming and Detach to wait for Select's one-second timeout. A WakePoller that finds the
                // flag still set meanwhile needs no datagram: the poller takes its next snapshot after this.
                try { while (_wakeRecv!.Available > 0) _wakeRecv.Receive(drain); }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
                Volatile.Write(ref _pollerWakePending, 0);
            }
            if (any) _event.Set();
        }
    }

    bool Report(IoSource s, int bits)
    {
        bits &= s.PortWant & ~s.PortFired;
        if (bits == 0) return false;
        s.PortFired |= bits;
        _fired.Add((s, bits));
        return true;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        WakePoller();
        bool pollerGone = _poller?.Join(2000) ?? true;
        _wakeRecv?.Dispose();
        _wakeSend?.Dispose();
        // A poller stalled past the join (a loaded machine) may still reach its _event.Set(); a disposed event could
        // throw there, on a thread whose exception ends the process. Leave the event to the collector instead.
        if (pollerGone) _event.Dispose();
    }
}
