using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Sync;

/// <summary>
/// Every waiting operation of the primitives and queues given a token that is already cancelled: the call
/// fails at once, even when it could complete without waiting (.NET's convention, docs/differences.md),
/// with the same error a wait that the token ends later gets — a canceled <see cref="ValueTask"/> throwing
/// <see cref="CancelledError"/> that carries the token — and takes nothing (the lock, the permit, the item
/// stay where they were).
/// </summary>
public class AlreadyCancelledTokenTests
{
    public static TheoryData<string> Operations =>
    [
        "Lock.AcquireAsync", "Event.WaitAsync (set)", "Condition.WaitAsync", "Condition.WaitForAsync (true)",
        "Semaphore.AcquireAsync", "BoundedSemaphore.AcquireAsync", "Barrier.WaitAsync", "Queue.PutAsync",
        "Queue.GetAsync", "Queue.JoinAsync", "PriorityQueue.GetAsync", "LifoQueue.GetAsync", "Queue.ReadAllAsync",
    ];

    [Theory]
    [MemberData(nameof(Operations))]
    public void Call_TokenAlreadyCancelled_FailsCanceledWithCancelledErrorCarryingTheToken_AndTakesNothing(string operation) => AioTest.Run(async () =>
    {
        var token = new CancellationToken(true);
        var lk = new AsyncLock();
        var ev = new AsyncEvent();
        ev.Set();
        var cond = new AsyncCondition();
        var sem = new AsyncSemaphore(1);
        var bsem = new AsyncBoundedSemaphore(1);
        var barrier = new AsyncBarrier(1);
        var q = new AsyncQueue<int>(1);
        var pq = new AsyncPriorityQueue<int>();
        var lq = new AsyncLifoQueue<int>();
        if (operation.StartsWith("Condition", StringComparison.Ordinal)) await cond.AcquireAsync();
        if (operation is "Queue.GetAsync" or "Queue.ReadAllAsync") q.PutNowait(7);
        pq.PutNowait(7);
        lq.PutNowait(7);

        ValueTask call = operation switch
        {
            "Lock.AcquireAsync" => Untyped(lk.AcquireAsync(token)),
            "Event.WaitAsync (set)" => ev.WaitAsync(token),
            "Condition.WaitAsync" => cond.WaitAsync(token),
            "Condition.WaitForAsync (true)" => cond.WaitForAsync(() => true, token),
            "Semaphore.AcquireAsync" => Untyped(sem.AcquireAsync(token)),
            "BoundedSemaphore.AcquireAsync" => Untyped(bsem.AcquireAsync(token)),
            "Barrier.WaitAsync" => Untyped(barrier.WaitAsync(token)),
            "Queue.PutAsync" => q.PutAsync(1, token),
            "Queue.GetAsync" => Untyped(q.GetAsync(token)),
            "Queue.JoinAsync" => q.JoinAsync(token),
            "PriorityQueue.GetAsync" => Untyped(pq.GetAsync(token)),
            "LifoQueue.GetAsync" => Untyped(lq.GetAsync(token)),
            "Queue.ReadAllAsync" => Untyped(q.ReadAllAsync(token).GetAsyncEnumerator().MoveNextAsync()),
            _ => throw new ArgumentOutOfRangeException(nameof(operation)),
        };

        Assert.True(call.IsCanceled, $"{operation}: not canceled");
        var e = await Assert.ThrowsAsync<CancelledError>(async () => await call);
        Assert.True(e.CancellationToken.IsCancellationRequested);
        if (operation != "Queue.ReadAllAsync") Assert.Equal(token, e.CancellationToken); // the enumerator links its tokens

        Assert.False(lk.IsLocked);
        Assert.Equal(1, sem.Value);
        Assert.Equal(1, bsem.Value);
        Assert.Equal(0, barrier.WaitingCount);
        Assert.False(barrier.IsBroken);
        Assert.Equal(operation is "Queue.GetAsync" or "Queue.ReadAllAsync" ? 1 : 0, q.Count);
        Assert.Equal(1, pq.Count);
        Assert.Equal(1, lq.Count);
        if (operation.StartsWith("Condition", StringComparison.Ordinal)) Assert.True(cond.IsLocked); // still the caller's
        await Yield();
    });

    static async ValueTask Untyped<T>(ValueTask<T> call) => await call;
}
