namespace Asyncio;

public sealed partial class EventLoop
{
    HashSet<Subprocess>? _subprocesses;

    /// <summary>The children of this loop that have not finished (Subprocess.cs).</summary>
    internal HashSet<Subprocess> Subprocesses => _subprocesses ??= new();

    /// <summary>Hands the children still running to helper threads that reap them (called by <see cref="Close"/>).</summary>
    void CloseSubprocesses()
    {
        if (_subprocesses == null) return;
        foreach (var p in _subprocesses) p.LoopClosing();
        _subprocesses.Clear();
    }
}
