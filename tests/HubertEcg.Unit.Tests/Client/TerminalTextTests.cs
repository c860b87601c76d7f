using HubertEcg.Client.Commands;

namespace HubertEcg.Unit.Tests.Client;

/// <summary>Stored text printed on a terminal: every character a terminal acts on is shown as an escape instead.</summary>
public sealed class TerminalTextTests
{
    [Theory]
    [InlineData("\u001b]0;pwned\u0007nightly", "\\x1B]0;pwned\\x07nightly")] // retitles the window
    [InlineData("done\rFAILED", "done\\x0DFAILED")] // overwrites the line
    [InlineData("a\nb\tc\0d", "a\\x0Ab\\x09c\\x00d")]
    [InlineData("del\u007f", "del\\x7F")]
    [InlineData("c1\u009b31m", "c1\\u009B31m")] // the one-byte CSI
    [InlineData("\u0085next", "\\u0085next")]
    [InlineData("abc\u202Eexe.txt", "abc\\u202Eexe.txt")] // right-to-left override
    [InlineData("\u2066x\u2069\u200F\u061C", "\\u2066x\\u2069\\u200F\\u061C")]
    [InlineData("line\u2028sep", "line\\u2028sep")]
    public void ControlAndBidiCharactersAreEscaped(string text, string shown)
    {
        Assert.Equal(shown, TerminalText.Escape(text));
    }

    [Fact]
    public void AnUnpairedSurrogateIsEscaped()
    {
        // Built here: an attribute argument cannot carry an unpaired surrogate (it is stored as UTF-8).
        Assert.Equal("half \\uD800 pair", TerminalText.Escape("half " + (char)0xD800 + " pair"));
        Assert.Equal("\\uDC00x", TerminalText.Escape((char)0xDC00 + "x"));
    }

    [Theory]
    [InlineData("nightly cohort 2024/01")]
    [InlineData("Ärztekammer Münster — 心電図 🫀")]
    [InlineData("שלום")] // right-to-left script itself is text, not an override
    [InlineData("")]
    public void OrdinaryTextIsKeptAsIs(string text)
    {
        Assert.Same(text, TerminalText.Escape(text));
    }

    [Fact]
    public void NothingATerminalActsOnSurvives()
    {
        var hostile = string.Concat(Enumerable.Range(0, 0xA0).Select(i => (char)i)) + "\u061C\u200E\u200F\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069\u2028\u2029";

        var shown = TerminalText.Escape(hostile);

        Assert.DoesNotContain(shown, c => c < 0x20 || (c >= 0x7F && c <= 0x9F) || "\u061C\u200E\u200F\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069\u2028\u2029".Contains(c, StringComparison.Ordinal));
        Assert.Equal("", TerminalText.Escape(null));
    }
}
