namespace HubertEcg.Grains.Coordination;

/// <summary>How run coordinators pace themselves. Section <c>Coordinator</c>.</summary>
public sealed class CoordinatorOptions
{
    public const string SectionName = "Coordinator";

    /// <summary>Period of the coordinator's timer: one planning step, lease expiry, progress persistence.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Blobs listed per planning step.</summary>
    public int ListPageSize { get; set; } = 1000;

    /// <summary>Bytes of a run's manifest read per planning step (a manifest line may not be longer).</summary>
    public int ManifestChunkBytes { get; set; } = 256 * 1024;

    /// <summary>The window the run's rate is measured over.</summary>
    public TimeSpan RateWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Consecutive failed planning steps after which the run fails.</summary>
    public int MaxPlanningFailures { get; set; } = 20;
}
