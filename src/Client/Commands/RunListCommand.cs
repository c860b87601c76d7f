using System.CommandLine;
using System.Text.Json;
using HubertEcg.Storage;
using Spectre.Console;
using HubertEcg.Grains;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg run list [--json]</c>: the most recent runs, newest first.</summary>
public static class RunListCommand
{
    public static Command Build()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var limit = new Option<int>("--limit") { Description = "How many runs", DefaultValueFactory = _ => 50 };
        var command = new Command("list", "List runs, newest first");
        command.Options.Add(json);
        command.Options.Add(limit);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            await using var db = RunCommands.OpenDatabase(parseResult);
            var store = new RunStore(db);
            var runs = await store.ListRunsAsync(Math.Max(1, parseResult.GetValue(limit)), cancellationToken);
            if (parseResult.GetValue(json))
            {
                var views = new List<RunView>();
                foreach (var run in runs)
                {
                    views.Add(RunCommands.View(run, await store.Shards.StateCountsAsync(run.RunId, cancellationToken)));
                }

                Console.WriteLine(JsonSerializer.Serialize(views, RunCommands.Json));
                return 0;
            }

            var table = new Table().AddColumns("run", "name", "state", "scored", "quarantined", "failed", "skipped", "planned", "rate/s", "created");
            foreach (var run in runs)
            {
                table.AddRow(
                    run.RunId.ToString(),
                    Markup.Escape(TerminalText.Escape(run.Name)),
                    run.State.ToText(),
                    run.RecordsDone.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    run.RecordsQuarantined.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    run.RecordsFailed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    run.RecordsSkipped.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    run.RecordsPlanned.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    run.RatePerSecond.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture),
                    run.CreatedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture));
            }

            // A console on the current standard output (not Spectre's process-wide one, made once on whatever it was then).
            AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) }).Write(table);
            return 0;
        });
        return command;
    }
}
