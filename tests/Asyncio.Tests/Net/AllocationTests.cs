using System.Net;
using System.Net.Sockets;

namespace Asyncio.Tests.Net;

/// <summary>Hot paths of the Net layer allocate nothing per request in steady state.</summary>
public class AllocationTests
{
    /// <summary>
    /// Runs <paramref name="requests"/> 64-byte echo round trips from a blocking client on another thread
    /// against a server on the loop, and returns the bytes the loop thread allocated during the measured part.
    /// </summary>
    static long LoopBytesPerEcho(Func<EventLoop, Task<Server>> startServer, int warmup, int requests, bool portable = false)
    {
        long allocated = -1;
        AioTest.Run(() => Aio.Timeout(NetTest.Bound, async () =>
        {
            var loop = Aio.GetRunningLoop();
            await using var server = await startServer(loop);
            var ep = server.Sockets[0].LocalEndPoint!;
            long before = 0, after = 0;
            var done = loop.CreateFuture();
            var client = new Thread(() =>
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                s.Connect(ep);
                var msg = new byte[64];
                var back = new byte[64];
                void RoundTrips(int n)
                {
                    for (int i = 0; i < n; i++)
                    {
                        s.Send(msg);
                        int got = 0;
                        while (got < 64) got += s.Receive(back, got, 64 - got, SocketFlags.None);
                    }
                }
                RoundTrips(warmup);
                using (var mark = new ManualResetEventSlim())
                {
                    loop.CallSoonThreadsafe(() => { before = GC.GetAllocatedBytesForCurrentThread(); mark.Set(); });
                    mark.Wait();
                }
                RoundTrips(requests);
                using (var mark = new ManualResetEventSlim())
                {
                    loop.CallSoonThreadsafe(() => { after = GC.GetAllocatedBytesForCurrentThread(); mark.Set(); });
                    mark.Wait();
                }
                s.Shutdown(SocketShutdown.Both);
                loop.CallSoonThreadsafe(() => done.SetResult());
            }) { IsBackground = true };
            client.Start();
            await done;
            server.AbortClients();
            allocated = after - before;
        }), new LoopOptions { PortableReactor = portable });
        return allocated;
    }

    sealed class Echo : Protocol
    {
        ITransport? _t;
        public override void ConnectionMade(IBaseTransport transport) => _t = (ITransport)transport;
        public override void DataReceived(ReadOnlySpan<byte> data) => _t!.Write(data);
    }

    [Fact]
    public void ProtocolEcho_SteadyState_AllocatesNothingPerRequest()
    {
        long bytes = LoopBytesPerEcho(loop => loop.CreateServer(() => new Echo(), "127.0.0.1", 0), 2000, 10_000);
        // A few hundred bytes for the thread-safe marks themselves; anything per request would be >= 10,000 x 24.
        Assert.True(bytes < 4_000, $"the loop allocated {bytes} bytes for 10,000 echoed requests");
    }

    [Fact]
    public void StreamsEcho_SteadyState_AllocatesNothingPerRequest()
    {
        static async Task Handle(AsyncStreamReader r, AsyncStreamWriter w)
        {
            var buf = new byte[4096];
            try
            {
                while (true)
                {
                    int n = await r.ReadInto(buf);
                    if (n == 0) break;
                    w.Write(buf.AsSpan(0, n));
                    await w.Drain();
                }
            }
            catch (SocketException) { }
            w.Close();
        }
        long bytes = LoopBytesPerEcho(_ => Aio.StartServer(Handle, "127.0.0.1", 0), 2000, 10_000);
        Assert.True(bytes < 4_000, $"the loop allocated {bytes} bytes for 10,000 echoed requests");
    }
}
