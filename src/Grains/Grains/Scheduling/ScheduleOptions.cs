namespace HubertEcg.Grains.Scheduling;

/// <summary>How silos fire scheduled runs. Section <c>Scheduling</c>, bound once and checked at start-up (<see cref="Problems"/>).</summary>
public sealed class ScheduleOptions
{
    public const string SectionName = "Scheduling";

    /// <summary>Default of <see cref="TickInterval"/> and <see cref="SyncInterval"/>, in seconds.</summary>
    public const int DefaultIntervalSeconds = 60;

    /// <summary>
    /// Period of each schedule's reminder: how often a silo checks whether the schedule is due. A run starts at most
    /// this long after its due time, usually at it (a grain timer aims at the next due time between ticks). Orleans'
    /// minimum reminder period is lowered to this when it is shorter than one minute (tests).
    /// </summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(DefaultIntervalSeconds);

    /// <summary>How often each silo reads the enabled schedules from Postgres and makes sure each has its reminder.</summary>
    public TimeSpan SyncInterval { get; set; } = TimeSpan.FromSeconds(DefaultIntervalSeconds);

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (TickInterval <= TimeSpan.Zero)
        {
            problems.Add($"Scheduling:TickInterval must be positive, not {TickInterval}");
        }

        if (SyncInterval <= TimeSpan.Zero)
        {
            problems.Add($"Scheduling:SyncInterval must be positive, not {SyncInterval}");
        }

        return problems;
    }
}
