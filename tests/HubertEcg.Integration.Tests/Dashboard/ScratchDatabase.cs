using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// A test class's own empty database on the test Postgres, dropped afterwards, for migration tests that build an older
/// schema (the migrations before one) and upgrade it.
/// </summary>
public abstract class ScratchDatabase : IAsyncLifetime
{
    private readonly string _databaseName = "test_" + Guid.NewGuid().ToString("N");

    protected NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await using var admin = new NpgsqlConnection(LocalServices.PostgresAdmin);
        await admin.OpenAsync();
        await using var create = new NpgsqlCommand($"create database \"{_databaseName}\"", admin);
        await create.ExecuteNonQueryAsync();
        DataSource = NpgsqlDataSource.Create(LocalServices.ForDatabase(_databaseName));
    }

    public async Task DisposeAsync()
    {
        await DataSource.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(LocalServices.PostgresAdmin);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"drop database if exists \"{_databaseName}\" with (force)", admin);
        await drop.ExecuteNonQueryAsync();
    }

    /// <summary>Applies every migration before <paramref name="name"/> (the schema as it was before it); returns that migration.</summary>
    protected async Task<Migration> ApplyMigrationsBeforeAsync(string name)
    {
        var target = SchemaMigrator.Migrations.Single(m => m.Name == name);
        foreach (var migration in SchemaMigrator.Migrations.Where(m => string.CompareOrdinal(m.Version, target.Version) < 0))
        {
            await ExecuteAsync(migration.Sql);
        }

        return target;
    }

    /// <summary>Runs <paramref name="sql"/> in one transaction.</summary>
    protected async Task ExecuteAsync(string sql)
    {
        await using var connection = await DataSource.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        await using (var cmd = new NpgsqlCommand(sql, connection, tx))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await tx.CommitAsync();
    }

    /// <summary>The rows of <paramref name="sql"/>, each as its values.</summary>
    protected async Task<List<object?[]>> RowsAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            reader.GetValues(row!);
            rows.Add(row);
        }

        return rows;
    }
}
