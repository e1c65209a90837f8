using System.Collections.ObjectModel;

namespace Asyncio;

/// <summary>
/// Several exceptions raised together, as by a <see cref="TaskGroup"/> whose children failed; Python's
/// <c>ExceptionGroup</c>.
/// </summary>
/// <remarks>
/// It derives from <see cref="AggregateException"/> so that .NET code that already handles aggregates
/// handles it too. <see cref="Exceptions"/> keeps the order in which the failures happened; nested groups
/// are kept as they are (use <see cref="AggregateException.Flatten"/> to flatten them).
/// </remarks>
public class ExceptionGroup : AggregateException
{
    /// <summary>Creates a group with a message and the exceptions it holds (at least one).</summary>
    /// <exception cref="ArgumentException">No exceptions were given.</exception>
    public ExceptionGroup(string message, IEnumerable<Exception> exceptions) : base(message, Check(exceptions))
    {
        Exceptions = InnerExceptions;
        GroupMessage = message ?? "";
    }

    /// <summary>
    /// The message the group was made with; Python's <c>message</c>. <see cref="Exception.Message"/> is
    /// <see cref="AggregateException"/>'s: this message followed by every exception's.
    /// </summary>
    public string GroupMessage { get; }

    /// <summary>The exceptions of the group, in the order they were raised.</summary>
    public ReadOnlyCollection<Exception> Exceptions { get; }

    /// <summary>
    /// The exceptions that match <paramref name="predicate"/>, in a group of the same shape, or <see langword="null"/>
    /// when none match; Python's <c>ExceptionGroup.subgroup</c>. As in Python, the predicate is asked about the groups
    /// too, this one first: a group it accepts is kept whole. Nested groups keep their nesting and messages (<see cref="GroupMessage"/>); empty ones
    /// are left out. Returns this group itself when everything matches.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="predicate"/> is null.</exception>
    public ExceptionGroup? Subgroup(Func<Exception, bool> predicate) => Split(predicate).Match;

    /// <summary>The exceptions of type <typeparamref name="TException"/>, as <see cref="Subgroup(Func{Exception, bool})"/> gives them (Python's <c>subgroup(type)</c>).</summary>
    public ExceptionGroup? Subgroup<TException>() where TException : Exception => Subgroup(static e => e is TException);

    /// <summary>
    /// Splits the group into the exceptions that match <paramref name="predicate"/> and the rest, each in a group of
    /// the same shape (or <see langword="null"/> if empty); Python's <c>ExceptionGroup.split</c>, and the way to write
    /// <c>except*</c>: handle <c>Match</c>, rethrow <c>Remaining</c>. The predicate is asked about the groups too, as in
    /// <see cref="Subgroup(Func{Exception, bool})"/>. A part from which nothing was taken is this group itself.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="predicate"/> is null.</exception>
    public (ExceptionGroup? Match, ExceptionGroup? Remaining) Split(Func<Exception, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        if (predicate(this)) return (this, null);
        var match = new List<Exception>();
        var rest = new List<Exception>();
        foreach (var e in Exceptions)
        {
            if (e is ExceptionGroup g)
            {
                var (m, r) = g.Split(predicate);
                if (m != null) match.Add(m);
                if (r != null) rest.Add(r);
            }
            else (predicate(e) ? match : rest).Add(e);
        }
        return (Part(match, rest), Part(rest, match));
    }

    /// <summary>The exceptions of type <typeparamref name="TException"/> and the rest, as <see cref="Split(Func{Exception, bool})"/> gives them (Python's <c>split(type)</c>).</summary>
    public (ExceptionGroup? Match, ExceptionGroup? Remaining) Split<TException>() where TException : Exception => Split(static e => e is TException);

    /// <summary>
    /// A group with this one's <see cref="GroupMessage"/> and <paramref name="exceptions"/>; Python's <c>derive</c>, which
    /// <see cref="Split(Func{Exception, bool})"/> and <see cref="Subgroup(Func{Exception, bool})"/> use for every part they
    /// make. A subclass overrides it to keep its own type and fields in the parts.
    /// </summary>
    /// <exception cref="ArgumentException">No exceptions were given.</exception>
    public virtual ExceptionGroup Derive(IEnumerable<Exception> exceptions) => new(GroupMessage, exceptions);

    /// <summary>One side of a split: none, this group if the other side took nothing (each nested group then came back whole), else a derived group.</summary>
    ExceptionGroup? Part(List<Exception> side, List<Exception> other) =>
        side.Count == 0 ? null : other.Count == 0 ? this : Derive(side);

    static IEnumerable<Exception> Check(IEnumerable<Exception> exceptions)
    {
        ArgumentNullException.ThrowIfNull(exceptions);
        var list = exceptions.ToList();
        if (list.Count == 0) throw new ArgumentException("An exception group needs at least one exception.", nameof(exceptions));
        return list;
    }
}
