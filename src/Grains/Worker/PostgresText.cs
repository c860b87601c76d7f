using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace HubertEcg.Worker;

/// <summary>
/// What PostgreSQL <c>text</c> cannot hold: the NUL character, and UTF-16 that is not valid Unicode (an unpaired
/// surrogate, which has no UTF-8 form). Every other string is stored verbatim, since all values travel as typed
/// parameters or binary COPY fields, never as SQL text. Inputs are checked here so that they fail with a clear
/// error naming the value, instead of a driver error part-way through a write. Record ids are also index keys, and a
/// B-tree entry holds at most about 2,700 bytes: ids longer than <see cref="MaxKeyBytes"/> are refused the same way.
/// </summary>
public static class PostgresText
{
    /// <summary>
    /// The most UTF-8 bytes a record id may have: under PostgreSQL's B-tree entry limit (about 2,700 bytes) with room
    /// for the model id beside it in the <c>scores</c> key. Azure blob names (up to 1,024 characters) fit unless most
    /// of their characters take three bytes or more.
    /// </summary>
    public const int MaxKeyBytes = 2000;

    private const int StandInPrefixBytes = 400;

    /// <summary>Why <paramref name="value"/> cannot be stored (a phrase to follow the value's name), or null when it can.</summary>
    public static string? Problem(string? value)
    {
        if (value is null)
        {
            return null;
        }

        var nul = value.IndexOf('\0', StringComparison.Ordinal);
        if (nul >= 0)
        {
            return $"contains a NUL character (U+0000) at position {nul}, which PostgreSQL text cannot store";
        }

        for (var i = 0; i < value.Length; i++)
        {
            if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(value[i]))
            {
                return $"contains an unpaired surrogate (U+{(int)value[i]:X4}) at position {i}, which is not valid Unicode and PostgreSQL text cannot store";
            }
        }

        return null;
    }

    /// <summary>
    /// Why <paramref name="value"/> cannot be a record id (a phrase to follow the id's name): what <see cref="Problem"/>
    /// finds, or a length over <see cref="MaxKeyBytes"/>; null when it can.
    /// </summary>
    public static string? KeyProblem(string? value)
    {
        if (Problem(value) is { } problem)
        {
            return problem;
        }

        var bytes = value is null ? 0 : Encoding.UTF8.GetByteCount(value);
        return bytes > MaxKeyBytes
            ? string.Create(
                CultureInfo.InvariantCulture,
                $"is {bytes:N0} bytes long in UTF-8, more than the {MaxKeyBytes:N0} a record id may have (PostgreSQL cannot index longer keys)")
            : null;
    }

    /// <summary>
    /// A storable record id standing for <paramref name="value"/>: <see cref="Printable"/>, and when that is longer than
    /// <see cref="MaxKeyBytes"/>, its first 400 bytes' worth of characters, an ellipsis and the first 16 hex digits of
    /// the SHA-256 of the whole printable form, so that two long ids with the same beginning stay apart.
    /// </summary>
    public static string StorableKey(string value)
    {
        var printable = Printable(value);
        if (Encoding.UTF8.GetByteCount(printable) <= MaxKeyBytes)
        {
            return printable;
        }

        var prefix = new StringBuilder();
        var bytes = 0;
        foreach (var rune in printable.EnumerateRunes())
        {
            bytes += rune.Utf8SequenceLength;
            if (bytes > StandInPrefixBytes)
            {
                break;
            }

            prefix.Append(rune.ToString());
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(printable)))[..16];
        return $"{prefix}\u2026 (sha256 {hash}\u2026)";
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="what"/> when <paramref name="value"/> cannot be stored.</summary>
    public static string Require(string value, string what) =>
        Problem(value) is { } problem ? throw new ArgumentException($"{what} {problem}", what) : value;

    /// <summary>A storable stand-in for a value that is not: NUL written as <c>\0</c>, an unpaired surrogate as U+FFFD.</summary>
    public static string Printable(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (Problem(value) is null)
        {
            return value;
        }

        var text = new StringBuilder(value.Length + 8);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\0')
            {
                text.Append("\\0");
            }
            else if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                text.Append(c).Append(value[++i]);
            }
            else
            {
                text.Append(char.IsSurrogate(c) ? '\uFFFD' : c);
            }
        }

        return text.ToString();
    }
}
