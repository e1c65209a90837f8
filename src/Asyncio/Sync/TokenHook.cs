using System.Runtime.CompilerServices;

namespace Asyncio;

// How a CancellationToken reaches a pooled waiter.
//
// Loop primitives are cancelled by their task's cancel scope (Tasks/CancelScope.cs). For .NET callers
// every waiting operation also takes a CancellationToken. Its callback may run on any thread, and the
// waiter it targets is pooled: by the time the callback runs, the wait may have been granted and the
// waiter rented again for another wait. So:
//
//   * registering records the waiter's Version; the callback only posts to the loop
//     (PostInternal) and the loop-side handler acts only if the waiter still has that Version
//     and is still pending;
//   * when the waiter returns to its pool it unregisters. If Unregister fails, the callback has run or
//     is running and a post is on its way: the waiter is parked instead of pooled, and the loop-side
//     handler returns it to the pool when it arrives, so no later wait can be touched by a stale
//     callback.
//
// A waiter without a token pays one byte compare on return to the pool.

/// <summary>A pooled waiter that can be cancelled by a <see cref="CancellationToken"/> (see TokenHook).</summary>
internal interface ITokenWaiter
{
    /// <summary>The waiter's registration state.</summary>
    ref TokenHook Hook { get; }

    /// <summary>Returns a waiter that was parked for a late token callback to its pool.</summary>
    void ReturnParked();
}

/// <summary>The token registration of one pooled waiter; see the file's opening comment.</summary>
internal struct TokenHook
{
    enum HookState : byte { None, Registered, Parked }

    CancellationTokenRegistration _registration;
    CancellationToken _token;
    short _version;
    HookState _state;

    /// <summary>Registers <paramref name="token"/> for <paramref name="waiter"/> (nothing when it cannot be cancelled).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Register<TWaiter>(TWaiter waiter, CancellationToken token) where TWaiter : Waiter, ITokenWaiter
    {
        if (token.CanBeCanceled) RegisterCore(waiter, token);
    }

    static void RegisterCore<TWaiter>(TWaiter waiter, CancellationToken token) where TWaiter : Waiter, ITokenWaiter
    {
        ref var hook = ref waiter.Hook;
        hook._token = token;
        hook._version = waiter.Version;
        hook._state = HookState.Registered;
        // A token cancelled in the meantime runs the callback inline: it posts, which is fine here too.
        hook._registration = token.UnsafeRegister(s_fired, waiter);
    }

    /// <summary>
    /// Called as the waiter returns to its pool: unregisters, and says whether it may be pooled now
    /// (<see langword="false"/>: a callback is on its way and will pool it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDetach() => _state == HookState.None || DetachSlow();

    bool DetachSlow()
    {
        if (_state == HookState.Registered && _registration.Unregister())
        {
            this = default;
            return true;
        }
        _state = HookState.Parked;
        return false;
    }

    // Loop thread.
    static readonly Action<object?> s_onLoop = static o =>
    {
        var waiter = (Waiter)o!;
        var owner = (ITokenWaiter)o!;
        ref var hook = ref owner.Hook;
        var state = hook._state;
        var token = hook._token;
        short version = hook._version;
        hook = default;
        if (state == HookState.Parked) owner.ReturnParked();
        else if (state == HookState.Registered && waiter.Version == version && waiter.State == WaiterState.Pending)
            waiter.CancelFromToken(token);
    };

    // Any thread: hop to the loop.
    static readonly Action<object?, CancellationToken> s_fired = static (o, _) =>
    {
        ((Waiter)o!).Loop.PostInternal(s_onLoop, o);   // dropped if the loop is closed: there is nothing left to cancel
    };
}
