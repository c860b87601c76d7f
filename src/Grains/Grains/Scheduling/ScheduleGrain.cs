using HubertEcg.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HubertEcg.Grains.Scheduling;

/// <summary>
/// The grain of one schedule (see <see cref="IScheduleGrain"/>). Each reminder tick asks Postgres to start the
/// schedule's run for its latest passed due time (<see cref="ScheduleStore.StartRunAsync"/>, one transaction that
/// decides for every silo); between ticks a one-shot timer aims at the next due time, so a run usually starts on
/// time and at the latest one tick after it. The grain holds no state that matters: any activation on any silo, or
/// two at once, start the same runs.
/// </summary>
public sealed partial class ScheduleGrain(
    ScheduleStore store,
    IOptions<ScheduleOptions> options,
    ILogger<ScheduleGrain> logger) : Grain, IScheduleGrain, IRemindable
{
    private const string ReminderName = "cron";

    // A due-time timer fires this much after the due time, so that the database's clock has passed it too.
    private static readonly TimeSpan TimerSlack = TimeSpan.FromMilliseconds(200);

    private readonly ScheduleOptions _options = options.Value;
    private bool _registered;
    private IGrainTimer? _dueTimer;

    private Guid ScheduleId => this.GetPrimaryKey();

    public Task Ensure() => CheckAsync(CancellationToken.None);

    public Task ReceiveReminder(string reminderName, TickStatus status) => CheckAsync(CancellationToken.None);

    private async Task CheckAsync(CancellationToken cancellationToken)
    {
        ScheduleFiring firing;
        try
        {
            firing = await store.StartRunAsync(ScheduleId, cancellationToken: cancellationToken);
        }
        catch (ArgumentException e)
        {
            // The stored cron expression or time zone does not parse here (a time zone this machine lacks).
            LogInvalid(logger, e, ScheduleId);
            await EnsureReminderAsync(cancellationToken);
            return;
        }

        switch (firing.Outcome)
        {
            case FiringOutcome.Missing or FiringOutcome.Disabled:
                await DropReminderAsync(cancellationToken);
                LogDropped(logger, ScheduleId, firing.Outcome);
                DeactivateOnIdle();
                return;
            case FiringOutcome.Started:
                LogStarted(logger, ScheduleId, firing.RunId!.Value, firing.DueAt, firing.PassedOver);
                await GrainFactory.GetGrain<IRunDirectoryGrain>(0).Announce(firing.RunId.Value);
                break;
            case FiringOutcome.Busy:
                LogBusy(logger, ScheduleId, firing.DueAt, firing.ActiveRunId!.Value);
                break;
        }

        await EnsureReminderAsync(cancellationToken);
        AimAtNextDueTime(firing);
    }

    private async Task EnsureReminderAsync(CancellationToken cancellationToken)
    {
        if (_registered)
        {
            return;
        }

        await this.RegisterOrUpdateReminder(ReminderName, _options.TickInterval, _options.TickInterval, cancellationToken);
        _registered = true;
    }

    private async Task DropReminderAsync(CancellationToken cancellationToken)
    {
        _dueTimer?.Dispose();
        _dueTimer = null;
        var reminder = await this.GetReminder(ReminderName, cancellationToken);
        if (reminder is not null)
        {
            await this.UnregisterReminder(reminder, cancellationToken);
        }

        _registered = false;
    }

    /// <summary>When the next due time comes before the next reminder tick, a one-shot timer checks at it.</summary>
    private void AimAtNextDueTime(ScheduleFiring firing)
    {
        _dueTimer?.Dispose();
        _dueTimer = null;
        if (firing.Outcome == FiringOutcome.Busy || firing.NextDueAt is not { } next)
        {
            return;
        }

        var wait = next - firing.CheckedAt + TimerSlack;
        if (wait > TimeSpan.Zero && wait < _options.TickInterval)
        {
            _dueTimer = this.RegisterGrainTimer(
                CheckAsync, new GrainTimerCreationOptions { DueTime = wait, Period = Timeout.InfiniteTimeSpan });
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "schedule {ScheduleId}: started run {RunId} for due time {DueAt:o} ({PassedOver} earlier due times passed over)")]
    private static partial void LogStarted(ILogger logger, Guid scheduleId, Guid runId, DateTime? dueAt, int passedOver);

    [LoggerMessage(Level = LogLevel.Information, Message = "schedule {ScheduleId}: due time {DueAt:o} waits for run {ActiveRunId} to end")]
    private static partial void LogBusy(ILogger logger, Guid scheduleId, DateTime? dueAt, Guid activeRunId);

    [LoggerMessage(Level = LogLevel.Information, Message = "schedule {ScheduleId}: {Outcome}; reminder removed")]
    private static partial void LogDropped(ILogger logger, Guid scheduleId, FiringOutcome outcome);

    [LoggerMessage(Level = LogLevel.Error, Message = "schedule {ScheduleId}: cannot evaluate its cron expression here")]
    private static partial void LogInvalid(ILogger logger, Exception e, Guid scheduleId);
}
