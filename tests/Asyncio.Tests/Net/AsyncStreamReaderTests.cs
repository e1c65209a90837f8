using System.Text;

namespace Asyncio.Tests.Net;

/// <summary>asyncio's StreamReader semantics, fed directly (no socket).</summary>
public class AsyncStreamReaderTests
{
    static byte[] B(string s) => Encoding.ASCII.GetBytes(s);
    static string S(byte[] b) => Encoding.ASCII.GetString(b);

    [Fact]
    public void ReadLine_SeveralLinesAndPartialAtEof_ReturnsEachThenPartialThenEmpty() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("one\ntwo\nthr"));
        r.FeedEof();
        Assert.Equal("one\n", S(await r.ReadLine()));
        Assert.Equal("two\n", S(await r.ReadLine()));
        Assert.Equal("thr", S(await r.ReadLine()));
        Assert.Empty(await r.ReadLine());
        Assert.True(r.AtEof);
    });

    [Fact]
    public void ReadLine_DataArrivesLater_WaitsForTheNewline() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.CreateTask(async () => S(await r.ReadLine()));
        await Aio.Sleep(0);
        r.FeedData(B("hel"));
        await Aio.Sleep(0);
        Assert.False(t.IsDone);
        r.FeedData(B("lo\nrest"));
        Assert.Equal("hello\n", await t);
        Assert.Equal(4, r.BufferedCount);
    });

    [Fact]
    public void ReadLine_LongerThanLimit_RaisesAndKeepsBufferIntact() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader(limit: 10);
        var data = B("0123456789abcdef\nnext\n");
        r.FeedData(data);
        var e = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadLine());
        Assert.Equal(16, e.Consumed);
        Assert.Equal(data.Length, r.BufferedCount);
        Assert.Equal(data, await r.ReadExactly(data.Length));
    });

    [Fact]
    public void ReadUntil_NoSeparatorWithinLimit_RaisesAndConsumesNothing() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader(limit: 8);
        r.FeedData(B("abcdefghijklmnop"));
        var e = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadUntil(B("|")));
        Assert.Contains("not found", e.Message);
        Assert.Equal(16, r.BufferedCount);
    });

    [Fact]
    public void ReadUntil_Separator_ReturnsChunkIncludingIt() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("key=value;;next"));
        Assert.Equal("key=value;;", S(await r.ReadUntil(B(";;"))));
        Assert.Equal(4, r.BufferedCount);
    });

    [Fact]
    public void ReadUntil_SeveralSeparators_ShortestChunkWins() => AioTest.Run(async () =>
    {
        // asyncio 3.13: with a tuple of separators the result is the shortest chunk that ends with any of
        // them; neither the first separator listed nor the match that starts first.
        var r = new AsyncStreamReader();
        r.FeedData(B("ab;cd\naxyz"));
        Assert.Equal("ab;", S(await r.ReadUntil(B("\n"), B(";")))); // first listed would give "ab;cd\n"
        Assert.Equal("cd\n", S(await r.ReadUntil(B("\n"), B(";"))));
        Assert.Equal("axy", S(await r.ReadUntil(B("xyz"), B("y")))); // earliest start would give "axyz"
        Assert.Equal(1, r.BufferedCount);
    });

    [Fact]
    public void ReadUntil_EmptySeparator_ThrowsArgumentException() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        await Assert.ThrowsAsync<ArgumentException>(async () => await r.ReadUntil(ReadOnlyMemory<byte>.Empty));
    });

    [Fact]
    public void ReadUntil_NoSeparatorGiven_DefaultsToNewline() => AioTest.Run(async () =>
    {
        // asyncio: readuntil(separator=b'\n'); only an explicitly empty set of separators is an error.
        var r = new AsyncStreamReader();
        r.FeedData(B("one\ntwo"));
        r.FeedEof();
        Assert.Equal("one\n", S(await r.ReadUntil()));
        var e = await Assert.ThrowsAsync<IncompleteReadError>(async () => await r.ReadUntil());
        Assert.Equal("two", S(e.Partial));
        await Assert.ThrowsAsync<ArgumentException>(async () => await r.ReadUntil(Array.Empty<ReadOnlyMemory<byte>>()));
    });

    [Fact]
    public void ReadUntil_EofFirst_IncompleteReadErrorCarriesPartial() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("partial"));
        r.FeedEof();
        var e = await Assert.ThrowsAsync<IncompleteReadError>(async () => await r.ReadUntil(B("\n")));
        Assert.Equal("partial", S(e.Partial));
        Assert.Null(e.Expected);
    });

    [Fact]
    public void ReadExactly_EofFirst_IncompleteReadErrorCarriesPartialAndExpected() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("abc"));
        r.FeedEof();
        var e = await Assert.ThrowsAsync<IncompleteReadError>(async () => await r.ReadExactly(5));
        Assert.Equal("abc", S(e.Partial));
        Assert.Equal(5, e.Expected);
        Assert.IsAssignableFrom<EndOfStreamException>(e);
    });

    [Fact]
    public void ReadExactly_Negative_Throws() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await r.ReadExactly(-1));
        Assert.Empty(await r.ReadExactly(0));
    });

    [Fact]
    public void Read_N_ReturnsAvailableUpToN() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("abcdef"));
        Assert.Equal("abcd", S(await r.Read(4)));
        Assert.Equal("ef", S(await r.Read(100)));
        r.FeedEof();
        Assert.Empty(await r.Read(10));
        Assert.Empty(await r.Read(0));
    });

    [Fact]
    public void ReadToEnd_ChunksThenEof_ReturnsEverything() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.CreateTask(async () => S(await r.ReadToEnd()));
        await Aio.Sleep(0);
        r.FeedData(B("ab"));
        await Aio.Sleep(0);
        r.FeedData(B("cd"));
        r.FeedEof();
        Assert.Equal("abcd", await t);
        Assert.Equal("", S(await r.Read()));
    });

    [Fact]
    public void ReadExactly_CancelledWhileWaitingWithPartialData_LosesNothing() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("abc"));
        var t = Aio.CreateTask(async () => await r.ReadExactly(6));
        await Aio.Sleep(0);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        r.FeedData(B("def"));
        Assert.Equal("abcdef", S(await r.ReadExactly(6)));
    });

    [Fact]
    public void ReadLine_CancelledAfterWakeBeforeResume_LosesNothing() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.CreateTask(async () => await r.ReadLine());
        await Aio.Sleep(0);
        r.FeedData(B("line\n")); // wakes the waiter...
        t.Cancel();              // ...which is cancelled before it runs
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("line\n", S(await r.ReadLine()));
    });

    [Fact]
    public void ReadInto_CancelledAfterDataCopiedBeforeResume_DataStaysInOrder() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var buf = new byte[4];
        var t = Aio.CreateTask(async () => await r.ReadInto(buf));
        await Aio.Sleep(0);
        r.FeedData(B("abcdef")); // "abcd" goes straight into buf, "ef" to the reader's buffer
        r.FeedData(B("gh"));
        t.Cancel();              // cancelled before it resumes: "abcd" must come back, first
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal(8, r.BufferedCount);
        Assert.Equal("abcdefgh", S(await r.ReadExactly(8)));
    });

    [Fact]
    public void ReadInto_ReceivedDirectlyThenCancelledBeforeResume_DataStaysInOrder() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var buf = new byte[AsyncStreamReader.DirectReceiveMinimum];
        Assert.False(r.TryGetDirectBuffer(out _));   // nobody waits: data goes through FeedData
        var t = Aio.CreateTask(async () => await r.ReadInto(buf));
        await Aio.Sleep(0);
        Assert.True(r.TryGetDirectBuffer(out var into));
        Assert.Equal(buf.Length, into.Length);
        B("abcd").CopyTo(into);                      // what a transport's receive does
        r.DirectReceived(4);
        Assert.False(r.TryGetDirectBuffer(out _));   // the read was woken
        r.FeedData(B("ef"));
        t.Cancel();                                  // cancelled before it resumes: "abcd" comes back, first
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        Assert.Equal("abcdef", S(await r.ReadExactly(6)));
    });

    [Fact]
    public void ReadInto_SmallBufferWaiting_IsNotReceivedIntoDirectly() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.CreateTask(async () => await r.ReadInto(new byte[AsyncStreamReader.DirectReceiveMinimum - 1]));
        await Aio.Sleep(0);
        Assert.False(r.TryGetDirectBuffer(out _));   // one large receive serves many small reads better
        r.FeedData(B("x"));
        Assert.Equal(1, await t);
    });

    [Fact]
    public void ReadInto_DataArrivesWhileWaiting_ReturnsItThenRest() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var buf = new byte[3];
        var t = Aio.CreateTask(async () => await r.ReadInto(buf));
        await Aio.Sleep(0);
        r.FeedData(B("12345"));
        Assert.Equal(3, await t);
        Assert.Equal("123", S(buf));
        Assert.Equal("45", S(await r.Read(10)));
    });

    [Fact]
    public void Read_TwoConcurrentReaders_SecondThrows() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.CreateTask(async () => await r.Read(10));
        await Aio.Sleep(0);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await r.Read(10));
        r.FeedData(B("x"));
        Assert.Equal("x", S(await t));
    });

    [Fact]
    public void SetException_WaitingRead_ThrowsIt() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.CreateTask(async () => await r.ReadLine());
        await Aio.Sleep(0);
        r.SetException(new IOException("gone"));
        var e = await Assert.ThrowsAsync<IOException>(async () => await t);
        Assert.Equal("gone", e.Message);
        Assert.Same(e, r.Exception);
    });

    [Fact]
    public void FeedData_AfterEof_Throws() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedEof();
        Assert.Throws<InvalidOperationException>(() => r.FeedData(B("x")));
        await Task.CompletedTask;
    });

    [Fact]
    public void Constructor_NonPositiveLimit_Throws() => AioTest.Run(async () =>
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncStreamReader(0));
        await Task.CompletedTask;
    });

    [Fact]
    public void AwaitForeach_Lines_EnumeratesUntilEof() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        r.FeedData(B("a\nb\nc"));
        r.FeedEof();
        var lines = new List<string>();
        await foreach (var l in r) lines.Add(S(l));
        Assert.Equal(["a\n", "b\n", "c"], lines);
    });

    [Fact]
    public void ReadInto_SteadyState_AllocatesNothing() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var buf = new byte[64];
        var chunk = new byte[32];
        // Warm up pools, then measure 10,000 feed/read pairs that each wait.
        for (int i = 0; i < 100; i++)
        {
            var pending = r.ReadInto(buf);
            r.FeedData(chunk);
            await pending;
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            var pending = r.ReadInto(buf);
            r.FeedData(chunk);
            await pending;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 10_000, $"allocated {allocated} bytes for 10,000 reads");
    });
}
