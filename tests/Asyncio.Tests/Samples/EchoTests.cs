using System.Text;

namespace Asyncio.Tests.Samples;

/// <summary>Runs <c>samples/Echo</c>: the demo, and the server as a child process that SIGQUIT inspects and SIGINT stops.</summary>
public class EchoTests
{
    const string Project = "samples/Echo";

    [Fact]
    public void Demo_EchoesEveryLineOfBothClients_OnBothServers()
    {
        var (code, stdout, stderr) = RepoProgram.Run(Project, 60);
        Assert.True(code == 0, $"exit code {code}\n{stdout}\n{stderr}");
        var lines = RepoProgram.Lines(stdout);
        foreach (var word in new[] { "hello", "from", "one", "and", "two" })
            Assert.Equal(2, lines.Count(l => l == $"client: got back {word}"));   // once per server kind
    }

    [Fact]
    public void Server_Sigquit_PrintsItsTasks_AndGoesOnServing_UntilSigint()
    {
        // A real SIGQUIT: the dump's handler takes it (no core dump), and the runner, to which .NET also reports
        // SIGQUIT as Ctrl+Break, leaves the main task alone (it used to cancel it, as for Ctrl+C).
        string dll = RepoProgram.Dll(Project);
        var (code, lines) = AioTest.Run(() => Aio.Timeout(TimeSpan.FromSeconds(60), async () =>
        {
            var p = await Aio.CreateSubprocessExec("dotnet", [dll, "server", "0"], stdout: Stdio.Pipe, stderr: Stdio.Stdout);
            var lines = new List<string>();
            async Task<string> ReadUntil(Func<string, bool> wanted)
            {
                while (true)
                {
                    var bytes = await p.Stdout!.ReadLine();
                    Assert.True(bytes.Length > 0, "the server ended early:\n" + string.Join('\n', lines));
                    string line = Encoding.UTF8.GetString(bytes).TrimEnd('\n');
                    lines.Add(line);
                    if (wanted(line)) return line;
                }
            }
            string serving = await ReadUntil(l => l.StartsWith("serving on "));
            int port = int.Parse(serving["serving on 127.0.0.1:".Length..serving.IndexOf(' ', "serving on ".Length)]);
            p.SendSignal(3);
            await ReadUntil(l => l.Contains("Task 'main'"));
            // Still serving: a client's line comes back.
            var (reader, writer) = await Aio.OpenConnection("127.0.0.1", port);
            writer.Write("still there\n"u8.ToArray());
            await writer.Drain();
            Assert.Equal("still there\n", Encoding.UTF8.GetString(await reader.ReadLine()));
            writer.Close();
            await writer.WaitClosed();
            p.SendSignal(2);
            var (rest, _) = await p.Communicate();
            lines.AddRange(RepoProgram.Lines(Encoding.UTF8.GetString(rest!)));
            return (p.ReturnCode!.Value, lines.ToArray());
        }), new LoopOptions());
        string all = string.Join('\n', lines);
        Assert.True(code == 0, $"exit code {code}\n{all}");
        Assert.Contains(lines, l => l.Contains("pending on the event loop"));
        Assert.Equal("stopped", lines[^1]);
    }
}
