using HubertEcg.Silo;
using HubertEcg.Silo.Dashboard;
using HubertEcg.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans.Dashboard;
using DashboardOptions = HubertEcg.Silo.Dashboard.DashboardOptions;

var configuration = HubertEcgConfiguration.Build(args);

// Checked before anything starts: a dashboard reachable from other machines without a token is refused here.
DashboardOptions dashboard;
PostgresOptions postgres;
try
{
    dashboard = DashboardOptions.Load(configuration);
    postgres = configuration.Postgres();
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"hubert-ecg-silo: configuration refused: {e.Message}");
    return 2;
}

if (postgres.ApplyMigrations)
{
    await using var dataSource = NpgsqlDataSource.Create(postgres.ConnectionString);
    await SchemaMigrator.ApplyAsync(dataSource);
}

IHost host;
if (dashboard.Enabled)
{
    // The silo and the web dashboard in one process and one service container, the dashboard on Kestrel.
    var builder = WebApplication.CreateBuilder(args);
    builder.Configuration.AddHubertEcgSources(args);
    builder.AddHubertEcgSilo();
    builder.AddHubertEcgDashboard(dashboard);
    var app = builder.Build();
    app.UseHubertEcgDashboard();
    app.MapOrleansDashboard(routePrefix: DashboardWeb.OrleansPath);
    host = app;
}
else
{
    var builder = Host.CreateApplicationBuilder(args);
    builder.Configuration.AddHubertEcgSources(args);
    builder.AddHubertEcgSilo();
    host = builder.Build();
}

using (host)
{
    await host.RunAsync();
}

return 0;
