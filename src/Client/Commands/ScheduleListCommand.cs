using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using HubertEcg.Storage;
using Spectre.Console;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg schedule list [--json]</c>: every schedule with its next due time in its zone and in UTC.</summary>
public static class ScheduleListCommand
{
    public static Command Build()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var command = new Command("list", "List schedules with their next due time (in the schedule's time zone and in UTC)");
        command.Options.Add(json);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            await using var db = RunCommands.OpenDatabase(parseResult);
            var now = DateTime.UtcNow;
            var views = (await new ScheduleStore(db).ListAsync(cancellationToken)).Select(s => ScheduleCommands.View(s, now)).ToList();
            if (parseResult.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(views, RunCommands.Json));
                return 0;
            }

            var table = new Table().AddColumns("schedule", "name", "cron", "time zone", "next due (zone)", "next due (UTC)", "mode", "input", "last run");
            foreach (var v in views)
            {
                var next = v.NextDue is { } due
                    ? due.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture) + (v.Overdue ? " (overdue)" : "")
                    : v.Enabled ? "never" : "disabled";
                table.AddRow(
                    v.ScheduleId.ToString(),
                    Markup.Escape(v.Name),
                    Markup.Escape(v.Cron),
                    v.TimeZone,
                    next,
                    v.NextDueUtc?.ToString("u", CultureInfo.InvariantCulture) ?? "-",
                    v.Incremental ? "incremental" : "full",
                    Markup.Escape(v.Input),
                    v.LastRunId?.ToString() ?? "-");
            }

            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }
}
