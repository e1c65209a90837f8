// A small process supervisor on the loop: subprocesses and signal handlers, asyncio-style, in C#.
//
//   dotnet run --project samples/Supervisor -- "echo hello" "sleep 30" ...
//
// Runs each shell command as a child process, all at once, and prints every line a child writes as
// "[k] line" the moment it comes. When they have all ended it exits with 0 (or 1 if any failed). On SIGINT
// (Ctrl+C) or SIGTERM it asks every child still running to stop (SIGTERM), waits for them, and exits with
// 128 + the signal's number, as a shell reports a program a signal ended. On SIGQUIT (Ctrl+\) it prints every
// task and what it awaits, and goes on. Linux only.
using System.Runtime.InteropServices;
using System.Text;
using Asyncio;

static class Supervisor
{
    const int SIGINT = 2, SIGTERM = 15;

    static int s_stoppedBy;   // the signal that asked everything to stop, or 0 (loop thread only)

    static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: Supervisor COMMAND [COMMAND...]   (each COMMAND runs with /bin/sh -c)");
            return 2;
        }
        return Aio.Run(() => Supervise(args));
    }

    static async Task<int> Supervise(string[] commands)
    {
        var loop = Aio.GetRunningLoop();
        var running = new HashSet<Subprocess>();
        // A signal handler runs on the loop's thread, between two callbacks: it may touch the loop's state freely.
        void Stop(int signal)
        {
            if (s_stoppedBy != 0) return;
            s_stoppedBy = signal;
            Console.WriteLine($"{(signal == SIGINT ? "SIGINT" : "SIGTERM")}: stopping {running.Count} running job(s)");
            foreach (var p in running) p.Terminate();
        }
        loop.AddSignalHandler(SIGINT, () => Stop(SIGINT));
        loop.AddSignalHandler(SIGTERM, () => Stop(SIGTERM));
        loop.DumpTasksOnSignal(PosixSignal.SIGQUIT, Console.Out);   // kill -QUIT: what is each job waiting for?

        var jobs = new List<AioTask<int>>();
        for (int i = 0; i < commands.Length; i++)
        {
            int k = i + 1;
            string command = commands[i];
            jobs.Add(Aio.CreateTask(() => RunJob(k, command, running), name: $"job-{k}"));
        }
        int[] codes = await Aio.Gather(jobs);

        if (s_stoppedBy != 0)
        {
            Console.WriteLine($"stopped by {(s_stoppedBy == SIGINT ? "SIGINT" : "SIGTERM")}");
            return 128 + s_stoppedBy;
        }
        return codes.All(c => c == 0) ? 0 : 1;
    }

    static async Task<int> RunJob(int k, string command, HashSet<Subprocess> running)
    {
        var p = await Aio.CreateSubprocessShell(command, stdin: Stdio.DevNull, stdout: Stdio.Pipe, stderr: Stdio.Stdout);
        running.Add(p);
        if (s_stoppedBy != 0) p.Terminate();   // a signal came while this job was starting
        Console.WriteLine($"[{k}] started: {command} (pid {p.Pid})");
        await foreach (var line in p.Stdout!) Console.WriteLine($"[{k}] {Encoding.UTF8.GetString(line).TrimEnd('\n')}");
        int code = await p.Wait();
        running.Remove(p);
        Console.WriteLine($"[{k}] exit {code}");
        return code;
    }
}
