using HubertEcg.Storage;
using HubertEcg.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace HubertEcg.Silo;

/// <summary>
/// Exports the silo's metrics (the <c>HubertEcg</c> meter and Orleans' own) and its logs over OTLP when configured.
/// </summary>
public static class HubertEcgTelemetry
{
    private const string MetricsExporter = "hubert-ecg-metrics";
    private const string LogsExporter = "hubert-ecg-logs";

    /// <summary>
    /// Binds <c>Telemetry</c> (<see cref="TelemetryOptions"/>) once, checked at start-up, and adds an OpenTelemetry
    /// meter provider, and unless <c>Telemetry:Logs</c> is false a logger provider, each with an OTLP exporter, when
    /// <c>Telemetry:OtlpEndpoint</c> is set; otherwise no provider. The exporters, their interval and the resource
    /// are configured from the bound options. Exported logs pass the same <c>Logging:LogLevel</c> filters as the
    /// console's and carry their scopes (run, shard and worker ids).
    /// </summary>
    public static IHostApplicationBuilder AddHubertEcgTelemetry(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddValidatedOptions<TelemetryOptions>(builder.Configuration, TelemetryOptions.SectionName, o => o.Problems());
        services.AddValidatedOptions<SiloOptions>(builder.Configuration, SiloOptions.SectionName, o => o.Problems());
        var (metrics, logs) = TelemetryOptions.ComposedExporters(builder.Configuration);
        if (!metrics)
        {
            return builder;
        }

        services.AddOptions<OtlpExporterOptions>(MetricsExporter)
            .Configure<IOptions<TelemetryOptions>>((exporter, telemetry) => Configure(exporter, telemetry.Value, telemetry.Value.MetricsEndpoint));
        services.AddOptions<MetricReaderOptions>(MetricsExporter)
            .Configure<IOptions<TelemetryOptions>>((reader, telemetry) =>
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)telemetry.Value.ExportInterval.TotalMilliseconds);
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddDetector(sp => new ServiceResource(
                sp.GetRequiredService<IOptions<TelemetryOptions>>().Value,
                sp.GetRequiredService<IOptions<SiloOptions>>().Value)))
            .WithMetrics(meters => meters
                .AddMeter(ScoringMetrics.MeterName, ScoringMetrics.OrleansMeterName)
                .AddOtlpExporter(MetricsExporter, configureExporterAndMetricReader: null));
        if (logs)
        {
            services.AddOptions<OtlpExporterOptions>(LogsExporter)
                .Configure<IOptions<TelemetryOptions>>((exporter, telemetry) => Configure(exporter, telemetry.Value, telemetry.Value.LogsEndpoint));
            telemetry.WithLogging(
                logging => logging.AddOtlpExporter(LogsExporter, configureExporter: null),
                logOptions =>
                {
                    logOptions.IncludeScopes = true;
                    logOptions.IncludeFormattedMessage = true;
                });
        }

        return builder;
    }

    private static void Configure(OtlpExporterOptions exporter, TelemetryOptions options, Uri endpoint)
    {
        exporter.Endpoint = endpoint;
        exporter.Protocol = options.ExportProtocol;
        if (!string.IsNullOrWhiteSpace(options.Headers))
        {
            exporter.Headers = options.Headers;
        }
    }

    /// <summary>The <c>service.*</c> resource attributes: the configured service name, the silo name as the instance id.</summary>
    private sealed class ServiceResource(TelemetryOptions telemetry, SiloOptions silo) : IResourceDetector
    {
        public Resource Detect() => ResourceBuilder.CreateEmpty()
            .AddService(
                telemetry.ServiceName,
                serviceInstanceId: string.IsNullOrEmpty(silo.Name) ? null : silo.Name,
                autoGenerateServiceInstanceId: string.IsNullOrEmpty(silo.Name))
            .Build();
    }
}
