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
