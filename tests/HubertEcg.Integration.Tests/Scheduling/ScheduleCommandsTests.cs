using System.Text.Json;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scheduling;

/// <summary>The CLI's schedule commands and <c>run submit --incremental</c>, against the real Postgres.</summary>
[Collection(nameof(ConsoleBound))]
public sealed class ScheduleCommandsTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task AddListRunNowAndRemoveSchedules()
    {
        using var model = new TinyModel(seed: 24);
        var before = DateTime.UtcNow;
        var (code, output, error) = await CliAsync(
            "schedule", "add", "--name", "nightly amsterdam", "--input", $"{blobs.ContainerName}/cohort/", "--model", model.Path,
            "--cron", "0 2 * * *", "--time-zone", "Europe/Amsterdam", "--shard-size", "50", "--batch", "16");
        Assert.True(code == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var nightlyId = Guid.Parse(lines[0]);
        Assert.Matches(@"^next due \d{4}-\d\d-\d\d 02:00:00 \+0[12]:00 Europe/Amsterdam \(\d{4}-\d\d-\d\d 0[01]:00:00Z\)$", lines[1]);

        (code, output, error) = await CliAsync(
            "schedule", "add", "--name", "weekly full", "--manifest", $"{blobs.ContainerName}/lists/cohort.txt", "--model", model.Path,
            "--cron", "30 6 * * 1", "--full");
        Assert.True(code == 0, error);

        (code, output, _) = await CliAsync("schedule", "list", "--json");
        Assert.Equal(0, code);
        using (var list = JsonDocument.Parse(output))
        {
            // By name; other tests of the class add schedules to the same database.
            var schedules = list.RootElement.EnumerateArray().Where(s => s.GetProperty("name").GetString() is "nightly amsterdam" or "weekly full").ToList();
            Assert.Equal(["nightly amsterdam", "weekly full"], schedules.Select(s => s.GetProperty("name").GetString()));

            var nightly = schedules[0];
            Assert.Equal(nightlyId, nightly.GetProperty("scheduleId").GetGuid());
            Assert.Equal(("0 2 * * *", "Europe/Amsterdam", $"{blobs.ContainerName}/cohort/"), (nightly.GetProperty("cron").GetString(), nightly.GetProperty("timeZone").GetString(), nightly.GetProperty("input").GetString()));
            Assert.True(nightly.GetProperty("incremental").GetBoolean());
            Assert.True(nightly.GetProperty("enabled").GetBoolean());
            Assert.False(nightly.GetProperty("overdue").GetBoolean());
            Assert.Equal((50, 16), (nightly.GetProperty("options").GetProperty("shardSize").GetInt32(), nightly.GetProperty("options").GetProperty("batchSize").GetInt32()));
            var nextLocal = nightly.GetProperty("nextDue").GetDateTimeOffset();
            var nextUtc = nightly.GetProperty("nextDueUtc").GetDateTime();
            Assert.Equal((2, 0, 0), (nextLocal.Hour, nextLocal.Minute, nextLocal.Second));
            Assert.Contains(nextLocal.Offset, new[] { TimeSpan.FromHours(1), TimeSpan.FromHours(2) });
            Assert.Equal(nextLocal.UtcDateTime, nextUtc.ToUniversalTime());
            Assert.InRange(nextUtc.ToUniversalTime(), before, before.AddHours(25));

            var weekly = schedules[1];
            Assert.False(weekly.GetProperty("incremental").GetBoolean());
            Assert.Equal("UTC", weekly.GetProperty("timeZone").GetString());
            Assert.Equal($"manifest {blobs.ContainerName}/lists/cohort.txt", weekly.GetProperty("input").GetString());
            var weeklyNext = weekly.GetProperty("nextDue").GetDateTimeOffset();
            Assert.Equal((DayOfWeek.Monday, 6, 30, TimeSpan.Zero), (weeklyNext.DayOfWeek, weeklyNext.Hour, weeklyNext.Minute, weeklyNext.Offset));
        }

        (code, output, _) = await CliAsync("schedule", "list");
        Assert.Equal(0, code);
        Assert.Contains("nightly amsterdam", output, StringComparison.Ordinal);
        Assert.Contains("Europe/Amsterdam", output, StringComparison.Ordinal);

        // run-now starts one run with the schedule's options, through the same transaction as the scheduled ones.
        (code, output, error) = await CliAsync("schedule", "run-now", "nightly amsterdam");
        Assert.True(code == 0, error);
        var runId = Guid.Parse(output.Trim());
        var run = (await new RunStore(database.DataSource).GetRunAsync(runId))!;
        Assert.Equal((nightlyId, (DateTime?)null, true), (run.ScheduleId, run.ScheduledFor, run.Incremental));
        Assert.Equal((blobs.ContainerName, "cohort/", 50, 16), (run.InputContainer, run.InputPrefix, run.ShardSize, run.BatchSize));

        // The model file was registered in blob storage: the run names it by its content address, not the file's path.
        Assert.StartsWith($"blob:models/{model.Descriptor.ModelId}/", run.ModelPath, StringComparison.Ordinal);

        (code, _, error) = await CliAsync("schedule", "run-now", nightlyId.ToString());
        Assert.Equal(1, code);
        Assert.Contains($"has an active run {runId}", error, StringComparison.Ordinal);

        (code, output, _) = await CliAsync("run", "status", runId.ToString());
        Assert.Equal(0, code);
        Assert.Contains($"schedule: {nightlyId}   due: - (run-now)", output, StringComparison.Ordinal);
        Assert.Contains("0 skipped (scores current)", output, StringComparison.Ordinal);

        // Removing keeps the run; the schedule is gone from the list.
        (code, output, _) = await CliAsync("schedule", "remove", nightlyId.ToString());
        Assert.Equal(0, code);
        Assert.Contains("removed schedule nightly amsterdam", output, StringComparison.Ordinal);
        (code, _, error) = await CliAsync("schedule", "remove", "nightly amsterdam");
        Assert.Equal(1, code);
        Assert.Contains("no schedule is named 'nightly amsterdam'", error, StringComparison.Ordinal);
        Assert.Null((await new RunStore(database.DataSource).GetRunAsync(runId))!.ScheduleId);
        (code, output, _) = await CliAsync("schedule", "list", "--json");
        using (var list = JsonDocument.Parse(output))
        {
            var names = list.RootElement.EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList();
            Assert.Contains("weekly full", names);
            Assert.DoesNotContain("nightly amsterdam", names);
        }

        await new RunStore(database.DataSource).RequestCancelAsync(runId);
    }

    [Fact]
    public async Task BadSchedulesAreRefusedWithTheReasonAndNothingIsStored()
    {
        using var model = new TinyModel(seed: 25);
        string[] Add(string name, string cron, string zone) =>
            ["schedule", "add", "--name", name, "--input", $"{blobs.ContainerName}/bad/", "--model", model.Path, "--cron", cron, "--time-zone", zone];

        var (code, _, error) = await CliAsync(Add("bad cron", "0 2 * *", "UTC"));
        Assert.NotEqual(0, code);
        Assert.Contains("cron expression \"0 2 * *\" has 4 fields", error, StringComparison.Ordinal);

        (code, _, error) = await CliAsync(Add("bad minute", "61 2 * * *", "UTC"));
        Assert.NotEqual(0, code);
        Assert.Contains("cron expression \"61 2 * * *\" is not valid", error, StringComparison.Ordinal);

        (code, _, error) = await CliAsync(Add("bad zone", "0 2 * * *", "Europe/Atlantis"));
        Assert.NotEqual(0, code);
        Assert.Contains("time zone \"Europe/Atlantis\" is not an IANA time zone id", error, StringComparison.Ordinal);

        (code, _, error) = await CliAsync(Add("twice", "0 2 * * *", "UTC"));
        Assert.True(code == 0, error);
        (code, _, error) = await CliAsync(Add("twice", "0 3 * * *", "UTC"));
        Assert.NotEqual(0, code);
        Assert.Contains("a schedule named 'twice' already exists", error, StringComparison.Ordinal);

        (code, _, _) = await CliAsync("schedule", "add", "--name", "no cron", "--input", $"{blobs.ContainerName}/bad/", "--model", model.Path);
        Assert.NotEqual(0, code);
        (code, _, error) = await CliAsync(
            "schedule", "add", "--name", "two inputs", "--input", $"{blobs.ContainerName}/bad/", "--manifest", $"{blobs.ContainerName}/m.txt",
            "--model", model.Path, "--cron", "0 2 * * *");
        Assert.NotEqual(0, code);
        Assert.Contains("give exactly one of --input", error, StringComparison.Ordinal);

        (code, _, error) = await CliAsync("schedule", "run-now", "nope");
        Assert.Equal(1, code);
        Assert.Contains("no schedule is named 'nope'", error, StringComparison.Ordinal);

        var (listCode, output, _) = await CliAsync("schedule", "list", "--json");
        Assert.Equal(0, listCode);
        using var list = JsonDocument.Parse(output);
        var stored = list.RootElement.EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList();
        Assert.Contains("twice", stored);
        Assert.Empty(stored.Intersect(["bad cron", "bad minute", "bad zone", "no cron", "two inputs"]));
    }

    [Fact]
    public async Task RunSubmitIncrementalMarksTheRun()
    {
        using var model = new TinyModel(seed: 26);
        var (code, output, error) = await CliAsync("run", "submit", "--input", $"{blobs.ContainerName}/inc/", "--model", model.Path, "--incremental");
        Assert.True(code == 0, error);
        var runId = Guid.Parse(output.Trim());
        Assert.True((await new RunStore(database.DataSource).GetRunAsync(runId))!.Incremental);

        (code, output, _) = await CliAsync("run", "status", runId.ToString(), "--json");
        Assert.Equal(0, code);
        using (var status = JsonDocument.Parse(output))
        {
            Assert.True(status.RootElement.GetProperty("incremental").GetBoolean());
            Assert.Equal(0, status.RootElement.GetProperty("records").GetProperty("skipped").GetInt64());
        }

        await new RunStore(database.DataSource).RequestCancelAsync(runId);
    }

    private Task<(int Code, string Output, string Error)> CliAsync(params string[] args) =>
        CliHarness.RunAsync(database.ConnectionString, blobs.ConnectionString, args);
}
