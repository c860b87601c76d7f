using System.CommandLine;
using HubertEcg.Grains;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg schedule</c>: add, list, remove and start scheduled cohort runs. Like <c>run</c>, the client talks
/// to Postgres only: a schedule is a <c>schedules</c> row; every silo reads the enabled schedules (every
/// <c>Scheduling:SyncInterval</c>) and gives each one's grain a reminder, whose ticks start the runs that are due.
/// </summary>
public static class ScheduleCommands
{
    public static Command Build()
    {
        var command = new Command("schedule", "Scheduled cohort runs: a cron expression in a time zone starts a run of an input and model");
        command.Subcommands.Add(ScheduleAddCommand.Build());
        command.Subcommands.Add(ScheduleListCommand.Build());
        command.Subcommands.Add(ScheduleRemoveCommand.Build());
        command.Subcommands.Add(ScheduleRunNowCommand.Build());
        return command;
    }

    /// <summary>The schedule named <paramref name="nameOrId"/> or with that id; null (and a message on stderr) when there is none.</summary>
    internal static async Task<ScheduleRecord?> FindAsync(ScheduleStore store, string nameOrId, CancellationToken cancellationToken)
    {
        var schedule = await store.FindAsync(nameOrId, cancellationToken);
        if (schedule is null)
        {
            await Console.Error.WriteLineAsync($"no schedule is named '{TerminalText.Escape(nameOrId)}' or has that id (`schedule list` shows them)");
        }

        return schedule;
    }

    /// <summary>
    /// The client's view of a schedule at <paramref name="nowUtc"/>. Its next due time is the earliest one not yet run:
    /// one that has passed already (<see cref="ScheduleView.Overdue"/>: no silo has run it yet, or the schedule's
    /// previous run is still active), else the next occurrence.
    /// </summary>
    internal static ScheduleView View(ScheduleRecord s, DateTime nowUtc)
    {
        var calendar = s.Calendar();
        var overdue = s.Enabled ? calendar.DueAt(s.FiredUpTo, nowUtc) : null;
        var next = s.Enabled ? overdue ?? calendar.NextAfter(nowUtc > s.FiredUpTo ? nowUtc : s.FiredUpTo) : null;
        return new ScheduleView(
            s.ScheduleId,
            s.Name,
            s.Enabled,
            s.Incremental,
            s.Input,
            s.ModelId,
            s.ModelPath,
            s.PreprocessingProfile,
            s.Cron,
            s.TimeZone,
            next is { } local ? calendar.ToZone(local) : null,
            next,
            overdue is not null,
            s.LastDueAt,
            s.LastRunId,
            s.CreatedAt,
            new ScheduleRunOptions(s.BatchSize, s.ShardSize, s.Aggregation.ToText(), s.MaxWindows, s.MaxAttempts, s.LeaseSeconds));
    }
}

/// <summary>A schedule as <c>schedule list</c> shows it: the next due time in the schedule's zone and in UTC.</summary>
public sealed record ScheduleView(
    Guid ScheduleId,
    string Name,
    bool Enabled,
    bool Incremental,
    string Input,
    string ModelId,
    string ModelPath,
    string PreprocessingProfile,
    string Cron,
    string TimeZone,
    DateTimeOffset? NextDue,
    DateTime? NextDueUtc,
    bool Overdue,
    DateTime? LastDueAt,
    Guid? LastRunId,
    DateTime CreatedAt,
    ScheduleRunOptions Options);

/// <summary>The options every run of a schedule gets.</summary>
public sealed record ScheduleRunOptions(int BatchSize, int ShardSize, string Aggregation, int MaxWindows, int MaxAttempts, int LeaseSeconds);
