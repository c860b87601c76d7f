using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using HubertEcg.Storage;

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

            // A few lines per schedule rather than a table: the due times are long and consoles narrow.
            foreach (var v in views)
            {
                var next = v.NextDue is { } due
                    ? $"{due.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture)} ({v.NextDueUtc?.ToString("u", CultureInfo.InvariantCulture)}){(v.Overdue ? " overdue" : "")}"
                    : v.Enabled ? "never" : "- (disabled)";
                // Names, cron expressions and inputs are stored text: escaped for the terminal.
                Console.WriteLine(TerminalText.Escape($"{v.Name}  {v.ScheduleId}  {(v.Incremental ? "incremental" : "full")}{(v.Enabled ? "" : ", disabled")}"));
                Console.WriteLine(TerminalText.Escape($"  cron \"{v.Cron}\" in {v.TimeZone}; next due {next}"));
                Console.WriteLine(TerminalText.Escape($"  input {v.Input}   model {v.ModelId}   last run {v.LastRunId?.ToString() ?? "-"}"));
            }

            if (views.Count == 0)
            {
                Console.WriteLine("no schedules (`schedule add` makes one)");
            }

            return 0;
        });
        return command;
    }
}
