namespace HubertEcg.Grains.Scheduling;

/// <summary>How silos fire scheduled runs. Section <c>Scheduling</c>.</summary>
public sealed class ScheduleOptions
{
    public const string SectionName = "Scheduling";

    /// <summary>
    /// Period of each schedule's reminder: how often a silo checks whether the schedule is due. A run starts at most
    /// this long after its due time, usually at it (a grain timer aims at the next due time between ticks). Orleans'
    /// minimum reminder period is lowered to this when it is shorter than one minute (tests).
    /// </summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often each silo reads the enabled schedules from Postgres and makes sure each has its reminder.</summary>
    public TimeSpan SyncInterval { get; set; } = TimeSpan.FromMinutes(1);
}
