using System.Runtime.InteropServices;

namespace Asyncio;

// asyncio's add_signal_handler/remove_signal_handler, on .NET's PosixSignalRegistration.
//
// The runtime catches the signal and calls the registration's handler on a thread of its own; that handler
// only posts the entry to the loop (a thread-safe wake-up, as asyncio's signal wake-up fd) and cancels the
// signal's default action, since a handler replaces it in asyncio too (SIGTERM no longer ends the process).
// The callback runs on the loop's thread, once per delivery the runtime reports (the kernel may merge
// deliveries of one signal that arrive close together, in asyncio as here). A handler removed or replaced after
// a delivery was posted does not run for it: each entry checks that it is still the signal's handler.
// Closing the loop removes every handler, as asyncio's close does.

public sealed partial class EventLoop
{
    Dictionary<int, SignalHandler>? _signalHandlers;   // by signal number (on Linux, PosixSignal names are mapped to theirs)
    volatile bool _handlesSigint;                       // read by the Runner's Ctrl+C handler on another thread

    /// <summary>
    /// Test hook: runs inside AddSignalHandler once the runtime's registration is made and before the handler
    /// keeps it, so that a test can deliver the signal in between (where deliveries were once lost).
    /// </summary>
    internal Action? AfterSignalRegisteredForTests;

    sealed class SignalHandler(EventLoop loop, Action<object?> callback, object? state)
    {
        public readonly Action<object?> Callback = callback;
        public readonly object? State = state;
        public PosixSignalRegistration? Registration;
        /// <summary>Set once the handler is removed or replaced; read by the runtime's signal thread, hence its own flag:
        /// <see cref="Registration"/> is still unset when a signal arrives just after the registration is made.</summary>
        public volatile bool Removed;

        public static readonly Action<object?> Run = static o =>
        {
            var h = (SignalHandler)o!;
            if (h.Removed) return;   // removed or replaced since the signal was posted
            h.Callback(h.State);
        };

        public void Deliver(PosixSignalContext context)
        {
            if (Removed) return;
            context.Cancel = true;
            loop.PostInternal(Run, this);   // dropped if the loop closed meanwhile
        }
    }

    /// <summary>
    /// Calls <paramref name="callback"/> on the loop's thread whenever signal number <paramref name="signal"/>
    /// arrives, instead of the signal's default action; asyncio's <c>add_signal_handler</c>. A second call for
    /// the same signal replaces the callback. Unix signal numbers (2 for SIGINT, 15 for SIGTERM); see
    /// <see cref="AddSignalHandler(PosixSignal, Action)"/> for names that also work on Windows. Loop thread only.
    /// </summary>
    /// <remarks>If the callback throws, the exception goes to the loop's exception handler, as for any callback.
    /// While a SIGINT handler is set, Ctrl+C no longer cancels <see cref="Aio.Run(Func{Task}, LoopOptions?)"/>'s main task.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="signal"/> is not a signal number (1 to 64), or is one the C library reserves (32, 33 on Linux).</exception>
    /// <exception cref="InvalidOperationException"><paramref name="signal"/> is SIGKILL or SIGSTOP, which cannot be caught, or the loop is closed.</exception>
    /// <exception cref="PlatformNotSupportedException">The runtime cannot catch signals here.</exception>
    public void AddSignalHandler(int signal, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        AddSignalHandler(signal, s_invokeAction, callback);
    }

    /// <summary>As <see cref="AddSignalHandler(int, Action)"/>, with a state argument.</summary>
    public void AddSignalHandler(int signal, Action<object?> callback, object? state)
    {
        if (signal is <= 0 or > 64) throw new ArgumentOutOfRangeException(nameof(signal), signal, "Not a signal number (1 to 64).");
        if (OperatingSystem.IsLinux() && signal is 32 or 33)
            throw new ArgumentOutOfRangeException(nameof(signal), signal, "Signals 32 and 33 are reserved by the C library (its threads use them).");
        AddSignalHandlerCore(signal, callback, state);
    }

    /// <summary>
    /// As <see cref="AddSignalHandler(int, Action)"/>, for a signal named by .NET's <see cref="PosixSignal"/>: on
    /// Windows, <see cref="PosixSignal.SIGINT"/>, <see cref="PosixSignal.SIGQUIT"/>, <see cref="PosixSignal.SIGTERM"/>
    /// and <see cref="PosixSignal.SIGHUP"/> are the console's control events.
    /// </summary>
    public void AddSignalHandler(PosixSignal signal, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if ((int)signal >= 0 || !Enum.IsDefined(signal)) throw new ArgumentOutOfRangeException(nameof(signal), signal, "Not a PosixSignal name (use the int overload for a raw signal number).");
        AddSignalHandlerCore(KeyOf(signal), s_invokeAction, callback);
    }

    /// <summary>The signal's number on Linux, so that a name and its number share one handler; elsewhere the name's own value.</summary>
    static int KeyOf(PosixSignal signal) => !OperatingSystem.IsLinux() ? (int)signal : signal switch
    {
        PosixSignal.SIGHUP => 1,
        PosixSignal.SIGINT => 2,
        PosixSignal.SIGQUIT => 3,
        PosixSignal.SIGTERM => 15,
        PosixSignal.SIGCHLD => 17,
        PosixSignal.SIGCONT => 18,
        PosixSignal.SIGWINCH => 28,
        PosixSignal.SIGTTIN => 21,
        PosixSignal.SIGTTOU => 22,
        PosixSignal.SIGTSTP => 20,
        _ => (int)signal,
    };

    static int SigintKey => OperatingSystem.IsLinux() ? 2 : (int)PosixSignal.SIGINT;

    void AddSignalHandlerCore(int key, Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckThread(nameof(AddSignalHandler));
        CheckNotClosed();
        if (OperatingSystem.IsLinux() && key is 9 or 19) throw new InvalidOperationException($"Signal {key} ({(key == 9 ? "SIGKILL" : "SIGSTOP")}) cannot be caught.");
        var handler = new SignalHandler(this, callback, state);
        var registration = PosixSignalRegistration.Create((PosixSignal)key, handler.Deliver);
        AfterSignalRegisteredForTests?.Invoke();
        handler.Registration = registration;
        var handlers = _signalHandlers ??= new();
        if (handlers.Remove(key, out var old)) Unregister(old);
        handlers[key] = handler;
        if (key == SigintKey) _handlesSigint = true;
    }

    /// <summary>
    /// Removes the handler of signal number <paramref name="signal"/>, restoring its default action; asyncio's
    /// <c>remove_signal_handler</c>. A delivery posted and not run yet is dropped. Loop thread only.
    /// </summary>
    /// <returns>Whether a handler was set.</returns>
    public bool RemoveSignalHandler(int signal)
    {
        CheckThread(nameof(RemoveSignalHandler));
        return RemoveSignalHandlerCore(signal);
    }

    /// <summary>As <see cref="RemoveSignalHandler(int)"/>, for a signal named by <see cref="PosixSignal"/>.</summary>
    public bool RemoveSignalHandler(PosixSignal signal)
    {
        CheckThread(nameof(RemoveSignalHandler));
        return RemoveSignalHandlerCore(KeyOf(signal));
    }

    bool RemoveSignalHandlerCore(int key)
    {
        if (_signalHandlers == null || !_signalHandlers.Remove(key, out var h)) return false;
        Unregister(h);
        if (key == SigintKey) _handlesSigint = false;
        return true;
    }

    /// <summary>Whether a SIGINT handler is set: then Ctrl+C is the program's, and the runner does not cancel its main task (asyncio's runner steps aside too).</summary>
    internal bool HandlesSigint => _handlesSigint;

    static void Unregister(SignalHandler h)
    {
        h.Removed = true;
        var r = h.Registration;
        h.Registration = null;
        r?.Dispose();
    }

    /// <summary>Removes every signal handler (called by <see cref="Close"/>).</summary>
    void RemoveSignalHandlers()
    {
        if (_signalHandlers == null) return;
        foreach (var h in _signalHandlers.Values) Unregister(h);
        _signalHandlers.Clear();
        _handlesSigint = false;
    }
}
