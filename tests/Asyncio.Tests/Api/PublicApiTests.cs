using System.Diagnostics;
using System.Reflection;

namespace Asyncio.Tests.Api;

/// <summary>Rules for the public surface (DESIGN.md section 2).</summary>
public class PublicApiTests
{
    static readonly string[] ImplicitNamespaces =
    [
        "System", "System.IO", "System.Collections.Generic", "System.Linq", "System.Net.Http",
        "System.Threading", "System.Threading.Tasks", "System.Diagnostics",
    ];

    [Fact]
    public void PublicTypes_DoNotShareANameWithTypesOfTheDefaultImplicitUsings()
    {
        // Load the assemblies that define those namespaces.
        Assembly[] framework =
        [
            typeof(object).Assembly, typeof(Enumerable).Assembly, typeof(HttpClient).Assembly,
            typeof(Process).Assembly, typeof(Stopwatch).Assembly, typeof(File).Assembly,
            typeof(List<>).Assembly, typeof(Barrier).Assembly, typeof(System.Threading.Channels.Channel).Assembly,
            typeof(System.Collections.Generic.PriorityQueue<,>).Assembly, typeof(TraceSource).Assembly,
            typeof(System.Linq.Enumerable).Assembly, typeof(StreamReader).Assembly,
        ];
        var taken = new HashSet<string>();
        foreach (var asm in framework.Distinct())
            foreach (var t in asm.GetExportedTypes())
                if (t.Namespace != null && ImplicitNamespaces.Contains(t.Namespace))
                    taken.Add(t.Name); // includes generic arity, e.g. Queue`1

        var clashes = typeof(EventLoop).Assembly.GetExportedTypes()
            .Where(t => taken.Contains(t.Name))
            .Select(t => t.FullName)
            .ToList();
        Assert.True(clashes.Count == 0, "Public types clashing with BCL names: " + string.Join(", ", clashes));
        // The check itself must be able to fail.
        Assert.Contains("Timeout", taken);
        Assert.Contains("Queue`1", taken);
    }

    [Fact]
    public void PublicTypes_LiveInTheAsyncioNamespace()
    {
        var stray = typeof(EventLoop).Assembly.GetExportedTypes().Where(t => t.Namespace != "Asyncio").Select(t => t.FullName).ToList();
        Assert.Empty(stray);
    }
}
