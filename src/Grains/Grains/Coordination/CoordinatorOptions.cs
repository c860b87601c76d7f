namespace HubertEcg.Grains.Coordination;

/// <summary>How run coordinators pace themselves. Section <c>Coordinator</c>.</summary>
public sealed class CoordinatorOptions
{
    public const string SectionName = "Coordinator";

    /// <summary>Period of the coordinator's two timers: lease expiry and progress persistence; one planning step (off the lease path).</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Blobs listed per planning step.</summary>
    public int ListPageSize { get; set; } = 1000;

    /// <summary>Bytes of a run's manifest read per planning step (a manifest line may not be longer).</summary>
    public int ManifestChunkBytes { get; set; } = 256 * 1024;

    /// <summary>The window the run's rate is measured over.</summary>
    public TimeSpan RateWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Consecutive failed planning steps after which the run fails.</summary>
    public int MaxPlanningFailures { get; set; } = 20;

    /// <summary>How often the run directory reads the active runs from Postgres (runs created without the cluster, finished runs).</summary>
    public TimeSpan DirectoryRefresh { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (TickInterval <= TimeSpan.Zero || RateWindow <= TimeSpan.Zero || DirectoryRefresh <= TimeSpan.Zero)
        {
            problems.Add("Coordinator:TickInterval, Coordinator:RateWindow and Coordinator:DirectoryRefresh must be positive");
        }

        if (ListPageSize < 1 || ListPageSize > 5000)
        {
            problems.Add($"Coordinator:ListPageSize must be between 1 and 5000 (a listing page), not {ListPageSize}");
        }

        if (ManifestChunkBytes < 1 || ManifestChunkBytes > (64 << 20))
        {
            problems.Add($"Coordinator:ManifestChunkBytes must be between 1 and {64 << 20} (64 MiB), not {ManifestChunkBytes}");
        }

        if (MaxPlanningFailures < 1)
        {
            problems.Add($"Coordinator:MaxPlanningFailures must be at least 1, not {MaxPlanningFailures}");
        }

        return problems;
    }
}
