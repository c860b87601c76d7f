using HubertEcg.Silo;
using HubertEcg.Storage;
using Microsoft.Extensions.Hosting;
using Npgsql;

var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddHubertEcgSources(args);
var postgres = builder.Configuration.Postgres();
if (postgres.ApplyMigrations)
{
    await using var dataSource = NpgsqlDataSource.Create(postgres.ConnectionString);
    await SchemaMigrator.ApplyAsync(dataSource);
}

builder.AddHubertEcgSilo();
using var host = builder.Build();
await host.RunAsync();
