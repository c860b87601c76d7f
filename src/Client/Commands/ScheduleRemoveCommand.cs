using System.CommandLine;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg schedule remove NAME|ID</c>: deletes a schedule; its runs stay.</summary>
public static class ScheduleRemoveCommand
{
    public static Command Build()
    {
        var schedule = new Argument<string>("schedule") { Description = "Schedule name or id" };
        var command = new Command("remove", "Remove a schedule (its runs, finished or active, are kept)");
        command.Arguments.Add(schedule);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            await using var db = RunCommands.OpenDatabase(parseResult);
            var store = new ScheduleStore(db);
            var found = await ScheduleCommands.FindAsync(store, parseResult.GetValue(schedule)!, cancellationToken);
            if (found is null || !await store.RemoveAsync(found.ScheduleId, cancellationToken))
            {
                return 1;
            }

            Console.WriteLine($"removed schedule {TerminalText.Escape(found.Name)} ({found.ScheduleId}); no run starts for it from now on, its runs are kept");
            return 0;
        });
        return command;
    }
}
