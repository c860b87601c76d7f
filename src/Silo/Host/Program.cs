using HubertEcg.Silo;
using HubertEcg.Silo.Dashboard;
using HubertEcg.Storage;
using Microsoft.AspNetCore.Builder;
using Orleans.Dashboard;

if (args is ["--version"])
{
    Console.WriteLine($"hubert-ecg-silo {HubertEcgSilo.Version}");
    return 0;
}

// One configuration and one web application, dashboard or not: Kestrel listens only when Dashboard:Enabled.
var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddHubertEcgSources(args);
builder.AddHubertEcgSilo(); // Orleans, scoring, schedules, telemetry; migrations applied before Orleans starts
builder.AddHubertEcgDashboard();

// Every section is checked before anything starts: a refused configuration is one line on stderr and exit code 2.
return await builder.RunAsync("hubert-ecg-silo", app => app.UseHubertEcgDashboard().MapOrleansDashboard(routePrefix: DashboardWeb.OrleansPath));
