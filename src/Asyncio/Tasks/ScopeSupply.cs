namespace Asyncio;

// The root scopes of task starts during a burst.
//
// A task's first step runs in a cancel scope of its own (CancelScope.cs), made when the step starts; a task
// that ends in that step drops it at once. In a burst of starts (W2: a million trivial tasks) these 64-byte
// scopes are a third of the memory the loop's thread touches, and on a machine where a fresh page is
// expensive the faults are most of their cost. So once more than BurstAbove starts wait (ready callbacks and
// starts queued in runs), the loop takes the scopes of new starts from a supply that a thread-pool thread fills
// (Prefetcher.cs).
//
// The supply begins while the burst is being queued, not when its first task starts: every 1,024 starts queued
// beyond BurstAbove ask for more (Anticipate), so the helper makes scopes while the loop is still creating tasks
// and the starts find them ready. A request makes 64 blocks (4 MiB of scopes). This also puts the memory the
// burst's scopes take before the starts rather than among them: where the runtime's first collection of the
// burst lands follows from it, and a collection among the first steps of W4's 100,000 sleepers (a 20 ms pause,
// with thousands of sleeps due) made their p99 lateness 9-13 ms, against 2-3 ms with one while they are created
// (docs/design/performance.md, "Session 27").
//
// A scope is never reused: each one made ahead is bound to exactly one task, as a scope made in the step would
// be. Reusing one would be unsafe: code in a step may have captured its scope as the synchronisation context
// and would resume, later, in whichever task had it next (docs/design/performance.md, session 21).
//
// After a burst, what was made and not taken is dropped at the loop's next blocking wait (DropLeftovers), so a
// program that bursts once does not keep megabytes of scopes it will never use.

/// <summary>Unbound task scopes made ahead on a thread-pool thread, for the loop to bind to starting tasks; see the file's opening comment.</summary>
internal sealed class ScopeSupply
{
    /// <summary>Ready callbacks above which a task start is part of a burst and takes its scope from the supply.</summary>
    public const int BurstAbove = 1 << 16;
    const int Block = 1024;            // scopes made per block: 64 KiB of scopes and an 8 KiB array
    const int BlocksPerRequest = 64;

    readonly Prefetcher<CancelScope[]> _blocks = new(MakeBlock, BlocksPerRequest);
    CancelScope[]? _block;             // the block being handed out
    int _next;

    static CancelScope[] MakeBlock()
    {
        var block = new CancelScope[Block];
        for (int i = 0; i < block.Length; i++) block[i] = new CancelScope();
        return block;
    }

    /// <summary>Scopes handed out so far (for tests).</summary>
    public long Taken { get; private set; }

    /// <summary>A fresh scope bound to <paramref name="task"/>, or <see langword="null"/> if none is ready yet (the caller makes one).</summary>
    public CancelScope? Take(AioTask task)
    {
        var block = _block;
        if (block == null || _next == Block)
        {
            _blocks.Request();
            if (!_blocks.TryTake(out block))
            {
                _block = null;
                return null;
            }
            _block = block;
            _next = 0;
        }
        var scope = block[_next];
        block[_next++] = null!;    // the block must not keep a finished task's scope alive
        scope.Bind(task);
        Taken++;
        return scope;
    }

    /// <summary>A burst is being queued: asks the helper for scopes now, ahead of the starts (see the file's opening comment).</summary>
    public void Anticipate() => _blocks.Request();

    /// <summary>The burst is over and the loop is about to wait: drops the scopes made and not taken (they were never bound).</summary>
    public void DropLeftovers()
    {
        _block = null;
        while (_blocks.TryTake(out _)) { }
    }

    /// <summary>Whether the helper is making blocks now (for tests).</summary>
    public bool IsMaking => _blocks.IsMaking;

    /// <summary>Whether a block of scopes is ready to take (for tests).</summary>
    public bool HasReady => _blocks.Count > 0 || (_block != null && _next < Block);
}
