namespace Asyncio.Tests.Samples;

/// <summary>
/// Runs <c>samples/Seed</c>, the README's first command, with small arguments and checks what it prints:
/// the tutorial's two blocking one-second sleeps take two seconds, the same two as coroutines take one.
/// </summary>
public class SeedTests
{
    const string Project = "samples/Seed";

    /// <summary>
    /// Runs the program until it prints <paramref name="expected"/>, at most three times, and fails with the last
    /// output otherwise. The durations it prints are wall-clock seconds, rounded: a child process starved of CPU
    /// on a loaded machine (JIT, start-up of the loop) can take half a second more and print one more second.
    /// Trying again cannot let a wrong program pass: two sleeps of a second run one after the other never print
    /// a duration of 1, and sleeps that do not sleep never print 1 or 2.
    /// </summary>
    static void AssertPrints(string[] expected, params string[] args)
    {
        string last = "";
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var (code, stdout, stderr) = RepoProgram.Run(Project, 60, args);
            Assert.True(code == 0, $"exit code {code}\n{stdout}\n{stderr}");
            if (RepoProgram.Lines(stdout).SequenceEqual(expected)) return;
            last = stdout;
        }
        Assert.Equal(expected, RepoProgram.Lines(last));
    }

    [Fact]
    public void Run_TwoCallsBothModes_PrintsTutorialOutput()
    {
        // The only run with the blocking mode: it sleeps 1 s per call.
        AssertPrints(
            [
                "Antes de dormir", "Luego de dormir", "Antes de dormir", "Luego de dormir", "Duración: 2",
                "before sleep", "before sleep", "after sleep", "after sleep", "duration: 1",
            ],
            "--n", "2", "--mode", "both");
    }

    [Fact]
    public void Run_Quiet_PrintsOnlyDuration()
    {
        AssertPrints(["duration: 1"], "--n", "2", "--mode", "async", "--quiet");
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
