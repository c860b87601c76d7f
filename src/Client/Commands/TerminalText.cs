using System.Globalization;
using System.Text;

namespace HubertEcg.Client.Commands;

/// <summary>
/// Makes stored text safe to print on a terminal. Run names, inputs, cron expressions, error reasons and the like come
/// from whoever submitted them; printed raw, an ESC starts a terminal escape sequence (retitle the window, rewrite
/// earlier lines, hide text), a CR overwrites the line, and a bidirectional override reorders what is shown. Every
/// human-readable line the client prints from stored text goes through <see cref="Escape"/>; JSON output is escaped by
/// its serializer instead.
/// </summary>
public static class TerminalText
{
    /// <summary>
    /// <paramref name="text"/> with every character a terminal would act on instead of show written as an escape:
    /// C0 controls (ESC, CR, LF, TAB, NUL, ...) and DEL as <c>\xHH</c>, C1 controls (U+0080 to U+009F) as <c>\u0085</c>,
    /// the bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to
    /// U+2069) and the line and paragraph separators (U+2028, U+2029) as <c>\uXXXX</c>, and an unpaired surrogate as
    /// <c>\uXXXX</c>. Everything else, other scripts included, is kept. Null gives the empty string.
    /// </summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }

        if (!text.Any(NeedsEscape) && !HasUnpairedSurrogate(text))
        {
            return text;
        }

        var escaped = new StringBuilder(text.Length + 16);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                escaped.Append(c).Append(text[++i]);
            }
            else if (c < 0x20 || c == 0x7F)
            {
                escaped.Append("\\x").Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
            }
            else if (NeedsEscape(c) || char.IsSurrogate(c))
            {
                escaped.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            }
            else
            {
                escaped.Append(c);
            }
        }

        return escaped.ToString();
    }

    private static bool NeedsEscape(char c) =>
        c < 0x20
        || (c >= 0x7F && c <= 0x9F)
        || c == '\u061C'
        || c is '\u200E' or '\u200F'
        || (c >= '\u202A' && c <= '\u202E')
        || (c >= '\u2066' && c <= '\u2069')
        || c is '\u2028' or '\u2029';

    private static bool HasUnpairedSurrogate(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return true;
            }
        }

        return false;
    }
}
