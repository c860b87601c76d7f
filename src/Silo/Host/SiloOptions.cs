using System.Net;
using Microsoft.Extensions.Configuration;

namespace HubertEcg.Silo;

/// <summary>How this silo joins its cluster. Section <c>Silo</c>, bound once and checked at start-up (<see cref="Problems"/>).</summary>
public sealed class SiloOptions
{
    public const string SectionName = "Silo";

    /// <summary>Single-machine clustering (development, one silo).</summary>
    public const string Localhost = "localhost";

    /// <summary>Orleans ADO.NET clustering on the Postgres of <c>Postgres:ConnectionString</c>.</summary>
    public const string AdoNet = "adonet";

    /// <summary>Default of <see cref="ClusterId"/> and <see cref="ServiceId"/>.</summary>
    public const string DefaultId = "hubert-ecg";

    /// <summary>Default of <see cref="SiloPort"/>.</summary>
    public const int DefaultSiloPort = 11111;

    /// <summary>Default of <see cref="GatewayPort"/>.</summary>
    public const int DefaultGatewayPort = 30000;

    /// <summary><c>localhost</c> (single machine, development) or <c>adonet</c> (Orleans ADO.NET clustering on the Postgres of <c>Postgres:ConnectionString</c>).</summary>
    public string Clustering { get; set; } = Localhost;

    public string ClusterId { get; set; } = DefaultId;

    public string ServiceId { get; set; } = DefaultId;

    /// <summary>Silo-to-silo port.</summary>
    public int SiloPort { get; set; } = DefaultSiloPort;

    /// <summary>Client gateway port.</summary>
    public int GatewayPort { get; set; } = DefaultGatewayPort;

    /// <summary>The address other silos reach this one at (ADO.NET clustering); the loopback address when empty.</summary>
    public string AdvertisedAddress { get; set; } = "";

    /// <summary>Silo name in logs and worker ids; the machine name when empty.</summary>
    public string Name { get; set; } = "";

    /// <summary>
    /// Failure detection: how long a probe of another silo may take, and how many missed probes and votes declare it
    /// dead. Orleans' defaults (tens of seconds in all) apply when unset; tests and small clusters shorten them.
    /// </summary>
    public TimeSpan? ProbeTimeout { get; set; }

    public int? NumMissedProbesLimit { get; set; }

    public int? NumVotesForDeathDeclaration { get; set; }

    /// <summary>How long a grain call waits for its answer (Orleans' default is 30 s).</summary>
    public TimeSpan? ResponseTimeout { get; set; }

    /// <summary>Whether <see cref="Clustering"/> is <c>adonet</c> (any case).</summary>
    public bool UsesAdoNet => Clustering.Trim().Equals(AdoNet, StringComparison.OrdinalIgnoreCase);

    /// <summary><see cref="AdvertisedAddress"/> parsed; the loopback address when empty.</summary>
    public IPAddress AdvertisedIPAddress =>
        string.IsNullOrWhiteSpace(AdvertisedAddress) ? IPAddress.Loopback : IPAddress.Parse(AdvertisedAddress.Trim());

    /// <summary>
    /// Whether the silo is composed for ADO.NET clustering. Which membership services exist is decided while the
    /// host is composed, before options can be read, so this one key is read from <paramref name="configuration"/>
    /// directly; its value is also bound with the rest of the section and refused at start-up unless it is
    /// <c>localhost</c> or <c>adonet</c>.
    /// </summary>
    public static bool ComposesAdoNet(IConfiguration configuration) =>
        new SiloOptions { Clustering = configuration[$"{SectionName}:{nameof(Clustering)}"] ?? Localhost }.UsesAdoNet;

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!UsesAdoNet && !Clustering.Trim().Equals(Localhost, StringComparison.OrdinalIgnoreCase))
        {
            problems.Add($"Silo:Clustering must be '{Localhost}' or '{AdoNet}', not '{Clustering}'");
        }

        if (string.IsNullOrWhiteSpace(ClusterId) || string.IsNullOrWhiteSpace(ServiceId))
        {
            problems.Add("Silo:ClusterId and Silo:ServiceId must not be empty");
        }

        if (SiloPort is < 1 or > IPEndPoint.MaxPort)
        {
            problems.Add($"Silo:SiloPort must be between 1 and {IPEndPoint.MaxPort}, not {SiloPort}");
        }

        if (GatewayPort is < 1 or > IPEndPoint.MaxPort)
        {
            problems.Add($"Silo:GatewayPort must be between 1 and {IPEndPoint.MaxPort}, not {GatewayPort}");
        }

        if (!string.IsNullOrWhiteSpace(AdvertisedAddress) && !IPAddress.TryParse(AdvertisedAddress.Trim(), out _))
        {
            problems.Add($"Silo:AdvertisedAddress must be an IP address (not a host name), not '{AdvertisedAddress}'");
        }

        if (ProbeTimeout <= TimeSpan.Zero || ResponseTimeout <= TimeSpan.Zero)
        {
            problems.Add("Silo:ProbeTimeout and Silo:ResponseTimeout must be positive when set");
        }

        if (NumMissedProbesLimit < 1 || NumVotesForDeathDeclaration < 1)
        {
            problems.Add("Silo:NumMissedProbesLimit and Silo:NumVotesForDeathDeclaration must be at least 1 when set");
        }

        return problems;
    }
}
