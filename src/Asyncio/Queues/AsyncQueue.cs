using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Asyncio;

// The queue hands out claims, not items.
//
// An item put while getters wait stays in the queue's storage, exactly where asyncio keeps it, but is
// claimed for the first getter (_claimed), which is woken; the getter takes an item from the storage when
// it resumes. A claimed item is no longer available to anyone else, so a task that arrives before the
// woken getter has resumed cannot take it (asyncio lets it, and the woken getter waits again). Putters are
// treated the same way: a slot freed while putters wait is reserved for the first one (_reserved), which
// puts its item when it resumes.
//
// Because the item never leaves the storage until the getter runs, undoing a claim is just forgetting it:
// a getter woken and then cancelled before it resumed drops its claim and the item is claimed for the next
// getter, or stays for the next get (nothing lost, order unchanged); a putter woken and then cancelled
// drops its reservation, and its item is never put (as in asyncio, a cancelled put did not happen).
//
// Invariants:
//   getters waiting  =>  no unclaimed item           (_getters non-empty => _stored == _claimed)
//   putters waiting  =>  no unreserved free slot     (_putters non-empty => IsFull)
//   0 <= _claimed <= _stored;  _stored + _reserved <= maxsize (bounded queues)
//
// Shutdown (asyncio 3.13): every waiting putter is woken with "shut down" and throws QueueShutDownError; an
// immediate shutdown also drains the storage (claims included), counts the drained items as done for Join,
// and wakes every getter with "shut down" too. After a plain shutdown, a get throws only once nothing is
// stored (asyncio: once the queue is empty). While claimed items are stored, getters wait as before: a
// claim withdrawn (its getter cancelled) passes to them, and when the last stored item is taken they are
// woken with "shut down". Throwing at once instead would leave a withdrawn claim's item to nobody, as no
// item can be put after a shutdown.
//
// The priority queue's order runs user code (its comparer), which may throw: its storage is left as it
// was, and the claim or reservation being turned into a take or a put passes on as a cancelled waiter's
// would. A drain does not compare.

/// <summary>
/// A first-in, first-out queue for the tasks of one event loop; asyncio's <c>Queue</c>.
/// <see cref="AsyncLifoQueue{T}"/> and <see cref="AsyncPriorityQueue{T}"/> change the order.
/// </summary>
/// <remarks>
/// <para>Producers <see cref="PutAsync"/> items (waiting while a bounded queue is full), consumers
/// <see cref="GetAsync"/> them (waiting while it is empty), and may report each one processed with
/// <see cref="TaskDone"/> so that <see cref="JoinAsync"/> can wait for all of them.
/// <see cref="Shutdown"/> ends the queue; <see cref="ReadAllAsync"/> enumerates items until then.
/// <see cref="TryPut"/>/<see cref="TryGet"/> are the non-waiting forms; <see cref="PutNowait"/> and
/// <see cref="GetNowait"/> are asyncio's, which throw <see cref="QueueFullError"/> and
/// <see cref="QueueEmptyError"/>. Not thread-safe: use it from the loop's thread; once a task has waited on it, a
/// call from another thread while that loop runs throws <see cref="InvalidOperationException"/> (from elsewhere, through
/// <see cref="EventLoop.CallSoonThreadsafe(Action)"/>).</para>
/// <para>Waiters are served in FIFO order. Cancellation loses nothing: a cancelled get leaves its item in
/// the queue for the next getter, a cancelled put puts nothing, and a waiter cancelled after it was woken
/// passes its turn on. Putting into a non-full queue and getting from a non-empty one allocate nothing,
/// and neither does waiting once the waiter pool is warm.</para>
/// <para><b>Differences from asyncio.</b> An item put while a getter waits is promised to that getter at
/// once: it no longer counts in <see cref="Count"/>, and a task arriving before the getter resumes cannot
/// take it (asyncio lets it barge in and sends the woken getter back to wait). Such an item still occupies
/// its slot until the getter resumes, as in asyncio, so <see cref="IsFull"/> may be true while
/// <see cref="Count"/> is below <see cref="MaxSize"/>; likewise for slots promised to woken putters. After a
/// plain <see cref="Shutdown"/>, a get waits while every item left is promised (asyncio's would take one), so
/// that an item whose getter is cancelled still goes to someone.</para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public class AsyncQueue<T>
{
    readonly int _maxSize;
    /// <summary>Items in the storage, claimed ones included.</summary>
    private protected int _stored;
    int _claimed;          // stored items promised to getters that were woken and have not resumed
    int _reserved;         // free slots promised to putters that were woken and have not resumed
    int _unfinished;       // items put and not yet reported by TaskDone (asyncio's _unfinished_tasks)
    bool _shutdown, _drained;
    WaitList _getters, _putters;
    AsyncEvent? _finished; // created by the first JoinAsync that must wait; set while _unfinished == 0
    EventLoop? _loop;
    /// <summary>Idle waiters kept for the next waits (<see cref="SpareWaiter"/>).</summary>
    internal GetWaiter<T>? SpareGetter;
    internal PutWaiter<T>? SparePutter;

    // FIFO storage: a power-of-two ring. The LIFO and priority queues keep their own (_customStorage), reached
    // through a virtual call; the FIFO queue's is tested for first and inlined, saving a call per put and get.
    T[] _ring = [];
    int _head;
    readonly bool _customStorage;

    /// <summary>
    /// Creates a queue that holds at most <paramref name="maxSize"/> items; zero or less (the default) means
    /// unbounded, as in asyncio. It binds to the event loop that first waits on it.
    /// </summary>
    public AsyncQueue(int maxSize = 0)
    {
        _maxSize = maxSize;
    }

    /// <summary>For the LIFO and priority queues, whose storage is <see cref="PutCustom"/> and <see cref="TakeCustom"/>.</summary>
    private protected AsyncQueue(int maxSize, bool customStorage) : this(maxSize)
    {
        _customStorage = customStorage;
    }

    /// <summary>The number of items the queue may hold (zero or less: unbounded); asyncio's <c>maxsize</c>.</summary>
    public int MaxSize => _maxSize;

    /// <summary>How many items a get would find now (items promised to woken getters excluded); asyncio's <c>qsize()</c>.</summary>
    public int Count => _stored - _claimed;

    /// <summary>Whether a get would find no item; asyncio's <c>empty()</c>.</summary>
    public bool IsEmpty => _stored == _claimed;

    /// <summary>Whether a put would find no free slot; asyncio's <c>full()</c>. Never true for an unbounded queue.</summary>
    public bool IsFull
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _maxSize > 0 && _stored + _reserved >= _maxSize;
    }

    /// <summary>Whether <see cref="Shutdown"/> has been called.</summary>
    public bool IsShutDown => _shutdown;

    // ---- put ----

    /// <summary>
    /// Puts <paramref name="item"/> into the queue, waiting while it is full; asyncio's <c>put()</c>. Waiting
    /// putters are served in FIFO order.
    /// </summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels the wait; the item is then not put.</param>
    /// <exception cref="QueueShutDownError">The queue is shut down (also when that happens during the wait).</exception>
    /// <exception cref="CancelledError">The task or <paramref name="cancellationToken"/> was cancelled while waiting; the item was not put.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask PutAsync(T item, CancellationToken cancellationToken = default)
    {
        if (!IsFull && !_shutdown && !cancellationToken.IsCancellationRequested)
        {
            CheckThread(nameof(PutAsync));
            PutCore(item);
            return default;
        }
        return PutSlow(item, cancellationToken);
    }

    ValueTask PutSlow(T item, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused(cancellationToken);
        if (_shutdown) return ValueTask.FromException(new QueueShutDownError());
        var w = PutWaiter<T>.Rent(LoopBinding.Bind(ref _loop, this), this, item);
        _putters.Append(w);
        TokenHook.Register(w, cancellationToken);
        return new ValueTask(w, w.Version);
    }

    /// <summary>Puts <paramref name="item"/> if a slot is free and the queue is not shut down, without waiting.</summary>
    /// <returns>Whether the item was put.</returns>
    public bool TryPut(T item)
    {
        CheckThread(nameof(TryPut));
        if (_shutdown || IsFull) return false;
        PutCore(item);
        return true;
    }

    /// <summary>Puts <paramref name="item"/> without waiting; asyncio's <c>put_nowait()</c>.</summary>
    /// <exception cref="QueueFullError">No slot is free.</exception>
    /// <exception cref="QueueShutDownError">The queue is shut down.</exception>
    public void PutNowait(T item)
    {
        CheckThread(nameof(PutNowait));
        if (_shutdown) throw new QueueShutDownError();
        if (IsFull) throw new QueueFullError();
        PutCore(item);
    }

    /// <summary>Stores an item in a free slot and claims it for the first waiting getter, if any.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void PutCore(T item)
    {
        if (_getters.IsEmpty)
        {
            PutItem(item);
            _stored++;
            _unfinished++;
            return;
        }
        PutItem(item);
        _stored++;
        _unfinished++;
        _claimed++;
        _getters.PopFirst().Wake();
    }

    /// <summary>
    /// Throws unless called on the thread of the loop the queue is bound to (by its first wait, or a join) while
    /// that loop runs; before any change, so a wrong-thread call loses nothing (LoopBinding.CheckThread).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void CheckThread(string member) => LoopBinding.CheckThread(_loop, "AsyncQueue", member);

    // ---- get ----

    /// <summary>
    /// Removes and returns an item, waiting while the queue is empty; asyncio's <c>get()</c>. Waiting getters
    /// are served in FIFO order.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait; no item is then taken.</param>
    /// <exception cref="QueueShutDownError">The queue is shut down and empty (no item is left, not even one promised
    /// to a woken getter), or was shut down immediately.</exception>
    /// <exception cref="CancelledError">The task or <paramref name="cancellationToken"/> was cancelled while waiting; no item was taken.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask<T> GetAsync(CancellationToken cancellationToken = default)
    {
        if (_stored != _claimed && !cancellationToken.IsCancellationRequested)
        {
            CheckThread(nameof(GetAsync));
            return new ValueTask<T>(TakeCore());
        }
        return GetSlow(cancellationToken);
    }

    ValueTask<T> GetSlow(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused<T>(cancellationToken);
        if (IsEnded) return ValueTask.FromException<T>(new QueueShutDownError());
        var w = GetWaiter<T>.Rent(LoopBinding.Bind(ref _loop, this), this);
        _getters.Append(w);
        TokenHook.Register(w, cancellationToken);
        return new ValueTask<T>(w, w.Version);
    }

    /// <summary>Removes an item if one is available, without waiting.</summary>
    /// <returns>Whether an item was taken.</returns>
    public bool TryGet([MaybeNullWhen(false)] out T item)
    {
        CheckThread(nameof(TryGet));
        if (_stored == _claimed)
        {
            item = default;
            return false;
        }
        item = TakeCore();
        return true;
    }

    /// <summary>Removes and returns an item without waiting; asyncio's <c>get_nowait()</c>.</summary>
    /// <exception cref="QueueEmptyError">No item is available (after a plain shutdown: items are left, all promised to
    /// woken getters, and one may come back).</exception>
    /// <exception cref="QueueShutDownError">The queue is shut down and no item is left.</exception>
    public T GetNowait()
    {
        CheckThread(nameof(GetNowait));
        if (_stored == _claimed) ThrowEmpty();
        return TakeCore();
    }

    [DoesNotReturn]
    void ThrowEmpty() => throw (IsEnded ? new QueueShutDownError() : new QueueEmptyError());

    /// <summary>Shut down with no item stored: no get can ever succeed (nothing can be put after a shutdown).</summary>
    internal bool IsEnded => _shutdown && _stored == 0;

    /// <summary>Takes an item from the storage and reserves the freed slot for the first waiting putter, if any.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    T TakeCore()
    {
        if (_putters.IsEmpty)
        {
            var item = TakeItem();
            _stored--;
            return item;
        }
        return TakeAndReserve();
    }

    T TakeAndReserve()
    {
        var item = TakeItem();
        _stored--;
        _reserved++;
        _putters.PopFirst().Wake();
        return item;
    }

    // ---- join ----

    /// <summary>
    /// Reports that an item taken from the queue has been processed; asyncio's <c>task_done()</c>. When every
    /// item put has been reported, <see cref="JoinAsync"/> returns.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called more times than items were put (asyncio's <c>ValueError</c>).</exception>
    public void TaskDone()
    {
        CheckThread(nameof(TaskDone));
        if (_unfinished <= 0) throw new InvalidOperationException("TaskDone() called more times than there were items put in the queue.");
        if (--_unfinished == 0) _finished?.Set();
    }

    /// <summary>
    /// Waits until every item put into the queue has been reported with <see cref="TaskDone"/>; asyncio's
    /// <c>join()</c>. Returns at once if none is outstanding.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public ValueTask JoinAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return CancelledError.Refused(cancellationToken);
        if (_unfinished == 0) return default;
        LoopBinding.Bind(ref _loop, this); // for the thread checks of TaskDone and Shutdown, which wake joiners
        var finished = _finished ??= new AsyncEvent();
        finished.Clear(); // items were put since it was last set
        return finished.WaitAsync(cancellationToken);
    }

    // ---- shutdown ----

    /// <summary>
    /// Shuts the queue down; asyncio's <c>shutdown()</c> (3.13). Later puts throw
    /// <see cref="QueueShutDownError"/>, and so do gets once the queue is empty; waiting putters are woken and
    /// throw it, and so are waiting getters once no item is left (items promised to woken getters count as
    /// left: one whose getter is cancelled goes to a waiting getter). With <paramref name="immediate"/> the
    /// items left are discarded at once (each counted as done for <see cref="JoinAsync"/>), so gets throw at
    /// once too.
    /// </summary>
    public void Shutdown(bool immediate = false)
    {
        CheckThread(nameof(Shutdown));
        bool drain = immediate && !_drained;
        _shutdown = true;
        if (drain)
        {
            _drained = true;
            // Each drained item counts as done (asyncio calls task_done for it), down to zero at most.
            _unfinished = Math.Max(0, _unfinished - _stored);
            ClearItems();
            _stored = 0;
            _claimed = 0; // the claimed items were drained too: their getters throw when they resume
            if (_unfinished == 0) _finished?.Set();
        }
        if (_stored == 0) WakeGettersShutDown(); // else every stored item is claimed, and getters wait for the claims
        while (!_putters.IsEmpty)
        {
            var w = _putters.PopFirst();
            ((IQueueWaiter)w).WokenByShutdown = true;
            w.Wake();
        }
    }

    void WakeGettersShutDown()
    {
        while (!_getters.IsEmpty)
        {
            var w = _getters.PopFirst();
            ((IQueueWaiter)w).WokenByShutdown = true;
            w.Wake();
        }
    }

    /// <summary>A claim was turned into a take: once a shut-down queue holds nothing, its waiting getters end.</summary>
    void ClaimTaken()
    {
        _claimed--;
        if (_shutdown && _stored == 0) WakeGettersShutDown();
    }

    // ---- enumeration ----

    /// <summary>
    /// Enumerates items as they arrive (<c>await foreach</c>), each taken as by <see cref="GetAsync"/>, until
    /// the queue is shut down and empty; the enumeration then ends instead of throwing. It does not call
    /// <see cref="TaskDone"/>.
    /// </summary>
    /// <param name="cancellationToken">Cancels a wait of the enumeration.</param>
    public IAsyncEnumerable<T> ReadAllAsync(CancellationToken cancellationToken = default) => new QueueReader<T>(this, cancellationToken);

    // ---- for the waiters ----

    internal EventLoop BindLoop() => LoopBinding.Bind(ref _loop, this);

    internal void AppendGetter(Waiter w) => _getters.Append(w);

    internal void RemoveGetter(Waiter w) => _getters.Remove(w);

    internal void RemovePutter(Waiter w) => _putters.Remove(w);

    /// <summary>A woken getter resumes and takes the item claimed for it; <see langword="false"/> if it was drained by an immediate shutdown.</summary>
    internal bool TryTakeClaimed([MaybeNullWhen(false)] out T item)
    {
        if (_drained)
        {
            item = default;
            return false;
        }
        if (_customStorage)
        {
            item = TakeClaimedCustom();
            return true;
        }
        item = TakeCore();
        ClaimTaken();
        return true;
    }

    /// <summary>
    /// <see cref="TryTakeClaimed"/> from a subclass's storage, whose order may run user code that throws (a
    /// priority queue's comparer): the storage is then unchanged, and the claim passes on as a cancelled
    /// getter's does, so that no getter is left waiting beside an unclaimed item.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    T TakeClaimedCustom()
    {
        T item;
        try
        {
            item = TakeCore();
        }
        catch
        {
            ClaimCancelled();
            throw;
        }
        ClaimTaken();
        return item;
    }

    /// <summary>A woken getter was cancelled before it resumed: its claim goes to the next getter, or the item stays available.</summary>
    internal void ClaimCancelled()
    {
        if (_drained) return;
        _claimed--;
        if (!_getters.IsEmpty)
        {
            _claimed++;
            _getters.PopFirst().Wake();
        }
    }

    /// <summary>A woken putter resumes and puts its item into the slot reserved for it.</summary>
    internal void PutReserved(T item)
    {
        if (_shutdown)
        {
            _reserved--;
            throw new QueueShutDownError();
        }
        if (_customStorage)
        {
            PutReservedCustom(item);
            return;
        }
        _reserved--;
        PutCore(item);
    }

    /// <summary>
    /// <see cref="PutReserved"/> into a subclass's storage, whose order may run user code that throws: the
    /// item is then not put, and the slot passes on as a cancelled putter's does.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    void PutReservedCustom(T item)
    {
        try
        {
            PutCore(item);
        }
        catch
        {
            ReservationCancelled();
            throw;
        }
        _reserved--;
    }

    /// <summary>A woken putter was cancelled before it resumed: its slot goes to the next putter, or stays free.</summary>
    internal void ReservationCancelled()
    {
        _reserved--;
        if (!_putters.IsEmpty && !IsFull)
        {
            _reserved++;
            _putters.PopFirst().Wake();
        }
    }

    internal int GetterCount => _getters.Count;

    internal int PutterCount => _putters.Count;

    internal int Unfinished => _unfinished;

    [Conditional("DEBUG")]
    internal void AssertInvariants()
    {
        Debug.Assert(_claimed >= 0 && _claimed <= _stored && _reserved >= 0);
        Debug.Assert(_getters.IsEmpty || _stored == _claimed, "getters wait while an item is unclaimed");
        Debug.Assert(_putters.IsEmpty || IsFull, "putters wait while a slot is free");
    }

    // ---- storage (FIFO here; the LIFO and priority queues bring their own) ----

    /// <summary>Adds an item to the storage, which holds <see cref="_stored"/> items and has room.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void PutItem(T item)
    {
        if (_customStorage)
        {
            PutCustom(item);
            return;
        }
        var ring = _ring;
        if (_stored == ring.Length) ring = GrowRing();
        ring[(_head + _stored) & (ring.Length - 1)] = item;
    }

    /// <summary>Removes the next item from the storage, which is not empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    T TakeItem()
    {
        if (_customStorage) return TakeCustom();
        var ring = _ring;
        int head = _head;
        var item = ring[head];
        ring[head] = default!;
        _head = (head + 1) & (ring.Length - 1);
        return item;
    }

    /// <summary>Empties the storage, which holds <see cref="_stored"/> items, in no particular order (an immediate shutdown).</summary>
    void ClearItems()
    {
        if (_customStorage)
        {
            ClearCustom();
            return;
        }
        Array.Clear(_ring);
        _head = 0;
    }

    /// <summary>
    /// A subclass's storage: adds an item; the storage holds <see cref="_stored"/> items and has room. If it
    /// throws, the storage must be as it was.
    /// </summary>
    private protected virtual void PutCustom(T item) => throw new UnreachableException();

    /// <summary>
    /// A subclass's storage: removes the next item in its order; the storage is not empty. If it throws, the
    /// storage must be as it was.
    /// </summary>
    private protected virtual T TakeCustom() => throw new UnreachableException();

    /// <summary>A subclass's storage: forgets its <see cref="_stored"/> items (an immediate shutdown), comparing none.</summary>
    private protected virtual void ClearCustom() => throw new UnreachableException();

    T[] GrowRing()
    {
        var bigger = new T[Math.Max(4, _ring.Length * 2)];
        for (int i = 0; i < _stored; i++) bigger[i] = _ring[(_head + i) & (_ring.Length - 1)];
        _ring = bigger;
        _head = 0;
        return bigger;
    }

    /// <summary>Describes the queue as asyncio's repr does: maxsize, size, waiters, unfinished tasks, shutdown.</summary>
    public override string ToString()
    {
        var s = $"<{GetType().Name.Split('`')[0]} maxsize={_maxSize} count={Count}";
        if (_getters.Count != 0) s += $" getters[{_getters.Count}]";
        if (_putters.Count != 0) s += $" putters[{_putters.Count}]";
        if (_unfinished != 0) s += $" tasks={_unfinished}";
        if (_shutdown) s += " shutdown";
        return s + ">";
    }
}

/// <summary>A queue waiter that a shutdown wakes instead of a claim or a reservation.</summary>
internal interface IQueueWaiter
{
    bool WokenByShutdown { set; }
}

/// <summary>
/// A waiting getter of an <see cref="AsyncQueue{T}"/>, woken with a claim on an item or by a shutdown; the
/// subclasses (<see cref="GetWaiter{T}"/>, <see cref="ReadWaiter{T}"/>) turn the claim into their result
/// and keep their own pools.
/// </summary>
internal abstract class QueueGetter<T, TResult> : Waiter<TResult>, ITokenWaiter, IQueueWaiter
{
    protected AsyncQueue<T>? Queue;
    TokenHook _hook;
    bool _shutdown;

    public bool WokenByShutdown { set => _shutdown = value; }

    protected override void RemoveFromPrimitive() => Queue!.RemoveGetter(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncQueue.GetAsync", Queue);

    protected override void OnCancelledAfterWake()
    {
        if (!_shutdown) Queue!.ClaimCancelled();
    }

    /// <summary>
    /// Takes the item claimed for this getter; <see langword="false"/> if it was drained, or the getter was woken
    /// by a shutdown (which does so only when no item is left; it still takes one if there is, as asyncio's
    /// getter checks the queue again).
    /// </summary>
    protected bool TryTakeClaimed([MaybeNullWhen(false)] out T item) =>
        _shutdown ? Queue!.TryGet(out item) : Queue!.TryTakeClaimed(out item);

    /// <summary>
    /// Clears the waiter for its next use, its queue aside (the caller forgets it unless the waiter stays that
    /// queue's spare); whether it may be pooled now (no token callback still holds it).
    /// </summary>
    protected bool Reset()
    {
        _shutdown = false;
        return _hook.TryDetach();
    }

    ref TokenHook ITokenWaiter.Hook => ref _hook;

    void ITokenWaiter.ReturnParked() => ReturnParked();

    /// <summary>Returns a waiter parked for a late token callback to its pool.</summary>
    protected abstract void ReturnParked();
}

/// <summary>A task waiting in <see cref="AsyncQueue{T}.GetAsync"/> (pooled).</summary>
internal sealed class GetWaiter<T> : QueueGetter<T, T>
{
    public static GetWaiter<T> Rent(EventLoop loop, AsyncQueue<T> q)
    {
        var w = SpareWaiter.Rent(ref q.SpareGetter);
        w.Init(loop);
        if (!ReferenceEquals(w.Queue, q)) w.Queue = q; // a spare of this queue has it already
        return w;
    }

    protected override T TakeResult()
    {
        if (TryTakeClaimed(out var item)) return item;
        Release(); // the throw skips the release that follows TakeResult
        throw new QueueShutDownError();
    }

    protected override void ReturnToPool()
    {
        // Kept as the queue's spare, it keeps its queue too, so that its next rent stores nothing.
        if (!Reset() || !SpareWaiter.Return(ref Queue!.SpareGetter, this)) Queue = null;
    }

    protected override void ReturnParked() => WaiterPool<GetWaiter<T>>.Return(this);
}

/// <summary>A task waiting in <see cref="AsyncQueue{T}.PutAsync"/> with its item (pooled).</summary>
internal sealed class PutWaiter<T> : Waiter, ITokenWaiter, IQueueWaiter
{
    AsyncQueue<T>? _queue;
    T _item = default!;
    TokenHook _hook;
    bool _shutdown;

    public static PutWaiter<T> Rent(EventLoop loop, AsyncQueue<T> q, T item)
    {
        var w = SpareWaiter.Rent(ref q.SparePutter);
        w.Init(loop);
        if (!ReferenceEquals(w._queue, q)) w._queue = q; // a spare of this queue has it already
        w._item = item;
        return w;
    }

    public bool WokenByShutdown { set => _shutdown = value; }

    protected override void RemoveFromPrimitive() => _queue!.RemovePutter(this);

    internal override (string Operation, object? Target) Describe() => ("AsyncQueue.PutAsync", _queue);

    protected override void OnCancelledAfterWake()
    {
        if (!_shutdown) _queue!.ReservationCancelled();
    }

    protected override void Finish()
    {
        var q = _queue!;
        var item = _item;
        bool shutdown = _shutdown;
        Release();
        if (shutdown) throw new QueueShutDownError();
        q.PutReserved(item);
    }

    protected override void ReturnToPool()
    {
        _item = default!;
        _shutdown = false;
        // Kept as the queue's spare, it keeps its queue too, so that its next rent stores nothing.
        if (!_hook.TryDetach() || !SpareWaiter.Return(ref _queue!.SparePutter, this)) _queue = null;
    }

    ref TokenHook ITokenWaiter.Hook => ref _hook;

    void ITokenWaiter.ReturnParked() => WaiterPool<PutWaiter<T>>.Return(this);
}
