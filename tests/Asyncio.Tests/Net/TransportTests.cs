using System.Net;
using System.Net.Sockets;

namespace Asyncio.Tests.Net;

/// <summary>Stream transports and protocols (asyncio's selector socket transport), on each reactor.</summary>
public abstract class TransportTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    static int PortOf(Server s) => ((IPEndPoint)s.Sockets[0].LocalEndPoint!).Port;

    [Fact]
    public void CreateConnection_EchoServer_RoundTripsAndCallsProtocolInOrder()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.Write("hello "u8);
            t.Write("world"u8);
            await p.WaitForBytes(11);
            t.WriteEof();
            await p.Lost!;
            Assert.Equal("hello world", p.Text);
            Assert.Equal(["made", "data", "eof", "lost"], p.Events);
            Assert.Null(p.LostWith);
        });
    }

    [Fact]
    public void GetExtraInfo_Connection_HasPeerNameSockNameAndSocket()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, _) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            Assert.Equal(server.Sockets[0].LocalEndPoint, t.GetExtraInfo("peername"));
            var sock = Assert.IsType<Socket>(t.GetExtraInfo("socket"));
            Assert.Equal(sock.LocalEndPoint, t.GetExtraInfo("sockname"));
            Assert.Equal("dflt", t.GetExtraInfo("nope", "dflt"));
            t.Close();
        });
    }

    [Fact]
    public void CreateConnection_ClosedPort_ThrowsSocketException()
    {
        Run(async () =>
        {
            var e = await Assert.ThrowsAsync<SocketException>(() =>
                Aio.GetRunningLoop().CreateConnection(() => new RecordingProtocol(), "127.0.0.1", NetTest.ClosedPort()));
            Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        });
    }

    [Fact]
    public void Write_PeerNotReading_PausesAboveHighWaterAndResumesAtLow()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServer(() => serverSide = new RecordingProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            await serverSide!.Made!;
            serverSide.Transport!.PauseReading();
            Assert.Equal((16 * 1024, 64 * 1024), t.GetWriteBufferLimits());
            var chunk = new byte[16 * 1024];
            long written = 0;
            for (int i = 0; i < 10_000 && p.Pauses == 0; i++) { t.Write(chunk); written += chunk.Length; }
            Assert.Equal(1, p.Pauses);
            Assert.True(t.WriteBufferSize > 64 * 1024);
            Assert.Equal(0, p.Resumes);
            serverSide.Transport.ResumeReading();
            await serverSide.WaitForBytes(written);
            Assert.Equal(1, p.Resumes);
            Assert.InRange(p.BufferAtResume, 0, 16 * 1024);
            Assert.Equal(0, t.WriteBufferSize);
            t.Close();
        });
    }

    [Fact]
    public void SetWriteBufferLimits_LowAboveHigh_ThrowsArgumentException()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, _) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            Assert.Throws<ArgumentException>(() => t.SetWriteBufferLimits(high: 10, low: 20));
            t.SetWriteBufferLimits(low: 100);
            Assert.Equal((100, 400), t.GetWriteBufferLimits());
            t.SetWriteBufferLimits(high: 1000);
            Assert.Equal((250, 1000), t.GetWriteBufferLimits());
            t.Close();
        });
    }

    [Fact]
    public void Write_AfterClose_ThrowsInvalidOperation()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.Close();
            Assert.True(t.IsClosing);
            Assert.Throws<InvalidOperationException>(() => t.Write("x"u8));
            await p.Lost!;
            Assert.Throws<InvalidOperationException>(() => t.Write("x"u8));
        });
    }

    [Fact]
    public void Write_AfterWriteEof_ThrowsInvalidOperation()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, _) = await loop.CreateConnection(() => new RecordingProtocol { KeepOpenOnEof = true }, "127.0.0.1", PortOf(server));
            Assert.True(t.CanWriteEof);
            t.WriteEof();
            Assert.Throws<InvalidOperationException>(() => t.Write("x"u8));
            t.Close();
        });
    }

    [Fact]
    public void WriteEof_ClientHalfCloses_ServerStillReplies()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? s = null;
            await using var server = await loop.CreateServer(() => s = new RecordingProtocol { KeepOpenOnEof = true }, "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.Write("question"u8);
            t.WriteEof();
            await s!.Eof!;
            Assert.Equal("question", s.Text);
            Assert.False(s.Transport!.IsClosing);
            s.Transport.Write("answer"u8);
            s.Transport.Close();
            await p.Lost!;
            Assert.Equal("answer", p.Text);
            Assert.Equal(["made", "data", "eof", "lost"], p.Events);
        });
    }

    [Fact]
    public void WriteEof_ServerHalfCloses_ClientStillWritesAndGetsEofReceivedOnce()
    {
        // asyncio's protocol contract: EofReceived is called at most once, so a half-closed transport that is
        // paused and resumed must not read the end of the stream a second time.
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? s = null;
            await using var server = await loop.CreateServer(() => s = new RecordingProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol { KeepOpenOnEof = true }, "127.0.0.1", PortOf(server));
            await s!.Made!;
            s.Transport!.Write("banner"u8);
            s.Transport.WriteEof();
            await p.Eof!;
            t.PauseReading();
            t.ResumeReading();
            await Aio.Sleep(0.02);           // a second end of stream would have been read by now
            Assert.Equal(["made", "data", "eof"], p.Events);
            t.Write("late data"u8);
            await s.WaitForBytes(9);
            Assert.Equal("late data", s.Text);
            t.Close();
            await s.Lost!;
            await p.Lost!;
            Assert.Equal(["made", "data", "eof", "lost"], p.Events);
        });
    }

    [Fact]
    public void Abort_WithBufferedDataClosingOrNot_DropsItAndCallsConnectionLostOnceWithNull()
    {
        Run(async () =>
        {
            foreach (bool closeFirst in new[] { false, true })
            {
                await using var c = await StalledPeer();
                c.Fill();
                if (closeFirst) c.T.Close();     // a close still flushing is cut short
                c.T.Abort();
                Assert.Equal(0, c.T.WriteBufferSize);
                await c.P.Lost!;
                Assert.Null(c.P.LostWith);
                await Aio.Sleep(0.01);
                Assert.Equal(["made", "lost"], c.P.Events);
                c.S.Transport!.ResumeReading();
                await c.S.Lost!;
            }
        });
    }

    [Fact]
    public void PauseReading_DataArrives_DeliveredOnlyAfterResume()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.PauseReading();
            Assert.False(t.IsReading);
            t.PauseReading(); // idempotent
            t.Write("ping"u8);
            await Aio.Sleep(0.05);
            Assert.Equal(0, p.Received.Length);
            t.ResumeReading();
            Assert.True(t.IsReading);
            await p.WaitForBytes(4);
            Assert.Equal("ping", p.Text);
            t.Close();
        });
    }

    sealed class PausingOnConnect : RecordingProtocol
    {
        public bool? ReadingInConnectionMade;

        public override void ConnectionMade(IBaseTransport transport)
        {
            base.ConnectionMade(transport);
            Transport!.PauseReading();
            ReadingInConnectionMade = Transport.IsReading;
        }
    }

    /// <summary>Waits (bounded by the test's timeout) until <paramref name="n"/> bytes wait unread in the transport's socket.</summary>
    static async Task UntilUnread(ITransport t, int n)
    {
        var sock = (Socket)t.GetExtraInfo("socket")!;
        while (sock.Available < n) await Aio.Sleep(0.001);
    }

    [Fact]
    public void PauseReading_InConnectionMade_NothingDeliveredUntilResumed()
    {
        // asyncio's test_pause_reading_connection_made and test_pause_resume_reading: a transport paused in
        // ConnectionMade never starts reading; pause and resume are idempotent; a closed transport is not reading.
        Run(async () =>
        {
            await using var c = await Peers<PausingOnConnect>.Open(() => new PausingOnConnect());
            var (t, p) = (c.T, c.P);
            Assert.False(p.ReadingInConnectionMade);
            Assert.False(t.IsReading);
            c.S.Transport!.Write("hello"u8);
            await UntilUnread(t, 5);
            await Aio.Sleep(0.02);           // a reading transport would have delivered it by now
            Assert.Equal(0, p.Received.Length);
            t.ResumeReading();
            t.ResumeReading();
            Assert.True(t.IsReading);
            await p.WaitForBytes(5);
            Assert.Equal("hello", p.Text);
            t.PauseReading();
            t.PauseReading();
            Assert.False(t.IsReading);
            t.ResumeReading();
            Assert.True(t.IsReading);
            t.Close();
            Assert.False(t.IsReading);
            t.ResumeReading();
            Assert.False(t.IsReading);
            await p.Lost!;
            Assert.Equal(["made", "data", "lost"], p.Events);
        });
    }

    /// <summary>
    /// A client connection, with a protocol of type <typeparamref name="TClient"/>, to a recording server.
    /// Disposing closes the server and waits for its connection to end.
    /// </summary>
    sealed record Peers<TClient>(Server Server, RecordingProtocol S, ITransport T, TClient P) : IAsyncDisposable
        where TClient : BaseProtocol
    {
        public static async Task<Peers<TClient>> Open(Func<TClient> client)
        {
            var loop = Aio.GetRunningLoop();
            RecordingProtocol? s = null;
            var server = await loop.CreateServer(() => s = new RecordingProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(client, "127.0.0.1", PortOf(server));
            await s!.Made!;
            return new Peers<TClient>(server, s, t, p);
        }

        /// <summary>With the server side stalled: writes until some of it waits in the client transport's buffer; returns how much was written.</summary>
        public long Fill()
        {
            var chunk = new byte[64 * 1024];
            long written = 0;
            for (int i = 0; i < 1000 && T.WriteBufferSize == 0; i++) { T.Write(chunk); written += chunk.Length; }
            Assert.NotEqual(0, T.WriteBufferSize);
            return written;
        }

        public ValueTask DisposeAsync() => Server.DisposeAsync();
    }

    /// <summary>A connection whose server side does not read: what the client writes beyond the sockets' buffers stays in its transport.</summary>
    static async Task<Peers<RecordingProtocol>> StalledPeer()
    {
        var c = await Peers<RecordingProtocol>.Open(() => new RecordingProtocol());
        c.S.Transport!.PauseReading();
        return c;
    }

    [Fact]
    public void SetWriteBufferLimits_HighBelowBufferedSize_PausesProtocolAtOnce()
    {
        // asyncio's test_flowcontrol_mixin_set_write_limits: new limits apply to what is already buffered, and
        // the protocol is paused only when the buffer is strictly over the high-water mark.
        Run(async () =>
        {
            await using var c = await StalledPeer();
            var (t, p) = (c.T, c.P);
            t.SetWriteBufferLimits(high: int.MaxValue);
            long written = c.Fill();
            int buffered = t.WriteBufferSize;
            t.SetWriteBufferLimits(high: buffered, low: 0);
            Assert.Equal(0, p.Pauses);
            Assert.Throws<ArgumentException>(() => t.SetWriteBufferLimits(high: 10, low: -1));
            Assert.Equal((0, buffered), t.GetWriteBufferLimits());
            t.SetWriteBufferLimits(high: buffered - 1, low: 0);
            Assert.Equal(1, p.Pauses);
            Assert.Equal((0, buffered - 1), t.GetWriteBufferLimits());
            c.S.Transport!.ResumeReading();
            await c.S.WaitForBytes(written);
            Assert.Equal(1, p.Resumes);
            Assert.Equal(0, p.BufferAtResume);
            t.Close();
        });
    }

    [Fact]
    public void Close_WithBufferedData_SendsItAllThenConnectionLostOnce()
    {
        // asyncio's close(): reading stops at once, the buffer is still sent, and ConnectionLost(null) comes
        // once it is; later Close and Abort calls change nothing.
        Run(async () =>
        {
            await using var c = await StalledPeer();
            var (t, p) = (c.T, c.P);
            long written = c.Fill();
            t.Write(new byte[32 << 20]);     // far more than the sockets' buffers can grow to take meanwhile
            written += 32 << 20;
            t.Close();
            Assert.True(t.IsClosing);
            Assert.False(t.IsReading);
            await Aio.Sleep(0.02);
            Assert.False(p.Lost!.IsDone);    // still flushing: the peer does not read
            Assert.NotEqual(0, t.WriteBufferSize);
            c.S.Transport!.ResumeReading();
            await p.Lost!;
            Assert.Null(p.LostWith);
            await c.S.Eof!;
            Assert.Equal(written, c.S.Received.Length);
            t.Close();
            t.Abort();
            await Aio.Sleep(0.01);
            Assert.Equal(["made", "lost"], p.Events);
        });
    }

    sealed class FailingWriteOnResume : RecordingProtocol
    {
        public override void ResumeWriting()
        {
            base.ResumeWriting();
            ((Socket)Transport!.GetExtraInfo("socket")!).Shutdown(SocketShutdown.Send); // the next send fails at once
            Transport.Write("more"u8);
        }
    }

    [Fact]
    public void ResumeWriting_WriteFailsInside_ConnectionLostGetsTheError()
    {
        // A write that fails in ResumeWriting, which the transport calls as its buffer drains, ends the
        // connection with that error: the drained buffer must not make it look like a clean close.
        Run(async () =>
        {
            await using var c = await Peers<FailingWriteOnResume>.Open(() => new FailingWriteOnResume());
            c.S.Transport!.PauseReading();
            c.T.SetWriteBufferLimits(high: 1, low: 0);
            c.Fill();
            Assert.Equal(1, c.P.Pauses);
            c.S.Transport.ResumeReading();
            await c.P.Lost!;
            Assert.Equal(1, c.P.Resumes);
            Assert.IsType<SocketException>(c.P.LostWith);
        });
    }

    sealed class IntoBuffer : BufferedProtocol
    {
        public readonly byte[] Buffer = new byte[7];
        public readonly MemoryStream Got = new();
        public int Calls;
        public override Memory<byte> GetBuffer(int sizeHint) => Buffer;
        public override void BufferUpdated(int count) { Calls++; Got.Write(Buffer, 0, count); }
    }

    [Fact]
    public void BufferedProtocol_DataArrives_ReceivedIntoLentBuffer()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new IntoBuffer(), "127.0.0.1", PortOf(server));
            var data = NetTest.Data(100);
            t.Write(data);
            while (p.Got.Length < 100) await Aio.Sleep(0.001);
            Assert.Equal(data, p.Got.ToArray());
            Assert.True(p.Calls >= 100 / 7);
            t.Close();
        });
    }

    sealed class FailingBuffered(string how) : BufferedProtocol
    {
        readonly byte[] _buffer = new byte[16];
        public readonly Future Lost = Aio.GetRunningLoop().CreateFuture();
        public Exception? LostWith;

        public override Memory<byte> GetBuffer(int sizeHint) => how switch
        {
            "empty" => Memory<byte>.Empty,
            "throws" => throw new FormatException("GetBuffer"),
            _ => _buffer,
        };

        public override void BufferUpdated(int count) => throw new FormatException("BufferUpdated");

        public override void ConnectionLost(Exception? exception)
        {
            LostWith = exception;
            Lost.SetResult();
        }
    }

    sealed class ThrowingOnEof : RecordingProtocol
    {
        public override bool EofReceived()
        {
            base.EofReceived();
            throw new FormatException("EofReceived");
        }
    }

    [Fact]
    public void ReadCallbacks_Throw_ReportedAndConnectionLostWithTheError()
    {
        // asyncio's test_read_ready_get_buffer_exception, ..._zero_sized, test_read_ready_buffer_updated_exception
        // and the eof_received error: a failing read callback is a fatal error of that connection.
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            foreach (var how in new[] { "empty", "throws", "updated" })
            {
                var (t, p) = await loop.CreateConnection(() => new FailingBuffered(how), "127.0.0.1", PortOf(server));
                t.Write("x"u8);
                await p.Lost;
                Assert.IsType(how == "empty" ? typeof(InvalidOperationException) : typeof(FormatException), p.LostWith);
            }
            var (et, ep) = await loop.CreateConnection(() => new ThrowingOnEof(), "127.0.0.1", PortOf(server));
            et.WriteEof();                   // the echo server closes in turn: the end of stream reaches ThrowingOnEof
            await ep.Lost!;
            Assert.IsType<FormatException>(ep.LostWith);
            Assert.Equal(["made", "eof", "lost"], ep.Events);
        });
        Assert.Equal(4, errors.Count);
        Assert.IsType<InvalidOperationException>(errors[0].Exception);
        Assert.All(errors.Skip(1), e => Assert.IsType<FormatException>(e.Exception));
        Assert.Contains("GetBuffer", errors[1].Message);
        Assert.Contains("BufferUpdated", errors[2].Message);
        Assert.Contains("EofReceived", errors[3].Message);
    }

    sealed class ThrowingOnConnect : RecordingProtocol
    {
        public override void ConnectionMade(IBaseTransport transport)
        {
            base.ConnectionMade(transport);
            throw new FormatException("ConnectionMade");
        }
    }

    [Fact]
    public void ConnectionMade_Throws_ClientCallFailsAndServerReportsAndCloses()
    {
        // Differences from asyncio (docs/differences.md): the error fails CreateConnection, and a server reports
        // it and closes that connection; ConnectionLost is not called for a protocol that never started.
        ThrowingOnConnect? client = null;
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new ThrowingOnConnect(), "127.0.0.1", 0);
            var (_, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            await p.Lost!;                   // the server closed it
            Assert.Null(p.LostWith);
            await using var echo = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var e = await Assert.ThrowsAsync<FormatException>(() =>
                loop.CreateConnection(() => client = new ThrowingOnConnect(), "127.0.0.1", PortOf(echo)));
            Assert.Equal("ConnectionMade", e.Message);
            await Aio.Sleep(0.01);
        });
        Assert.Equal(["made"], client!.Events);
        var error = Assert.Single(errors);
        Assert.IsType<FormatException>(error.Exception);
        Assert.Contains("ConnectionMade", error.Message);
    }

    sealed class Throwing : RecordingProtocol
    {
        protected override void OnData() => throw new FormatException("bad input");
    }

    [Fact]
    public void DataReceived_Throws_ReportedAndConnectionClosed()
    {
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            Throwing? s = null;
            await using var server = await loop.CreateServer(() => s = new Throwing(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            t.Write("x"u8);
            await p.Lost!;
            await s!.Lost!;
            Assert.IsType<FormatException>(s.LostWith);
        });
        var e = Assert.Single(errors);
        Assert.IsType<FormatException>(e.Exception);
    }

    [Fact]
    public void PeerResetMidWrite_EndsThatConnectionOnly()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var serverSides = new List<RecordingProtocol>();
            await using var server = await loop.CreateServer(() => { var p = new RecordingProtocol(); serverSides.Add(p); return p; }, "127.0.0.1", 0);
            var (t1, p1) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            var (t2, p2) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", PortOf(server));
            while (serverSides.Count < 2) await Aio.Sleep(0.001);
            await serverSides[0].Made!;
            await serverSides[1].Made!;
            var victim = serverSides.Single(s => Equals(s.Transport!.GetExtraInfo("peername"), t1.GetExtraInfo("sockname")));
            var other = serverSides.Single(s => s != victim);
            // The server writes a lot to connection 1, which stops reading and then resets.
            t1.PauseReading();
            var chunk = new byte[64 * 1024];
            for (int i = 0; i < 100 && victim.Transport!.WriteBufferSize == 0; i++) victim.Transport.Write(chunk);
            Assert.NotEqual(0, victim.Transport!.WriteBufferSize);
            var sock1 = (Socket)t1.GetExtraInfo("socket")!;
            sock1.LingerState = new LingerOption(true, 0);
            t1.Abort();
            await victim.Lost!;
            Assert.IsType<SocketException>(victim.LostWith);
            // Connection 2 is untouched.
            t2.Write("still here"u8);
            await other.WaitForBytes(10);
            Assert.Equal("still here", other.Text);
            Assert.False(other.Transport!.IsClosing);
            t2.Close();
        });
    }
}

public sealed class EpollTransportTests : TransportTests
{
    protected override bool Portable => false;
}

public sealed class PortableTransportTests : TransportTests
{
    protected override bool Portable => true;
}

/// <summary>loop.Sendfile over a stream transport, on each reactor.</summary>
public abstract class SendfileTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    /// <summary>A loopback server whose connections get <paramref name="peer"/>'s protocols, and a client connected to it.</summary>
    static async Task<(Server Server, ITransport Transport, RecordingProtocol Protocol, Func<RecordingProtocol> Peer)> Connect(Func<RecordingProtocol> peer)
    {
        var loop = Aio.GetRunningLoop();
        RecordingProtocol? s = null;
        var server = await loop.CreateServer(() => s = peer(), "127.0.0.1", 0);
        var port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
        var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", port);
        for (int i = 0; i < 5000 && s == null; i++) await Aio.Sleep(0.001); // the server accepts on its own schedule
        return (server, t, p, () => s!);
    }

    [Fact]
    public void Sendfile_LargeFileRange_PeerReceivesExactlyThatRange()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var path = Path.GetTempFileName();
            try
            {
                var content = NetTest.Data(3_000_000, seed: 7);
                await File.WriteAllBytesAsync(path, content);
                var (server, t, p, peer) = await Connect(() => new RecordingProtocol());
                await using var _ = server;
                await using (var f = File.OpenRead(path))
                {
                    long sent = await loop.Sendfile(t, f, offset: 1000, count: 2_500_000);
                    Assert.Equal(2_500_000, sent);
                    Assert.Same(p, t.Protocol);
                }
                await peer().WaitForBytes(2_500_000);
                Assert.Equal(content.AsSpan(1000, 2_500_000).ToArray(), peer().Received.ToArray());
                t.Close();
                await p.Lost!;
            }
            finally { File.Delete(path); }
        });
    }

    [Fact]
    public void SockSendfile_FileRange_PeerReceivesExactlyThatRangeAndPositionFollows()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var path = Path.GetTempFileName();
            var (a, b) = NetTest.SocketPair();
            using var _a = a;
            using var _b = b;
            try
            {
                var content = NetTest.Data(1_000_000, seed: 3);
                await File.WriteAllBytesAsync(path, content);
                // The peer reads while the file is sent: more than the sockets' buffers hold, so the sends wait.
                AioTask<byte[]> Receive(int total) => Aio.CreateTask(async () =>
                {
                    var all = new MemoryStream();
                    var buf = new byte[65536];
                    while (all.Length < total)
                    {
                        int n = await loop.SockRecvInto(b, buf);
                        if (n == 0) break;
                        all.Write(buf, 0, n);
                    }
                    return all.ToArray();
                });
                await using var f = File.OpenRead(path);
                var received = Receive(600_000);
                Assert.Equal(600_000, await loop.SockSendfile(a, f, offset: 123, count: 600_000));
                Assert.Equal(123 + 600_000, f.Position);
                Assert.Equal(content.AsSpan(123, 600_000).ToArray(), await received);
                received = Receive(content.Length - 1000);
                Assert.Equal(content.Length - 1000, await loop.SockSendfile(a, f, offset: 1000));   // to the end
                Assert.Equal(content.Length, f.Position);
                Assert.Equal(content.AsSpan(1000).ToArray(), await received);
                Assert.Equal(0, await loop.SockSendfile(a, f, offset: 0, count: 0));
            }
            finally { File.Delete(path); }
        });
    }

    /// <summary>A file whose reads wait until released, and which notes a seek that comes while a read is running.</summary>
    sealed class SlowFile() : MemoryStream(new byte[100_000])
    {
        public readonly ManualResetEventSlim ReadStarted = new(), Release = new();
        volatile bool _reading;
        public volatile bool SeekedWhileReading;

        public override int Read(byte[] buffer, int offset, int count)
        {
            _reading = true;
            ReadStarted.Set();
            Release.Wait(TimeSpan.FromSeconds(NetTest.Bound));
            try { return base.Read(buffer, offset, count); }
            finally { _reading = false; }
        }

        public override long Seek(long offset, SeekOrigin loc)
        {
            if (_reading) SeekedWhileReading = true;
            return base.Seek(offset, loc);
        }
    }

    [Fact]
    public void SockSendfile_CancelledWhileTheExecutorReads_LeavesBufferAndFileToTheReadUntilItEnds()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using var _a = a;
            using var _b = b;
            using var file = new SlowFile();
            var send = Aio.CreateTask(() => loop.SockSendfile(a, file, offset: 10));
            for (int i = 0; i < 1000 && !file.ReadStarted.IsSet; i++) await Aio.Sleep(0.01);
            Assert.True(file.ReadStarted.IsSet);
            send.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await send);
            Assert.False(file.SeekedWhileReading);   // the file is the read's until it ends
            file.Release.Set();
            for (int i = 0; i < 1000 && file.Position != 10; i++) await Aio.Sleep(0.01);
            Assert.Equal(10, file.Position);         // then put back where nothing was sent
            Assert.False(file.SeekedWhileReading);
        });
    }

    [Fact]
    public void Sendfile_DataWrittenBeforeAndAfter_PeerReceivesAllInOrder()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (server, t, p, peer) = await Connect(() => new RecordingProtocol());
            await using var _ = server;
            var content = NetTest.Data(500_000, seed: 5);
            using var file = new MemoryStream(content);
            t.Write("PRE"u8);
            Assert.Equal(content.Length, await loop.Sendfile(t, file));
            t.Write("POST"u8);
            await peer().WaitForBytes(content.Length + 7);
            Assert.Equal([.. "PRE"u8, .. content, .. "POST"u8], peer().Received.ToArray());
            t.Close();
            await p.Lost!;
        });
    }

    [Fact]
    public void Sendfile_ClosingTransport_ThrowsInvalidOperationAndSendsNothing()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (server, t, p, peer) = await Connect(() => new RecordingProtocol());
            await using var _ = server;
            using var file = new MemoryStream(new byte[1000]);
            t.Close();
            await Assert.ThrowsAsync<InvalidOperationException>(() => loop.Sendfile(t, file));
            Assert.Equal(0, file.Position);
            Assert.Same(p, t.Protocol);
            await p.Lost!;
            await peer().Lost!;
            Assert.Equal(0, peer().Received.Length);
        });
    }

    sealed class AbortOnDataProtocol : RecordingProtocol
    {
        protected override void OnData() => Transport!.Abort();
    }

    [Fact]
    public void Sendfile_PeerAbortsMidway_ThrowsConnectionErrorAndGivesTheProtocolBack()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (server, t, p, _) = await Connect(() => new AbortOnDataProtocol());
            await using var _s = server;
            // Far more than the socket buffers and the transport's high-water mark hold: the peer's abort
            // comes while the file is being sent.
            using var file = new MemoryStream(new byte[64 << 20]);
            var e = await Assert.ThrowsAnyAsync<Exception>(() => loop.Sendfile(t, file));
            Assert.True(e is SocketException or IOException, $"a connection error was expected, got {e}");
            Assert.Same(p, t.Protocol);
            await p.Lost!;
            Assert.True(file.Position < file.Length);
        });
    }

    [Fact]
    public void SockSendfile_BadArguments_Throw()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            using var _a = a;
            using var _b = b;
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
            using var file = new MemoryStream(new byte[10]);
            await Assert.ThrowsAsync<ArgumentException>(() => loop.SockSendfile(udp, file));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => loop.SockSendfile(a, file, offset: -1));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => loop.SockSendfile(a, file, count: -1));
            a.Blocking = true;
            await Assert.ThrowsAsync<ArgumentException>(() => loop.SockSendfile(a, file));
        });
    }
}

public sealed class EpollSendfileTests : SendfileTests
{
    protected override bool Portable => false;
}

public sealed class PortableSendfileTests : SendfileTests
{
    protected override bool Portable => true;
}

/// <summary>loop.ConnectAcceptedSocket: a socket accepted outside the loop gets a transport and protocol, on each reactor.</summary>
public abstract class ConnectAcceptedSocketTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    [Fact]
    public void ConnectAcceptedSocket_SocketAcceptedElsewhere_ServesIt()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (a, b) = NetTest.SocketPair();
            var (t, p) = await loop.ConnectAcceptedSocket(() => new EchoProtocol(), b);
            Assert.Equal(b.LocalEndPoint, t.GetExtraInfo("sockname"));
            var (ct, cp) = await loop.CreateConnection(() => new RecordingProtocol(), a);
            ct.Write("accepted"u8);
            await cp.WaitForBytes(8);
            Assert.Equal("accepted", cp.Text);
            ct.Close();
            await cp.Lost!;
        });
    }
}

public sealed class EpollConnectAcceptedSocketTests : ConnectAcceptedSocketTests
{
    protected override bool Portable => false;
}

public sealed class PortableConnectAcceptedSocketTests : ConnectAcceptedSocketTests
{
    protected override bool Portable => true;
}

/// <summary>Transports are loop-thread objects, on each reactor.</summary>
public abstract class TransportThreadTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    [Fact]
    public void Write_FromAnotherThread_ThrowsInvalidOperation()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port);
            var e = await Task.Run(() => Record.Exception(() => t.Write("x"u8)));
            Assert.IsType<InvalidOperationException>(e);
            t.Close();
            await p.Lost!;
        });
    }

    [Fact]
    public void CloseAbort_FromAnotherThread_ThrowInvalidOperationAndChangeNothing()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", 0);
            var (t, p) = await loop.CreateConnection(() => new RecordingProtocol(), "127.0.0.1", ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port);
            foreach (var call in (Action[])[t.Close, t.Abort])
            {
                var e = await Task.Run(() => Record.Exception(call));
                Assert.IsType<InvalidOperationException>(e);
                Assert.Contains("CallSoonThreadsafe", e.Message);
            }
            Assert.False(t.IsClosing);
            t.Close();
            await p.Lost!;
        });
    }
}

public sealed class EpollTransportThreadTests : TransportThreadTests
{
    protected override bool Portable => false;
}

public sealed class PortableTransportThreadTests : TransportThreadTests
{
    protected override bool Portable => true;
}
