// An echo server and client on the loop, asyncio's classic networking example in C#:
//
//   dotnet run --project samples/Echo                 server on streams + client, in one process (demo)
//   dotnet run --project samples/Echo -- server [port] [protocol]   a server until Ctrl+C (streams, or protocol);
//                                                                   kill -QUIT prints its tasks and what they await
//   dotnet run --project samples/Echo -- client [port] [message...] send lines, print the echoes
//
// Everything listens on and connects to 127.0.0.1 only.
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Asyncio;

static class EchoSample
{
    static int Main(string[] args)
    {
        string mode = args.Length > 0 ? args[0] : "demo";
        int port = args.Length > 1 && int.TryParse(args[1], out var p) ? p : 8888;
        switch (mode)
        {
            case "demo":
                Aio.Run(Demo);
                return 0;
            case "server":
                bool protocol = args.Length > 2 && args[2] == "protocol";
                Aio.Run(() => RunServer(port, protocol));
                return 0;
            case "client":
                var lines = args.Length > 2 ? args[2..] : ["hello", "world"];
                Aio.Run(() => RunClient(port, lines));
                return 0;
            default:
                Console.Error.WriteLine("usage: Echo [demo | server [port] [protocol] | client [port] [message...]]");
                return 2;
        }
    }

    /// <summary>asyncio's streams echo server: one task per connection, reading lines and writing them back.</summary>
    static async Task HandleClient(AsyncStreamReader reader, AsyncStreamWriter writer)
    {
        var peer = writer.GetExtraInfo("peername");
        Console.WriteLine($"server: {peer} connected");
        await foreach (var line in reader)
        {
            Console.WriteLine($"server: {peer} sent {Encoding.UTF8.GetString(line).TrimEnd()}");
            writer.Write(line);
            await writer.Drain();   // wait while the client is slow to read
        }
        Console.WriteLine($"server: {peer} closed");
        writer.Close();
        await writer.WaitClosed();
    }

    /// <summary>The same server on the callback layer: a protocol whose DataReceived writes the data back.</summary>
    sealed class EchoProtocol : Protocol
    {
        ITransport? _transport;
        public override void ConnectionMade(IBaseTransport transport)
        {
            _transport = (ITransport)transport;
            Console.WriteLine($"server: {transport.GetExtraInfo("peername")} connected (protocol)");
        }
        public override void DataReceived(ReadOnlySpan<byte> data) => _transport!.Write(data);
        public override void ConnectionLost(Exception? exception) => Console.WriteLine("server: connection closed (protocol)");
    }

    static async Task<Server> StartEchoServer(int port, bool protocol) => protocol
        ? await Aio.GetRunningLoop().CreateServer(() => new EchoProtocol(), "127.0.0.1", port)
        : await Aio.StartServer(HandleClient, "127.0.0.1", port);

    static async Task RunServer(int port, bool protocol)
    {
        // Ctrl+C cancels the main task (Aio.Run does that); SIGQUIT (Ctrl+\) shows what every task awaits.
        Aio.GetRunningLoop().DumpTasksOnSignal(PosixSignal.SIGQUIT, Console.Out);
        await using var server = await StartEchoServer(port, protocol);
        Console.WriteLine($"serving on {server.Sockets[0].LocalEndPoint} ({(protocol ? "protocol" : "streams")}); Ctrl+C to stop");
        try { await server.ServeForever(); }
        catch (CancelledError) { Console.WriteLine("stopped"); }
    }

    static async Task RunClient(int port, IEnumerable<string> lines)
    {
        var (reader, writer) = await Aio.OpenConnection("127.0.0.1", port);
        foreach (var text in lines)
        {
            writer.Write(Encoding.UTF8.GetBytes(text + "\n"));
            await writer.Drain();
            var echo = await reader.ReadLine();
            Console.WriteLine($"client: got back {Encoding.UTF8.GetString(echo).TrimEnd()}");
        }
        writer.Close();
        await writer.WaitClosed();
    }

    static async Task Demo()
    {
        foreach (bool protocol in new[] { false, true })
        {
            await using var server = await StartEchoServer(0, protocol);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            // Two clients at once: the loop interleaves them on one thread.
            await Aio.Gather(RunClient(port, ["hello", "from", "one"]), RunClient(port, ["and", "two"]));
            server.Close();
        }
    }
}
