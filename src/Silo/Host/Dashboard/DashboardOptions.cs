using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace HubertEcg.Silo.Dashboard;

/// <summary>The web dashboard the silo serves. Section <c>Dashboard</c>.</summary>
public sealed class DashboardOptions
{
    public const string SectionName = "Dashboard";

    /// <summary>Tokens shorter than this are refused: the token is the only thing between the network and the data.</summary>
    public const int MinimumTokenLength = 16;

    /// <summary>Serve the dashboard (off by default; the shipped appsettings.json turns it on, bound to loopback).</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Where Kestrel listens: <c>http(s)://HOST:PORT</c> entries separated by <c>;</c>. HOST is an IP address,
    /// <c>localhost</c>, <c>*</c> / <c>+</c> / <c>0.0.0.0</c> / <c>[::]</c> (every interface) or a host name (every
    /// interface too, as Kestrel binds it). Port 0 lets the OS choose (with an IP address, not <c>localhost</c>).
    /// </summary>
    public string Urls { get; set; } = "http://127.0.0.1:8480";

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

    /// <summary>
    /// Reads the section and, when the dashboard is enabled, checks it: every URL parses, a token is long enough, and
    /// an address other machines can reach is refused without a token. Throws <see cref="InvalidOperationException"/>
    /// with a message naming the setting and the fix.
    /// </summary>
    public static DashboardOptions Load(IConfiguration configuration)
    {
        var options = new DashboardOptions();
        configuration.GetSection(SectionName).Bind(options);
        if (!options.Enabled)
        {
            return options;
        }

        if (configuration.GetSection("Kestrel:Endpoints").GetChildren().Any())
        {
            throw new InvalidOperationException(
                "Kestrel:Endpoints is set, which would open listeners the dashboard's access check never sees: set Dashboard:Urls instead");
        }

        _ = options.Endpoints();
        return options;
    }

    /// <summary>True when a token is configured, so every request must carry it.</summary>
    public bool TokenRequired => Token.Length > 0;

    /// <summary>The listen addresses of <see cref="Urls"/>, validated against the token rules (see <see cref="Load"/>).</summary>
    public IReadOnlyList<DashboardEndpoint> Endpoints()
    {
        if (Token.Length > 0 && (string.IsNullOrWhiteSpace(Token) || Token.Length < MinimumTokenLength))
        {
            throw new InvalidOperationException(
                $"Dashboard:Token must be at least {MinimumTokenLength} characters and not blank (the configured one has {Token.Length}); " +
                "generate one with: openssl rand -hex 32");
        }

        var urls = Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (urls.Length == 0)
        {
            throw new InvalidOperationException("Dashboard:Urls is empty: give at least one address, such as http://127.0.0.1:8480");
        }

        var endpoints = urls.Select(DashboardEndpoint.Parse).ToList();
        var exposed = endpoints.FirstOrDefault(e => !e.IsLoopback);
        if (exposed is not null && !TokenRequired)
        {
            throw new InvalidOperationException(
                $"Dashboard:Urls asks to listen on '{exposed.Url}', which other machines can reach, but Dashboard:Token is not set. " +
                "Set a token (HUBERTECG_Dashboard__Token) or listen on a loopback address only (127.0.0.1, [::1] or localhost).");
        }

        return endpoints;
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

    public static DashboardEndpoint Parse(string url)
    {
        var match = UrlPattern().Match(url);
        if (!match.Success)
        {
            throw new InvalidOperationException(
                $"Dashboard:Urls entry '{url}' is not an address of the form http://HOST:PORT or https://HOST:PORT (no path)");
        }

        var https = match.Groups["scheme"].Value.Equals("https", StringComparison.OrdinalIgnoreCase);
        var port = https ? 443 : 80;
        if (match.Groups["port"].Success
            && !(int.TryParse(match.Groups["port"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port <= IPEndPoint.MaxPort))
        {
            throw new InvalidOperationException($"Dashboard:Urls entry '{url}' has port {match.Groups["port"].Value}, which is not between 0 and 65535");
        }

        var host = match.Groups["host"].Value;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            if (port == 0)
            {
                throw new InvalidOperationException(
                    $"Dashboard:Urls entry '{url}': the OS cannot choose one port for both loopback addresses of localhost; use http://127.0.0.1:0");
            }

            return new DashboardEndpoint(url, https, null, Localhost: true, port);
        }

        if (host is "*" or "+")
        {
            return new DashboardEndpoint(url, https, null, Localhost: false, port);
        }

        var literal = host.StartsWith('[') ? host[1..^1] : host;
        if (IPAddress.TryParse(literal, out var address))
        {
            var any = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);
            return new DashboardEndpoint(url, https, any ? null : address, Localhost: false, port);
        }

        if (host.StartsWith('['))
        {
            throw new InvalidOperationException($"Dashboard:Urls entry '{url}' has '{host}', which is not an IPv6 address");
        }

        // Kestrel listens on every interface for a host name other than localhost.
        return new DashboardEndpoint(url, https, null, Localhost: false, port);
    }

    [GeneratedRegex(@"^(?<scheme>https?)://(?<host>\[[0-9A-Fa-f:.%\w]+\]|[^:/\[\]\s]+)(:(?<port>[0-9]{1,5}))?/?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex UrlPattern();
}
