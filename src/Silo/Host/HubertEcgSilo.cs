using System.Net;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Dashboard;

namespace HubertEcg.Silo;

/// <summary>Configures a scoring silo host from the HubertEcg configuration (see <see cref="SiloOptions"/>).</summary>
public static class HubertEcgSilo
{
    /// <summary>The silo's version as built (the informational version: version and source revision).</summary>
    public static string Version =>
        typeof(HubertEcgSilo).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>()
            .FirstOrDefault()?.InformationalVersion ?? "unknown";

    /// <summary>
    /// Adds Orleans with the configured clustering, reminders on Postgres (ADO.NET, the project's SQL in
    /// <c>infra/sql/0003_orleans.sql</c>) in both clustering modes, the scoring services and workers, scheduled runs,
    /// the metrics exporter when configured, and the schema migrations, applied before Orleans starts when
    /// <c>Postgres:ApplyMigrations</c>. Every section is bound once and checked when the host starts; Orleans' options
    /// are configured from the bound <see cref="SiloOptions"/> and <see cref="PostgresOptions"/>.
    /// </summary>
    public static IHostApplicationBuilder AddHubertEcgSilo(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddValidatedOptions<SiloOptions>(builder.Configuration, SiloOptions.SectionName, o => o.Problems());
        services.AddPostgresOptions(builder.Configuration);

        // Lifecycle services whose starting phase runs before any hosted service starts, Orleans' included: one silo per
        // database in localhost clustering (a second one is refused), then the migrations.
        services.AddHostedService<LocalhostClusteringLock>();
        services.AddHostedService<SchemaMigrationService>();
        builder.UseOrleans(silo =>
        {
            silo.Services.AddOptions<ClusterOptions>().Configure<IOptions<SiloOptions>>((o, s) =>
            {
                o.ClusterId = s.Value.ClusterId;
                o.ServiceId = s.Value.ServiceId;
            });
            silo.Services.AddOptions<Orleans.Configuration.SiloOptions>().Configure<IOptions<SiloOptions>>((o, s) =>
            {
                if (!string.IsNullOrEmpty(s.Value.Name))
                {
                    o.SiloName = s.Value.Name;
                }
            });
            silo.Services.AddOptions<ClusterMembershipOptions>().Configure<IOptions<SiloOptions>>((o, s) =>
            {
                if (s.Value.ProbeTimeout is { } probe)
                {
                    o.ProbeTimeout = probe;
                    o.IAmAliveTablePublishTimeout = probe * 2;
                    o.TableRefreshTimeout = probe * 2;
                }

                if (s.Value.NumMissedProbesLimit is { } missed)
                {
                    o.NumMissedProbesLimit = missed;
                }

                if (s.Value.NumVotesForDeathDeclaration is { } votes)
                {
                    o.NumVotesForDeathDeclaration = votes;
                }
            });
            silo.Services.AddOptions<SiloMessagingOptions>().Configure<IOptions<SiloOptions>>((o, s) =>
            {
                if (s.Value.ResponseTimeout is { } responseTimeout)
                {
                    o.ResponseTimeout = responseTimeout;
                }
            });

            var adoNet = SiloOptions.ComposesAdoNet(builder.Configuration);
            silo.Services.AddOptions<EndpointOptions>().Configure<IOptions<SiloOptions>>((o, s) =>
            {
                o.AdvertisedIPAddress = adoNet ? s.Value.AdvertisedIPAddress : IPAddress.Loopback;
                o.SiloPort = s.Value.SiloPort;
                o.GatewayPort = s.Value.GatewayPort;
                if (adoNet)
                {
                    // Listen on every interface; other silos connect to the advertised address.
                    o.SiloListeningEndpoint = new IPEndPoint(IPAddress.Any, s.Value.SiloPort);
                    o.GatewayListeningEndpoint = new IPEndPoint(IPAddress.Any, s.Value.GatewayPort);
                }
            });
            if (adoNet)
            {
                silo.UseAdoNetClustering(options => options.Configure<PostgresConnections>((o, postgres) =>
                {
                    o.Invariant = "Npgsql";
                    o.ConnectionString = postgres.ConnectionString();
                }));
            }
            else
            {
                // One machine: this silo is its own primary (what UseLocalhostClustering does, from the bound ports).
                silo.UseDevelopmentClustering(options => options.Configure<IOptions<SiloOptions>>((o, s) =>
                    o.PrimarySiloEndpoint = new IPEndPoint(IPAddress.Loopback, s.Value.SiloPort)));
            }

            // Every silo collects the Orleans Dashboard's statistics, so the dashboard of whichever silo serves it
            // (Dashboard:Enabled) shows the whole cluster. Its live log view stays off: logs are not for the browser.
            silo.AddDashboard(o => o.HideTrace = true);
            // Schedules fire from reminders, which must outlive silo restarts: they live in Postgres in both modes
            // (Orleans' minimum reminder period follows Scheduling:TickInterval, see AddHubertEcgScheduling).
            silo.UseAdoNetReminderService(options => options.Configure<PostgresConnections>((o, postgres) =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = postgres.ConnectionString();
            }));
        });

        // The workers follow the silo's lifecycle (see ScoringWorkerHost): they start when it is active and stop,
        // handing their leases back, before it leaves the cluster.
        services.AddHubertEcgScoring(builder.Configuration);
        builder.AddHubertEcgTelemetry();
        services.AddHubertEcgScheduling(builder.Configuration);
        return builder;
    }

    /// <summary>
    /// Builds and runs the silo program: every section's rules are checked before anything starts, then
    /// <paramref name="configure"/> sets up the app's request pipeline and the host runs until it is stopped. A
    /// refused configuration ends the program before it starts with one line on standard error,
    /// <c><paramref name="program"/>: configuration refused: REASONS</c>, and exit code 2; otherwise the exit code is 0.
    /// </summary>
    public static async Task<int> RunAsync(this WebApplicationBuilder builder, string program, Action<WebApplication> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        WebApplication? app = null;
        try
        {
            try
            {
                app = builder.Build();
                app.Services.GetService<IStartupValidator>()?.Validate();
                configure(app);
                await app.StartAsync();
            }
            catch (Exception e) when (ValidatedOptions.RefusalReasons(e) is { } reasons)
            {
                // Refused before or while starting (a listener the dashboard's rules forbid is closed again first).
                await Console.Error.WriteLineAsync($"{program}: configuration refused: {reasons}");
                return 2;
            }
            catch (SiloStartRefusedException e)
            {
                await Console.Error.WriteLineAsync($"{program}: refused to start: {e.Message}");
                return 3;
            }

            await app.WaitForShutdownAsync();
            return 0;
        }
        finally
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
        }
    }
}
