using HubertEcg.Storage;
using Npgsql;
using Xunit;

namespace HubertEcg.Testing;

/// <summary>A fresh database with the project's schema for one test class, dropped afterwards.</summary>
public sealed class PostgresDatabaseFixture : IAsyncLifetime
{
    public string DatabaseName { get; } = "test_" + Guid.NewGuid().ToString("N");

    public string ConnectionString { get; private set; } = "";

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await using (var admin = new NpgsqlConnection(LocalServices.PostgresAdmin))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"create database \"{DatabaseName}\"", admin);
            await create.ExecuteNonQueryAsync();
        }

        ConnectionString = LocalServices.ForDatabase(DatabaseName);
        DataSource = NpgsqlDataSource.Create(ConnectionString);
        await SchemaMigrator.ApplyAsync(DataSource);
    }

    public async Task DisposeAsync()
    {
        if (DataSource is not null)
        {
            await DataSource.DisposeAsync();
        }

        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(LocalServices.PostgresAdmin);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"drop database if exists \"{DatabaseName}\" with (force)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
