using System.Text;

namespace Asyncio.Tests.Net;

/// <summary>A protocol that records every callback, for tests.</summary>
public class RecordingProtocol : Protocol
{
    public readonly List<string> Events = new();
    public readonly MemoryStream Received = new();
    public ITransport? Transport;
    public Exception? LostWith;
    public bool KeepOpenOnEof;
    public Future? Made, Lost, Eof;
    public int Pauses, Resumes;
    public int BufferAtResume = -1;

    public RecordingProtocol()
    {
        var loop = Aio.GetRunningLoop();
        Made = loop.CreateFuture();
        Lost = loop.CreateFuture();
        Eof = loop.CreateFuture();
    }

    public string Text => Encoding.ASCII.GetString(Received.ToArray());

    public override void ConnectionMade(IBaseTransport transport)
    {
        Events.Add("made");
        Transport = (ITransport)transport;
        Made!.SetResult();
    }

    public override void DataReceived(ReadOnlySpan<byte> data)
    {
        if (Events.Count == 0 || Events[^1] != "data") Events.Add("data");
        Received.Write(data);
        OnData();
    }

    protected virtual void OnData() { }

    public override bool EofReceived()
    {
        Events.Add("eof");
        Eof!.SetResult();
        return KeepOpenOnEof;
    }

    public override void ConnectionLost(Exception? exception)
    {
        Events.Add("lost");
        LostWith = exception;
        Lost!.SetResult();
    }

    public override void PauseWriting()
    {
        Pauses++;
    }

    public override void ResumeWriting()
    {
        Resumes++;
        BufferAtResume = Transport!.WriteBufferSize;
    }

    /// <summary>Waits until at least <paramref name="n"/> bytes arrived (polling, bounded by the test's timeout).</summary>
    public async Task WaitForBytes(long n)
    {
        while (Received.Length < n) await Aio.Sleep(0.001);
    }
}

/// <summary>Echoes everything back (the W5 server protocol).</summary>
public sealed class EchoProtocol : Protocol
{
    ITransport? _t;
    public override void ConnectionMade(IBaseTransport transport) => _t = (ITransport)transport;
    public override void DataReceived(ReadOnlySpan<byte> data) => _t!.Write(data);
    public override bool EofReceived() => false;
}
