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
}
