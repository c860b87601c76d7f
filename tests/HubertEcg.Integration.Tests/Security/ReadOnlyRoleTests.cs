using System.Diagnostics;
using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Silo.Dashboard;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Security;

/// <summary>
/// The read-only login of <c>infra/roles/dashboard-reader.sql</c> (issue 16, least permissions): created by the
/// script through psql as an operator would, it serves every dashboard query on a plain connection (no read-only
/// session option of the dashboard's own) and cannot insert, update, delete, create a table or recount labels.
/// </summary>
public sealed class ReadOnlyRoleTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task TheScriptsRoleServesTheDashboardQueriesAndCannotWrite()
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(new string('d', 64)), "c", "p/", shardSize: 4, name: "read-only role");
        var role = "reader_" + Guid.NewGuid().ToString("N")[..12];
        await PsqlAsync("-v", $"role={role}", "-v", "password=not-used-by-trust-auth", "-f", Path.Combine(RepoPaths.Root, "infra", "roles", "dashboard-reader.sql"));
        try
        {
            var connectionString = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Username = role, Pooling = false }.ConnectionString;
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            await using var queries = new DashboardQueries(dataSource);
            Assert.Contains(await queries.RunsAsync(10, CancellationToken.None), r => Equals(r["run_id"], runId));
            Assert.NotNull(await queries.RunAsync(runId, CancellationToken.None));
            await queries.ThroughputAsync(runId, 60, CancellationToken.None);
            await queries.WorkersAsync(runId, CancellationToken.None);
            await queries.ShardsAsync(runId, CancellationToken.None);
            await queries.QuarantineAsync(runId, CancellationToken.None);
            await queries.PrevalenceAsync(runId, CancellationToken.None);

            foreach (var write in new[]
                     {
                         $"update runs set name = 'changed' where run_id = '{runId}'",
                         $"delete from run_shards where run_id = '{runId}'",
                         "insert into labels(position, code, name, label_group) values (9999, 'X', 'x', 'g')",
                         "create table reader_was_here(id int)",
                     })
            {
                await using var command = dataSource.CreateCommand(write);
                var e = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
                Assert.Contains(e.SqlState, new[] { PostgresErrorCodes.ReadOnlySqlTransaction, PostgresErrorCodes.InsufficientPrivilege });
            }

            // Even outside the default read-only session, the role holds no write privilege.
            await using var connection = await dataSource.OpenConnectionAsync();
            await using (var writable = new NpgsqlCommand("set default_transaction_read_only = off", connection))
            {
                await writable.ExecuteNonQueryAsync();
            }

            await using var update = new NpgsqlCommand($"update runs set name = 'changed' where run_id = '{runId}'", connection);
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, (await Assert.ThrowsAsync<PostgresException>(() => update.ExecuteNonQueryAsync())).SqlState);
        }
        finally
        {
            await using var drop = database.DataSource.CreateCommand($"drop role if exists {role}");
            await drop.ExecuteNonQueryAsync();
        }
    }

    private async Task PsqlAsync(params string[] arguments)
    {
        var builder = new NpgsqlConnectionStringBuilder(database.ConnectionString);
        var start = new ProcessStartInfo("psql") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "-X", "-q", "-h", builder.Host!, "-p", builder.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", builder.Username!, "-d", builder.Database! }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }

        using var psql = Process.Start(start)!;
        var output = psql.StandardOutput.ReadToEndAsync();
        var error = psql.StandardError.ReadToEndAsync();
        await psql.WaitForExitAsync();
        Assert.True(psql.ExitCode == 0, $"psql failed ({psql.ExitCode}): {await error}{await output}");
    }
}
