using System.Text.Json;
using System.Xml.Linq;

namespace Asyncio.Tests.Diagnostics;

/// <summary>The loop's trace recorder (beyond asyncio): what ran when, as events, as Chrome's trace format and as an SVG timeline.</summary>
[Collection("Console")] // one test redirects Console.Error
public class LoopTraceTests
{
    static readonly AsyncLocal<int> s_local = new();

    static void Named() { }

    static List<LoopTraceEvent> Of(LoopTrace trace, LoopTraceEventKind kind) => trace.Events.Where(e => e.Kind == kind).ToList();

    [Fact]
    public void Trace_RecordsEachStepOfEachTask_InTheOrderTheyRan()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace();
        loop.RunUntilComplete(async () =>
        {
            static async Task Twice() { await Aio.Sleep(0); await Aio.Sleep(0); }
            var a = Aio.CreateTask(Twice, "a");
            var b = Aio.CreateTask(Twice, "b");
            await Aio.Gather(a, b);
        });
        var steps = Of(trace, LoopTraceEventKind.Step).Select(e => e.Task!.Name).Where(n => n is "a" or "b").ToList();
        Assert.Equal(["a", "b", "a", "b", "a", "b"], steps);
        Assert.All(Of(trace, LoopTraceEventKind.Step), e => Assert.True(e.Duration >= TimeSpan.Zero));
    }

    [Fact]
    public void Trace_NotesCreationBeforeTheFirstStep_AndTheEndAfterTheLast()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace();
        AioTask? t = null;
        loop.RunUntilComplete(async () =>
        {
            t = Aio.CreateTask(async () => await Aio.Sleep(1), "sleeper");
            await t;
        });
        var events = trace.Events.Where(e => ReferenceEquals(e.Task, t)).ToList();
        Assert.Equal(LoopTraceEventKind.TaskCreated, events[0].Kind);
        Assert.Equal(LoopTraceEventKind.TaskDone, events[^1].Kind);
        Assert.Equal(2, events.Count(e => e.Kind == LoopTraceEventKind.Step));
        for (int i = 1; i < events.Count; i++) Assert.True(events[i].Start >= events[i - 1].Start);
    }

    [Fact]
    public void Trace_TheFirstStepOfATaskMadeInAnotherExecutionContext_IsThatTasksStep()
    {
        // A task created while an AsyncLocal is set starts through another callback (it runs in the creator's
        // context, as asyncio copies it): its first step is still the task's.
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace();
        AioTask? t = null;
        loop.RunUntilComplete(async () =>
        {
            s_local.Value = 7;
            t = Aio.CreateTask(async () => { Assert.Equal(7, s_local.Value); await Aio.Sleep(0); }, "in-context");
            await t;
        });
        Assert.Equal(2, trace.Events.Count(e => e.Kind == LoopTraceEventKind.Step && ReferenceEquals(e.Task, t)));
        Assert.DoesNotContain(trace.Events, e => e.Kind == LoopTraceEventKind.Callback && e.Name.Contains("AioTask"));
    }

    [Fact]
    public void Trace_APlainCallback_IsNamedByTheMethodScheduled()
    {
        using var loop = new EventLoop();
        var trace = loop.StartTrace();
        loop.CallSoon(Named);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        var callback = Assert.Single(Of(trace, LoopTraceEventKind.Callback), e => e.Callback?.Method.Name == nameof(Named));
        Assert.Equal("LoopTraceTests.Named", callback.Name);
        Assert.Null(callback.Task);
    }

    [Fact]
    public void Trace_AWaitForATimer_IsAnIdleEventBetweenTheSteps()
    {
        using var loop = new EventLoop();
        var trace = loop.StartTrace();
        AioTask? t = null;
        loop.RunUntilComplete(async () =>
        {
            t = Aio.CreateTask(async () => await Aio.Sleep(0.02), "waits");
            await t;
        });
        var steps = Of(trace, LoopTraceEventKind.Step).Where(e => ReferenceEquals(e.Task, t)).ToList();
        Assert.Equal(2, steps.Count);
        var first = steps[0].Start + steps[0].Duration;
        Assert.Contains(trace.Events, e => e.Kind == LoopTraceEventKind.Idle && e.Start >= first && e.Start + e.Duration <= steps[1].Start);
    }

    [Fact]
    public void Trace_WhenFull_KeepsTheLatestEvents_AndCountsTheDropped()
    {
        using var loop = new EventLoop();
        var trace = loop.StartTrace(capacity: 4);
        var order = new List<int>();
        for (int i = 0; i < 10; i++)
        {
            int k = i;
            loop.CallSoon(() => order.Add(k));
        }
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        var events = trace.Events;
        Assert.Equal(4, events.Count);
        Assert.Equal(11 - 4, trace.Dropped);
        Assert.Equal(4, trace.Capacity);
        Assert.Equal("EventLoop.Stop", events[^1].Name);
        for (int i = 1; i < events.Count; i++) Assert.True(events[i].Start >= events[i - 1].Start);
    }

    [Fact]
    public void Stop_EndsTheRecording_AndANewTraceCanStart()
    {
        using var loop = new EventLoop();
        var trace = loop.StartTrace();
        Assert.Same(trace, loop.Trace);
        loop.CallSoon(trace.Stop);
        loop.CallSoon(Named);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        Assert.False(trace.IsRecording);
        Assert.Null(loop.Trace);
        Assert.DoesNotContain(trace.Events, e => e.Callback?.Method.Name == nameof(Named));
        trace.Stop();   // idempotent
        var next = loop.StartTrace();
        Assert.True(next.IsRecording);
    }

    [Fact]
    public async Task Close_StopsTheTrace_WhichCanThenBeReadFromAnyThread()
    {
        var loop = new EventLoop();
        var trace = loop.StartTrace();
        loop.RunUntilComplete(async () => await Aio.Sleep(0));
        loop.Close();
        Assert.False(trace.IsRecording);
        int count = await Task.Run(() => trace.Events.Count);
        Assert.True(count > 0);
    }

    [Fact]
    public void StartTrace_BadCapacity_Twice_OrOnAClosedLoop_Throws()
    {
        var loop = new EventLoop();
        Assert.Throws<ArgumentOutOfRangeException>(() => loop.StartTrace(0));
        loop.StartTrace();
        var e = Assert.Throws<InvalidOperationException>(() => loop.StartTrace());
        Assert.Contains("already", e.Message);
        loop.Close();
        Assert.Throws<InvalidOperationException>(() => loop.StartTrace());
    }

    [Fact]
    public void StartTrace_StopAndReading_FromAnotherThreadWhileTheLoopRuns_Throw()
    {
        using var loop = new EventLoop();
        var trace = loop.StartTrace();
        Exception? start = null, stop = null, read = null;
        loop.RunUntilComplete(async () =>
        {
            await Task.Run(() =>
            {
                start = Record.Exception(() => loop.StartTrace());
                stop = Record.Exception(trace.Stop);
                read = Record.Exception(() => trace.Events);
            });
        });
        Assert.IsType<InvalidOperationException>(start);
        Assert.IsType<InvalidOperationException>(stop);
        Assert.IsType<InvalidOperationException>(read);
        Assert.True(trace.IsRecording);
    }

    [Fact]
    public void WriteChromeTrace_WritesCompleteEventsAndATrackPerTask()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace();
        loop.RunUntilComplete(async () =>
        {
            var a = Aio.CreateTask(async () => await Aio.Sleep(1), "alpha");
            var b = Aio.CreateTask(async () => { await Aio.Sleep(0); throw new InvalidOperationException("no"); }, "beta");
            await a;
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await b);
        });
        trace.Stop();
        var stream = new MemoryStream();
        trace.WriteChromeTrace(stream);
        using var doc = JsonDocument.Parse(stream.ToArray());
        var events = doc.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
        Assert.Contains(events, e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "thread_name");
        var complete = events.Where(e => e.GetProperty("ph").GetString() == "X").ToList();
        Assert.Contains(complete, e => e.GetProperty("name").GetString() == "alpha" && e.GetProperty("cat").GetString() == "step");
        Assert.All(complete, e => Assert.True(e.GetProperty("ts").GetDouble() >= 0 && e.GetProperty("dur").GetDouble() >= 0));
        foreach (var name in new[] { "alpha", "beta" })
        {
            var edges = events.Where(e => e.GetProperty("ph").GetString() is "b" or "e" && e.GetProperty("name").GetString() == name).ToList();
            Assert.Equal(["b", "e"], edges.Select(e => e.GetProperty("ph").GetString()));
            Assert.Equal(edges[0].GetProperty("id").GetInt32(), edges[1].GetProperty("id").GetInt32());
            Assert.True(edges[1].GetProperty("ts").GetDouble() >= edges[0].GetProperty("ts").GetDouble());
        }
    }

    [Fact]
    public void WriteSvg_IsWellFormed_NamesTheTasks_AndEscapesTheirNames()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace();
        loop.RunUntilComplete(async () =>
        {
            var tasks = new[] { "<odd & \"named\">", "second", "third" }.Select(n => Aio.CreateTask(async () => await Aio.Sleep(0.5), n)).ToArray();
            await Aio.Gather(tasks);
        });
        trace.Stop();
        var stream = new MemoryStream();
        trace.WriteSvg(stream, maxTaskRows: 2);
        var svg = XDocument.Parse(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        var texts = svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value).ToList();
        Assert.Contains("loop", texts);
        Assert.Contains(texts, t => t.StartsWith("Task-"));   // the main task, first seen
        Assert.Contains("<odd & \"named\">", texts);
        Assert.DoesNotContain("third", texts);
        Assert.Contains(texts, t => t.Contains("2 more tasks"));
    }

    [Fact]
    public void WriteSvg_OfManyEvents_StaysSmall()
    {
        // Blocks that touch at the picture's scale are drawn as one: 20,000 callbacks do not make 20,000 shapes.
        using var loop = new EventLoop();
        var trace = loop.StartTrace(capacity: 100_000);
        for (int i = 0; i < 20_000; i++) loop.CallSoon(Named);
        loop.CallSoon(loop.Stop);
        loop.RunForever();
        trace.Stop();
        var stream = new MemoryStream();
        trace.WriteSvg(stream);
        Assert.True(stream.Length < 200_000, $"{stream.Length} bytes");
        Assert.True(trace.Events.Count > 20_000);
    }

    [Fact]
    public void WriteSvg_OfStepsAndCallbacksThatAlternate_StaysSmall()
    {
        // The loop's row changes colour at every event here: it is painted by columns, not block by block.
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace(capacity: 100_000);
        loop.RunUntilComplete(async () =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                loop.CallSoon(Named);
                await Aio.Sleep(0);
            }
        });
        trace.Stop();
        var stream = new MemoryStream();
        trace.WriteSvg(stream);
        Assert.True(stream.Length < 200_000, $"{stream.Length} bytes");
        Assert.True(trace.Events.Count(e => e.Kind == LoopTraceEventKind.Callback) >= 20_000);
    }

    [Fact]
    public void WriteSvg_ATaskNameWithControlCharacters_StillMakesValidXml()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace();
        loop.RunUntilComplete(async () => await Aio.CreateTask(async () => await Aio.Sleep(0), "bell\u0007task\uFFFF"));
        trace.Stop();
        var stream = new MemoryStream();
        trace.WriteSvg(stream);
        var svg = XDocument.Parse(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        Assert.Contains(svg.Descendants().Where(e => e.Name.LocalName == "text"), e => e.Value == "bell\uFFFDtask\uFFFD");
    }

    [Fact]
    public void Trace_ATimersCallback_IsNamedByTheMethodScheduled()
    {
        // CallLater and CallAt run through the loop's timer entry: the trace looks through it, as through a handle's.
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace();
        loop.CallLater(0.5, Named);
        loop.CallAt(loop.Time() + 1, _ => Named(), null);
        loop.CallLater(2, loop.Stop);
        loop.RunForever();
        var names = Of(trace, LoopTraceEventKind.Callback).Select(e => e.Name).ToList();
        Assert.Contains("LoopTraceTests.Named", names);
        Assert.Contains($"LoopTraceTests.{nameof(Trace_ATimersCallback_IsNamedByTheMethodScheduled)} (lambda)", names);
        Assert.Contains("EventLoop.Stop", names);
        Assert.DoesNotContain(names, n => n.Contains("TimerEntry"));
    }

    static int Compute() => 42;

    [Fact]
    public void Trace_RunInExecutorsResult_IsNamedByTheFunctionGiven()
    {
        using var loop = new EventLoop();
        var trace = loop.StartTrace();
        loop.RunUntilComplete(async () =>
        {
            Assert.Equal(42, await loop.RunInExecutor(null, Compute));
            await loop.RunInExecutor(null, Named);
        });
        var names = Of(trace, LoopTraceEventKind.Callback).Select(e => e.Name).ToList();
        Assert.Contains("LoopTraceTests.Compute", names);
        Assert.Contains("LoopTraceTests.Named", names);
        Assert.DoesNotContain(names, n => n.Contains("InExecutor (lambda)") || n.Contains("ReportFromExecutor (lambda)"));
    }

    [Fact]
    public void Trace_CallbacksAreNamedAsTheProgramWroteThem_LambdasAndDoneCallbacksToo()
    {
        using var loop = new EventLoop(new LoopOptions { VirtualTime = true });
        var trace = loop.StartTrace();
        loop.RunUntilComplete(async () =>
        {
            loop.CallSoon(() => { });
            var t = Aio.CreateTask(async () => await Aio.Sleep(0), "t");
            t.AddDoneCallback(_ => { });
            await t;
            await Aio.Sleep(0);
        });
        var names = trace.Events.Where(e => e.Kind == LoopTraceEventKind.Callback).Select(e => e.Name).ToList();
        string here = nameof(Trace_CallbacksAreNamedAsTheProgramWroteThem_LambdasAndDoneCallbacksToo);
        Assert.Equal(2, names.Count(n => n == $"LoopTraceTests.{here} (lambda)"));   // the CallSoon and the done callback
        Assert.DoesNotContain(names, n => n.Contains("<>c") || n.Contains("b__"));
    }

    [Theory]
    [InlineData(0.7, 1)]
    [InlineData(1.2, 2)]
    [InlineData(3, 5)]
    [InlineData(60, 100)]
    [InlineData(0.013, 0.02)]
    public void NiceStep_RoundsUpToOneTwoOrFiveTimesAPowerOfTen(double rough, double expected) =>
        Assert.Equal(expected, LoopTrace.NiceStep(rough), 9);

    [Fact]
    public void Trace_DoesNotDisturbDebugModesReports()
    {
        string output = Loop.DebugModeTests.StandardErrorOf(() =>
        {
            using var loop = new EventLoop(new LoopOptions { Debug = true, SlowCallbackDuration = TimeSpan.FromMilliseconds(20) });
            var trace = loop.StartTrace();
            loop.RunUntilComplete(async () => await Aio.CreateTask(async () => { await Aio.Sleep(0); Thread.Sleep(40); }, "slow-traced"));
            Assert.Contains(trace.Events, e => e.Kind == LoopTraceEventKind.Step && e.Task?.Name == "slow-traced" && e.Duration >= TimeSpan.FromMilliseconds(40));
        });
        Assert.Contains("slow-traced", output);
    }
}
