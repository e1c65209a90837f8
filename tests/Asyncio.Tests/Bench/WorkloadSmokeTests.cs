using System.Text.Json;

namespace Asyncio.Tests.Bench;

/// <summary>
/// Runs each of this library's macro workloads (<c>bench/workloads/Workloads</c>, the program that
/// <c>bench/run</c> measures) at a tiny size and checks that it completes and prints its
/// <c>RESULT {json}</c> line. Speed is not checked here: that is what <c>bench/run</c> is for.
/// </summary>
public class WorkloadSmokeTests
{
    [Theory]
    [InlineData("w1", 2, "wall_s")]
    [InlineData("w2", 1000, "rate")]
    [InlineData("w4", 200, "p99_ms")]
    public void Run_TinySize_PrintsResultLine(string workload, int n, string field)
    {
        var result = RunWorkload(workload, n);

        Assert.True(result.TryGetProperty(field, out var value), $"RESULT has no '{field}': {result}");
        Assert.True(value.GetDouble() >= 0, $"{field} = {value}");
        Assert.True(result.GetProperty("rss_mb").GetDouble() > 0);
        if (workload == "w4")
            Assert.True(result.GetProperty("min_ms").GetDouble() >= 0, $"a timer fired early: {result}");
    }

    [Fact]
    public void Run_BadArguments_PrintsUsageAndFails()
    {
        var (code, _, stderr) = Start("w9", "1");

        Assert.Equal(2, code);
        Assert.Contains("usage", stderr);
    }

    static JsonElement RunWorkload(string workload, int n)
    {
        var (code, stdout, stderr) = Start(workload, n.ToString());
        Assert.True(code == 0, $"exit code {code}\n{stdout}\n{stderr}");
        var line = stdout.Split('\n').Select(l => l.TrimEnd('\r')).LastOrDefault(l => l.StartsWith("RESULT {", StringComparison.Ordinal));
        Assert.True(line != null, $"no RESULT line in:\n{stdout}\n{stderr}");
        return JsonDocument.Parse(line!["RESULT ".Length..]).RootElement.Clone();
    }

    static (int Code, string Stdout, string Stderr) Start(params string[] args) =>
        RepoProgram.Run("bench/workloads/Workloads", 60, args);
}
