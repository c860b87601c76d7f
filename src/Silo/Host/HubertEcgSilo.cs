using System.Net;
using HubertEcg.Grains;
using HubertEcg.Grains.Scheduling;
using HubertEcg.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Dashboard;

namespace HubertEcg.Silo;

/// <summary>Configures a scoring silo host from the HubertEcg configuration (see <see cref="SiloOptions"/>).</summary>
public static class HubertEcgSilo
{
    /// <summary>
    /// Adds Orleans with the configured clustering, reminders on Postgres (ADO.NET, the project's SQL in
    /// <c>infra/sql/0003_orleans.sql</c>) in both clustering modes, the scoring services and workers, scheduled runs, and the metrics exporter when
    /// configured.
    /// </summary>
    public static IHostApplicationBuilder AddHubertEcgSilo(this IHostApplicationBuilder builder)
    {
        var siloOptions = new SiloOptions();
        builder.Configuration.GetSection(SiloOptions.SectionName).Bind(siloOptions);
        var postgres = builder.Configuration.Postgres();
        var scheduling = new ScheduleOptions();
        builder.Configuration.GetSection(ScheduleOptions.SectionName).Bind(scheduling);
        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = siloOptions.ClusterId;
                o.ServiceId = siloOptions.ServiceId;
            });
            if (!string.IsNullOrEmpty(siloOptions.Name))
            {
                silo.Configure<Orleans.Configuration.SiloOptions>(o => o.SiloName = siloOptions.Name);
            }

            silo.Configure<ClusterMembershipOptions>(o =>
            {
                if (siloOptions.ProbeTimeout is { } probe)
                {
                    o.ProbeTimeout = probe;
                    o.IAmAliveTablePublishTimeout = probe * 2;
                    o.TableRefreshTimeout = probe * 2;
                }

                if (siloOptions.NumMissedProbesLimit is { } missed)
                {
                    o.NumMissedProbesLimit = missed;
                }

                if (siloOptions.NumVotesForDeathDeclaration is { } votes)
                {
                    o.NumVotesForDeathDeclaration = votes;
                }
            });
            if (siloOptions.ResponseTimeout is { } responseTimeout)
            {
                silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = responseTimeout);
            }

            switch (siloOptions.Clustering.ToLowerInvariant())
            {
                case "localhost":
                    silo.UseLocalhostClustering(siloOptions.SiloPort, siloOptions.GatewayPort, serviceId: siloOptions.ServiceId, clusterId: siloOptions.ClusterId);
                    break;
                case "adonet":
                    var address = string.IsNullOrEmpty(siloOptions.AdvertisedAddress) ? IPAddress.Loopback : IPAddress.Parse(siloOptions.AdvertisedAddress);
                    silo.ConfigureEndpoints(address, siloOptions.SiloPort, siloOptions.GatewayPort, listenOnAnyHostAddress: true);
                    silo.UseAdoNetClustering(o =>
                    {
                        o.Invariant = "Npgsql";
                        o.ConnectionString = postgres.ConnectionString;
                    });
                    break;
                default:
                    throw new InvalidOperationException($"Silo:Clustering must be 'localhost' or 'adonet', not '{siloOptions.Clustering}'");
            }

            // Every silo collects the Orleans Dashboard's statistics, so the dashboard of whichever silo serves it
            // (Dashboard:Enabled) shows the whole cluster. Its live log view stays off: logs are not for the browser.
            silo.AddDashboard(o => o.HideTrace = true);
            // Schedules fire from reminders, which must outlive silo restarts: they live in Postgres in both modes.
            silo.UseAdoNetReminderService(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = postgres.ConnectionString;
            });
            silo.Configure<ReminderOptions>(o =>
            {
                if (scheduling.TickInterval < o.MinimumReminderPeriod)
                {
                    o.MinimumReminderPeriod = scheduling.TickInterval;
                }
            });
        });

        // The workers follow the silo's lifecycle (see ScoringWorkerHost): they start when it is active and stop,
        // handing their leases back, before it leaves the cluster.
        builder.Services.AddHubertEcgScoring(builder.Configuration);
        builder.AddHubertEcgTelemetry();
        builder.Services.AddHubertEcgScheduling(builder.Configuration);
        return builder;
    }
}
