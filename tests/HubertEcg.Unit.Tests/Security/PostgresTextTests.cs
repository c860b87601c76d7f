using System.Text;
using HubertEcg.Storage;
using HubertEcg.Worker;

namespace HubertEcg.Unit.Tests.Security;

/// <summary>The record-id rules of <see cref="PostgresText"/>: what is refused as a key, and the stand-ins stored instead.</summary>
public sealed class PostgresTextTests
{
    [Fact]
    public void AnIdOverTheKeyLimitIsRefusedWithItsLength()
    {
        var atLimit = new string('a', PostgresText.MaxKeyBytes);
        var over = new string('\u65E5', 700); // three UTF-8 bytes each: 2,100 bytes in 700 characters

        Assert.Null(PostgresText.KeyProblem(atLimit));
        Assert.Equal(
            "is 2,100 bytes long in UTF-8, more than the 2,000 a record id may have (PostgreSQL cannot index longer keys)",
            PostgresText.KeyProblem(over));
        Assert.Null(PostgresText.Problem(over)); // as text it is fine; only as a key it is not
        Assert.StartsWith("contains a NUL character", PostgresText.KeyProblem("a\0b"));
    }

    [Fact]
    public void StandInsAreStorableDistinctAndStable()
    {
        var shortId = "wfdb/rec 'one'";
        Assert.Equal(shortId, PostgresText.StorableKey(shortId));
        Assert.Equal("a\\0b", PostgresText.StorableKey("a\0b"));

        var common = new string('\u65E5', 900);
        var first = PostgresText.StorableKey(common + "-1");
        var second = PostgresText.StorableKey(common + "-2");
        Assert.NotEqual(first, second);
        foreach (var key in new[] { first, second })
        {
            Assert.Null(PostgresText.KeyProblem(key));
            Assert.True(Encoding.UTF8.GetByteCount(key) < 500, key);
            Assert.StartsWith(new string('\u65E5', 133) + "\u2026 (sha256 ", key);
            Assert.Equal(key, PostgresText.StorableKey(key));
        }

        Assert.Equal(first, PostgresText.StorableKey(common + "-1"));

        // A surrogate pair at the cut is kept whole or left out, never split.
        var emoji = PostgresText.StorableKey(string.Concat(Enumerable.Repeat("\U0001FAC0", 600)));
        Assert.Null(PostgresText.Problem(emoji));
        Assert.StartsWith(string.Concat(Enumerable.Repeat("\U0001FAC0", 100)) + "\u2026", emoji);
    }
}
