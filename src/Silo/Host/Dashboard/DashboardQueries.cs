using HubertEcg.Storage.Access;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// The dashboard's reads: each a parameterised select from one of the views of <c>infra/sql/0010_dashboard.sql</c>
/// (documented in <c>docs/queries.md</c>), returned as rows of column name to value for the JSON API. Owns its data
/// source.
/// </summary>
public sealed partial class DashboardQueries(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    private const string ProgressColumns =
        "run_id, name, state, model_id, cancel_requested, planning_complete, created_at, started_at, finished_at, updated_at, " +
        "shards_planned, shards_done, shards_failed, records_planned, records_done, records_quarantined, records_failed, " +
        "records_remaining, percent_done, rate_last_minute, rate_last_hour, eta_seconds, eta_at, last_written_minute, records_skipped";

    /// <summary>
    /// A data source whose sessions cannot write (<c>default_transaction_read_only</c>) and give up on a query after
    /// 10 s, named <c>hubert-ecg-dashboard</c> in <c>pg_stat_activity</c>, on <paramref name="connectionString"/> (default
    /// <c>Postgres:ConnectionString</c>) with the TLS settings and credential of <paramref name="connections"/>.
    /// </summary>
    public static NpgsqlDataSource CreateDataSource(PostgresConnections connections, string? connectionString = null)
    {
        ArgumentNullException.ThrowIfNull(connections);
        return connections.CreateDataSource(
            builder =>
            {
                builder.ApplicationName = "hubert-ecg-dashboard";
                builder.Options = $"{builder.Options} -c default_transaction_read_only=on -c statement_timeout=10000 -c jit=off".Trim();
            },
            connectionString);
    }

    public Task<IReadOnlyList<Row>> RunsAsync(int limit, CancellationToken cancellationToken) =>
        RowsAsync(
            $"select {ProgressColumns} from dashboard_run_progress order by created_at desc, run_id limit @limit",
            cancellationToken,
            new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = limit });

    public async Task<Row?> RunAsync(Guid runId, CancellationToken cancellationToken) =>
        (await RowsAsync($"select {ProgressColumns} from dashboard_run_progress where run_id = @run", cancellationToken, Run(runId)))
        .SingleOrDefault();

    /// <summary>Records per minute and worker over the <paramref name="minutes"/> minutes up to the run's last written minute.</summary>
    public Task<IReadOnlyList<Row>> ThroughputAsync(Guid runId, int minutes, CancellationToken cancellationToken) =>
        RowsAsync(
            "select minute, worker, records_scored, records_quarantined, records, records_per_second from dashboard_worker_throughput " +
            "where run_id = @run " +
            "and minute > (select max(minute) from dashboard_worker_throughput where run_id = @run) - make_interval(mins => @minutes) " +
            "order by minute, worker",
            cancellationToken,
            Run(runId),
            new NpgsqlParameter("minutes", NpgsqlDbType.Integer) { Value = minutes });

    public Task<IReadOnlyList<Row>> WorkersAsync(Guid runId, CancellationToken cancellationToken) =>
        RowsAsync(
            "select worker, shards_leased, shards_done, records_done, records_quarantined, next_lease_deadline, last_update, " +
            "next_lease_deadline < now() as lease_expired " +
            "from dashboard_worker_shards where run_id = @run order by worker",
            cancellationToken,
            Run(runId));

    public async Task<Row?> ShardsAsync(Guid runId, CancellationToken cancellationToken) =>
        (await RowsAsync(
            "select pending, leased, done, failed, total, expired_leases from dashboard_shard_states where run_id = @run",
            cancellationToken,
            Run(runId)))
        .SingleOrDefault();

    public Task<IReadOnlyList<Row>> QuarantineAsync(Guid runId, CancellationToken cancellationToken) =>
        RowsAsync(
            "select reason, records, first_at, last_at, example_record_id from dashboard_quarantine_reasons " +
            "where run_id = @run order by records desc, reason",
            cancellationToken,
            Run(runId));

    public Task<IReadOnlyList<Row>> PrevalenceAsync(Guid runId, CancellationToken cancellationToken) =>
        RowsAsync(
            "select position, code, name, label_group, threshold, threshold_is_default, records_scored, records_positive, prevalence " +
            "from dashboard_label_prevalence where run_id = @run order by prevalence desc nulls last, position",
            cancellationToken,
            Run(runId));

    public async Task<bool> RunExistsAsync(Guid runId, CancellationToken cancellationToken) =>
        (await RowsAsync("select 1 as found from runs where run_id = @run", cancellationToken, Run(runId))).Count > 0;

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();

    private static NpgsqlParameter Run(Guid runId) => new("run", NpgsqlDbType.Uuid) { Value = runId };

    private async Task<IReadOnlyList<Row>> RowsAsync(string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        cmd.Parameters.AddRange(parameters);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var rows = new List<Row>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var row = new Row(reader.FieldCount);
            for (var i = 0; i < reader.FieldCount; i++)
            {
                row[reader.GetName(i)] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }
}

/// <summary>One row of a dashboard view: column name to value, serialised as one JSON object.</summary>
public sealed class Row(int capacity) : Dictionary<string, object?>(capacity, StringComparer.Ordinal);
