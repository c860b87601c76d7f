using HubertEcg.Silo.Dashboard;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The dashboard's web app (pages, login, JSON API and access check, as the silo composes them) on Kestrel at
/// 127.0.0.1 on a port the OS chooses, against a test database; no Orleans. <see cref="Client"/> follows no redirects
/// and keeps no cookies, so tests see each response as it is.
/// </summary>
public sealed class DashboardServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private DashboardServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
        Client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = address };
    }

    public Uri Address { get; }

    public HttpClient Client { get; }

    /// <summary>
    /// Starts the app; <paramref name="dashboardConnectionString"/> is <c>Dashboard:ConnectionString</c> (none: the Postgres
    /// one); <paramref name="configure"/> may add services (a clock) or logging providers before the dashboard's own.
    /// </summary>
    public static async Task<DashboardServer> StartAsync(
        string connectionString, string token, string dashboardConnectionString = "", Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Postgres:ConnectionString"] = connectionString,
            ["Dashboard:Enabled"] = "true",
            ["Dashboard:Urls"] = "http://127.0.0.1:0",
            ["Dashboard:Token"] = token,
            ["Dashboard:ConnectionString"] = dashboardConnectionString,
        });
        builder.Logging.ClearProviders();
        configure?.Invoke(builder);
        builder.AddHubertEcgDashboard();
        var app = builder.Build();
        app.UseHubertEcgDashboard();
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .First(a => a.StartsWith("http://127.0.0.1:", StringComparison.Ordinal)); // Dashboard:Urls' (a test may add others)
        return new DashboardServer(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
