using System.CommandLine;
using HubertEcg.Client.Cluster;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg run cancel ID</c>: cancels a run (its coordinator stops handing out shards; workers stop at their
/// next renewal). The request is stored in Postgres first (<c>cancel_requested</c>, which the coordinator honours on
/// its next tick and Postgres-only readers see); when a configured gateway answers, the coordinator is also told
/// directly and the run is cancelled when the command returns.
/// </summary>
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
            var configuration = Cli.Configuration(parseResult);
            var clusterOptions = ClusterClientOptions.Load(configuration);
            await using var db = RunCommands.OpenDatabase(configuration);
            var store = new RunStore(db);
            if (!await store.RequestCancelAsync(runId, cancellationToken))
            {
                var run = await store.GetRunAsync(runId, cancellationToken);
                Console.Error.WriteLine(run is null ? $"run {runId} does not exist" : $"run {runId} is already {run.State}");
                return 1;
            }

            await using var cluster = await ClusterConnection.OpenAsync(clusterOptions, cancellationToken);
            if (cluster.Coordinator(runId) is { } coordinator)
            {
                try
                {
                    await coordinator.Cancel();
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    // The request is stored: the coordinator's next tick cancels the run all the same.
                    cluster.Lost(e);
                }
            }

            RunCommands.SaySource(cluster);
            Console.WriteLine($"cancel requested for run {runId}");
            return 0;
        });
        return command;
    }
}
