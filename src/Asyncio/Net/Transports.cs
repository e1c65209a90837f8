using System.Net;

namespace Asyncio;

/// <summary>What every transport offers; asyncio's <c>BaseTransport</c>.</summary>
public interface IBaseTransport
{
    /// <summary>
    /// Information about the transport, by asyncio's names: <c>"peername"</c> and <c>"sockname"</c>
    /// (<see cref="EndPoint"/>), <c>"socket"</c> (<see cref="System.Net.Sockets.Socket"/>), and with TLS
    /// <c>"ssl_object"</c> (<see cref="System.Net.Security.SslStream"/>), <c>"peercert"</c>,
    /// <c>"cipher"</c>, <c>"sslcontext"</c>. Returns <paramref name="defaultValue"/> for an unknown name.
    /// </summary>
    object? GetExtraInfo(string name, object? defaultValue = null);

    /// <summary>Whether the transport is closing or closed; asyncio's <c>is_closing()</c>.</summary>
    bool IsClosing { get; }

    /// <summary>
    /// Closes the transport: buffered data is still sent, then the protocol's
    /// <see cref="BaseProtocol.ConnectionLost"/> is called with <see langword="null"/>. Idempotent.
    /// </summary>
    void Close();

    /// <summary>The protocol that receives the transport's callbacks; can be replaced (asyncio's <c>set_protocol</c>).</summary>
    BaseProtocol Protocol { get; set; }
}

/// <summary>The reading half of a transport; asyncio's <c>ReadTransport</c>.</summary>
public interface IReadTransport : IBaseTransport
{
    /// <summary>Whether the transport delivers data (not paused, not closing).</summary>
    bool IsReading { get; }

    /// <summary>Stops delivering data until <see cref="ResumeReading"/>. Idempotent.</summary>
    void PauseReading();

    /// <summary>Delivers data again after <see cref="PauseReading"/>. Idempotent.</summary>
    void ResumeReading();
}

/// <summary>The writing half of a transport; asyncio's <c>WriteTransport</c>.</summary>
public interface IWriteTransport : IBaseTransport
{
    /// <summary>
    /// Sends <paramref name="data"/> without blocking: what the socket does not take at once is copied to
    /// the write buffer and sent when it can be. Crossing the high-water mark calls the protocol's
    /// <see cref="BaseProtocol.PauseWriting"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The transport is closed or closing, or <see cref="WriteEof"/> was called.</exception>
    void Write(ReadOnlySpan<byte> data);

    /// <summary>Writes each buffer in turn; asyncio's <c>writelines</c>.</summary>
    void WriteLines(IEnumerable<ReadOnlyMemory<byte>> lines);

    /// <summary>Closes the write side once buffered data is sent (a half-close); asyncio's <c>write_eof</c>.</summary>
    void WriteEof();

    /// <summary>Whether <see cref="WriteEof"/> is supported (not on TLS transports).</summary>
    bool CanWriteEof { get; }

    /// <summary>Closes at once: buffered data is dropped, then <see cref="BaseProtocol.ConnectionLost"/> is called with <see langword="null"/>.</summary>
    void Abort();

    /// <summary>Bytes waiting in the write buffer.</summary>
    int WriteBufferSize { get; }

    /// <summary>The low and high water marks of the write buffer.</summary>
    (int Low, int High) GetWriteBufferLimits();

    /// <summary>
    /// Sets the water marks; asyncio's <c>set_write_buffer_limits</c>: without <paramref name="high"/> it is
    /// 64 KiB (or four times <paramref name="low"/>), without <paramref name="low"/> it is a quarter of
    /// <paramref name="high"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Not <c>high &gt;= low &gt;= 0</c>.</exception>
    void SetWriteBufferLimits(int? high = null, int? low = null);
}

/// <summary>A bidirectional stream transport; asyncio's <c>Transport</c>.</summary>
public interface ITransport : IReadTransport, IWriteTransport
{
}

/// <summary>A datagram transport; asyncio's <c>DatagramTransport</c>.</summary>
public interface IDatagramTransport : IBaseTransport
{
    /// <summary>
    /// Sends one datagram to <paramref name="remote"/> (or to the connected peer when <see langword="null"/>),
    /// buffering it if the socket cannot take it now.
    /// </summary>
    /// <exception cref="InvalidOperationException">The transport is closed.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="remote"/> is <see langword="null"/> on an endpoint
    /// that is not connected; the endpoint stays open (asyncio's <c>sendto</c> fails inside and closes it).</exception>
    /// <exception cref="ArgumentException"><paramref name="remote"/> is not the connected peer (asyncio's ValueError).</exception>
    void SendTo(ReadOnlySpan<byte> data, EndPoint? remote = null);

    /// <summary>Closes at once, dropping buffered datagrams.</summary>
    void Abort();

    /// <summary>
    /// Bytes of datagrams waiting to be sent, counting 8 bytes of header for each besides its payload as asyncio
    /// does; compared with the water marks (64 KiB high, 16 KiB low) that pause and resume the protocol's writing.
    /// </summary>
    int WriteBufferSize { get; }
}

/// <summary>Write-buffer water marks shared by every transport.</summary>
internal struct WaterMarks
{
    public const int DefaultHigh = 64 * 1024;
    /// <summary>A TLS transport's default high-water mark (asyncio's <c>FLOW_CONTROL_HIGH_WATER_SSL_WRITE</c>).</summary>
    public const int DefaultHighTls = 512 * 1024;
    public int High, Low;

    public static WaterMarks Default => Make(null, null);

    /// <summary>asyncio's <c>_set_write_buffer_limits</c> (<c>add_flowcontrol_defaults</c>), with <paramref name="defaultHigh"/> when neither is given.</summary>
    public static WaterMarks Make(int? high, int? low, int defaultHigh = DefaultHigh)
    {
        int h = high ?? (low is int l ? 4 * l : defaultHigh);
        int lo = low ?? h / 4;
        if (!(h >= lo && lo >= 0))
            throw new ArgumentException($"high ({h}) must be >= low ({lo}) must be >= 0");
        return new WaterMarks { High = h, Low = lo };
    }
}
