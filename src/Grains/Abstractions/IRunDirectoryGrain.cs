using Orleans.Concurrency;

namespace HubertEcg.Grains;

/// <summary>
/// The cluster's list of active runs (one activation, key 0). Workers ask it which runs to lease from instead of each
/// polling Postgres; a client that submits through the cluster announces its run here, which wakes the run's
/// coordinator at once. It refreshes itself from Postgres (<c>Coordinator:DirectoryRefresh</c>), so runs created
/// by a client without a gateway or by a schedule are found too, and finished runs drop out.
/// </summary>
[Alias("HubertEcg.IRunDirectoryGrain")]
public interface IRunDirectoryGrain : IGrainWithIntegerKey
{
    /// <summary>The runs not yet finished, oldest first.</summary>
    [Alias("GetActiveRuns")]
    Task<IReadOnlyList<Guid>> GetActiveRuns();

    /// <summary>Adds a run just created in Postgres and wakes its coordinator, which starts planning.</summary>
    [Alias("Announce")]
    Task Announce(Guid runId);

    /// <summary>A coordinator reports its run finished.</summary>
    [Alias("Finished"), OneWay]
    Task Finished(Guid runId);
}
