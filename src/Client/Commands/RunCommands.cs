using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using HubertEcg.Storage;
using Npgsql;
using HubertEcg.Grains;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg run</c>: submit, inspect, watch, cancel and list distributed scoring runs.
/// The client talks to Postgres only, never to the Orleans cluster: a submitted run is a <c>runs</c> row that the
/// silos' workers discover (they wake the run's coordinator grain), status and progress are the columns the
/// coordinator keeps up to date, and cancel sets <c>cancel_requested</c>, which the coordinator honours on its
/// next tick. So the client needs no cluster address and works while silos restart.
/// </summary>
public static class RunCommands
{
    public static Command Build()
    {
        var command = new Command("run", "Distributed scoring runs");
        command.Subcommands.Add(RunSubmitCommand.Build());
        command.Subcommands.Add(RunStatusCommand.Build());
        command.Subcommands.Add(RunWatchCommand.Build());
        command.Subcommands.Add(RunCancelCommand.Build());
        command.Subcommands.Add(RunListCommand.Build());
        return command;
    }

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    internal static NpgsqlDataSource OpenDatabase(ParseResult parseResult) =>
        NpgsqlDataSource.Create(Cli.Configuration(parseResult).Postgres().ConnectionString);

    internal static Guid ParseRunId(string text) =>
        Guid.TryParse(text, out var id) ? id : throw new ArgumentException($"'{text}' is not a run id (a GUID as printed by `run submit`)");

    public static RunView View(RunRecord run, IReadOnlyDictionary<ShardState, int> shardStates) => new(
        run.RunId,
        run.Name,
        run.State.ToText(),
        run.CancelRequested,
        run.InputManifest is { } manifest ? $"manifest {run.InputContainer}/{manifest}" : $"{run.InputContainer}/{run.InputPrefix}",
        run.ModelId,
        run.PreprocessingProfile,
        new ShardCounts(
            run.ShardsPlanned,
            shardStates.GetValueOrDefault(ShardState.Pending),
            shardStates.GetValueOrDefault(ShardState.Leased),
            shardStates.GetValueOrDefault(ShardState.Done),
            shardStates.GetValueOrDefault(ShardState.Failed),
            run.PlanningComplete),
        new RecordCounts(run.RecordsPlanned, run.RecordsDone, run.RecordsQuarantined, run.RecordsFailed, run.RecordsSkipped, run.ManifestDuplicates),
        Math.Round(run.RatePerSecond, 2),
        run.EtaSeconds is { } eta ? Math.Round(eta, 1) : null,
        run.Error,
        run.CreatedAt,
        run.StartedAt,
        run.FinishedAt,
        run.Incremental,
        run.ScheduleId,
        run.ScheduledFor);

    internal static string Duration(double? seconds) =>
        seconds is not { } s || double.IsNaN(s) ? "-" : TimeSpan.FromSeconds(Math.Round(s)).ToString(s >= 86400 ? @"d\.hh\:mm\:ss" : @"hh\:mm\:ss", CultureInfo.InvariantCulture);
}

/// <summary>The client's view of a run (text and JSON output).</summary>
public sealed record RunView(
    Guid RunId,
    string Name,
    string State,
    bool CancelRequested,
    string Input,
    string ModelId,
    string PreprocessingProfile,
    ShardCounts Shards,
    RecordCounts Records,
    double RatePerSecond,
    double? EtaSeconds,
    string? Error,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    bool Incremental,
    Guid? ScheduleId,
    DateTime? ScheduledFor);

public sealed record ShardCounts(int Planned, int Pending, int Leased, int Done, int Failed, bool PlanningComplete);

/// <summary>
/// A run's record counts; <see cref="Skipped"/> are records an incremental run left out because their scores are
/// current, <see cref="ManifestDuplicates"/> manifest entries left out because they name a record already planned.
/// </summary>
public sealed record RecordCounts(long Planned, long Done, long Quarantined, long Failed, long Skipped, long ManifestDuplicates);
