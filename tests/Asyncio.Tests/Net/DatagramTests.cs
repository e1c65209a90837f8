using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Asyncio.Tests.Net;

/// <summary>Datagram endpoints (asyncio's create_datagram_endpoint), on each reactor.</summary>
public abstract class DatagramTests
{
    protected abstract bool Portable { get; }

    void Run(Func<Task> body) => NetTest.Run(Portable, body);

    sealed class Recorder : DatagramProtocol
    {
        public IDatagramTransport? Transport;
        public readonly List<(string Text, EndPoint From)> Got = new();
        public readonly List<Exception> Errors = new();
        public bool Echo;
        public Future Lost = Aio.GetRunningLoop().CreateFuture();
        public override void ConnectionMade(IBaseTransport transport) => Transport = (IDatagramTransport)transport;
        public override void DatagramReceived(ReadOnlySpan<byte> data, EndPoint remote)
        {
            Got.Add((Encoding.ASCII.GetString(data), remote));
            if (Echo) Transport!.SendTo(data, remote);
        }
        public override void ErrorReceived(Exception exception) => Errors.Add(exception);
        public override void ConnectionLost(Exception? exception) => Lost.SetResult();
    }

    [Fact]
    public void CreateDatagramEndpoint_EchoServerAndConnectedClient_ExchangeDatagrams()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (st, server) = await loop.CreateDatagramEndpoint(() => new Recorder { Echo = true }, localEndPoint: new IPEndPoint(IPAddress.Loopback, 0));
            var serverEp = (IPEndPoint)st.GetExtraInfo("sockname")!;
            var (ct, client) = await loop.CreateDatagramEndpoint(() => new Recorder(), remoteEndPoint: serverEp);
            Assert.Equal(serverEp, ct.GetExtraInfo("peername"));
            ct.SendTo("ping"u8);
            ct.SendTo("pong"u8);
            while (client.Got.Count < 2) await Aio.Sleep(0.001);
            Assert.Equal(["ping", "pong"], client.Got.Select(g => g.Text));
            Assert.Equal(ct.GetExtraInfo("sockname"), server.Got[0].From);
            Assert.Throws<ArgumentException>(() => ct.SendTo("x"u8, new IPEndPoint(IPAddress.Loopback, 1)));
            ct.Close();
            st.Close();
            await client.Lost;
            await server.Lost;
            Assert.Throws<InvalidOperationException>(() => ct.SendTo("late"u8));
        });
    }

    [Fact]
    public void ConnectedEndpoint_PeerPortClosed_ErrorReceivedAndStaysOpen()
    {
        Run(async () =>
        {
            var loop = Aio.GetRunningLoop();
            var (ct, client) = await loop.CreateDatagramEndpoint(() => new Recorder(), remoteEndPoint: new IPEndPoint(IPAddress.Loopback, NetTest.ClosedPort()));
            // Linux rate-limits ICMP port-unreachable replies (about one a second once a small burst is
            // spent, shared by every test running at once): keep sending for up to 5 s.
            for (int i = 0; i < 1000 && client.Errors.Count == 0; i++)
            {
                ct.SendTo("anyone?"u8);
                await Aio.Sleep(0.005);
            }
            var e = Assert.IsType<SocketException>(client.Errors[0]);
            Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
            Assert.False(ct.IsClosing);
            ct.Abort();
            await client.Lost;
        });
    }

    [Fact]
    public void CreateDatagramEndpoint_CancelledBeforeConnectionMade_CancelsQuietly()
    {
        // asyncio completes the endpoint's waiter only if it was not cancelled (_set_result_unless_cancelled).
        AioTask<(IDatagramTransport, Recorder)>? creating = null;
        var errors = NetTest.RunCollectingErrors(Portable, async () =>
        {
            var loop = Aio.GetRunningLoop();
            creating = loop.CreateTask(() => loop.CreateDatagramEndpoint(() => new Recorder(), localEndPoint: new IPEndPoint(IPAddress.Loopback, 0)));
            await Aio.Sleep(0); // the endpoint is made; its ConnectionMade is queued for the next iteration
            creating.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await creating);
            for (int i = 0; i < 3; i++) await Aio.Sleep(0);
        });
        Assert.True(creating!.IsCancelled);
        Assert.Empty(errors);
    }

    [Fact]
    public void CreateDatagramEndpoint_NoEndPoints_ThrowsArgumentException()
    {
        Run(async () =>
        {
            await Assert.ThrowsAsync<ArgumentException>(() => Aio.GetRunningLoop().CreateDatagramEndpoint(() => new Recorder()));
        });
    }
}

public sealed class EpollDatagramTests : DatagramTests
{
    protected override bool Portable => false;
}

public sealed class PortableDatagramTests : DatagramTests
{
    protected override bool Portable => true;
}
