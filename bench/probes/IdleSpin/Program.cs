// What the loop's idle spin (LoopOptions.IdleSpin, docs/design/performance.md "Session 14") costs and gains:
// an echo server on the loop, measured for its CPU time, and a client that sends one 64-byte request at a
// time, paced, on one connection. run.sh pins the two to separate cores and sweeps the pace.
//
//   IdleSpin serve SECONDS [SPIN_US]          the server (a Protocol that writes back what it receives) on
//                                             127.0.0.1, with the default adaptive spin, or IdleSpin fixed at
//                                             SPIN_US (0: never spin); prints "LISTENING PORT", then after
//                                             SECONDS the share of one core it used meanwhile
//   IdleSpin client PORT INTERVAL_US SECONDS  one request every INTERVAL_US (0: back to back), each sent once
//                                             the previous answer is in; prints requests/s
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Asyncio;

static class IdleSpinProbe
{
    static int Main(string[] args)
    {
        static double Arg(string s) => double.Parse(s, CultureInfo.InvariantCulture);
        if (args.Length == 4 && args[0] == "client")
        {
            Client((int)Arg(args[1]), Arg(args[2]) / 1e6, Arg(args[3]));
            return 0;
        }
        if (args.Length is 2 or 3 && args[0] == "serve")
        {
            Serve(Arg(args[1]), args.Length == 3 ? TimeSpan.FromMicroseconds(Arg(args[2])) : null);
            return 0;
        }
        Console.Error.WriteLine("usage: IdleSpin serve SECONDS [SPIN_US] | IdleSpin client PORT INTERVAL_US SECONDS");
        return 2;
    }

    static void Serve(double seconds, TimeSpan? spin)
    {
        var loop = new EventLoop(new LoopOptions { IdleSpin = spin }); // runs until the process ends
        int port = 0;
        using var listening = new ManualResetEventSlim();
        var thread = new Thread(() => loop.RunUntilComplete(async () =>
        {
            var server = await loop.CreateServer(() => new Echo(), "127.0.0.1", 0);
            port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            listening.Set();
            await Aio.Sleep(seconds + 5); // outlives the measurement; the process ends first
        })) { IsBackground = true };
        thread.Start();
        listening.Wait();
        Console.WriteLine($"LISTENING {port}");
        Console.Out.Flush();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"server CPU {cpu.TotalSeconds / seconds * 100:F0} % of a core"));
    }

    static void Client(int port, double interval, double seconds)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Connect(new IPEndPoint(IPAddress.Loopback, port));
        var buffer = new byte[64];
        var clock = Stopwatch.StartNew();
        double next = 0;
        int requests = 0;
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            double now = clock.Elapsed.TotalSeconds;
            if (now < next)
            {
                if (next - now > 0.002) Thread.Sleep(1);
                else Thread.SpinWait(20); // a sleep of a few microseconds is not to be had
                continue;
            }
            next = Math.Max(next + interval, now);
            socket.Send(buffer);
            for (int got = 0; got < buffer.Length;)
            {
                int n = socket.Receive(buffer, got, buffer.Length - got, SocketFlags.None);
                if (n == 0) throw new IOException("the server closed the connection");
                got += n;
            }
            requests++;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"client {requests / seconds:F0} requests/s"));
    }

    sealed class Echo : Protocol
    {
        ITransport? _transport;
        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;
        public override void DataReceived(ReadOnlySpan<byte> data) => _transport!.Write(data);
    }
}
