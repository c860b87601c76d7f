using System.Globalization;
using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Microsoft.Extensions.Hosting;

namespace HubertEcg.Integration.Tests.Scheduling;

/// <summary>
/// Scheduled runs on real silo processes (the silo program, ADO.NET clustering and reminders on Postgres) with a
/// two-second reminder tick and one-shot schedules a few seconds ahead: the silos find a schedule added in Postgres,
/// its due time starts exactly one run on two silos, killing every silo and starting new ones starts no second run
/// for it, the next due time's incremental run scores only the records added or changed meanwhile, and a removed
/// schedule's reminder goes away. The new silos read the schedules only once, at start-up, so their run comes from
/// the reminder stored in Postgres.
/// </summary>
public sealed class ScheduledRunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private static readonly Dictionary<string, string> FastSchedules = new()
    {
        ["Scheduling:TickInterval"] = "00:00:02",
        ["Scheduling:SyncInterval"] = "00:00:01",
    };

    private static readonly Dictionary<string, string> RemindersOnly = new()
    {
        ["Scheduling:TickInterval"] = "00:00:02",
        ["Scheduling:SyncInterval"] = "01:00:00",
    };

    [Fact]
    public async Task ADueScheduleStartsOneRunAcrossSilosAndRestartsAndItsNextRunScoresOnlyNewRecords()
    {
        using var model = new TinyModel(seed: 71);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "nightly/a/", 12);
        var clusterId = "sched-" + Guid.NewGuid().ToString("N")[..8];
        var silos = new List<SiloProcess>();
        try
        {
            silos.AddRange(Enumerable.Range(0, 2).Select(i => SiloProcess.Start(clusterId, $"first{i}", database.ConnectionString, blobs.ConnectionString, FastSchedules)));
            var firstDue = WholeSecond(DateTime.UtcNow.AddSeconds(8));
            var schedule = await Schedules.AddAsync(
                database.DataSource, model.Descriptor, "nightly", blobs.ContainerName, "nightly/", OneShot(firstDue), modelPath: model.Path, shardSize: 4);

            // The silos read the schedule from Postgres and give its grain a reminder, stored in Postgres.
            await WaitUntilAsync(async () => await ReminderCountAsync(clusterId, schedule.ScheduleId) == 1, "the schedule's reminder", silos);

            var first = await WaitForRunsAsync(schedule.ScheduleId, 1, silos);
            Assert.Equal(firstDue, first.ScheduledFor);
            Assert.Equal((RunState.Completed, (long)cohort.GoodRecords.Count, (long)cohort.CorruptRecords.Count, 0L), (first.State, first.RecordsDone, first.RecordsQuarantined, first.RecordsSkipped));
            Assert.True(first.Incremental);

            // Every silo killed and new ones started: once a new silo has evaluated the schedule, there is still one run.
            silos.ForEach(s => s.Kill());
            var restartedAt = await DatabaseNowAsync();
            silos.AddRange(Enumerable.Range(0, 2).Select(i => SiloProcess.Start(clusterId, $"second{i}", database.ConnectionString, blobs.ConnectionString, RemindersOnly)));
            var store = new ScheduleStore(database.DataSource);
            await WaitUntilAsync(async () => (await store.GetAsync(schedule.ScheduleId))!.LastCheckedAt > restartedAt, "a check after the restart", silos);
            Assert.Equal([(first.RunId, (DateTime?)firstDue)], (await Schedules.RunsAsync(database.DataSource, schedule.ScheduleId)).Select(r => (r.RunId, r.ScheduledFor)));

            // Records added under the prefix and one rewritten with other content; then the next due time comes.
            var added = await SyntheticCohort.UploadAsync(blobs.Container, "nightly/b/", 5);
            var other = new float[12 * 5000];
            for (var i = 0; i < other.Length; i++)
            {
                other[i] = (float)Math.Sin(i / 23.0);
            }

            await blobs.Container.GetBlobClient("nightly/a/rec00002.npy").UploadAsync(new BinaryData(SyntheticCohort.NpyBytes(other, 12, 5000)), overwrite: true);
            var secondDue = WholeSecond(DateTime.UtcNow.AddSeconds(5));
            await using (var cmd = database.DataSource.CreateCommand("update schedules set cron = @cron where schedule_id = @id"))
            {
                cmd.Parameters.AddWithValue("cron", OneShot(secondDue));
                cmd.Parameters.AddWithValue("id", schedule.ScheduleId);
                await cmd.ExecuteNonQueryAsync();
            }

            var second = await WaitForRunsAsync(schedule.ScheduleId, 2, silos);
            Assert.Equal(secondDue, second.ScheduledFor);
            Assert.Equal(RunState.Completed, second.State);
            Assert.Equal(added.GoodRecords.Count + 1, second.RecordsDone);
            Assert.Equal(cohort.GoodRecords.Count - 1, second.RecordsSkipped);
            Assert.Equal(cohort.CorruptRecords.Count + added.CorruptRecords.Count, second.RecordsQuarantined);
            Assert.Equal(
                added.GoodRecords.Append("nightly/a/rec00002").Order(StringComparer.Ordinal),
                await Runs.StringsAsync(database.DataSource, Schedules.RecordsOfRun, second.RunId));
            Assert.Equal(
                cohort.GoodRecords.Count + added.GoodRecords.Count,
                await Runs.CountAsync(database.DataSource, "select count(*) from scores where model_id = (select model_id from runs where run_id = @run)", second.RunId));
            Assert.Equal([first.RunId, second.RunId], (await Schedules.RunsAsync(database.DataSource, schedule.ScheduleId)).Select(r => r.RunId));

            // Removed: its grain drops the reminder on its next tick.
            Assert.True(await store.RemoveAsync(schedule.ScheduleId));
            await WaitUntilAsync(async () => await ReminderCountAsync(clusterId, schedule.ScheduleId) == 0, "the reminder to go", silos);
        }
        finally
        {
            silos.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task LocalhostClusteringKeepsTheScheduleRemindersInPostgresToo()
    {
        using var model = new TinyModel(seed: 72);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "local/", 3);
        var serviceId = "local-" + Guid.NewGuid().ToString("N")[..8];
        using var host = await SiloHosts.StartAsync(
            database.ConnectionString,
            blobs.ConnectionString,
            "local",
            new Dictionary<string, string?>(FastSchedules.Select(p => KeyValuePair.Create(p.Key, (string?)p.Value)))
            {
                ["Silo:Clustering"] = "localhost",
                ["Silo:ClusterId"] = serviceId,
                ["Silo:ServiceId"] = serviceId,
            });
        try
        {
            var due = WholeSecond(DateTime.UtcNow.AddSeconds(4));
            var schedule = await Schedules.AddAsync(
                database.DataSource, model.Descriptor, "local", blobs.ContainerName, "local/", OneShot(due), modelPath: model.Path, incremental: false);
            await WaitUntilAsync(async () => await ReminderCountAsync(serviceId, schedule.ScheduleId) == 1, "the schedule's reminder", []);
            var run = await WaitForRunsAsync(schedule.ScheduleId, 1, []);
            Assert.Equal((due, RunState.Completed, (long)cohort.GoodRecords.Count, false), (run.ScheduledFor, run.State, run.RecordsDone, run.Incremental));
        }
        finally
        {
            await host.StopAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task ASiloRefusesToStartWithoutAPositiveScheduleTick()
    {
        var e = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => SiloHosts.StartAsync(
            database.ConnectionString,
            blobs.ConnectionString,
            "no-tick",
            new Dictionary<string, string?> { ["Silo:Clustering"] = "localhost", ["Scheduling:TickInterval"] = "00:00:00" }));
        Assert.Contains("Scheduling:TickInterval must be positive, not 00:00:00", e.Message, StringComparison.Ordinal);
    }

    private static DateTime WholeSecond(DateTime t) => new(t.Year, t.Month, t.Day, t.Hour, t.Minute, t.Second, DateTimeKind.Utc);

    /// <summary>A six-field cron expression (seconds first) whose only occurrence this year is <paramref name="t"/> (UTC).</summary>
    private static string OneShot(DateTime t) =>
        string.Create(CultureInfo.InvariantCulture, $"{t.Second} {t.Minute} {t.Hour} {t.Day} {t.Month} *");

    private async Task<RunRecord> WaitForRunsAsync(Guid scheduleId, int count, IReadOnlyList<SiloProcess> silos)
    {
        RunRecord? last = null;
        await WaitUntilAsync(
            async () =>
            {
                var runs = await Schedules.RunsAsync(database.DataSource, scheduleId);
                Assert.True(runs.Count <= count, $"{runs.Count} runs, expected {count}");
                if (runs.Count < count || !runs[^1].State.IsFinal())
                {
                    return false;
                }

                last = await new RunStore(database.DataSource).GetRunAsync(runs[^1].RunId);
                return true;
            },
            $"run {count} of the schedule to finish",
            silos);
        return last!;
    }

    private async Task<long> ReminderCountAsync(string serviceId, Guid scheduleId)
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select count(*) from orleansreminderstable where serviceid = @service and grainid like 'schedule/%' and (grainid like @n or grainid like @d)");
        cmd.Parameters.AddWithValue("service", serviceId);
        cmd.Parameters.AddWithValue("n", "%" + scheduleId.ToString("N") + "%");
        cmd.Parameters.AddWithValue("d", "%" + scheduleId.ToString("D") + "%");
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private async Task<DateTime> DatabaseNowAsync()
    {
        await using var cmd = database.DataSource.CreateCommand("select now()");
        return (DateTime)(await cmd.ExecuteScalarAsync())!;
    }


    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, IReadOnlyList<SiloProcess> silos)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline || (silos.Count > 0 && silos.All(s => s.HasExited)))
            {
                throw new TimeoutException($"waited in vain for {what}; silo logs:\n" + string.Join("\n---\n", silos.Select(s => s.Name + ":\n" + s.Log)));
            }

            await Task.Delay(200);
        }
    }
}
