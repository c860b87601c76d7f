using System.Text.RegularExpressions;

namespace HubertEcg.Storage.Access;

/// <summary>
/// Takes the secrets out of text before it is shown or logged: Postgres passwords (<c>Password=</c>, <c>Pwd=</c>),
/// Azure Storage account keys and SAS tokens in connection strings (<c>AccountKey=</c>, <c>SharedAccessSignature=</c>),
/// SAS signatures in URLs (<c>sig=</c>) and bearer tokens. Each value becomes <c>***</c>; what is left (host, account,
/// container, SAS permissions and expiry) still says where and what.
/// </summary>
public static partial class Secrets
{
    public const string Mask = "***";

    /// <summary><paramref name="text"/> with every secret it holds masked; null and empty stay as they are.</summary>
    public static string Redact(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text ?? "";
        }

        var masked = KeyValueSecret().Replace(text, m => $"{m.Groups["key"].Value}{m.Groups["eq"].Value}{Mask}");
        masked = SasSignature().Replace(masked, m => $"{m.Groups["key"].Value}{Mask}");
        return BearerToken().Replace(masked, m => $"{m.Groups["key"].Value}{Mask}");
    }

    // A connection string's secret keys, up to the next ';' (a quoted value up to its closing quote).
    [GeneratedRegex("""(?<key>\b(?:Password|Pwd|AccountKey|SharedAccessSignature|SharedAccessKey|AccessToken)\s*)(?<eq>=\s*)(?:"[^"]*"|'[^']*'|[^;]*)""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex KeyValueSecret();

    // A SAS signature in a URL or query string.
    [GeneratedRegex("""(?<key>(?:^|[?&;\s])sig=)[^&;\s"']*""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SasSignature();

    // An Authorization header's bearer token.
    [GeneratedRegex("""(?<key>\bBearer\s+)[A-Za-z0-9\-_\.~\+/=]+""", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex BearerToken();
}
