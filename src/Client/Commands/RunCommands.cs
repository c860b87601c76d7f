using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using HubertEcg.Client.Cluster;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Storage.Folders;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace HubertEcg.Client.Commands;

/// <summary>
/// <c>hubert-ecg run</c>: submit, inspect, watch, cancel and list distributed scoring runs.
/// Postgres is the durable record: a submitted run is a <c>runs</c> row, status and progress are the columns its
/// coordinator keeps up to date, and cancel sets <c>cancel_requested</c>, which the coordinator honours on its next
/// tick; the silos' run directory reads new rows every <c>Coordinator:DirectoryRefresh</c>. So the client works with
/// Postgres alone, and while silos restart. With silo gateways configured (<c>Cluster:Gateways</c>,
/// <see cref="ClusterClientOptions"/>) and answering, the commands also go through the cluster: submit announces the
/// run to the run directory, which wakes its coordinator at once; cancel cancels through the coordinator; watch and
/// status read the coordinator's live progress. Each says on standard error which answered (<c>via ...</c>).
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

    internal static NpgsqlDataSource OpenDatabase(ParseResult parseResult) => OpenDatabase(Cli.Configuration(parseResult));

    internal static NpgsqlDataSource OpenDatabase(IConfiguration configuration) =>
        configuration.PostgresConnections().CreateDataSource();

    /// <summary>Says on standard error what answers the command (standard output stays the command's result).</summary>
    /// <summary>
    /// Tells the cluster (when a gateway answers) about a run just stored in Postgres, so that its coordinator starts
    /// planning at once; says on standard error which answered. Without the cluster the run directory finds the run
    /// on its next refresh from Postgres.
    /// </summary>
    internal static async Task AnnounceAsync(ClusterClientOptions options, Guid runId, CancellationToken cancellationToken)
    {
        await using var cluster = await ClusterConnection.OpenAsync(options, cancellationToken);
        if (cluster.Directory is { } directory)
        {
            try
            {
                await directory.Announce(runId);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // The row is stored: the directory's next refresh from Postgres finds the run all the same.
                cluster.Lost(e);
            }
        }

        SaySource(cluster);
    }

    internal static void SaySource(ClusterConnection cluster) => Console.Error.WriteLine($"via {cluster.Source}");

    internal static Guid ParseRunId(string text) =>
        Guid.TryParse(text, out var id) ? id : throw new ArgumentException($"'{text}' is not a run id (a GUID as printed by `run submit`)");

    /// <summary>
    /// <paramref name="view"/> (a run's Postgres row) with the live state, counts, rate and ETA of its coordinator;
    /// the rest (name, input, times, error) stays the row's.
    /// </summary>
    public static RunView WithLiveProgress(RunView view, RunProgress live) => view with
    {
        State = live.State.ToText(),
        Shards = new ShardCounts(
            live.ShardsPlanned,
            Math.Max(0, live.ShardsPlanned - live.ShardsDone - live.ShardsFailed - live.ShardsLeased),
            live.ShardsLeased,
            live.ShardsDone,
            live.ShardsFailed,
            live.PlanningComplete),
        Records = view.Records with
        {
            Planned = live.RecordsPlanned,
            Done = live.RecordsDone,
            Quarantined = live.RecordsQuarantined,
            Failed = live.RecordsFailed,
            Skipped = live.RecordsSkipped,
        },
        RatePerSecond = Math.Round(live.RatePerSecond, 2),
        EtaSeconds = live.EtaSeconds is { } eta ? Math.Round(eta, 1) : null,
        WaitingFor = live.WaitingFor,
        WaitingSince = live.WaitingFor is null ? null : view.WaitingSince,
    };

    public static RunView View(RunRecord run, IReadOnlyDictionary<ShardState, int> shardStates) => new(
        run.RunId,
        run.Name,
        run.State.ToText(),
        run.CancelRequested,
        run.InputManifest is { } manifest ? $"manifest {FolderInput.Describe(run.InputContainer, manifest)}" : FolderInput.Describe(run.InputContainer, run.InputPrefix),
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
        run.ScheduledFor)
    {
        WaitingFor = run.WaitingFor,
        WaitingSince = run.WaitingFor is null ? null : run.WaitingSince,
        ModelPrecision = run.ModelPrecision,
    };

    /// <summary>How many failed shards <c>run status</c> lists (their count is always shown).</summary>
    internal const int FailedShardsListed = 20;

    internal static string Duration(double? seconds) =>
        seconds is not { } s || double.IsNaN(s) ? "-" : TimeSpan.FromSeconds(Math.Round(s)).ToString(s >= 86400 ? @"d\.hh\:mm\:ss" : @"hh\:mm\:ss", CultureInfo.InvariantCulture);
}

/// <summary>
/// The client's view of a run (text and JSON output). <see cref="Source"/> (<c>run status</c> only): <c>cluster</c>
/// when the counts are the coordinator's live ones, <c>postgres</c> when they are the stored row's; <see cref="Via"/>
/// says which gateway answered, or why Postgres did, as the command's <c>via ...</c> line.
/// </summary>
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
    DateTime? ScheduledFor,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Source = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Via = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? WaitingFor = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DateTime? WaitingSince = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<FailedShard>? FailedShards = null)
{
    /// <summary>The precision of the run's model (fp32 or fp16), as the run row recorded it.</summary>
    public string ModelPrecision { get; init; } = "fp32";
}

public sealed record ShardCounts(int Planned, int Pending, int Leased, int Done, int Failed, bool PlanningComplete);

/// <summary>
/// A run's record counts; <see cref="Skipped"/> are records an incremental run left out because their scores are
/// current, <see cref="ManifestDuplicates"/> manifest entries left out because they name a record already planned.
/// </summary>
public sealed record RecordCounts(long Planned, long Done, long Quarantined, long Failed, long Skipped, long ManifestDuplicates);
