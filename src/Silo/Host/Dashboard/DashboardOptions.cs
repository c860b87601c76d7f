using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// The web dashboard the silo serves. Section <c>Dashboard</c>, bound once and checked at start-up
/// (<see cref="Problems"/>, and the refusal of <c>Kestrel:Endpoints</c>, see <see cref="DashboardWeb.AddHubertEcgDashboard"/>).
/// </summary>
public sealed class DashboardOptions
{
    public const string SectionName = "Dashboard";

    /// <summary>Tokens shorter than this are refused: the token is the only thing between the network and the data.</summary>
    public const int MinimumTokenLength = 16;

    /// <summary>Default of <see cref="Urls"/>: loopback only.</summary>
    public const string DefaultUrls = "http://127.0.0.1:8480";

    /// <summary>Serve the dashboard (off by default; the shipped appsettings.json turns it on, bound to loopback).</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Where Kestrel listens: <c>http(s)://HOST:PORT</c> entries separated by <c>;</c>. HOST is an IP address,
    /// <c>localhost</c>, <c>*</c> / <c>+</c> / <c>0.0.0.0</c> / <c>[::]</c> (every interface) or a host name (every
    /// interface too, as Kestrel binds it). Port 0 lets the OS choose (with an IP address, not <c>localhost</c>).
    /// </summary>
    public string Urls { get; set; } = DefaultUrls;

    /// <summary>
    /// The bearer token the dashboard and its JSON API require; empty: no token, and then only loopback addresses
    /// may be listened on. From configuration or the environment (<c>HUBERTECG_Dashboard__Token</c>), never in code.
    /// </summary>
    public string Token { get; set; } = "";

    /// <summary>
    /// Npgsql connection string for the dashboard's queries, for instance as the read-only <c>hubert_dashboard</c> role;
    /// <c>Postgres:ConnectionString</c> when empty. Either way the dashboard's sessions are read-only.
    /// </summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Shortest <see cref="SessionLifetime"/> allowed.</summary>
    public static readonly TimeSpan MinimumSessionLifetime = TimeSpan.FromMinutes(1);

    /// <summary>Longest <see cref="SessionLifetime"/> allowed: a stolen cookie must stop working within a week at most.</summary>
    public static readonly TimeSpan MaximumSessionLifetime = TimeSpan.FromDays(7);

    /// <summary>
    /// How long a sign-in lasts (default 8 hours), counted from the sign-in whatever the browser does meanwhile; then
    /// the session cookie opens nothing and the person signs in again. Sign-out ends it at once.
    /// </summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);

    /// <summary>True when a token is configured, so every request must carry it.</summary>
    public bool TokenRequired => Token.Length > 0;

    /// <summary>
    /// What is wrong with these settings when the dashboard is enabled, one line each naming the setting and the
    /// fix; empty when they can work or the dashboard is off. Every URL must parse, a token must be long enough, and
    /// an address other machines can reach is refused without a token. A token is never echoed.
    /// </summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!Enabled)
        {
            return problems;
        }

        if (Token.Length > 0 && (string.IsNullOrWhiteSpace(Token) || Token.Length < MinimumTokenLength))
        {
            problems.Add(
                $"Dashboard:Token must be at least {MinimumTokenLength} characters and not blank (the configured one has {Token.Length}); " +
                "generate one with: openssl rand -hex 32");
        }

        if (SessionLifetime < MinimumSessionLifetime || SessionLifetime > MaximumSessionLifetime)
        {
            problems.Add(
                $"Dashboard:SessionLifetime is {SessionLifetime}; it must be between {MinimumSessionLifetime} and {MaximumSessionLifetime} (such as 08:00:00)");
        }

        var urls = Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (urls.Length == 0)
        {
            problems.Add("Dashboard:Urls is empty: give at least one address, such as http://127.0.0.1:8480");
        }

        var endpoints = new List<DashboardEndpoint>();
        foreach (var url in urls)
        {
            if (DashboardEndpoint.TryParse(url, out var endpoint, out var error))
            {
                endpoints.Add(endpoint);
            }
            else
            {
                problems.Add(error);
            }
        }

        var exposed = endpoints.FirstOrDefault(e => !e.IsLoopback);
        if (exposed is not null && !TokenRequired)
        {
            problems.Add(
                $"Dashboard:Urls asks to listen on '{exposed.Url}', which other machines can reach, but Dashboard:Token is not set. " +
                "Set a token (HUBERTECG_Dashboard__Token) or listen on a loopback address only (127.0.0.1, [::1] or localhost).");
        }

        return problems;
    }

    /// <summary>The listen addresses of <see cref="Urls"/>; throws naming the first problem when <see cref="Problems"/> lists any.</summary>
    public IReadOnlyList<DashboardEndpoint> Endpoints()
    {
        var problems = Problems();
        if (problems.Count > 0)
        {
            throw new InvalidOperationException(problems[0]);
        }

        return Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(DashboardEndpoint.Parse).ToList();
    }
}

/// <summary>One listen address of <see cref="DashboardOptions.Urls"/>.</summary>
/// <param name="Url">The entry as configured.</param>
/// <param name="Https">Whether it is an <c>https://</c> address (Kestrel's default certificate settings apply).</param>
/// <param name="Address">The IP address to bind; null for <c>localhost</c> and for every interface.</param>
/// <param name="Localhost">The host is <c>localhost</c>: both loopback addresses.</param>
/// <param name="Port">The port; 0 lets the OS choose.</param>
public sealed partial record DashboardEndpoint(string Url, bool Https, IPAddress? Address, bool Localhost, int Port)
{
    /// <summary>Only this machine can connect: a loopback IP address or <c>localhost</c>.</summary>
    public bool IsLoopback => Localhost || (Address is not null && IPAddress.IsLoopback(Address));

    /// <summary>Binds every interface (<c>*</c>, <c>+</c>, a host name, or an unspecified address such as 0.0.0.0).</summary>
    public bool AnyAddress => !Localhost && Address is null;

    /// <summary>Reads one entry of <see cref="DashboardOptions.Urls"/>; throws <see cref="FormatException"/> with the reason when it is not an address.</summary>
    public static DashboardEndpoint Parse(string url) =>
        TryParse(url, out var endpoint, out var error) ? endpoint : throw new FormatException(error);

    /// <summary>Reads one entry of <see cref="DashboardOptions.Urls"/>; false with the reason, naming the entry, when it is not an address.</summary>
    public static bool TryParse(string url, [NotNullWhen(true)] out DashboardEndpoint? endpoint, out string error)
    {
        endpoint = null;
        error = "";
        var match = UrlPattern().Match(url);
        if (!match.Success)
        {
            error = $"Dashboard:Urls entry '{url}' is not an address of the form http://HOST:PORT or https://HOST:PORT (no path)";
            return false;
        }

        var https = match.Groups["scheme"].Value.Equals("https", StringComparison.OrdinalIgnoreCase);
        var port = https ? 443 : 80;
        if (match.Groups["port"].Success
            && !(int.TryParse(match.Groups["port"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port <= IPEndPoint.MaxPort))
        {
            error = $"Dashboard:Urls entry '{url}' has port {match.Groups["port"].Value}, which is not between 0 and 65535";
            return false;
        }

        var host = match.Groups["host"].Value;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            if (port == 0)
            {
                error = $"Dashboard:Urls entry '{url}': the OS cannot choose one port for both loopback addresses of localhost; use http://127.0.0.1:0";
                return false;
            }

            endpoint = new DashboardEndpoint(url, https, null, Localhost: true, port);
            return true;
        }

        if (host is "*" or "+")
        {
            endpoint = new DashboardEndpoint(url, https, null, Localhost: false, port);
            return true;
        }

        var literal = host.StartsWith('[') ? host[1..^1] : host;
        if (IPAddress.TryParse(literal, out var address))
        {
            var any = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);
            endpoint = new DashboardEndpoint(url, https, any ? null : address, Localhost: false, port);
            return true;
        }

        if (host.StartsWith('['))
        {
            error = $"Dashboard:Urls entry '{url}' has '{host}', which is not an IPv6 address";
            return false;
        }

        // Kestrel listens on every interface for a host name other than localhost.
        endpoint = new DashboardEndpoint(url, https, null, Localhost: false, port);
        return true;
    }

    [GeneratedRegex(@"^(?<scheme>https?)://(?<host>\[[0-9A-Fa-f:.%\w]+\]|[^:/\[\]\s]+)(:(?<port>[0-9]{1,5}))?/?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex UrlPattern();
}
