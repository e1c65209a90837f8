using static Asyncio.Tests.Sync.SyncTestHelpers;

namespace Asyncio.Tests.Queues;

/// <summary>asyncio's PriorityQueue behaviours (CPython test_queues.PriorityQueueTests), on <see cref="AsyncPriorityQueue{T}"/>.</summary>
public class AsyncPriorityQueueTests
{
    [Fact]
    [Trait("asyncio", "test_order")]
    public void Get_ReturnsTheSmallestItemFirst() => AioTest.Run(async () =>
    {
        var q = new AsyncPriorityQueue<int>();
        foreach (var i in new[] { 1, 3, 2 }) q.PutNowait(i);
        var items = new List<int>();
        for (int i = 0; i < 3; i++) items.Add(await q.GetAsync());
        Assert.Equal([1, 2, 3], items);
    });

    [Fact]
    public void Get_PriorityDataTuples_OrderedByPriority()
    {
        var q = new AsyncPriorityQueue<(int Priority, string Data)>();
        q.PutNowait((5, "write"));
        q.PutNowait((1, "urgent"));
        q.PutNowait((3, "read"));
        Assert.Equal("urgent", q.GetNowait().Data);
        Assert.Equal("read", q.GetNowait().Data);
        Assert.Equal("write", q.GetNowait().Data);
    }

    [Fact]
    public void Get_EqualPriorities_ComeOutInTheOrderPut()
    {
        var byPriority = Comparer<(int Priority, int Seq)>.Create((a, b) => a.Priority.CompareTo(b.Priority));
        var q = new AsyncPriorityQueue<(int Priority, int Seq)>(comparer: byPriority);
        var rnd = new Random(42);
        var items = Enumerable.Range(0, 500).Select(i => (rnd.Next(5), i)).ToList();
        foreach (var item in items) q.PutNowait(item);
        var expected = items.OrderBy(x => x.Item1).ThenBy(x => x.Item2).ToList();
        var actual = new List<(int, int)>();
        while (q.TryGet(out var x)) actual.Add(x);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Comparer_Custom_ReversesTheOrder()
    {
        var q = new AsyncPriorityQueue<int>(comparer: Comparer<int>.Create((a, b) => b.CompareTo(a)));
        foreach (var i in new[] { 1, 3, 2 }) q.PutNowait(i);
        Assert.Equal(3, q.GetNowait());
        Assert.Equal(2, q.GetNowait());
        Assert.Equal(1, q.GetNowait());
    }

    [Fact]
    public void Get_RandomPutsAndGets_MatchASortedModel()
    {
        var q = new AsyncPriorityQueue<int>();
        var model = new List<int>();
        var rnd = new Random(7);
        for (int step = 0; step < 5000; step++)
        {
            if (model.Count == 0 || rnd.Next(3) != 0)
            {
                int v = rnd.Next(100);
                q.PutNowait(v);
                model.Add(v);
            }
            else
            {
                int min = model.Min();
                model.Remove(min);
                Assert.Equal(min, q.GetNowait());
            }
            Assert.Equal(model.Count, q.Count);
        }
    }

    [Fact]
    public void Get_WaitingGetter_GetsTheSmallestItemAtItsResumption() => AioTest.Run(async () =>
    {
        var q = new AsyncPriorityQueue<int>();
        var getter = Spawn(async () => await q.GetAsync());
        await Yield();
        q.PutNowait(5);
        q.PutNowait(1);   // arrives before the getter resumes: asyncio's getter takes the smallest then
        Assert.Equal(1, await getter);
        Assert.Equal(5, q.GetNowait());
    });

    // ---- a comparer that throws (a (priority, data) tuple whose data is not comparable, on a tie) ----

    /// <summary>An int comparer that throws on the compare <c>FailIn</c> from now (0: the next), then works again.</summary>
    sealed class FailingComparer : IComparer<int>
    {
        public int FailIn = -1;

        public int Compare(int a, int b)
        {
            if (FailIn >= 0 && FailIn-- == 0) throw new ArgumentException("not comparable");
            return a.CompareTo(b);
        }
    }

    [Fact]
    public void PutAndGet_ComparerThrowsPartWay_TheCallThrowsAndTheQueueIsAsItWas()
    {
        var cmp = new FailingComparer();
        var q = new AsyncPriorityQueue<int>(comparer: cmp);
        var model = new List<int>();
        var rnd = new Random(11);
        int failures = 0, puts = 0;
        for (int step = 0; step < 4000; step++)
        {
            cmp.FailIn = rnd.Next(3) == 0 ? rnd.Next(5) : -1;
            if (model.Count < 3 || rnd.Next(2) == 0)
            {
                int v = rnd.Next(50);
                try
                {
                    q.PutNowait(v);
                    model.Add(v);
                    puts++;
                }
                catch (ArgumentException) { failures++; }
            }
            else
            {
                try
                {
                    int got = q.GetNowait();
                    Assert.Equal(model.Min(), got);
                    model.Remove(got);
                }
                catch (ArgumentException) { failures++; }
            }
            Assert.Equal(model.Count, q.Count);
        }
        cmp.FailIn = -1;
        Assert.True(failures > 200, $"only {failures} compares failed");
        Assert.Equal(puts, q.Unfinished);
        var rest = new List<int>();
        while (q.TryGet(out var x)) rest.Add(x);
        Assert.Equal(model.Order(), rest);
    }

    [Fact]
    public void Get_ComparerThrowsForAGetterPromisedAnItem_ThePromisePassesToTheNextGetter() => AioTest.Run(async () =>
    {
        var cmp = new FailingComparer();
        var q = new AsyncPriorityQueue<int>(comparer: cmp);
        var getters = Enumerable.Range(0, 4).Select(_ => Spawn(async () => await q.GetAsync())).ToList();
        await Yield();
        q.PutNowait(3);
        q.PutNowait(1);
        q.PutNowait(2);    // promised to the first three getters; the fourth waits
        cmp.FailIn = 0;    // the first getter's take throws
        await Assert.ThrowsAsync<ArgumentException>(async () => await getters[0]);
        await Yield(3);
        Assert.All(getters, g => Assert.True(g.IsDone));
        Assert.Equal(new[] { 1, 2, 3 }, new[] { await getters[1], await getters[2], await getters[3] });
        Assert.True(q.IsEmpty);
        Assert.Equal(0, q.GetterCount);
    });

    [Fact]
    public void Put_ComparerThrowsForAPutterPromisedASlot_TheSlotPassesToTheNextPutter() => AioTest.Run(async () =>
    {
        var cmp = new FailingComparer();
        var q = new AsyncPriorityQueue<int>(maxSize: 3, comparer: cmp);
        foreach (var i in new[] { 1, 2, 3 }) q.PutNowait(i);
        var p1 = Spawn(async () => { await q.PutAsync(4); });
        var p2 = Spawn(async () => { await q.PutAsync(5); });
        await Yield();
        Assert.Equal(1, q.GetNowait());  // the slot is promised to p1
        cmp.FailIn = 0;                   // p1's put throws
        await Assert.ThrowsAsync<ArgumentException>(async () => await p1);
        await Yield(3);
        Assert.True(p2.IsDone);
        await p2;
        Assert.Equal(4, q.Unfinished);    // 1, 2, 3 and 5; 4 was never put
        Assert.Equal(new[] { 2, 3, 5 }, new[] { q.GetNowait(), q.GetNowait(), q.GetNowait() });
    });

    [Fact]
    public void Shutdown_ImmediateWithAComparerThatThrows_DrainsWithoutComparing()
    {
        var cmp = new FailingComparer();
        var q = new AsyncPriorityQueue<int>(comparer: cmp);
        foreach (var i in new[] { 3, 1, 4, 0, 2 }) q.PutNowait(i);
        cmp.FailIn = 0;
        q.Shutdown(immediate: true);
        Assert.True(q.IsEmpty);
        Assert.Equal(0, q.Unfinished);
        Assert.Equal(0, cmp.FailIn);      // nothing was compared
    }
}
