using System.CommandLine;
using HubertEcg.Storage;
using Spectre.Console;
using HubertEcg.Grains;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg run watch ID</c>: a live progress bar (records finished of planned, rate, ETA) polled from Postgres
/// once a second; ends when the run ends, with <c>scored=&lt;n&gt; quarantined=&lt;q&gt; seconds=&lt;s&gt;</c>.
/// Exit code 0 for a completed run, 1 otherwise.
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
            await using var db = RunCommands.OpenDatabase(parseResult);
            var store = new RunStore(db);
            var run = await store.GetRunAsync(runId, cancellationToken);
            if (run is null)
            {
                Console.Error.WriteLine($"run {runId} does not exist");
                return 1;
            }

            await AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask(Describe(run), maxValue: Math.Max(1, run.RecordsPlanned));
                    while (true)
                    {
                        task.MaxValue = Math.Max(1, run.RecordsPlanned);
                        task.Value = Math.Min(task.MaxValue, run.RecordsDone + run.RecordsQuarantined + run.RecordsFailed);
                        task.Description = Describe(run);
                        if (run.State.IsFinal())
                        {
                            task.Value = task.MaxValue;
                            task.StopTask();
                            return;
                        }

                        await Task.Delay(period, cancellationToken);
                        run = await store.GetRunAsync(runId, cancellationToken) ?? throw new InvalidOperationException($"run {runId} vanished");
                    }
                });

            var seconds = run.StartedAt is { } s ? ((run.FinishedAt ?? DateTime.UtcNow) - s).TotalSeconds : 0;
            if (!string.IsNullOrEmpty(run.Error))
            {
                Console.WriteLine($"{run.State}: {run.Error}");
            }

            Console.WriteLine($"scored={run.RecordsDone} quarantined={run.RecordsQuarantined} seconds={seconds:0.0}");
            return run.State == RunState.Completed ? 0 : 1;
        });
        return command;
    }

    private static string Describe(RunRecord run) =>
        Markup.Escape($"{run.State} {run.RecordsDone + run.RecordsQuarantined}/{run.RecordsPlanned} " +
            $"({run.RatePerSecond:0.#}/s, eta {RunCommands.Duration(run.EtaSeconds)})");
}
