using System.Text;

namespace HubertEcg.Storage;

/// <summary>
/// What PostgreSQL <c>text</c> cannot hold: the NUL character, and UTF-16 that is not valid Unicode (an unpaired
/// surrogate, which has no UTF-8 form). Every other string is stored verbatim, since all values travel as typed
/// parameters or binary COPY fields, never as SQL text. Inputs are checked here so that they fail with a clear
/// error naming the value, instead of a driver error part-way through a write.
/// </summary>
public static class PostgresText
{
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
