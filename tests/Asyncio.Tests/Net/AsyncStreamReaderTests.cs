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

    /// <summary>
    /// Starts <paramref name="read"/> in a task, then feeds <paramref name="chunks"/> one loop iteration apart,
    /// checking that the read still waits before each; returns what it read.
    /// </summary>
    static async Task<string> ReadFedInTurns(AsyncStreamReader reader, Func<AsyncStreamReader, ValueTask<byte[]>> read, params string[] chunks)
    {
        var t = Aio.CreateTask(async () => S(await read(reader)));
        foreach (var c in chunks)
        {
            await Aio.Sleep(0);
            Assert.False(t.IsDone);
            reader.FeedData(B(c));
        }
        return await t;
    }

    [Fact]
    public void ReadUntil_SeparatorSplitAcrossChunks_FoundOnceComplete() => AioTest.Run(async () =>
    {
        // asyncio's test_readuntil_multi_chunks_1: the chunks arrive while the read waits, so each search
        // starts where the previous one could not have missed a match (a separator's first bytes may already
        // be there).
        var r = new AsyncStreamReader();
        var aaa = B("aaa");
        Assert.Equal("QWEaaXYaaa", await ReadFedInTurns(r, x => x.ReadUntil(aaa), "QWEaa", "XYaa", "a"));
        Assert.Equal("QWEaaXYaaa", await ReadFedInTurns(r, x => x.ReadUntil(aaa), "QWEaa", "XYa", "aa"));
        Assert.Equal("XXXaaa", await ReadFedInTurns(r, x => x.ReadUntil(aaa), "XXX", "a", "a", "a"));
        Assert.Equal(0, r.BufferedCount);
        // Several separators of different lengths, the longer one split: the shortest chunk still wins.
        Assert.Equal("abEND", await ReadFedInTurns(r, x => x.ReadUntil(B("!"), B("END")), "abE", "N", "D!"));
        Assert.Equal("!", S(await r.ReadUntil(B("!"))));
    });

    [Fact]
    public void ReadUntil_ChunkOfExactlyLimit_ReturnedAndOneByteMoreRaisesKeepingBuffer() => AioTest.Run(async () =>
    {
        // The limit counts the bytes before the separator (asyncio's test_readuntil_limit_found_sep).
        var r = new AsyncStreamReader(limit: 3);
        r.FeedData(B("abcAAA"));
        Assert.Equal("abcAAA", S(await r.ReadUntil(B("AAA"))));
        r.FeedData(B("some dataAA"));
        var notFound = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadUntil(B("AAA")));
        Assert.Contains("not found", notFound.Message);
        Assert.Equal(11, r.BufferedCount);
        r.FeedData(B("A"));
        var found = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadUntil(B("AAA")));
        Assert.Contains("is found", found.Message);
        Assert.Equal(9, found.Consumed);
        Assert.Equal("some dataAAA", S(await r.ReadExactly(12)));
    });

    [Fact]
    public void ReadUntil_SeparatorsEndingTogether_LimitCountsFromTheShorterOne() => AioTest.Run(async () =>
    {
        // asyncio 3.13: "for the purposes of LimitOverrunError, the shortest possible separator is considered
        // to be the one that matched". "\r\n" and "\n" both end "ab\r\n": the chunk before "\n" is 3 bytes,
        // over a limit of 2, whichever order the separators are listed in.
        var r = new AsyncStreamReader(limit: 2);
        r.FeedData(B("ab\r\n"));
        var e = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadUntil(B("\r\n"), B("\n")));
        Assert.Equal(3, e.Consumed);
        e = await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadUntil(B("\n"), B("\r\n")));
        Assert.Equal(3, e.Consumed);
        Assert.Equal(4, r.BufferedCount);
        var wide = new AsyncStreamReader(limit: 3);
        wide.FeedData(B("ab\r\n"));
        Assert.Equal("ab\r\n", S(await wide.ReadUntil(B("\r\n"), B("\n"))));
    });

    [Fact]
    public void ReadLine_LineOfExactlyLimit_WaitsForNewlineAndReturnsIt() => AioTest.Run(async () =>
    {
        // asyncio's test_readline_limit: a line of exactly the limit (newline not counted) is accepted, even
        // when its newline comes later; one byte more is over the limit, with or without the newline.
        var r = new AsyncStreamReader(limit: 7);
        Assert.Equal("1234567\n", await ReadFedInTurns(r, x => x.ReadLine(), "1234567", "\n"));
        r.FeedData(B("12345678"));
        await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadLine());
        r.FeedData(B("\n"));
        await Assert.ThrowsAsync<LimitOverrunError>(async () => await r.ReadLine());
        Assert.Equal("12345678\n", S(await r.ReadExactly(9)));
    });

    [Fact]
    public void FeedEof_ReadsWaiting_EachWokenWithItsEndOfStreamOutcome() => AioTest.Run(async () =>
    {
        // asyncio: feed_eof wakes the waiting read, which then ends as it does at the end of the stream.
        async Task<T> Waiting<T>(string data, Func<AsyncStreamReader, Task<T>> read)
        {
            var r = new AsyncStreamReader();
            r.FeedData(B(data));
            var t = Aio.CreateTask(() => read(r));
            await Aio.Sleep(0);
            Assert.False(t.IsDone);
            r.FeedEof();
            try { return await t; }
            finally { Assert.True(r.AtEof); }
        }
        Assert.Empty(await Waiting("", async r => await r.Read(10)));
        Assert.Equal(0, await Waiting("", async r => await r.ReadInto(new byte[10])));
        Assert.Equal("part", S(await Waiting("part", async r => await r.ReadLine())));
        Assert.Equal("all", S(await Waiting("all", async r => await r.ReadToEnd())));
        var e = await Assert.ThrowsAsync<IncompleteReadError>(() => Waiting("abc", async r => await r.ReadExactly(5)));
        Assert.Equal("abc", S(e.Partial));
        e = await Assert.ThrowsAsync<IncompleteReadError>(() => Waiting("abc", async r => await r.ReadUntil(B("|"))));
        Assert.Equal("abc", S(e.Partial));
    });

    [Fact]
    public void SetException_DataBuffered_EveryReadThrowsIt() => AioTest.Run(async () =>
    {
        // asyncio's test_read_exception, test_readline_exception, test_readexactly_exception: the error wins
        // over data still in the buffer.
        var r = new AsyncStreamReader();
        r.FeedData(B("line\nmore"));
        Assert.Equal("li", S(await r.Read(2)));
        var error = new IOException("reset");
        r.SetException(error);
        Assert.Same(error, await Assert.ThrowsAsync<IOException>(async () => await r.Read(2)));
        Assert.Same(error, await Assert.ThrowsAsync<IOException>(async () => await r.Read(0)));
        Assert.Same(error, await Assert.ThrowsAsync<IOException>(async () => await r.ReadLine()));
        Assert.Same(error, await Assert.ThrowsAsync<IOException>(async () => await r.ReadExactly(2)));
        Assert.Same(error, await Assert.ThrowsAsync<IOException>(async () => await r.ReadUntil(B("\n"))));
        Assert.Same(error, await Assert.ThrowsAsync<IOException>(async () => await r.ReadInto(new byte[2])));
        Assert.Same(error, await Assert.ThrowsAsync<IOException>(async () => await r.ReadToEnd()));
    });

    [Fact]
    public void SetException_AfterWaitingReadCancelled_NextReadThrowsIt() => AioTest.Run(async () =>
    {
        // asyncio's test_exception_cancel: the cancelled read has left, so the error wakes nobody and is kept.
        var r = new AsyncStreamReader();
        var t = Aio.CreateTask(async () => await r.ReadLine());
        await Aio.Sleep(0);
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        r.SetException(new IOException("late"));
        await Aio.Sleep(0);
        Assert.Equal("late", (await Assert.ThrowsAsync<IOException>(async () => await r.ReadLine())).Message);
    });

    sealed class FakeReadTransport : IReadTransport
    {
        public int PauseCalls, Pauses, Resumes;
        public bool Unsupported;
        public bool IsReading { get; private set; } = true;
        public bool IsClosing => false;
        public BaseProtocol Protocol { get; set; } = null!;
        public object? GetExtraInfo(string name, object? defaultValue = null) => defaultValue;
        public void Close() { }

        public void PauseReading()
        {
            PauseCalls++;
            if (Unsupported) throw new NotSupportedException();
            Pauses++;
            IsReading = false;
        }

        public void ResumeReading()
        {
            Resumes++;
            IsReading = true;
        }
    }

    [Fact]
    public void FeedData_OverTwiceTheLimit_PausesTransportOnceAndReadingDownToTheLimitResumesIt() => AioTest.Run(async () =>
    {
        // asyncio's StreamReader flow control: paused when the buffer goes over 2 * limit, resumed once a read
        // brings it down to the limit.
        var r = new AsyncStreamReader(limit: 10);
        var t = new FakeReadTransport();
        r.SetTransport(t);
        r.FeedData(new byte[20]);
        Assert.Equal(0, t.Pauses);          // exactly twice the limit: not over it
        r.FeedData(new byte[1]);
        Assert.Equal(1, t.Pauses);
        r.FeedData(new byte[5]);
        Assert.Equal(1, t.Pauses);          // already paused
        await r.ReadExactly(15);            // 11 left: above the limit
        Assert.Equal(0, t.Resumes);
        await r.ReadExactly(1);             // 10 left: down to the limit
        Assert.Equal(1, t.Resumes);
        Assert.True(t.IsReading);
        await r.ReadExactly(10);
        Assert.Equal(1, t.Resumes);
    });

    [Fact]
    public void Read_WaitingWhileTransportPaused_ResumesItFirst() => AioTest.Run(async () =>
    {
        // asyncio's _wait_for_data: a read that must wait resumes a paused transport, or it would wait forever.
        var r = new AsyncStreamReader(limit: 4);
        var t = new FakeReadTransport();
        r.SetTransport(t);
        r.FeedData(B("abcdefghi"));          // over 2 * 4: paused
        Assert.False(t.IsReading);
        var exactly = Aio.CreateTask(async () => S(await r.ReadExactly(10)));
        await Aio.Sleep(0);
        Assert.Equal(1, t.Resumes);
        Assert.True(t.IsReading);
        r.FeedData(B("j"));
        Assert.Equal("abcdefghij", await exactly);
    });

    [Fact]
    public void FeedData_TransportCannotPause_ReaderStopsTryingAndKeepsData() => AioTest.Run(async () =>
    {
        // asyncio: a transport whose pause_reading raises NotImplementedError is dropped from flow control.
        var r = new AsyncStreamReader(limit: 2);
        var t = new FakeReadTransport { Unsupported = true };
        r.SetTransport(t);
        r.FeedData(B("12345"));
        r.FeedData(B("678"));
        Assert.Equal(1, t.PauseCalls);
        Assert.Equal("12345678", S(await r.ReadExactly(8)));
        Assert.Equal(0, t.Resumes);
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
    public void ReadToEnd_CancelledAfterPartialData_LosesNothing() => AioTest.Run(async () =>
    {
        var r = new AsyncStreamReader();
        var t = Aio.CreateTask(async () => await r.ReadToEnd());
        r.FeedData(B("first-"));
        await Aio.Sleep(0);
        await Aio.Sleep(0);   // the read has seen the first bytes and waits for more
        t.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await t);
        r.FeedData(B("second"));
        r.FeedEof();
        Assert.Equal("first-second", S(await r.ReadToEnd()));
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
