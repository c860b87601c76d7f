using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// Who may use the dashboard. With a token configured, a request must carry it as <c>Authorization: Bearer TOKEN</c>,
/// or carry the session cookie the login form sets (an HMAC of the token, so the cookie is not the token and a new
/// token ends every session). Without a token the server listens on loopback only (see
/// <see cref="DashboardOptions.Endpoints"/>) and answers only requests addressed to a loopback host name, so a web
/// page that rebinds its own DNS name to 127.0.0.1 cannot read it.
/// </summary>
public sealed class DashboardAccess
{
    public const string CookieName = "hubert_dashboard";

    private readonly byte[] _tokenHash;
    private readonly byte[] _session;

    public DashboardAccess(string token)
    {
        TokenRequired = token.Length > 0;
        _tokenHash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        _session = HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), "hubert-ecg dashboard session v1"u8);
    }

    public bool TokenRequired { get; }

    /// <summary>The session cookie's value after a successful login.</summary>
    public string SessionCookie => Base64Url(_session);

    /// <summary>Constant-time comparison of a presented token with the configured one (hashes first, so lengths leak nothing either).</summary>
    public bool TokenMatches(string? candidate) =>
        TokenRequired && candidate is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(candidate)), _tokenHash);

    /// <summary>Whether the request may see the dashboard: no token is configured, or it carries the token or the session cookie.</summary>
    public bool IsAuthorized(HttpRequest request)
    {
        if (!TokenRequired)
        {
            return true;
        }

        if (BearerToken(request.Headers.Authorization) is { } bearer)
        {
            return TokenMatches(bearer);
        }

        return request.Cookies.TryGetValue(CookieName, out var cookie)
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(cookie ?? ""), Encoding.ASCII.GetBytes(SessionCookie));
    }

    /// <summary>Without a token, whether the Host header names this machine (localhost or a loopback address).</summary>
    public static bool IsLoopbackHost(HostString host)
    {
        if (!host.HasValue)
        {
            return false;
        }

        var name = host.Host;
        return name.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(name.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
    }

    /// <summary>The token of an <c>Authorization: Bearer TOKEN</c> header (scheme case-insensitive), or null.</summary>
    public static string? BearerToken(StringValues authorization)
    {
        var value = authorization.ToString();
        const string scheme = "Bearer ";
        return value.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? value[scheme.Length..].Trim() : null;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
