using System.Runtime.InteropServices;

namespace Asyncio;

/// <summary>
/// The callbacks of a child process's transport; asyncio's <c>SubprocessProtocol</c>, for
/// <see cref="EventLoop.SubprocessExec{TProtocol}(Func{TProtocol}, string, IEnumerable{string}?, Stdio, Stdio, Stdio, string?, IReadOnlyDictionary{string, string}?, bool, IEnumerable{SafeHandle}?, int?)"/>.
/// Override what you need: every callback does nothing by default.
/// </summary>
/// <remarks>
/// Callbacks run on the loop thread, in asyncio's order: <see cref="BaseProtocol.ConnectionMade"/> (with the
/// <see cref="ISubprocessTransport"/>) once every pipe is connected; then <see cref="PipeDataReceived"/> and
/// <see cref="ProcessExited"/> as they come, and <see cref="PipeConnectionLost"/> once per pipe; and
/// <see cref="BaseProtocol.ConnectionLost"/> once the child has exited and every pipe is closed. A stdin pipe's
/// buffer crossing its water marks calls <see cref="BaseProtocol.PauseWriting"/> and <see cref="BaseProtocol.ResumeWriting"/>.
/// An exception thrown by a callback is reported to the loop's exception handler, except from
/// <see cref="BaseProtocol.ConnectionMade"/>: that one fails the start (the child is killed, and no other callback follows).
/// </remarks>
public abstract class SubprocessProtocol : BaseProtocol
{
    /// <summary>The child wrote <paramref name="data"/> to pipe <paramref name="fd"/> (1: stdout, 2: stderr); the span is valid during the call only.</summary>
    public virtual void PipeDataReceived(int fd, ReadOnlySpan<byte> data) { }

    /// <summary>Pipe <paramref name="fd"/> (0, 1 or 2) is closed: <paramref name="exception"/> is <see langword="null"/> at its end, else the error that ended it.</summary>
    public virtual void PipeConnectionLost(int fd, Exception? exception) { }

    /// <summary>The child has exited; its return code is <see cref="ISubprocessTransport.ReturnCode"/>.</summary>
    public virtual void ProcessExited() { }
}
