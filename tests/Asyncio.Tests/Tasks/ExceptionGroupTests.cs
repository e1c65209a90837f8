namespace Asyncio.Tests.Tasks;

/// <summary>
/// Python's ExceptionGroup: subgroup, split (how <c>except*</c> is written in C#) and derive. The expected shapes are
/// CPython 3.11's for the same groups.
/// </summary>
public class ExceptionGroupTests
{
    // ExceptionGroup('m', [ValueError(1), ExceptionGroup('n', [TypeError(2), ValueError(3)])])
    static readonly ArgumentException V1 = new("1"), V3 = new("3");
    static readonly InvalidCastException T2 = new("2");
    static ExceptionGroup Nested() => new("m", [V1, new ExceptionGroup("n", [T2, V3])]);

    /// <summary>The group's shape as Python prints it: messages of groups, leaves by their message.</summary>
    static string Shape(Exception? e) => e switch
    {
        null => "None",
        ExceptionGroup g => $"{g.GroupMessage}[{string.Join(", ", g.Exceptions.Select(Shape))}]",
        _ => e.Message,
    };

    [Fact]
    public void Split_KeepsTheNestingAndTheMessages_OnBothSides()
    {
        var (match, remaining) = Nested().Split<ArgumentException>();
        Assert.Equal("m[1, n[3]]", Shape(match));
        Assert.Equal("m[n[2]]", Shape(remaining));
        Assert.Same(V3, match!.Exceptions[1] is ExceptionGroup n ? n.Exceptions[0] : null);
    }

    [Fact]
    public void Split_AGroupThePredicateAccepts_IsTakenWhole_ThisOneFirst()
    {
        var eg = Nested();
        var (match, remaining) = eg.Split(e => e is ExceptionGroup { GroupMessage: "n" });
        Assert.Equal("m[n[2, 3]]", Shape(match));
        Assert.Equal("m[1]", Shape(remaining));

        // Python's trap, kept: a predicate that accepts anything but a TypeError accepts the outer group itself.
        (match, remaining) = eg.Split(e => e is not InvalidCastException);
        Assert.Same(eg, match);
        Assert.Null(remaining);
    }

    [Fact]
    public void Subgroup_NoneWhenNothingMatches_ThisGroupWhenEverythingDoes()
    {
        var eg = Nested();
        Assert.Null(eg.Subgroup<KeyNotFoundException>());
        Assert.Same(eg, eg.Subgroup(_ => true));
        Assert.Same(eg, eg.Subgroup(e => e is not ExceptionGroup));   // every leaf matches: nothing is rebuilt
        Assert.Equal("m[n[2]]", Shape(eg.Subgroup<InvalidCastException>()));
        var (match, remaining) = eg.Split<KeyNotFoundException>();
        Assert.Null(match);
        Assert.Same(eg, remaining);
    }

    [Fact]
    public void ExceptStar_HandleOnePart_RethrowTheRest()
    {
        var handled = new List<Exception>();
        var thrown = Assert.Throws<ExceptionGroup>(() =>
        {
            try { throw Nested(); }
            catch (ExceptionGroup eg)
            {
                var (values, others) = eg.Split<ArgumentException>();
                if (values != null) handled.AddRange(values.Flatten().InnerExceptions);
                if (others != null) throw others;
            }
        });
        Assert.Equal([V1, V3], handled);
        Assert.Equal("m[n[2]]", Shape(thrown));
    }

    sealed class TaggedGroup(string message, IEnumerable<Exception> exceptions, string tag) : ExceptionGroup(message, exceptions)
    {
        public string Tag { get; } = tag;
        public override ExceptionGroup Derive(IEnumerable<Exception> exceptions) => new TaggedGroup(GroupMessage, exceptions, Tag);
    }

    [Fact]
    public void Derive_MakesEveryPart_SoASubclassKeepsItsTypeAndFields()
    {
        var eg = new TaggedGroup("t", [V1, T2], "x");
        var (match, remaining) = eg.Split<ArgumentException>();
        Assert.Equal("x", Assert.IsType<TaggedGroup>(match).Tag);
        Assert.Equal("x", Assert.IsType<TaggedGroup>(remaining).Tag);
        Assert.Equal([V1], match!.Exceptions);
        Assert.Equal([T2], remaining!.Exceptions);
    }

    [Fact]
    public void GroupMessage_IsTheMessageGiven_MessageAddsTheExceptions()
    {
        var eg = Nested();
        Assert.Equal("m", eg.GroupMessage);
        Assert.StartsWith("m (1)", eg.Message);
        Assert.Equal("m", eg.Split<ArgumentException>().Match!.GroupMessage);   // a part does not pile the messages up
    }

    [Fact]
    public void BadInput_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => Nested().Split(null!));
        Assert.Throws<ArgumentNullException>(() => Nested().Subgroup(null!));
        Assert.Throws<ArgumentException>(() => new ExceptionGroup("empty", []));
    }
}
