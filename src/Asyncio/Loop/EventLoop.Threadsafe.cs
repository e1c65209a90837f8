namespace Asyncio;

public sealed partial class EventLoop
{
    // Thread-safe callbacks arrive in _threadsafeIncoming under _threadsafeLock and are moved to the ready
    // queue by the loop, once per iteration. The wake-up handshake avoids a system call per post:
    //   loop:   _blocked = 1; full fence; if (_threadsafeCount != 0) do not block; poll; _blocked = 0
    //   poster: add item; _threadsafeCount = n (Interlocked, a full fence); if (_blocked) wake once
    // Both sides write then fence then read, so at least one of them sees the other: either the loop
    // sees the item and does not block, or the poster sees the loop blocked and wakes it. "Wake once" rests on
    // _wakeSignalled meaning "a wake-up is written and not read yet", so every poll of the reactor (which may
    // read it) clears the flag after it returns, the idle spin's polls included.
    readonly object _threadsafeLock = new();
    List<ReadyItem> _threadsafeIncoming = new();
    List<ReadyItem> _threadsafeDraining = new();
    int _threadsafeCount;

    /// <summary>Callbacks posted from other threads and not yet taken into the ready queue (tests).</summary>
    internal int ThreadsafePending => Volatile.Read(ref _threadsafeCount);

    /// <summary>Callbacks that arrived through the thread-safe queue (tests check that loop-thread work never takes it).</summary>
    internal long ThreadsafePosts;
    int _blocked;
    int _wakeSignalled;

    /// <summary>Whether the loop is in (or entering) a blocking wait of its reactor, where a post has to wake it (tests).</summary>
    internal bool BlockedInReactor => Volatile.Read(ref _blocked) != 0;

    /// <summary>
    /// Test hook: runs inside a post that found the loop blocked, before the post signals the wake-up, so that
    /// a test can let the loop's wait end on its own in between (the order that once lost a later wake-up).
    /// </summary>
    internal Action? BeforeWakeSignalForTests;

    /// <summary>
    /// Schedules <paramref name="callback"/> from any thread and wakes the loop if it is waiting;
    /// asyncio's <c>call_soon_threadsafe</c>. It runs before callbacks scheduled later with
    /// <see cref="CallSoon(Action)"/>, as in asyncio.
    /// </summary>
    /// <returns>A handle that keeps the callback from running if cancelled before it runs (on the loop's thread,
    /// as every <see cref="Handle"/>).</returns>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    public Handle CallSoonThreadsafe(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return CallSoonThreadsafe(s_invokeAction, callback);
    }

    /// <summary>Schedules <paramref name="callback"/> with <paramref name="state"/> from any thread; see <see cref="CallSoonThreadsafe(Action)"/>.</summary>
    /// <returns>A handle that keeps the callback from running if cancelled before it runs.</returns>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    public Handle CallSoonThreadsafe(Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        // The loop's pool of entries belongs to its thread, so a caller elsewhere gets a fresh entry, and it is
        // not pooled after it runs either (threads that post a lot would grow the pool without bound).
        var e = new CallbackEntry(this, pooled: false) { Callback = callback, State = state, Context = ContextFlow.ToHandOn(ExecutionContext.Capture(), _loopContext) };
        Post(CallbackEntry.Run, e, null, throwIfClosed: true);
        return new Handle(e, e.Version);
    }

    /// <summary>The library's own thread-safe posts: as <see cref="CallSoonThreadsafe(Action{object?}, object?)"/> without a handle (allocates nothing).</summary>
    internal void PostThreadsafe(Action<object?> callback, object? state) => Post(callback, state, null, throwIfClosed: true);


    /// <summary>
    /// Runs <paramref name="callback"/> from any thread where it may touch the loop's state: at once on the
    /// loop's thread, or while the loop is not running (under the post lock, which Close and RunForever also
    /// take to change the state, so neither interleaves); otherwise posted to the loop. <see langword="false"/>
    /// once the loop is closed: the callback does not run and nothing throws (a post that Close drops later
    /// does not run either).
    /// </summary>
    internal bool RunOrPostThreadsafe(Action<object?> callback, object? state)
    {
        if (IsLoopThread)
        {
            callback(state);
            return true;
        }
        lock (_threadsafeLock)
        {
            if (_state == LoopState.Closed) return false;
            if (_state == LoopState.Running) Post(callback, state, null, throwIfClosed: false);
            else callback(state);
            return true;
        }
    }

    /// <summary>
    /// A continuation posted to a scope's synchronisation context (any thread). One that arrives after the
    /// loop closed has nowhere to run: it is dropped (a Send is refused instead: CancelScope.Send).
    /// </summary>
    internal void PostFromContext(SendOrPostCallback d, object? state, CancelScope scope) =>
        PostAnyThread(s_runPosted, new PostedCallback(d, state), scope, throwIfClosed: false);

    /// <summary>
    /// Queues an internal callback from any thread, in the loop's own scope, for a later iteration; one that
    /// arrives after the loop closed is dropped.
    /// </summary>
    internal void PostInternal(Action<object?> callback, object? state) =>
        PostAnyThread(callback, state, _rootScope, throwIfClosed: false);

    /// <summary>
    /// Queues a callback from any thread that runs in <paramref name="scope"/>, for a later iteration; one that
    /// arrives after the loop closed is dropped (a coroutine resuming in another task than the one that ended it),
    /// or with <paramref name="throwIfClosed"/> refused.
    /// </summary>
    internal void PostInScope(Action<object?> callback, object? state, CancelScope scope, bool throwIfClosed = false) =>
        PostAnyThread(callback, state, scope, throwIfClosed);

    /// <summary>Straight onto the ready queue on the running loop's thread; through the thread-safe queue otherwise.</summary>
    void PostAnyThread(Action<object?> callback, object? state, CancelScope scope, bool throwIfClosed)
    {
        if (_state == LoopState.Running && IsLoopThread)
        {
            _ready.Enqueue(callback, state, scope, ReadyFlags.None);
            return;
        }
        Post(callback, state, scope, throwIfClosed);
    }

    /// <summary>The loop's own scope, for internal posts that belong to no task.</summary>
    internal CancelScope RootScope => _rootScope;

    sealed class PostedCallback(SendOrPostCallback d, object? state)
    {
        public readonly SendOrPostCallback D = d;
        public readonly object? State = state;
    }

    static readonly Action<object?> s_runPosted = static o =>
    {
        var p = (PostedCallback)o!;
        p.D(p.State);
    };

    void Post(Action<object?> callback, object? state, CancelScope? scope, bool throwIfClosed)
    {
        lock (_threadsafeLock)
        {
            if (_state == LoopState.Closed)
            {
                if (throwIfClosed) throw new InvalidOperationException("The event loop is closed.");
                return;
            }
            _threadsafeIncoming.Add(new ReadyItem { Callback = callback, State = state, Scope = scope ?? _rootScope });
            ThreadsafePosts++;
            Interlocked.Exchange(ref _threadsafeCount, _threadsafeIncoming.Count);
            // Woken inside the lock: Close marks the loop closed under it before it releases the reactor, so
            // the wake-up descriptor written here is still this loop's (outside, it could already be closed
            // and its number reused by another file). Only a blocked loop is woken, once, so this is rare.
            if (Volatile.Read(ref _blocked) != 0)
            {
                BeforeWakeSignalForTests?.Invoke();
                if (Interlocked.Exchange(ref _wakeSignalled, 1) == 0) _reactor.Wake();
            }
        }
    }

    void DrainThreadsafe()
    {
        List<ReadyItem> items;
        lock (_threadsafeLock)
        {
            items = _threadsafeIncoming;
            _threadsafeIncoming = _threadsafeDraining;
            _threadsafeDraining = items;
            Interlocked.Exchange(ref _threadsafeCount, 0);
        }
        foreach (var item in items) _ready.Enqueue(item.Callback, item.State, item.Scope, item.Flags);
        items.Clear();
    }
}

/// <summary>
/// The state of a posted callback that must learn when the loop closes without running it (a submission
/// whose submitter would otherwise wait for ever). <see cref="EventLoop.Close"/> calls it for every callback it drops.
/// </summary>
internal interface IDroppedOnClose
{
    /// <summary>The loop closed before the callback ran (called on the closing thread).</summary>
    void LoopClosed();
}
