using System.CommandLine;
using System.Text.Json;
using HubertEcg.Client.Cluster;
using HubertEcg.Grains;
using HubertEcg.Storage;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg run status ID [--json]</c>: one run's row from Postgres, with its coordinator's live state, counts,
/// rate and ETA when a configured gateway answers. Standard error says which answered; the JSON's <c>source</c> is
/// <c>cluster</c> or <c>postgres</c> and its <c>via</c> the same line.
/// </summary>
public static class RunStatusCommand
{
    public static Command Build()
    {
        var id = new Argument<string>("id") { Description = "Run id" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var command = new Command("status", "Show a run's state and progress");
        command.Arguments.Add(id);
        command.Options.Add(json);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var runId = RunCommands.ParseRunId(parseResult.GetValue(id)!);
            var configuration = Cli.Configuration(parseResult);
            var clusterOptions = ClusterClientOptions.Load(configuration);
            await using var db = RunCommands.OpenDatabase(configuration);
            var store = new RunStore(db);
            var run = await store.GetRunAsync(runId, cancellationToken);
            if (run is null)
            {
                Console.Error.WriteLine($"run {runId} does not exist");
                return 1;
            }

            var view = RunCommands.View(run, await store.Shards.StateCountsAsync(runId, cancellationToken));
            if (view.Shards.Failed > 0)
            {
                view = view with { FailedShards = await store.Shards.FailedAsync(runId, RunCommands.FailedShardsListed, cancellationToken) };
            }

            await using (var cluster = await ClusterConnection.OpenAsync(clusterOptions, cancellationToken))
            {
                if (cluster.Coordinator(runId) is { } coordinator)
                {
                    try
                    {
                        view = RunCommands.WithLiveProgress(view, await coordinator.GetProgress());
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                    {
                        cluster.Lost(e);
                    }
                }

                RunCommands.SaySource(cluster);
                view = view with { Source = cluster.SourceKind, Via = cluster.Source };
            }

            Console.WriteLine(parseResult.GetValue(json) ? JsonSerializer.Serialize(view, RunCommands.Json) : Describe(view));
            return 0;
        });
        return command;
    }

    public static string Describe(RunView v)
    {
        var lines = new List<string>
        {
            $"run {v.RunId}  {v.Name}",
            $"state: {v.State}{(v.CancelRequested && v.State != RunState.Cancelled.ToText() ? " (cancel requested)" : "")}",
            $"input: {v.Input}   model: {v.ModelId} ({v.ModelPrecision})   profile: {v.PreprocessingProfile}",
            $"shards: {v.Shards.Done} done, {v.Shards.Failed} failed, {v.Shards.Leased} leased, {v.Shards.Pending} pending of {v.Shards.Planned}{(v.Shards.PlanningComplete ? "" : " (still listing)")}",
            $"records: {v.Records.Done} scored, {v.Records.Quarantined} quarantined, {v.Records.Failed} failed of {v.Records.Planned} planned" +
                (v.Incremental ? $"; {v.Records.Skipped} skipped (scores current)" : "") +
                (v.Records.ManifestDuplicates > 0 ? $" ({v.Records.ManifestDuplicates} duplicate manifest entries left out)" : ""),
            $"rate: {v.RatePerSecond:0.##} records/s   eta: {RunCommands.Duration(v.EtaSeconds)}",
            $"created: {v.CreatedAt:u}   started: {v.StartedAt?.ToString("u") ?? "-"}   finished: {v.FinishedAt?.ToString("u") ?? "-"}",
        };
        if (v.ScheduleId is { } schedule)
        {
            lines.Add($"schedule: {schedule}   due: {v.ScheduledFor?.ToString("u") ?? "- (run-now)"}");
        }

        if (v.WaitingFor is { } waiting)
        {
            lines.Add($"waiting for {waiting} since {v.WaitingSince?.ToString("u") ?? "-"} (attempts are not spent meanwhile)");
        }

        if (!string.IsNullOrEmpty(v.Error))
        {
            lines.Add($"error: {v.Error}");
        }

        if (v.FailedShards is { Count: > 0 } failed)
        {
            lines.Add($"failed shards ({v.Shards.Failed}{(v.Shards.Failed > failed.Count ? $", the first {failed.Count}" : "")}):");
            foreach (var shard in failed)
            {
                var blobs = shard.BlobCount > 1 ? $"{shard.FirstBlob} and {shard.BlobCount - 1} more" : shard.FirstBlob;
                lines.Add($"  shard {shard.ShardNo} ({shard.RecordsPlanned} records, {blobs}), {shard.Attempts} attempts: {shard.Reason}");
            }
        }

        return string.Join(Environment.NewLine, lines.Select(TerminalText.Escape)); // names, inputs and reasons are stored text
    }
}
