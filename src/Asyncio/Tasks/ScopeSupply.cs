namespace Asyncio;

// The root scopes of task starts during a burst.
//
// A task's first step runs in a cancel scope of its own (CancelScope.cs), made when the step starts; a task
// that ends in that step drops it at once. In a burst of starts (W2: a million trivial tasks) these 64-byte
// scopes are a third of the memory the loop's thread touches, and on a machine where a fresh page is
// expensive the faults are most of their cost. So once the ready queue holds more than BurstAbove callbacks, the
// loop takes the scopes of new starts from a supply that a thread-pool thread fills (Prefetcher.cs).
//
// A scope is never reused: each one made ahead is bound to exactly one task, as a scope made in the step would
// be. Reusing one would be unsafe: code in a step may have captured its scope as the synchronisation context
// and would resume, later, in whichever task had it next (docs/design/performance.md, session 21).
//
// After a burst, what was made and not taken stays for the next one: at most the block being handed out and
// the blocks of one request and a half (about 1 MB of scopes).

/// <summary>Unbound task scopes made ahead on a thread-pool thread, for the loop to bind to starting tasks; see the file's opening comment.</summary>
internal sealed class ScopeSupply
{
    /// <summary>Ready callbacks above which a task start is part of a burst and takes its scope from the supply.</summary>
    public const int BurstAbove = 1 << 16;
    const int Block = 1024;            // scopes made per block: 64 KiB of scopes and an 8 KiB array
    const int BlocksPerRequest = 8;

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

    /// <summary>Whether a block of scopes is ready to take (for tests).</summary>
    public bool HasReady => _blocks.Count > 0 || (_block != null && _next < Block);
}
