using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Asyncio;

// The Linux reactor: epoll on the loop thread, with an eventfd for thread-safe wake-ups.
//
// Level-triggered, because the loop asks "what is ready now" once per iteration and a callback that
// reads only part of the available data must be told again on the next iteration; edge-triggering
// would push that bookkeeping onto every reader, and would cost the echo pattern an extra read per
// event (a reader must then read until EAGAIN to re-arm the edge). Level-triggering gives one
// epoll_wait, one recv and one send per request, the same system calls as a minimal C epoll server; the
// price is an EPOLL_CTL_MOD when a transport starts or stops waiting to write, which happens only when
// the socket's send buffer is full.
//
// Registrations: each IoSource gets a slot in _slots; the epoll data word carries the slot and the
// source's generation, so an event for a source detached (and its slot reused) earlier in the same
// batch is recognised as stale and dropped. A source with no active watch is removed from the kernel's
// set (asyncio's selector unregisters it too), so a closed descriptor never lingers in it.
//
// Dispatch: ready watches queue their callbacks on the loop's ready queue (see IReactor.cs), read
// before write for one descriptor. EPOLLHUP and EPOLLERR wake both directions, as Python's selectors
// module reports them, so that a reader sees EOF or the error and a connecting writer sees the failure. The waiting call is epoll_pwait2, whose timeout is a
// timespec in nanoseconds, so a timer is late only by the kernel's timer slack (50 us by default)
// instead of by up to a millisecond as with epoll_wait's integer milliseconds; kernels before 5.11
// lack it and get epoll_wait with the timeout rounded up (never early).

internal sealed unsafe partial class EpollReactor : IReactor
{
    const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
    const uint EPOLLIN = 0x001, EPOLLOUT = 0x004, EPOLLERR = 0x008, EPOLLHUP = 0x010;
    const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800, EPOLL_CLOEXEC = 0x80000;
    const int EINTR = 4, ENOSYS = 38;
    const ulong WakeToken = ulong.MaxValue;
    const int MaxEvents = 256;

    readonly int _epfd;
    readonly int _eventfd;
    readonly byte[] _events;
    static bool s_noPwait2;
    static readonly bool s_packed = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86;
    static readonly int s_eventSize = s_packed ? 12 : 16;
    bool _disposed;
    IoSource?[] _slots = new IoSource?[64];
    int _freeSlot = -1;          // head of the free list of slots (linked through _next)
    int[] _next = new int[64];
    int _slotCount;              // slots handed out so far (high-water mark)
    int _registered;             // sources attached

    public static bool IsSupported => OperatingSystem.IsLinux();

    public EpollReactor()
    {
        _epfd = epoll_create1(EPOLL_CLOEXEC);
        if (_epfd < 0) throw new InvalidOperationException($"epoll_create1 failed (errno {Marshal.GetLastPInvokeError()}).");
        _eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (_eventfd < 0) { close(_epfd); throw new InvalidOperationException($"eventfd failed (errno {Marshal.GetLastPInvokeError()})."); }
        Ctl(EPOLL_CTL_ADD, _eventfd, EPOLLIN, WakeToken);
        _events = GC.AllocateArray<byte>(MaxEvents * s_eventSize, pinned: true);
    }

    public bool HasRegistrations => _registered != 0;

    public bool SupportsFileDescriptors => true;

    /// <summary>Whether epoll can watch <paramref name="fd"/> (it refuses regular files, directories and some devices, such as <c>/dev/null</c>): tried on a scratch epoll instance.</summary>
    internal static bool CanWatch(int fd)
    {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) return false;
        byte* ev = stackalloc byte[16];
        *(uint*)ev = EPOLLIN;
        *(ulong*)(ev + (s_packed ? 4 : 8)) = 0;
        bool ok = epoll_ctl(ep, EPOLL_CTL_ADD, fd, ev) == 0;
        close(ep);
        return ok;
    }

    void Ctl(int op, int fd, uint events, ulong data)
    {
        int errno = TryCtl(op, fd, events, data);
        if (errno != 0)
            throw new IOException($"epoll_ctl on descriptor {fd} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
    }

    int TryCtl(int op, int fd, uint events, ulong data)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + (s_packed ? 4 : 8)) = data;
        return epoll_ctl(_epfd, op, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public void Attach(IoSource source)
    {
        int slot = _freeSlot;
        if (slot >= 0) _freeSlot = _next[slot];
        else
        {
            if (_slotCount == _slots.Length)
            {
                Array.Resize(ref _slots, _slots.Length * 2);
                Array.Resize(ref _next, _next.Length * 2);
            }
            slot = _slotCount++;
        }
        _slots[slot] = source;
        source.Slot = slot;
        source.Generation++;
        source.Registered = 0;
        _registered++;
    }

    public void Update(IoSource source)
    {
        uint want = (source.Reader.Active ? EPOLLIN : 0) | (source.Writer.Active ? EPOLLOUT : 0);
        uint have = source.Registered;
        if (want == have) return;
        if (want == 0)
        {
            TryCtl(EPOLL_CTL_DEL, source.Fd, 0, 0); // a descriptor already closed has left the set
            source.Registered = 0;
            return;
        }
        ulong data = (uint)source.Slot | ((ulong)source.Generation << 32);
        Ctl(have == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, source.Fd, want, data);
        source.Registered = want;
    }

    public void Detach(IoSource source)
    {
        int slot = source.Slot;
        if (slot < 0) return;
        if (source.Registered != 0) TryCtl(EPOLL_CTL_DEL, source.Fd, 0, 0);
        source.Registered = 0;
        _slots[slot] = null;
        _next[slot] = _freeSlot;
        _freeSlot = slot;
        source.Slot = -1;
        _registered--;
    }

    public void Poll(long timeoutTicks)
    {
        int n;
        fixed (byte* events = _events)
        {
            while (true)
            {
                if (!s_noPwait2)
                {
                    Timespec ts;
                    Timespec* pts = null;
                    if (timeoutTicks >= 0)
                    {
                        // Round up so that the wait never ends before the deadline.
                        Int128 ns128 = ((Int128)timeoutTicks * 1_000_000_000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency;
                        long ns = ns128 > long.MaxValue / 2 ? long.MaxValue / 2 : (long)ns128;
                        ts.tv_sec = ns / 1_000_000_000;
                        ts.tv_nsec = ns % 1_000_000_000;
                        pts = &ts;
                    }
                    n = epoll_pwait2(_epfd, events, MaxEvents, pts, null);
                    if (n < 0 && Marshal.GetLastPInvokeError() == ENOSYS) { s_noPwait2 = true; continue; }
                }
                else
                {
                    int ms = ReactorTimeout.ToMilliseconds(timeoutTicks);
                    n = epoll_wait(_epfd, events, MaxEvents, ms);
                }
                if (n >= 0) break;
                int errno = Marshal.GetLastPInvokeError();
                // Interrupted by a signal: return without events, and the loop works out the wait again from
                // the clock (waiting the whole timeout again could fire a timer up to twice as late).
                if (errno == EINTR) return;
                throw new InvalidOperationException($"epoll wait failed (errno {errno}).");
            }
            for (int i = 0; i < n; i++)
            {
                byte* ev = events + i * s_eventSize;
                ulong data = *(ulong*)(ev + (s_packed ? 4 : 8));
                if (data == WakeToken)
                {
                    ulong value;
                    read(_eventfd, &value, 8);
                    continue;
                }
                var source = _slots[(int)(uint)data];
                if (source == null || source.Generation != (uint)(data >> 32)) continue; // detached earlier in this batch
                uint e = *(uint*)ev;
                if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) source.Reader.Fire();
                if ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) source.Writer.Fire();
            }
        }
    }

    public void Wake()
    {
        ulong one = 1;
        write(_eventfd, &one, 8);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        close(_eventfd);
        close(_epfd);
    }

    [StructLayout(LayoutKind.Sequential)]
    struct Timespec { public long tv_sec; public long tv_nsec; }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_pwait2(int epfd, byte* events, int maxevents, Timespec* timeout, void* sigmask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, void* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, void* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
