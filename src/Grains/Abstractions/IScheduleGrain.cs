namespace HubertEcg.Grains;

/// <summary>
/// One per schedule, keyed by the schedule id (a <c>schedules</c> row). It keeps an Orleans reminder whose ticks
/// (every <c>Scheduling:TickInterval</c>) start the schedule's run when a due time of its cron expression has
/// passed; Postgres decides, so a due time gets exactly one run whichever silo ticks and however often. A removed or
/// disabled schedule's grain drops its reminder on its next tick.
/// </summary>
[Alias("HubertEcg.IScheduleGrain")]
public interface IScheduleGrain : IGrainWithGuidKey
{
    /// <summary>Registers the reminder if this activation has not yet, and starts a run if one is due now.</summary>
    [Alias("Ensure")]
    Task Ensure();
}
