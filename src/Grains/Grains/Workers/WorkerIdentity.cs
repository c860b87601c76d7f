namespace HubertEcg.Grains.Workers;

/// <summary>
/// A scoring worker's id: <c>SILO-NAME@SILO-ADDRESS/DEVICE</c>, where the silo address is Orleans' parsable form
/// (<c>host:port@generation</c>). The coordinators read the silo back out of a lease's owner to reclaim the leases of
/// workers whose silo the cluster has declared dead, without waiting for the lease to expire.
/// </summary>
public static class WorkerIdentity
{
    public static string Format(string siloName, SiloAddress silo, string device) => $"{siloName}@{silo.ToParsableString()}/{device}";

    /// <summary>The silo of a worker id made by <see cref="Format"/>, or null for any other text (simulated workers).</summary>
    public static SiloAddress? SiloOf(string? workerId)
    {
        if (string.IsNullOrEmpty(workerId))
        {
            return null;
        }

        // The address holds exactly one '@' (endpoint@generation); the name before it may hold more.
        var slash = workerId.LastIndexOf('/');
        var generationAt = slash > 0 ? workerId.LastIndexOf('@', slash - 1) : -1;
        var nameAt = generationAt > 0 ? workerId.LastIndexOf('@', generationAt - 1) : -1;
        if (nameAt < 0)
        {
            return null;
        }

        try
        {
            return SiloAddress.FromParsableString(workerId[(nameAt + 1)..slash]);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or IndexOutOfRangeException or OverflowException)
        {
            return null;
        }
    }
}
