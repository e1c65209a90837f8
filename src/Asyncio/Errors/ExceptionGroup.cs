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
    }

    /// <summary>The exceptions of the group, in the order they were raised.</summary>
    public ReadOnlyCollection<Exception> Exceptions { get; }

    /// <summary>
    /// Returns the sub-group of the exceptions that match <paramref name="predicate"/> (searching nested
    /// groups), or <see langword="null"/> when none match; Python's <c>ExceptionGroup.subgroup</c>.
    /// </summary>
    public ExceptionGroup? Subgroup(Func<Exception, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var kept = new List<Exception>();
        foreach (var e in Exceptions)
        {
            if (predicate(e)) kept.Add(e);
            else if (e is ExceptionGroup g && g.Subgroup(predicate) is { } sub) kept.Add(sub);
        }
        return kept.Count == 0 ? null : new ExceptionGroup(Message, kept);
    }

    static IEnumerable<Exception> Check(IEnumerable<Exception> exceptions)
    {
        ArgumentNullException.ThrowIfNull(exceptions);
        var list = exceptions.ToList();
        if (list.Count == 0) throw new ArgumentException("An exception group needs at least one exception.", nameof(exceptions));
        return list;
    }
}
