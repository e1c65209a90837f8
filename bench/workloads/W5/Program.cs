// W5 of DESIGN.md section 6, this library's side: a TCP echo server on 127.0.0.1, written the way the
// README teaches, in two styles, matching shared/peers/py/peer.py:
//
// (bench/runner passes a leading "w5", as the peers take a workload name: "W5 w5 proto PORT MAX" works too.)
//
//   W5 proto   PORT [MAX_SECONDS]   a Protocol whose DataReceived writes the data back (asyncio's EchoProto)
//   W5 streams PORT [MAX_SECONDS]   Aio.StartServer with a handler that reads up to 64 KiB, writes, drains
//   --idle-spin-us N (anywhere)      the same with LoopOptions.IdleSpin fixed at N µs, 0 for never (bench/run
//                                    --w5-idle-spin-us N adds such servers beside the default ones, whose spin
//                                    is adaptive)
//
// Prints LISTENING once it accepts, then serves until MAX_SECONDS (default 600) have passed: the harness
// normally stops it earlier; the bound makes sure it never outlives a run. Backlog 1024 as the peers.
using System.Globalization;
using System.Net.Sockets;
using Asyncio;

static class W5
{
    static int Main(string[] args)
    {
        LoopOptions? options = null;
        int flag = Array.IndexOf(args, "--idle-spin-us");
        if (flag >= 0)
        {
            if (flag + 1 >= args.Length || !double.TryParse(args[flag + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out double us))
                return Usage();
            options = new LoopOptions { IdleSpin = TimeSpan.FromMicroseconds(us) };
            args = [.. args[..flag], .. args[(flag + 2)..]];
        }
        if (args.Length > 0 && args[0] == "w5") args = args[1..];
        if (args.Length < 2 || args[0] is not ("proto" or "streams") || !int.TryParse(args[1], out int port))
            return Usage();
        double maxSeconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 600;
        Aio.Run(() => Serve(args[0], port, maxSeconds), options);
        return 0;

        static int Usage()
        {
            Console.Error.WriteLine("usage: W5 <proto|streams> PORT [MAX_SECONDS] [--idle-spin-us N]");
            return 2;
        }
    }

    static async Task Serve(string mode, int port, double maxSeconds)
    {
        var loop = Aio.GetRunningLoop();
        Server server = mode == "proto"
            ? await loop.CreateServer(() => new EchoProtocol(), "127.0.0.1", port, backlog: 1024)
            : await Aio.StartServer(HandleStream, "127.0.0.1", port, backlog: 1024);
        Console.WriteLine("LISTENING");
        Console.Out.Flush();
        await Aio.Sleep(maxSeconds);
        server.Close();
        server.AbortClients();
    }

    sealed class EchoProtocol : Protocol
    {
        ITransport? _transport;
        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;
        public override void DataReceived(ReadOnlySpan<byte> data) => _transport!.Write(data);
    }

    static async Task HandleStream(AsyncStreamReader reader, AsyncStreamWriter writer)
    {
        var buffer = new byte[65536];
        try
        {
            while (true)
            {
                int n = await reader.ReadInto(buffer);
                if (n == 0) break;
                writer.Write(buffer.AsSpan(0, n));
                await writer.Drain();
            }
        }
        catch (SocketException) { }
        writer.Close();
    }
}
