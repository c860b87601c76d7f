using System.CommandLine;
using HubertEcg.Client.Cluster;
using HubertEcg.Grains;
using HubertEcg.Storage;
using Spectre.Console;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg run watch ID</c>: a live progress bar (records finished of planned, rate, ETA) polled once a second
/// from the run's coordinator when a configured gateway answers, otherwise from Postgres; when the cluster stops
/// answering, the watch goes on from Postgres and says so on standard error. Ends when the run ends, with
/// <c>scored=&lt;n&gt; quarantined=&lt;q&gt; seconds=&lt;s&gt;</c> from the run's final row. Exit code 0 for a
/// completed run, 1 otherwise.
/// </summary>
public static class RunWatchCommand
{
    public static Command Build()
    {
        var id = new Argument<string>("id") { Description = "Run id" };
        var interval = new Option<double>("--interval") { Description = "Seconds between polls", DefaultValueFactory = _ => 1.0 };
        var command = new Command("watch", "Follow a run with a progress bar until it ends");
        command.Arguments.Add(id);
        command.Options.Add(interval);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var runId = RunCommands.ParseRunId(parseResult.GetValue(id)!);
            var period = TimeSpan.FromSeconds(Math.Max(0.1, parseResult.GetValue(interval)));
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

            await using var cluster = await ClusterConnection.OpenAsync(clusterOptions, cancellationToken);
            RunCommands.SaySource(cluster);

            // The coordinator's live progress while the cluster answers; the row once the run is over (its final
            // counts, times and error are stored before the coordinator reports the end) or the cluster is gone.
            async Task<Snapshot> NextAsync(RunRecord? fresh)
            {
                if (cluster.Coordinator(runId) is { } coordinator)
                {
                    try
                    {
                        var live = await coordinator.GetProgress();
                        if (!live.State.IsFinal())
                        {
                            return Snapshot.Of(live);
                        }
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                    {
                        cluster.Lost(e);
                        RunCommands.SaySource(cluster);
                    }
                }

                run = fresh ?? await store.GetRunAsync(runId, cancellationToken) ?? throw new InvalidOperationException($"run {runId} vanished");
                return Snapshot.Of(run);
            }

            var snapshot = await NextAsync(run);
            await AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask(snapshot.Describe(), maxValue: Math.Max(1, snapshot.Planned));
                    while (true)
                    {
                        task.MaxValue = Math.Max(1, snapshot.Planned);
                        task.Value = Math.Min(task.MaxValue, snapshot.Finished);
                        task.Description = snapshot.Describe();
                        if (snapshot.State.IsFinal())
                        {
                            task.Value = task.MaxValue;
                            task.StopTask();
                            return;
                        }

                        await Task.Delay(period, cancellationToken);
                        snapshot = await NextAsync(null);
                    }
                });

            // The loop ends on a final row from Postgres only.
            var seconds = run.StartedAt is { } s ? ((run.FinishedAt ?? DateTime.UtcNow) - s).TotalSeconds : 0;
            if (!string.IsNullOrEmpty(run.Error))
            {
                Console.WriteLine($"{run.State.ToText()}: {TerminalText.Escape(run.Error)}");
            }

            Console.WriteLine($"scored={run.RecordsDone} quarantined={run.RecordsQuarantined} seconds={seconds:0.0}{(run.RecordsFailed > 0 ? $" failed={run.RecordsFailed}" : "")}");

            // Only a run that scored or quarantined every planned record succeeds; the failed shards are in run status.
            if (run.State != RunState.Completed)
            {
                Console.Error.WriteLine($"run {run.RunId} ended {run.State.ToText()}; see: hubert-ecg run status {run.RunId}");
            }

            return run.State == RunState.Completed ? 0 : 1;
        });
        return command;
    }

    /// <summary>One poll's progress, from the coordinator or from the row.</summary>
    private sealed record Snapshot(RunState State, long Planned, long Done, long Quarantined, long Failed, double RatePerSecond, double? EtaSeconds)
    {
        public long Finished => Done + Quarantined + Failed;

        public static Snapshot Of(RunProgress p) =>
            new(p.State, p.RecordsPlanned, p.RecordsDone, p.RecordsQuarantined, p.RecordsFailed, p.RatePerSecond, p.EtaSeconds);

        public static Snapshot Of(RunRecord r) =>
            new(r.State, r.RecordsPlanned, r.RecordsDone, r.RecordsQuarantined, r.RecordsFailed, r.RatePerSecond, r.EtaSeconds);

        public string Describe() =>
            Markup.Escape($"{State.ToText()} {Done + Quarantined}/{Planned} ({RatePerSecond:0.#}/s, eta {RunCommands.Duration(EtaSeconds)})");
    }
}
