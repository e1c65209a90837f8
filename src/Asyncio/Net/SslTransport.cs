using System.Net.Security;
using System.Net.Sockets;

namespace Asyncio;

/// <summary>A TLS transport over a plain one (filled in by the TLS slice).</summary>
internal static class SslTransport
{
    public static ITransport Create(EventLoop loop, Socket sock, BaseProtocol protocol, Future? waiter, Server? server,
        SslClientAuthenticationOptions? clientSsl, SslServerAuthenticationOptions? serverSsl, string? serverHostname,
        TimeSpan? handshakeTimeout, TimeSpan? shutdownTimeout) =>
        throw new NotSupportedException("TLS is not available yet.");
}

public sealed partial class EventLoop
{
    /// <summary>
    /// Upgrades <paramref name="transport"/> to TLS and returns the new transport, which delivers to
    /// <paramref name="protocol"/>; asyncio's <c>loop.start_tls</c>. The old transport must not be used afterwards.
    /// </summary>
    public Task<ITransport> StartTls(ITransport transport, BaseProtocol protocol,
        SslClientAuthenticationOptions? client, SslServerAuthenticationOptions? server,
        TimeSpan? handshakeTimeout = null, TimeSpan? shutdownTimeout = null) =>
        throw new NotSupportedException("TLS is not available yet.");
}
