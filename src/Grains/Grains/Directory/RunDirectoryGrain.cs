using HubertEcg.Grains.Coordination;
using HubertEcg.Storage;
using HubertEcg.Worker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HubertEcg.Grains.Directory;

/// <summary>
/// The active runs of the cluster (see <see cref="IRunDirectoryGrain"/>). Postgres stays the record: the list is
/// read from it at activation and every <see cref="CoordinatorOptions.DirectoryRefresh"/>, and a run found there
/// for the first time has its coordinator woken. Announced runs are added at once. Calls to coordinators are one-way,
/// so a coordinator reporting its end while the directory wakes it cannot deadlock the two.
/// </summary>
public sealed partial class RunDirectoryGrain(
    RunStore store,
    IOptions<CoordinatorOptions> options,
    ILogger<RunDirectoryGrain> logger) : Grain, IRunDirectoryGrain
{
    private List<Guid> _active = [];
    private IGrainTimer? _timer;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await RefreshAsync(cancellationToken);
        _timer = this.RegisterGrainTimer(
            RefreshAsync,
            new GrainTimerCreationOptions { DueTime = options.Value.DirectoryRefresh, Period = options.Value.DirectoryRefresh, KeepAlive = true });
    }

    public Task<IReadOnlyList<Guid>> GetActiveRuns() => Task.FromResult<IReadOnlyList<Guid>>(_active.ToList());

    public Task Announce(Guid runId)
    {
        if (!_active.Contains(runId))
        {
            _active.Add(runId);
        }

        Wake(runId);
        return Task.CompletedTask;
    }

    public Task Finished(Guid runId)
    {
        _active.Remove(runId);
        return Task.CompletedTask;
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<Guid> stored;
        try
        {
            stored = await store.ListActiveRunIdsAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Postgres briefly unreachable: keep the list as it is; the next refresh tries again.
            LogRefreshFailed(logger, SafeErrors.ForLog(e));
            return;
        }

        var known = _active.ToHashSet();
        foreach (var runId in stored.Where(id => !known.Contains(id)))
        {
            Wake(runId);
        }

        _active = [.. stored];
    }

    private void Wake(Guid runId) => GrainFactory.GetGrain<IRunCoordinatorGrain>(runId).Start().Ignore();

    [LoggerMessage(Level = LogLevel.Warning, Message = "run directory: reading the active runs from Postgres failed; keeping the last list")]
    private static partial void LogRefreshFailed(ILogger logger, Exception e);
}
