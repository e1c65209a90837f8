// Micro-benchmarks of the loop's hot paths (issue 2, "Performance").
//
//   dotnet run -c Release --project bench/Asyncio.Benchmarks -- --filter '*'      # BenchmarkDotNet
//   dotnet run -c Release --project bench/Asyncio.Benchmarks -- --alloc [NAME]    # exact bytes/op + types
//
// bench/run --micro runs both and writes the figures into BENCHMARKS.md.
using Asyncio.Benchmarks;
using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "--alloc")
    return AllocationProbe.Run(Console.Out, args.Length > 1 ? args[1] : null);
BenchmarkSwitcher.FromAssembly(typeof(LoopBenchmarks).Assembly).Run(args);
return 0;
