using System.Text.Json;
using System.Xml.Linq;

namespace Asyncio.Tests.Samples;

/// <summary>Runs <c>samples/Timeline</c>, which traces a pipeline and writes the trace out as Chrome JSON and as SVG.</summary>
public class TimelineTests
{
    [Fact]
    public void Timeline_WritesBothFiles_WithEveryWorkerInThem_AndSaysWhereTheTimeWent()
    {
        string dir = Path.Combine(Path.GetTempPath(), "asyncio-timeline-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (code, stdout, stderr) = RepoProgram.Run("samples/Timeline", 120, "--out", dir);
            Assert.True(code == 0, $"exit code {code}\n{stdout}\n{stderr}");
            var lines = RepoProgram.Lines(stdout);
            Assert.StartsWith("traced ", lines[0]);
            // Which task is busiest depends on the machine's load (a producer's first step that waits for the JIT on a
            // loaded machine can outweigh a worker's parsing): any of the pipeline's tasks, with its steps counted.
            Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^busiest task: (producer|worker-[123]), \d+ steps, [\d.]+ ms$"));

            using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "timeline.json")));
            var names = json.RootElement.GetProperty("traceEvents").EnumerateArray()
                .Where(e => e.GetProperty("ph").GetString() == "X").Select(e => e.GetProperty("name").GetString()).ToHashSet();
            Assert.Superset(new HashSet<string?> { "producer", "worker-1", "worker-2", "worker-3", "idle" }, names);

            var svg = XDocument.Load(Path.Combine(dir, "timeline.svg"));
            var texts = svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value).ToList();
            Assert.Contains("worker-3", texts);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Timeline_BadArguments_SaysHowToUseIt()
    {
        var (code, _, stderr) = RepoProgram.Run("samples/Timeline", 120, "--bogus");
        Assert.Equal(2, code);
        Assert.Contains("usage", stderr);
    }
}
