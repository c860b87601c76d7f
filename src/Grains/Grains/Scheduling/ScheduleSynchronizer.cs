using HubertEcg.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace HubertEcg.Grains.Scheduling;

/// <summary>
/// Brings schedules added through Postgres (the client talks to nothing else) to the cluster: while the silo is
/// active, every <see cref="ScheduleOptions.SyncInterval"/> (first at start-up) it reads the enabled schedules and
/// calls each one's grain, which registers its reminder if it has none yet and starts a run if one is due. Every
/// silo does this, so schedules keep firing as long as any silo runs; the calls are cheap and their effects are
/// decided in Postgres. Removed and disabled schedules need nothing here: their grains drop their reminders on
/// their next tick.
/// </summary>
public sealed partial class ScheduleSynchronizer(
    IGrainFactory grains,
    ScheduleStore schedules,
    IOptions<ScheduleOptions> options,
    ILogger<ScheduleSynchronizer> logger) : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(ScheduleSynchronizer), ServiceLifecycleStage.Active, StartAsync, StopAsync);

    public void Dispose() => _stopping.Dispose();

    /// <summary>One pass: every enabled schedule's grain is called once; returns how many were.</summary>
    public async Task<int> SyncOnceAsync(CancellationToken cancellationToken)
    {
        var ids = await schedules.ListEnabledIdsAsync(cancellationToken);
        foreach (var id in ids)
        {
            try
            {
                await grains.GetGrain<IScheduleGrain>(id).Ensure();
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogEnsureFailed(logger, e, id);
            }
        }

        return ids.Count;
    }

    private Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _loop.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SyncInterval);
        do
        {
            try
            {
                await SyncOnceAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Postgres briefly unreachable: the next pass tries again.
                LogSyncFailed(logger, e);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "schedule {ScheduleId}: could not reach its grain; trying again on the next pass")]
    private static partial void LogEnsureFailed(ILogger logger, Exception e, Guid scheduleId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "reading the schedules failed; trying again on the next pass")]
    private static partial void LogSyncFailed(ILogger logger, Exception e);
}
