using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scheduling;

/// <summary>
/// Starting scheduled runs against the real Postgres, with the clock passed in: one run per due time however many
/// callers race, catch-up of missed due times, no second run beside an active one, run-now, removal.
/// </summary>
public sealed class ScheduleStoreTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static DateTime Hour(DateTime t) => new(t.Year, t.Month, t.Day, t.Hour, 0, 0, DateTimeKind.Utc);

    [Fact]
    public async Task ADueTimeStartsExactlyOneRunHoweverManyAskAtOnce()
    {
        var schedule = await Schedules.AddAsync(database.DataSource, TestModels.Descriptor("store-race"), "race", "c", "p/", "0 * * * *");
        var store = new ScheduleStore(database.DataSource);
        var now = schedule.CreatedAt.AddDays(1);

        var firings = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => store.StartRunAsync(schedule.ScheduleId, nowUtc: now))));

        var started = Assert.Single(firings, f => f.Outcome == FiringOutcome.Started);
        Assert.All(firings.Where(f => f != started), f => Assert.Equal(FiringOutcome.NotDue, f.Outcome));
        Assert.Equal(Hour(now), started.DueAt);
        Assert.Equal(Hour(now).AddHours(1), started.NextDueAt);
        Assert.Equal(23, started.PassedOver); // a day of hourly due times, only the latest run
        var run = Assert.Single(await Schedules.RunsAsync(database.DataSource, schedule.ScheduleId));
        Assert.Equal((started.RunId!.Value, Hour(now), RunState.Pending), run);
        var stored = (await new RunStore(database.DataSource).GetRunAsync(run.RunId))!;
        Assert.True(stored.Incremental);
        Assert.Equal(schedule.ScheduleId, stored.ScheduleId);
        Assert.Equal(("c", "p/", "store-race", 5), (stored.InputContainer, stored.InputPrefix, stored.ModelId, stored.ShardSize));
        Assert.Equal(Hour(now), (await store.GetAsync(schedule.ScheduleId))!.LastDueAt);

        // Postgres itself refuses a second run for the same schedule and due time, whoever inserts it.
        var second = new NewRun(
            Guid.NewGuid(), "second", "c", "p/", "store-race", "/models/test.onnx", stored.PreprocessingProfile, Aggregation.Mean, 4, 8, 5, 3, 10,
            Incremental: true, ScheduleId: schedule.ScheduleId, ScheduledFor: Hour(now));
        var e = await Assert.ThrowsAsync<PostgresException>(() => new RunStore(database.DataSource).CreateRunAsync(second));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, e.SqlState);
    }

    [Fact]
    public async Task DueTimesPassingDuringARunWaitForItAndThenRunOnceForTheLatest()
    {
        var schedule = await Schedules.AddAsync(database.DataSource, TestModels.Descriptor("store-busy"), "busy", "c", "p/", "0 * * * *");
        var store = new ScheduleStore(database.DataSource);
        var first = await store.StartRunAsync(schedule.ScheduleId, nowUtc: Hour(schedule.CreatedAt).AddHours(1).AddMinutes(5));
        Assert.Equal(FiringOutcome.Started, first.Outcome);
        Assert.Equal(0, first.PassedOver);

        // The next due time passes while the first run is still going: no second run beside it.
        var busy = await store.StartRunAsync(schedule.ScheduleId, nowUtc: Hour(schedule.CreatedAt).AddHours(2).AddMinutes(1));
        Assert.Equal(FiringOutcome.Busy, busy.Outcome);
        Assert.Equal(first.RunId, busy.ActiveRunId);
        Assert.Single(await Schedules.RunsAsync(database.DataSource, schedule.ScheduleId));

        // The run ends; by then three more due times have passed: one run, for the latest of them.
        var runs = new RunStore(database.DataSource);
        await runs.SaveProgressAsync(new RunProgressUpdate(first.RunId!.Value, RunState.Completed, 0, 0, 0, 0, 0, 0, 0, 0, null, DateTime.UtcNow, DateTime.UtcNow));
        var later = Hour(schedule.CreatedAt).AddHours(4).AddMinutes(30);
        var caughtUp = await store.StartRunAsync(schedule.ScheduleId, nowUtc: later);
        Assert.Equal(FiringOutcome.Started, caughtUp.Outcome);
        Assert.Equal(Hour(later), caughtUp.DueAt);
        Assert.Equal(2, caughtUp.PassedOver);
        Assert.Equal(
            [Hour(schedule.CreatedAt).AddHours(1), Hour(later)],
            (await Schedules.RunsAsync(database.DataSource, schedule.ScheduleId)).Select(r => r.ScheduledFor));
        Assert.Equal(FiringOutcome.NotDue, (await store.StartRunAsync(schedule.ScheduleId, nowUtc: later.AddMinutes(10))).Outcome);
    }

    [Fact]
    public async Task RunNowStartsARunOutsideTheDueTimesButNeverBesideAnActiveOne()
    {
        var schedule = await Schedules.AddAsync(database.DataSource, TestModels.Descriptor("store-now"), "now", "c", "p/", "0 2 * * *", "Europe/Amsterdam");
        var store = new ScheduleStore(database.DataSource);

        var byHand = await store.StartRunAsync(schedule.ScheduleId, byHand: true);
        Assert.Equal(FiringOutcome.Started, byHand.Outcome);
        Assert.Null(byHand.DueAt);
        var run = (await new RunStore(database.DataSource).GetRunAsync(byHand.RunId!.Value))!;
        Assert.Equal((schedule.ScheduleId, (DateTime?)null, true), (run.ScheduleId, run.ScheduledFor, run.Incremental));
        Assert.StartsWith("now run-now ", run.Name, StringComparison.Ordinal);
        Assert.Null((await store.GetAsync(schedule.ScheduleId))!.LastDueAt);

        var again = await store.StartRunAsync(schedule.ScheduleId, byHand: true);
        Assert.Equal(FiringOutcome.Busy, again.Outcome);
        Assert.Equal(byHand.RunId, again.ActiveRunId);

        // The cron due times are untouched: once the run-now run has ended, the next night's 02:00 still runs.
        await new RunStore(database.DataSource).RequestCancelAsync(run.RunId);
        await new RunStore(database.DataSource).SaveProgressAsync(
            new RunProgressUpdate(run.RunId, RunState.Cancelled, 0, 0, 0, 0, 0, 0, 0, 0, "cancelled by request", DateTime.UtcNow, DateTime.UtcNow));
        var nightly = await store.StartRunAsync(schedule.ScheduleId, nowUtc: schedule.CreatedAt.AddDays(1));
        Assert.Equal(FiringOutcome.Started, nightly.Outcome);
        var due = schedule.Calendar().ToZone(nightly.DueAt!.Value);
        Assert.Equal((2, 0), (due.Hour, due.Minute));
        Assert.StartsWith($"now {due:yyyy-MM-dd} 02:00:00 +0", (await new RunStore(database.DataSource).GetRunAsync(nightly.RunId!.Value))!.Name, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DisabledAndRemovedSchedulesStartNothingAndRemovalKeepsTheRuns()
    {
        var schedule = await Schedules.AddAsync(database.DataSource, TestModels.Descriptor("store-off"), "off", "c", "p/", "*/5 * * * *", incremental: false);
        var store = new ScheduleStore(database.DataSource);
        var started = await store.StartRunAsync(schedule.ScheduleId, byHand: true);
        Assert.False((await new RunStore(database.DataSource).GetRunAsync(started.RunId!.Value))!.Incremental);

        await using (var disable = database.DataSource.CreateCommand("update schedules set enabled = false where schedule_id = @id"))
        {
            disable.Parameters.AddWithValue("id", schedule.ScheduleId);
            await disable.ExecuteNonQueryAsync();
        }

        Assert.Equal(FiringOutcome.Disabled, (await store.StartRunAsync(schedule.ScheduleId, nowUtc: schedule.CreatedAt.AddHours(1))).Outcome);
        Assert.DoesNotContain(schedule.ScheduleId, await store.ListEnabledIdsAsync());

        Assert.True(await store.RemoveAsync(schedule.ScheduleId));
        Assert.False(await store.RemoveAsync(schedule.ScheduleId));
        Assert.Equal(FiringOutcome.Missing, (await store.StartRunAsync(schedule.ScheduleId, nowUtc: schedule.CreatedAt.AddHours(2))).Outcome);
        var kept = (await new RunStore(database.DataSource).GetRunAsync(started.RunId!.Value))!;
        Assert.Null(kept.ScheduleId);
    }

    [Fact]
    public async Task NamesAreUniqueAndFoundByNameOrId()
    {
        var schedule = await Schedules.AddAsync(database.DataSource, TestModels.Descriptor("store-names"), "nightly 'cohort'; --", "c", "p/", "0 2 * * *");
        var e = await Assert.ThrowsAsync<ArgumentException>(
            () => Schedules.AddAsync(database.DataSource, TestModels.Descriptor("store-names"), "nightly 'cohort'; --", "c", "q/", "0 3 * * *"));
        Assert.Contains("a schedule named 'nightly 'cohort'; --' already exists", e.Message, StringComparison.Ordinal);

        var store = new ScheduleStore(database.DataSource);
        Assert.Equal(schedule.ScheduleId, (await store.FindAsync("nightly 'cohort'; --"))!.ScheduleId);
        Assert.Equal("nightly 'cohort'; --", (await store.FindAsync(schedule.ScheduleId.ToString()))!.Name);
        Assert.Null(await store.FindAsync("nightly"));
        Assert.Equal("p/", (await store.FindAsync(schedule.ScheduleId.ToString()))!.InputPrefix);
    }
}
