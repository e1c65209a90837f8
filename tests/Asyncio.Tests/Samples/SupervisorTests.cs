using System.Text;
using Asyncio.Tests.Net;

namespace Asyncio.Tests.Samples;

/// <summary>
/// Runs <c>samples/Supervisor</c> as a child process of a loop (subprocesses testing themselves) and stops it with
/// SIGINT and SIGTERM: its signal handlers must stop its jobs gracefully, and its runner must leave Ctrl+C to them
/// instead of cancelling the main task.
/// </summary>
public class SupervisorTests
{
    const string Project = "samples/Supervisor";

    /// <summary>A job that says "ready", then runs until SIGTERM, which it answers with "bye" and exit 0.</summary>
    const string Stubborn = "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done";

    static async Task<(int Code, string[] Lines)> RunAndStop(string dll, int signal)
    {
        var p = await Aio.CreateSubprocessExec("dotnet", [dll, "echo first", Stubborn], stdout: Stdio.Pipe, stderr: Stdio.Stdout);
        var lines = new List<string>();
        // Stop it once the first job has ended and the second is under way, so that the signal meets one running job.
        while (!lines.Contains("[2] ready") || !lines.Contains("[1] exit 0"))
        {
            var line = await p.Stdout!.ReadLine();
            Assert.True(line.Length > 0, "the supervisor ended early:\n" + string.Join('\n', lines));
            lines.Add(Encoding.UTF8.GetString(line).TrimEnd('\n'));
        }
        p.SendSignal(signal);
        var (rest, _) = await p.Communicate();
        lines.AddRange(RepoProgram.Lines(Encoding.UTF8.GetString(rest!)));
        return (p.ReturnCode!.Value, lines.ToArray());
    }

    [Theory]
    [InlineData(2, "SIGINT")]
    [InlineData(15, "SIGTERM")]
    public void Signal_StopsTheRunningJobsGracefully_AndExitsWith128PlusTheSignal(int signal, string name)
    {
        string dll = RepoProgram.Dll(Project);   // built before the loop starts, if missing
        var (code, lines) = AioTest.Run(() => Aio.Timeout(TimeSpan.FromSeconds(60), () => RunAndStop(dll, signal)), new LoopOptions());
        string all = string.Join('\n', lines);
        Assert.True(code == 128 + signal, $"exit code {code}\n{all}");
        Assert.Contains("[1] first", lines);
        Assert.Contains("[1] exit 0", lines);
        Assert.Contains($"{name}: stopping 1 running job(s)", lines);
        Assert.Contains("[2] bye", lines);
        Assert.Contains("[2] exit 0", lines);
        Assert.Equal($"stopped by {name}", lines[^1]);
    }

    [Fact]
    public void Sigquit_PrintsWhatEachTaskAwaits_AndTheSupervisorGoesOn()
    {
        // A real SIGQUIT, taken by the dump's handler (no core dump), in a program that handles SIGINT and SIGTERM
        // itself: the dump shows the jobs' tasks, and SIGTERM still stops the supervisor gracefully afterwards.
        string dll = RepoProgram.Dll(Project);
        var (code, lines) = AioTest.Run(() => Aio.Timeout(TimeSpan.FromSeconds(60), async () =>
        {
            var p = await Aio.CreateSubprocessExec("dotnet", [dll, "echo first", Stubborn], stdout: Stdio.Pipe, stderr: Stdio.Stdout);
            var lines = new List<string>();
            async Task ReadUntil(Func<bool> done)
            {
                while (!done())
                {
                    var line = await p.Stdout!.ReadLine();
                    Assert.True(line.Length > 0, "the supervisor ended early:\n" + string.Join('\n', lines));
                    lines.Add(Encoding.UTF8.GetString(line).TrimEnd('\n'));
                }
            }
            await ReadUntil(() => lines.Contains("[2] ready") && lines.Contains("[1] exit 0"));
            p.SendSignal(3);
            await ReadUntil(() => lines.Any(l => l.Contains("Task 'job-2'")));
            p.SendSignal(15);
            var (rest, _) = await p.Communicate();
            lines.AddRange(RepoProgram.Lines(Encoding.UTF8.GetString(rest!)));
            return (p.ReturnCode!.Value, lines.ToArray());
        }), new LoopOptions());
        string all = string.Join('\n', lines);
        Assert.True(code == 128 + 15, $"exit code {code}\n{all}");
        Assert.Contains(lines, l => l.Contains("pending on the event loop"));
        Assert.Contains(lines, l => l.Contains("Task 'main'"));
        Assert.Contains("[2] bye", lines);
        Assert.Equal("stopped by SIGTERM", lines[^1]);
    }

    [Fact]
    public void Jobs_AllEnd_ExitCodeSaysWhetherAnyFailed()
    {
        var (code, stdout, stderr) = RepoProgram.Run(Project, 60, "echo one", "exit 3");
        Assert.True(code == 1, $"exit code {code}\n{stdout}\n{stderr}");
        var lines = RepoProgram.Lines(stdout);
        Assert.Contains("[1] one", lines);
        Assert.Contains("[1] exit 0", lines);
        Assert.Contains("[2] exit 3", lines);

        (code, stdout, stderr) = RepoProgram.Run(Project, 60);
        Assert.Equal(2, code);
        Assert.Contains("usage", stderr);
    }
}
