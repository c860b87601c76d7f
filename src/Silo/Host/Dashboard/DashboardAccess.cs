using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// Who may use the dashboard. With a token configured, a request must carry it as <c>Authorization: Bearer TOKEN</c>,
/// or carry a session cookie the login form set. A session is a random id this silo keeps (only its SHA-256) with an
/// absolute expiry (<see cref="DashboardOptions.SessionLifetime"/>): so a cookie is never the token nor derived from
/// it, it stops working when it expires, when its holder signs out (<see cref="EndSession"/>) and when the silo
/// restarts. Tokens are never taken from a query string (they would land in logs and browser history). Without a
/// token the server listens on loopback only (see <see cref="DashboardOptions.Endpoints"/>) and answers only requests
/// addressed to a loopback host name, so a web page that rebinds its own DNS name to 127.0.0.1 cannot read it.
/// </summary>
public sealed class DashboardAccess
{
    public const string CookieName = "hubert_dashboard";

    /// <summary>Query-string parameters refused outright: a credential there ends up in access logs and browser history.</summary>
    public static readonly IReadOnlyList<string> CredentialQueryParameters = ["token", "access_token", "bearer", "auth"];

    private readonly byte[] _tokenHash;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _sessions = new(StringComparer.Ordinal);

    /// <summary>Access for <paramref name="token"/> (empty: none required), sessions lasting <paramref name="sessionLifetime"/> by <paramref name="time"/>.</summary>
    public DashboardAccess(string token, TimeSpan sessionLifetime, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(token);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(sessionLifetime, TimeSpan.Zero);
        TokenRequired = token.Length > 0;
        SessionLifetime = sessionLifetime;
        _time = time;
        _tokenHash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
    }

    public bool TokenRequired { get; }

    /// <summary>How long a session lasts from sign-in, whatever it does meanwhile.</summary>
    public TimeSpan SessionLifetime { get; }

    /// <summary>Sessions this silo holds now (expired ones are dropped when the next one starts).</summary>
    public int SessionCount => _sessions.Count;

    /// <summary>Constant-time comparison of a presented token with the configured one (hashes first, so lengths leak nothing either).</summary>
    public bool TokenMatches(string? candidate) =>
        TokenRequired && candidate is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(candidate)), _tokenHash);

    /// <summary>
    /// Starts a session after a successful sign-in and returns the cookie's value: 256 random bits. Only its hash is
    /// kept, with its expiry; expired sessions are dropped here, so the table holds at most the live ones.
    /// </summary>
    public string StartSession()
    {
        var now = _time.GetUtcNow();
        foreach (var (key, expires) in _sessions)
        {
            if (expires <= now)
            {
                _sessions.TryRemove(key, out _);
            }
        }

        var id = Base64Url(RandomNumberGenerator.GetBytes(32));
        _sessions[Key(id)] = now + SessionLifetime;
        return id;
    }

    /// <summary>Ends the session of <paramref name="cookie"/> (sign-out): the cookie opens nothing afterwards, wherever it was copied to.</summary>
    public bool EndSession(string? cookie) => cookie is { Length: > 0 } && _sessions.TryRemove(Key(cookie), out _);

    /// <summary>Whether <paramref name="cookie"/> is a live session of this silo (a lookup by its hash, not a comparison of secrets).</summary>
    public bool IsLiveSession(string? cookie)
    {
        if (cookie is not { Length: > 0 } || !_sessions.TryGetValue(Key(cookie), out var expires))
        {
            return false;
        }

        if (expires > _time.GetUtcNow())
        {
            return true;
        }

        _sessions.TryRemove(Key(cookie), out _);
        return false;
    }

    /// <summary>Whether the request may see the dashboard: no token is configured, or it carries the token or a live session cookie.</summary>
    public bool IsAuthorized(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!TokenRequired)
        {
            return true;
        }

        if (BearerToken(request.Headers.Authorization) is { } bearer)
        {
            return TokenMatches(bearer);
        }

        return request.Cookies.TryGetValue(CookieName, out var cookie) && IsLiveSession(cookie);
    }

    /// <summary>The name of a credential-looking query parameter the request carries (see <see cref="CredentialQueryParameters"/>), or null.</summary>
    public static string? CredentialInQuery(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Query.Keys.FirstOrDefault(k => CredentialQueryParameters.Contains(k.Trim(), StringComparer.OrdinalIgnoreCase));
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

    private static string Key(string cookie) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(cookie)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
