using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace HubertEcg.Silo;

/// <summary>
/// Applies the pending schema migrations (<see cref="SchemaMigrator"/>) when <c>Postgres:ApplyMigrations</c> is true,
/// in the host's starting phase: before any hosted service starts, Orleans (whose ADO.NET clustering and reminder
/// tables the migrations create) included. A failed migration stops the start. With Entra ID tokens it also fetches
/// the first one before Orleans starts, whose ADO.NET clustering and reminders read it from the token file.
/// </summary>
public sealed partial class SchemaMigrationService(
    IOptions<PostgresOptions> postgres, PostgresConnections connections, NpgsqlDataSource dataSource, ILogger<SchemaMigrationService> logger) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        if (connections.UsesTokens)
        {
            await connections.FetchTokenAsync(cancellationToken);
        }

        if (!postgres.Value.ApplyMigrations)
        {
            return;
        }

        var applied = await SchemaMigrator.ApplyAsync(dataSource, cancellationToken);
        foreach (var migration in applied)
        {
            LogApplied(migration);
        }

        LogUpToDate(SchemaMigrator.Migrations.Count, applied.Count);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "schema migration applied: {Migration}")]
    private partial void LogApplied(string migration);

    [LoggerMessage(Level = LogLevel.Information, Message = "schema up to date: {Known} migrations, {Applied} applied now")]
    private partial void LogUpToDate(int known, int applied);
}
