using System.Runtime.CompilerServices;

namespace Asyncio;

/// <summary>
/// What stream transports share: the protocol, extra info, the closing flag, write-buffer water marks with
/// asyncio's pause/resume calls on each crossing, and the link to the server that accepted the connection.
/// </summary>
internal abstract class TransportBase : ITransport
{
    protected readonly EventLoop Loop;
    protected BaseProtocol ProtocolField;
    protected readonly Dictionary<string, object?> Extra = new();
    protected WaterMarks Marks;
    protected bool Closing;
    protected bool ProtocolPaused;
    protected Server? ServerField;

    protected TransportBase(EventLoop loop, BaseProtocol protocol, Server? server)
    {
        Marks = WaterMarks.Make(null, null, DefaultHighWater);
        Loop = loop;
        ProtocolField = protocol;
        ServerField = server;
        server?.Attach(this);
    }

    public BaseProtocol Protocol
    {
        get => ProtocolField;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            ProtocolField = value;
            OnProtocolChanged();
        }
    }

    protected virtual void OnProtocolChanged() { }

    /// <summary>The high-water mark when none is given (a TLS transport's is larger, as asyncio's).</summary>
    protected virtual int DefaultHighWater => WaterMarks.DefaultHigh;

    public object? GetExtraInfo(string name, object? defaultValue = null) =>
        Extra.TryGetValue(name, out var v) ? v : defaultValue;

    public bool IsClosing => Closing;

    public abstract void Close();
    public abstract void Abort();
    public abstract bool IsReading { get; }
    public abstract void PauseReading();
    public abstract void ResumeReading();
    public abstract void Write(ReadOnlySpan<byte> data);
    public abstract void WriteEof();
    public abstract bool CanWriteEof { get; }
    public abstract int WriteBufferSize { get; }

    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        foreach (var l in lines) Write(l.Span);
    }

    public (int Low, int High) GetWriteBufferLimits() => (Marks.Low, Marks.High);

    public void SetWriteBufferLimits(int? high = null, int? low = null)
    {
        Marks = WaterMarks.Make(high, low, DefaultHighWater);
        MaybePauseProtocol();
    }

    /// <summary>asyncio's <c>_maybe_pause_protocol</c>: pause the protocol when the buffer rises above the high mark.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected void MaybePauseProtocol()
    {
        if (WriteBufferSize <= Marks.High || ProtocolPaused) return;
        ProtocolPaused = true;
        try { ProtocolField.PauseWriting(); }
        catch (Exception e)
        {
            Loop.CallExceptionHandler(new ExceptionContext($"protocol.PauseWriting() failed ({this})", e));
        }
    }

    /// <summary>asyncio's <c>_maybe_resume_protocol</c>: resume it when the buffer drains to the low mark.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected void MaybeResumeProtocol()
    {
        if (!ProtocolPaused || WriteBufferSize > Marks.Low) return;
        ProtocolPaused = false;
        try { ProtocolField.ResumeWriting(); }
        catch (Exception e)
        {
            Loop.CallExceptionHandler(new ExceptionContext($"protocol.ResumeWriting() failed ({this})", e));
        }
    }

    /// <summary>Detaches from the server once the connection is gone.</summary>
    protected void DetachFromServer()
    {
        var s = ServerField;
        ServerField = null;
        s?.Detach(this);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    protected static void ThrowWriteAfterEof() =>
        throw new InvalidOperationException("Cannot call Write() after WriteEof().");

    [MethodImpl(MethodImplOptions.NoInlining)]
    protected void ThrowClosed(Exception? cause) =>
        throw new InvalidOperationException(cause == null ? $"Cannot write to a closed transport ({this})." : $"Cannot write: the connection was lost ({cause.Message}).", cause);

    public override string ToString() => $"<{GetType().Name} {(Closing ? "closing" : "open")}>";
}
