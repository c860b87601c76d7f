using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace HubertEcg.Client.Cluster;

/// <summary>
/// Where the <c>hubert-ecg</c> tool finds the Orleans cluster for run control. Section <c>Cluster</c>. Without
/// gateways (the default) the run commands use Postgres only, as a client without the cluster always can.
/// </summary>
public sealed class ClusterClientOptions
{
    public const string SectionName = "Cluster";

    public const string DefaultClusterId = "hubert-ecg";

    public const string DefaultServiceId = "hubert-ecg";

    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Silo gateways as <c>host:port</c> (<c>Silo:GatewayPort</c> of the silos, 30000 by default); a list
    /// (<c>Cluster:Gateways:0</c>, <c>:1</c>, ...) or one value with entries separated by commas. Empty: Postgres only.
    /// </summary>
    public IReadOnlyList<string> Gateways { get; set; } = [];

    /// <summary>The silos' <c>Silo:ClusterId</c>.</summary>
    public string ClusterId { get; set; } = DefaultClusterId;

    /// <summary>The silos' <c>Silo:ServiceId</c>.</summary>
    public string ServiceId { get; set; } = DefaultServiceId;

    /// <summary>How long connecting to a gateway may take, and how long each call to the cluster waits for its answer.</summary>
    public TimeSpan ConnectTimeout { get; set; } = DefaultConnectTimeout;

    /// <summary>
    /// Binds the section once from <paramref name="configuration"/> (appsettings.json, <c>HUBERTECG_Cluster__...</c>,
    /// <c>--set Cluster:...</c>) and checks it; a setting that cannot work throws <see cref="InvalidOperationException"/>
    /// naming the key.
    /// </summary>
    public static ClusterClientOptions Load(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        var gateways = section.GetSection(nameof(Gateways));
        var options = new ClusterClientOptions
        {
            // A list binds from its children; one value may hold several entries separated by commas.
            Gateways = (gateways.GetChildren().Any() ? gateways.GetChildren().Select(c => c.Value ?? "") : (gateways.Value ?? "").Split(','))
                .Select(g => g.Trim())
                .Where(g => g.Length > 0)
                .ToList(),
            ClusterId = section[nameof(ClusterId)] ?? DefaultClusterId,
            ServiceId = section[nameof(ServiceId)] ?? DefaultServiceId,
            // A value that is not a duration throws InvalidOperationException naming Cluster:ConnectTimeout.
            ConnectTimeout = section.GetValue(nameof(ConnectTimeout), DefaultConnectTimeout),
        };
        var problems = options.Problems();
        if (problems.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", problems));
        }

        return options;
    }

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        foreach (var gateway in Gateways)
        {
            if (!TrySplit(gateway, out _, out _))
            {
                problems.Add($"Cluster:Gateways entry '{gateway}' is not host:port (a port from 1 to 65535)");
            }
        }

        if (string.IsNullOrWhiteSpace(ClusterId) || string.IsNullOrWhiteSpace(ServiceId))
        {
            problems.Add("Cluster:ClusterId and Cluster:ServiceId must not be empty (the silos' Silo:ClusterId and Silo:ServiceId)");
        }

        if (ConnectTimeout <= TimeSpan.Zero)
        {
            problems.Add($"Cluster:ConnectTimeout must be positive, not {ConnectTimeout}");
        }

        return problems;
    }

    /// <summary>Splits <c>host:port</c> or <c>[v6 address]:port</c>.</summary>
    public static bool TrySplit(string gateway, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = gateway.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(gateway.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            return false;
        }

        host = gateway[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        return host.Length > 0 && !host.Contains(' ', StringComparison.Ordinal);
    }
}
