using HubertEcg.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
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
    /// <summary>
    /// Adds an OpenTelemetry meter provider, and unless <c>Telemetry:Logs</c> is false a logger provider, each with an
    /// OTLP exporter, when <c>Telemetry:OtlpEndpoint</c> is set (see <see cref="TelemetryOptions"/>); otherwise adds
    /// nothing. Exported logs pass the same <c>Logging:LogLevel</c> filters as the console's and carry their scopes
    /// (run, shard and worker ids). Throws naming the key when a setting is invalid.
    /// </summary>
    public static IHostApplicationBuilder AddHubertEcgTelemetry(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new TelemetryOptions();
        builder.Configuration.GetSection(TelemetryOptions.SectionName).Bind(options);
        if (!options.Validate().Enabled)
        {
            return builder;
        }

        var siloName = builder.Configuration[$"{SiloOptions.SectionName}:{nameof(SiloOptions.Name)}"];
        void Configure(OtlpExporterOptions exporter, Uri endpoint)
        {
            exporter.Endpoint = endpoint;
            exporter.Protocol = options.ExportProtocol;
            if (!string.IsNullOrWhiteSpace(options.Headers))
            {
                exporter.Headers = options.Headers;
            }
        }

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(
                options.ServiceName,
                serviceInstanceId: string.IsNullOrEmpty(siloName) ? null : siloName,
                autoGenerateServiceInstanceId: string.IsNullOrEmpty(siloName)))
            .WithMetrics(metrics => metrics
                .AddMeter(ScoringMetrics.MeterName, ScoringMetrics.OrleansMeterName)
                .AddOtlpExporter((exporter, reader) =>
                {
                    Configure(exporter, options.MetricsEndpoint);
                    reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)options.ExportInterval.TotalMilliseconds;
                }));
        if (options.Logs)
        {
            telemetry.WithLogging(
                logging => logging.AddOtlpExporter(exporter => Configure(exporter, options.LogsEndpoint)),
                logOptions =>
                {
                    logOptions.IncludeScopes = true;
                    logOptions.IncludeFormattedMessage = true;
                });
        }

        return builder;
    }
}
