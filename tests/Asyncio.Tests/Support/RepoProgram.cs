using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace Asyncio.Tests;

/// <summary>
/// Runs a program of this repository (a sample, a workload) as a child process, the way a newcomer runs it:
/// <c>dotnet Program.dll args</c>. The program is the one built in this test run's configuration; it is
/// built here, once per test run, if it is missing (for example when only the test project was built).
/// </summary>
public static class RepoProgram
{
    static readonly ConcurrentDictionary<string, Lazy<string>> s_dlls = new();
    // Two programs building at once would both build src/Asyncio into the same obj/ folder.
    static readonly object s_buildLock = new();

    /// <summary>
    /// Runs the program of the project in <paramref name="projectDir"/> (relative to the repository root,
    /// e.g. <c>samples/Seed</c>) with <paramref name="args"/>, and fails the test if it does not end within
    /// <paramref name="timeoutSeconds"/>.
    /// </summary>
    public static (int Code, string Stdout, string Stderr) Run(string projectDir, double timeoutSeconds, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(Dll(projectDir));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{projectDir} {string.Join(' ', args)} did not finish within {timeoutSeconds} s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The lines of <paramref name="output"/>, without line-end characters or a trailing empty line.</summary>
    public static string[] Lines(string output) =>
        output.Split('\n').Select(l => l.TrimEnd('\r')).Reverse().SkipWhile(l => l.Length == 0).Reverse().ToArray();

    /// <summary>The path of the program's dll for <paramref name="projectDir"/>, built if missing.</summary>
    public static string Dll(string projectDir) => s_dlls.GetOrAdd(projectDir, d => new Lazy<string>(() => LocateOrBuild(d))).Value;

    static string LocateOrBuild(string projectDir)
    {
        string config = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Asyncio.slnx"))) dir = dir.Parent;
        Assert.True(dir != null, "repository root (Asyncio.slnx) not found above " + AppContext.BaseDirectory);
        string project = Path.Combine(dir!.FullName, projectDir);
        string dll = Path.Combine(project, "bin", config, "net10.0", Path.GetFileName(projectDir) + ".dll");
        if (File.Exists(dll)) return dll;
        lock (s_buildLock)
        {
            if (File.Exists(dll)) return dll;
            var psi = new ProcessStartInfo("dotnet", ["build", project, "-c", config, "-nologo", "-v", "q"]) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEndAsync();
            Assert.True(p.WaitForExit(300_000) && p.ExitCode == 0, $"building {projectDir} failed:\n" + (p.HasExited ? output.Result : "timeout"));
        }
        return dll;
    }
}
