// Shared by this library's benchmark programs (Workloads, W3, W5, linked by Directory.Build.props) and
// bench/probes/Floors: the process's peak resident memory, as the harness's /usr/bin/time reports it.
using System.Globalization;

static class ProcessMemory
{
    /// <summary>Peak resident memory of this process so far (VmHWM of /proc/self/status), in MB.</summary>
    public static double PeakRssMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        return 0;
    }
}
