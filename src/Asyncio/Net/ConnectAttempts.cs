using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Asyncio;

// How CreateConnection connects to a host that resolves to several addresses (asyncio's create_connection
// with happy_eyeballs_delay, interleave and all_errors).
//
// Without a delay the addresses are tried one at a time, in order, until one connects. With a delay it is
// Happy Eyeballs (RFC 8305): the first attempt starts at once, each later one when the attempt before it
// has failed or the delay has passed since it started, and they run side by side as tasks; the first to
// connect wins. The race then ends for the others: pending attempts are cancelled, and an attempt that
// connects after the winner, or in the same iteration, closes its socket, so no socket outlives the race
// unless it is the winner's. Cancelling the caller cancels every attempt the same way.

/// <summary>The connection attempts of <see cref="EventLoop.CreateConnection{TProtocol}(Func{TProtocol}, string, int, EndPoint?, System.Net.Security.SslClientAuthenticationOptions?, TimeSpan?, TimeSpan?, TimeSpan?, int?, bool)"/>.</summary>
internal static class ConnectAttempts
{
    /// <summary>
    /// Reorders addresses by family as RFC 8305's "First Address Family Count": the first
    /// <paramref name="firstFamilyCount"/> addresses of the first family, then the families in turn, each in
    /// its own order (asyncio's <c>interleave</c>). Families are taken in the order they first appear.
    /// </summary>
    public static List<T> Interleave<T>(IReadOnlyList<T> addresses, Func<T, AddressFamily> familyOf, int firstFamilyCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(firstFamilyCount, 1);
        var families = new List<Queue<T>>();
        var byFamily = new Dictionary<AddressFamily, Queue<T>>();
        foreach (var a in addresses)
        {
            var f = familyOf(a);
            if (!byFamily.TryGetValue(f, out var q))
            {
                byFamily[f] = q = new Queue<T>();
                families.Add(q);
            }
            q.Enqueue(a);
        }
        var result = new List<T>(addresses.Count);
        for (int i = 1; i < firstFamilyCount && families.Count > 0 && families[0].Count > 0; i++)
            result.Add(families[0].Dequeue());
        while (result.Count < addresses.Count)
            foreach (var q in families)
                if (q.Count > 0) result.Add(q.Dequeue());
        return result;
    }

    /// <summary>
    /// Connects a new non-blocking socket to the first of <paramref name="endpoints"/> that accepts, one at a
    /// time or, with <paramref name="delay"/>, by Happy Eyeballs (see the file's opening comment).
    /// </summary>
    /// <param name="loop">The running loop.</param>
    /// <param name="endpoints">The addresses, in the order to try them.</param>
    /// <param name="locals">The local addresses to bind each socket to first (the first of the socket's family
    /// that binds), or <see langword="null"/> not to bind.</param>
    /// <param name="delay">Happy Eyeballs' connection attempt delay, or <see langword="null"/> to try one at a time.</param>
    /// <param name="errors">Receives the error of each failed attempt, at the attempt's index.</param>
    /// <returns>The connected socket, or <see langword="null"/> if every attempt failed.</returns>
    public static async Task<Socket?> Connect(EventLoop loop, IReadOnlyList<IPEndPoint> endpoints, IReadOnlyList<IPEndPoint>? locals, TimeSpan? delay, Exception?[] errors)
    {
        if (delay is not { } d)
        {
            for (int i = 0; i < endpoints.Count; i++)
                if (await TryConnect(loop, endpoints[i], locals, errors, i, null) is { } sock) return sock;
            return null;
        }
        return await new Race(loop, endpoints, locals, errors).Run(d);
    }

    /// <summary>
    /// The addresses a local end point stands for: an <see cref="IPEndPoint"/> itself, a <see cref="DnsEndPoint"/>
    /// what its host resolves to (asyncio resolves <c>local_addr</c> as well).
    /// </summary>
    /// <remarks>Check the end point's type first with <see cref="CheckLocal"/>.</remarks>
    /// <exception cref="SocketException">The host could not be resolved.</exception>
    public static async Task<IReadOnlyList<IPEndPoint>> ResolveLocal(EventLoop loop, EndPoint local) => local switch
    {
        IPEndPoint ip => [ip],
        DnsEndPoint dns => (await loop.GetAddrInfo(dns.Host, dns.Port, dns.AddressFamily, SocketType.Stream)).Select(i => i.EndPoint).ToList(),
        _ => throw new UnreachableException(),
    };

    /// <summary>
    /// Refuses a local end point that <see cref="ResolveLocal"/> cannot use, before anything is looked up or
    /// connected: bad input fails at once rather than after a name lookup that may fail for another reason.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="local"/> is neither an <see cref="IPEndPoint"/> nor a <see cref="DnsEndPoint"/>.</exception>
    public static void CheckLocal(EndPoint? local)
    {
        if (local is not (null or IPEndPoint or DnsEndPoint))
            throw new ArgumentException($"A local end point must be an IPEndPoint or a DnsEndPoint, got {local.GetType().Name}.", "localEndPoint");
    }

    /// <summary>
    /// Binds <paramref name="sock"/> to the first of <paramref name="locals"/> of its family that it can be
    /// bound to, as asyncio's <c>_connect_sock</c>: addresses of another family are skipped; if none binds, the
    /// last bind error is thrown, or, with none of the family, an error saying so.
    /// </summary>
    static void Bind(Socket sock, IReadOnlyList<IPEndPoint> locals)
    {
        SocketException? last = null;
        foreach (var local in locals)
        {
            if (local.AddressFamily != sock.AddressFamily) continue;
            try
            {
                sock.Bind(local);
                return;
            }
            catch (SocketException e) { last = EventLoop.BindFailure(local, e); }
        }
        throw last ?? new SocketException((int)SocketError.AddressNotAvailable, $"no matching local address with family={sock.AddressFamily} found");
    }

    /// <summary>One attempt: a socket connected to <paramref name="endpoint"/>, or <see langword="null"/> with its error recorded.</summary>
    static async Task<Socket?> TryConnect(EventLoop loop, IPEndPoint endpoint, IReadOnlyList<IPEndPoint>? locals, Exception?[] errors, int index, Race? race)
    {
        var sock = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        try
        {
            if (locals != null) Bind(sock, locals);
            await loop.SockConnect(sock, endpoint);
        }
        catch (SocketException e)
        {
            sock.Dispose();
            errors[index] = e;
            return null;
        }
        catch
        {
            sock.Dispose();
            throw;
        }
        if (race != null && race.Over)
        {
            // Connected after the race ended (a winner, or the caller gave up): nobody will take it.
            sock.Dispose();
            return null;
        }
        return sock;
    }

    sealed class Race(EventLoop loop, IReadOnlyList<IPEndPoint> endpoints, IReadOnlyList<IPEndPoint>? locals, Exception?[] errors)
    {
        readonly List<AioTask<Socket?>> _attempts = new(endpoints.Count);

        /// <summary>Set once a winner is chosen or the race is abandoned; later connections close themselves.</summary>
        public bool Over;

        public async Task<Socket?> Run(TimeSpan delay)
        {
            Socket? winner = null;
            try
            {
                for (int i = 0; i < endpoints.Count; i++)
                {
                    int index = i;
                    var attempt = loop.CreateTask(() => TryConnect(loop, endpoints[index], locals, errors, index, this));
                    _attempts.Add(attempt);
                    if (i == endpoints.Count - 1) break;
                    // The next attempt starts when this one has failed or the delay has passed, unless one connects.
                    double deadline = loop.Time() + delay.TotalSeconds;
                    while (!attempt.IsDone && (winner = Winner()) == null)
                    {
                        double left = deadline - loop.Time();
                        if (left <= 0) break;
                        await Aio.Wait(Pending(), left, ReturnWhen.FirstCompleted);
                    }
                    if ((winner ??= Winner()) != null) return winner;
                }
                while ((winner = Winner()) == null && Pending() is { Count: > 0 } pending)
                    await Aio.Wait(pending, returnWhen: ReturnWhen.FirstCompleted);
                return winner;
            }
            finally
            {
                Over = true;
                foreach (var a in _attempts)
                {
                    if (!a.IsDone) a.Cancel();
                    else if (!a.IsCancelled && a.RetrieveException() == null && a.Result is { } s && s != winner) s.Dispose();
                }
                // Every attempt ends promptly once cancelled (closing its socket); wait for them so that none
                // outlives the call. A second cancellation of the caller stops this wait, not the clean-up.
                foreach (var a in _attempts)
                {
                    if (!a.IsDone) await Aio.Wait([a]);
                    a.RetrieveException();   // a failure after the race ended is moot: not "never retrieved"
                }
            }
        }

        /// <summary>The socket of the first attempt (in address order) that has connected, if any.</summary>
        Socket? Winner()
        {
            for (int i = 0; i < _attempts.Count; i++)
            {
                var a = _attempts[i];
                if (!a.IsDone || a.IsCancelled) continue;
                if (a.RetrieveException() is { } e) errors[i] ??= e;   // not a socket error: recorded as asyncio's staggered race does
                else if (a.Result is { } s) return s;
            }
            return null;
        }

        List<AioTask<Socket?>> Pending() => _attempts.FindAll(a => !a.IsDone);
    }

    /// <summary>
    /// Throws the failure of a connection whose every attempt failed: an <see cref="ExceptionGroup"/> of all
    /// the errors with <paramref name="allErrors"/>, else the first attempt's error (asyncio's default raises
    /// it too when there was only one or all say the same).
    /// </summary>
    [DoesNotReturn]
    public static void ThrowFailure(Exception?[] errors, bool allErrors, string host, int port)
    {
        var list = errors.OfType<Exception>().ToList();
        if (list.Count == 0) throw new SocketException((int)SocketError.HostNotFound);
        if (allErrors) throw new ExceptionGroup($"Could not connect to {host} port {port}.", list);
        EventLoop.Rethrow(list[0]);
    }
}
