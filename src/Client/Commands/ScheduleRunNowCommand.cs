using System.CommandLine;
using HubertEcg.Client.Cluster;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg schedule run-now NAME|ID</c>: starts one run of the schedule now, through the same Postgres
/// transaction as its scheduled runs (so never while one of its runs is active); prints the run id. The cron due
/// times are untouched: the next one still gets its run.
/// </summary>
public static class ScheduleRunNowCommand
{
    public static Command Build()
    {
        var schedule = new Argument<string>("schedule") { Description = "Schedule name or id" };
        var command = new Command("run-now", "Start a run of a schedule now (not while one of its runs is active); prints the run id");
        command.Arguments.Add(schedule);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var configuration = Cli.Configuration(parseResult);
            var clusterOptions = ClusterClientOptions.Load(configuration);
            await using var db = RunCommands.OpenDatabase(configuration);
            var store = new ScheduleStore(db);
            var found = await ScheduleCommands.FindAsync(store, parseResult.GetValue(schedule)!, cancellationToken);
            if (found is null)
            {
                return 1;
            }

            var firing = await store.StartRunAsync(found.ScheduleId, byHand: true, cancellationToken: cancellationToken);
            switch (firing.Outcome)
            {
                case FiringOutcome.Started:
                    await RunCommands.AnnounceAsync(clusterOptions, firing.RunId!.Value, cancellationToken);
                    Console.WriteLine(firing.RunId);
                    return 0;
                case FiringOutcome.Busy:
                    await Console.Error.WriteLineAsync(
                        $"schedule {TerminalText.Escape(found.Name)} has an active run {firing.ActiveRunId}; not starting another (`run watch` it, or `run cancel` it first)");
                    return 1;
                default:
                    await Console.Error.WriteLineAsync($"schedule {TerminalText.Escape(found.Name)} was removed meanwhile");
                    return 1;
            }
        });
        return command;
    }
}
