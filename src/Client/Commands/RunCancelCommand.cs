using System.CommandLine;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary><c>hubert-ecg run cancel ID</c>: asks the run's coordinator to cancel it (it stops handing out shards; workers stop at their next renewal).</summary>
public static class RunCancelCommand
{
    public static Command Build()
    {
        var id = new Argument<string>("id") { Description = "Run id" };
        var command = new Command("cancel", "Cancel a run");
        command.Arguments.Add(id);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var runId = RunCommands.ParseRunId(parseResult.GetValue(id)!);
            await using var db = RunCommands.OpenDatabase(parseResult);
            var store = new RunStore(db);
            if (await store.RequestCancelAsync(runId, cancellationToken))
            {
                Console.WriteLine($"cancel requested for run {runId}");
                return 0;
            }

            var run = await store.GetRunAsync(runId, cancellationToken);
            Console.Error.WriteLine(run is null ? $"run {runId} does not exist" : $"run {runId} is already {run.State}");
            return 1;
        });
        return command;
    }
}
