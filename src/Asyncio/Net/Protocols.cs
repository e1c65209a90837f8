using System.Net;

namespace Asyncio;

/// <summary>
/// The callbacks a transport calls; asyncio's <c>BaseProtocol</c>. Subclass <see cref="Protocol"/>,
/// <see cref="BufferedProtocol"/> or <see cref="DatagramProtocol"/> and override what you need: every
/// callback does nothing by default.
/// </summary>
/// <remarks>
/// Callbacks run on the loop thread, one at a time, in asyncio's order: <see cref="ConnectionMade"/> once,
/// then data callbacks, then <see cref="ConnectionLost"/> once. An exception thrown by a data callback is
/// reported to the loop's exception handler and closes the connection, as in asyncio.
/// </remarks>
public abstract class BaseProtocol
{
    /// <summary>The connection is established; <paramref name="transport"/> is its transport.</summary>
    public virtual void ConnectionMade(IBaseTransport transport) { }

    /// <summary>
    /// The connection is closed: <paramref name="exception"/> is <see langword="null"/> for a normal close
    /// or end of stream, or the error that ended it (for example a <see cref="System.Net.Sockets.SocketException"/>
    /// for a reset).
    /// </summary>
    public virtual void ConnectionLost(Exception? exception) { }

    /// <summary>The transport's write buffer rose above its high-water mark: stop writing until <see cref="ResumeWriting"/>.</summary>
    public virtual void PauseWriting() { }

    /// <summary>The transport's write buffer drained to its low-water mark: writing may go on.</summary>
    public virtual void ResumeWriting() { }
}

/// <summary>A stream protocol that receives data as it arrives; asyncio's <c>Protocol</c>.</summary>
public abstract class Protocol : BaseProtocol
{
    /// <summary>
    /// Bytes arrived. <paramref name="data"/> is valid only during the call (the transport reuses its
    /// receive buffer): copy what you keep.
    /// </summary>
    /// <remarks>Differences from asyncio: a span over a pooled buffer instead of a new <c>bytes</c> object,
    /// so that receiving allocates nothing.</remarks>
    public virtual void DataReceived(ReadOnlySpan<byte> data) { }

    /// <summary>
    /// The peer closed its side (end of stream). Return <see langword="true"/> to keep the transport open
    /// for writing (a half-closed connection); <see langword="false"/>, the default, closes it.
    /// </summary>
    public virtual bool EofReceived() => false;
}

/// <summary>
/// A stream protocol that lends the transport its own buffer to receive into, so that data is not
/// copied; asyncio's <c>BufferedProtocol</c>.
/// </summary>
public abstract class BufferedProtocol : BaseProtocol
{
    /// <summary>
    /// Returns a non-empty buffer for the next receive; <paramref name="sizeHint"/> is the suggested size,
    /// or -1 when there is no suggestion.
    /// </summary>
    public abstract Memory<byte> GetBuffer(int sizeHint);

    /// <summary>The first <paramref name="count"/> bytes of the buffer last returned by <see cref="GetBuffer"/> were filled.</summary>
    public abstract void BufferUpdated(int count);

    /// <summary>The peer closed its side; see <see cref="Protocol.EofReceived"/>.</summary>
    public virtual bool EofReceived() => false;
}

/// <summary>A datagram protocol; asyncio's <c>DatagramProtocol</c>.</summary>
public abstract class DatagramProtocol : BaseProtocol
{
    /// <summary>A datagram arrived from <paramref name="remote"/>; <paramref name="data"/> is valid only during the call.</summary>
    /// <remarks>A datagram from an unbound Unix domain socket has no sender address: <paramref name="remote"/> is then a
    /// <see cref="System.Net.Sockets.UnixDomainSocketEndPoint"/> without a path (its <c>ToString()</c> is empty), where asyncio gives <c>None</c>.
    /// An exception thrown here goes to the loop's exception handler and the endpoint stays open, as in asyncio.</remarks>
    public virtual void DatagramReceived(ReadOnlySpan<byte> data, EndPoint remote) { }

    /// <summary>A send or receive failed (for example an ICMP port-unreachable); the endpoint stays open.</summary>
    /// <remarks>An exception thrown here reaches the caller of <see cref="IDatagramTransport.SendTo"/> when the send
    /// failed inside that call, and the loop's exception handler otherwise; the endpoint stays open, as in asyncio.</remarks>
    public virtual void ErrorReceived(Exception exception) { }
}
