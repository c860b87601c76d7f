namespace HubertEcg.Silo;

/// <summary>How this silo joins its cluster. Section <c>Silo</c>.</summary>
public sealed class SiloOptions
{
    public const string SectionName = "Silo";

    /// <summary><c>localhost</c> (single machine, development) or <c>adonet</c> (Orleans ADO.NET clustering on the Postgres of <c>Postgres:ConnectionString</c>).</summary>
    public string Clustering { get; set; } = "localhost";

    public string ClusterId { get; set; } = "hubert-ecg";

    public string ServiceId { get; set; } = "hubert-ecg";

    /// <summary>Silo-to-silo port.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Client gateway port.</summary>
    public int GatewayPort { get; set; } = 30000;

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
}
