namespace HubertEcg.Testing;

/// <summary>
/// Text that breaks code which builds SQL, shell commands, format strings, CSV or JSON by hand. Every input path
/// (run names, record ids from blob names and manifest lines, quarantine reasons, anything a user or an archive
/// supplies) must store these verbatim and execute none of them. A new input path adds a test that feeds
/// <see cref="Storable"/> (or <see cref="BlobNames"/> where the value is a blob name) through it and
/// <see cref="Unstorable"/> to check the error; a new hostile string goes here.
/// </summary>
public static class HostileStrings
{
    /// <summary>
    /// Strings that can also be Azure blob names: no control characters, no backslash (blob storage turns it into
    /// <c>/</c>), no trailing dot or slash, at most 1024 characters with any prefix.
    /// </summary>
    public static IReadOnlyList<string> BlobNames { get; } =
    [
        "'); DROP TABLE scores; --",
        "Robert'); DELETE FROM runs WHERE ('1'='1",
        "\"double\" 'single' `back` quotes",
        "$1 $2 $$dollar$$ @run :name ?",
        "%s %d %n %% {0} {RunId} ${HOME}",
        "semi; colon -- comment /* block */ #hash",
        "E'%00' || chr(0) || pg_sleep(5)",
        "unicode ünïcødé Ελληνικά 日本語 עברית ❤️🫀 e\u0301 zero\u200Bwidth",
        "<script>alert(1)</script> & &amp; \"json\": [1, {\"a\": null}]",
        "comma,separated,\"csv\",value",
        string.Concat(Enumerable.Repeat("long ');-- $1 ", 70)),
    ];

    /// <summary>Strings any text field must store verbatim: the blob names, plus ones only free text can hold.</summary>
    public static IReadOnlyList<string> Storable { get; } =
    [
        .. BlobNames,
        @"back\slash \' \"" \\ and \x41 E'\x00'",
        "tab\there, newline\nthere, carriage return\r\nand a bell \a",
        "   leading and trailing spaces   ",
        "",
        string.Concat(Enumerable.Repeat("x'); DROP TABLE runs; -- ", 4000)),
    ];

    /// <summary>Strings PostgreSQL text cannot hold: each must be refused with an error that says why.</summary>
    public static IReadOnlyList<(string Value, string Problem)> Unstorable { get; } =
    [
        ("nul\0byte'); DROP TABLE scores; --", "NUL character"),
        ("lone \uD800 surrogate", "unpaired surrogate"),
    ];
}
