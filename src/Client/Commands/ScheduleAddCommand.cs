using System.CommandLine;
using System.Globalization;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg schedule add</c>: finds the model (a file is registered in blob storage first) and stores a schedule;
/// prints its id, then its next due time. Incremental unless <c>--full</c>.
/// </summary>
public static class ScheduleAddCommand
{
    public static Command Build()
    {
        var definition = new RunDefinitionOptions();
        var name = new Option<string>("--name") { Description = "Schedule name (unique); its runs are named after it and their due time", Required = true };
        var cron = new Option<string>("--cron")
        {
            Description = "When to run: a cron expression, 5 fields (minute hour day-of-month month day-of-week, \"0 2 * * *\" = 02:00 daily) or 6 with seconds first",
            Required = true,
        };
        var timeZone = new Option<string>("--time-zone")
        {
            Description = "IANA time zone the cron expression is read in, daylight saving included (Europe/Amsterdam)",
            DefaultValueFactory = _ => "UTC",
        };
        var full = new Option<bool>("--full") { Description = "Score every record on each run, not only records without a current score (the default is incremental)" };
        var command = new Command("add", "Add a schedule that starts a run of an input and model at the times of a cron expression; prints its id");
        command.Options.Add(name);
        definition.AddTo(command);
        command.Options.Add(cron);
        command.Options.Add(timeZone);
        command.Options.Add(full);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var scheduleName = parseResult.GetValue(name)!;
            if (string.IsNullOrWhiteSpace(scheduleName))
            {
                throw new ArgumentException("--name must not be empty");
            }

            var calendar = CronSchedule.Parse(parseResult.GetValue(cron)!, parseResult.GetValue(timeZone)!);
            var configuration = Cli.Configuration(parseResult);
            await using var db = RunCommands.OpenDatabase(configuration);
            var run = await definition.ResolveAsync(parseResult, ModelCommands.OpenRegistry(configuration, db), cancellationToken);
            var store = new ScheduleStore(db);
            var schedule = await store.AddAsync(
                new ScheduleRecord(
                    Guid.NewGuid(),
                    scheduleName,
                    run.Container,
                    run.Prefix,
                    run.Manifest,
                    run.Model.ModelId,
                    run.ModelLocation,
                    run.Profile,
                    run.Aggregation,
                    run.MaxWindows,
                    run.BatchSize,
                    run.ShardSize,
                    run.MaxAttempts,
                    run.LeaseSeconds,
                    calendar.Expression,
                    calendar.Zone.Id,
                    !parseResult.GetValue(full)),
                cancellationToken);
            Console.WriteLine(schedule.ScheduleId);
            var view = ScheduleCommands.View(schedule, schedule.CreatedAt);
            Console.WriteLine(view.NextDue is { } next
                ? $"next due {next.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture)} {schedule.TimeZone} ({view.NextDueUtc:u})"
                : "the cron expression has no future occurrence");
            return 0;
        });
        return command;
    }
}
