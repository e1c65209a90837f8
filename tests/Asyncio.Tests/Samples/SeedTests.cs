namespace Asyncio.Tests.Samples;

/// <summary>
/// Runs <c>samples/Seed</c>, the README's first command, with small arguments and checks what it prints:
/// the tutorial's two blocking one-second sleeps take two seconds, the same two as coroutines take one.
/// </summary>
public class SeedTests
{
    const string Project = "samples/Seed";

    [Fact]
    public void Run_TwoCallsBothModes_PrintsTutorialOutput()
    {
        // The only run with the blocking mode: it sleeps 1 s per call.
        var (code, stdout, stderr) = RepoProgram.Run(Project, 60, "--n", "2", "--mode", "both");

        Assert.True(code == 0, $"exit code {code}\n{stdout}\n{stderr}");
        Assert.Equal(
            [
                "Antes de dormir", "Luego de dormir", "Antes de dormir", "Luego de dormir", "Duración: 2",
                "before sleep", "before sleep", "after sleep", "after sleep", "duration: 1",
            ],
            RepoProgram.Lines(stdout));
    }

    [Fact]
    public void Run_Quiet_PrintsOnlyDuration()
    {
        var (code, stdout, stderr) = RepoProgram.Run(Project, 60, "--n", "2", "--mode", "async", "--quiet");

        Assert.True(code == 0, $"exit code {code}\n{stdout}\n{stderr}");
        Assert.Equal(["duration: 1"], RepoProgram.Lines(stdout));
    }

    [Theory]
    [InlineData("--n", "0")]
    [InlineData("--mode", "fast")]
    [InlineData("--verbose")]
    public void Run_BadArgument_PrintsUsageAndFails(params string[] args)
    {
        var (code, stdout, stderr) = RepoProgram.Run(Project, 60, args);

        Assert.Equal(2, code);
        Assert.StartsWith("usage: Seed", stderr);
        Assert.Empty(stdout);
    }
}
