using HubertEcg.Grains.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace HubertEcg.Silo;

/// <summary>Exports the silo's metrics (the <c>HubertEcg</c> meter and Orleans' own) over OTLP when configured.</summary>
public static class HubertEcgTelemetry
{
    /// <summary>
    /// Adds an OpenTelemetry meter provider with an OTLP exporter when <c>Telemetry:OtlpEndpoint</c> is set (see
    /// <see cref="TelemetryOptions"/>); otherwise adds nothing. Throws naming the key when a setting is invalid.
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
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(
                options.ServiceName,
                serviceInstanceId: string.IsNullOrEmpty(siloName) ? null : siloName,
                autoGenerateServiceInstanceId: string.IsNullOrEmpty(siloName)))
            .WithMetrics(metrics => metrics
                .AddMeter(ScoringMetrics.MeterName, ScoringMetrics.OrleansMeterName)
                .AddOtlpExporter((exporter, reader) =>
                {
                    exporter.Endpoint = options.MetricsEndpoint;
                    exporter.Protocol = options.ExportProtocol;
                    if (!string.IsNullOrWhiteSpace(options.Headers))
                    {
                        exporter.Headers = options.Headers;
                    }

                    reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)options.ExportInterval.TotalMilliseconds;
                }));
        return builder;
    }
}
