using Microsoft.Extensions.Configuration;
using OpenTelemetry.Exporter;

namespace HubertEcg.Silo;

/// <summary>
/// Where the silo sends its metrics and logs: an OpenTelemetry collector reached over OTLP. Section <c>Telemetry</c>; off
/// while <see cref="OtlpEndpoint"/> is empty. Bound once and checked at start-up (<see cref="Problems"/>).
/// </summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Telemetry";

    public const string Grpc = "grpc";
    public const string HttpProtobuf = "http/protobuf";

    /// <summary>Default of <see cref="ServiceName"/>.</summary>
    public const string DefaultServiceName = "hubert-ecg-silo";

    /// <summary>Default of <see cref="ExportInterval"/>, in seconds.</summary>
    public const int DefaultExportIntervalSeconds = 15;

    /// <summary>Default of <see cref="Logs"/>.</summary>
    public const bool DefaultLogs = true;

    /// <summary>The shortest and longest <see cref="ExportInterval"/> allowed.</summary>
    public static readonly TimeSpan MinimumExportInterval = TimeSpan.FromMilliseconds(100);

    /// <inheritdoc cref="MinimumExportInterval"/>
    public static readonly TimeSpan MaximumExportInterval = TimeSpan.FromDays(1);

    /// <summary>
    /// The collector's address, e.g. <c>http://collector:4317</c> (gRPC) or <c>http://collector:4318</c>
    /// (HTTP; <c>/v1/metrics</c> is appended unless the address already ends with it). Empty: no export.
    /// </summary>
    public string OtlpEndpoint { get; set; } = "";

    /// <summary><c>grpc</c> or <c>http/protobuf</c>.</summary>
    public string Protocol { get; set; } = Grpc;

    /// <summary>How often the metrics are exported.</summary>
    public TimeSpan ExportInterval { get; set; } = TimeSpan.FromSeconds(DefaultExportIntervalSeconds);

    /// <summary>The <c>service.name</c> resource attribute; the silo name is the <c>service.instance.id</c> when set.</summary>
    public string ServiceName { get; set; } = DefaultServiceName;

    /// <summary>Extra OTLP request headers, <c>key=value</c> pairs separated by commas (a collector's API key: set it from the environment).</summary>
    public string Headers { get; set; } = "";

    public bool Enabled => !string.IsNullOrWhiteSpace(OtlpEndpoint);

    /// <summary>The exporter's protocol; throws naming the key when <see cref="Protocol"/> is neither value.</summary>
    public OtlpExportProtocol ExportProtocol => Protocol.Trim().ToLowerInvariant() switch
    {
        Grpc => OtlpExportProtocol.Grpc,
        HttpProtobuf => OtlpExportProtocol.HttpProtobuf,
        _ => throw new InvalidOperationException($"Telemetry:Protocol must be '{Grpc}' or '{HttpProtobuf}', not '{Protocol}'"),
    };

    /// <summary>Whether the silo's logs are exported too (with their scopes: run, shard and worker ids).</summary>
    public bool Logs { get; set; } = DefaultLogs;

    /// <summary>The address metrics are posted to: <see cref="OtlpEndpoint"/>, with <c>/v1/metrics</c> for HTTP.</summary>
    public Uri MetricsEndpoint => SignalEndpoint("metrics");

    /// <summary>The address logs are posted to: <see cref="OtlpEndpoint"/>, with <c>/v1/logs</c> for HTTP.</summary>
    public Uri LogsEndpoint => SignalEndpoint("logs");

    /// <summary>
    /// The collector's address for one signal. Over HTTP each signal has its own path, <c>/v1/metrics</c> or
    /// <c>/v1/logs</c>, appended to the configured address (after removing either, when it was given with one).
    /// </summary>
    private Uri SignalEndpoint(string signal)
    {
        if (!Uri.TryCreate(OtlpEndpoint.Trim(), UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException($"Telemetry:OtlpEndpoint '{OtlpEndpoint}' is not an absolute http:// or https:// address");
        }

        if (ExportProtocol != OtlpExportProtocol.HttpProtobuf)
        {
            return endpoint;
        }

        var path = endpoint.AbsolutePath.TrimEnd('/');
        foreach (var known in new[] { "/v1/metrics", "/v1/logs" })
        {
            if (path.EndsWith(known, StringComparison.Ordinal))
            {
                path = path[..^known.Length];
            }
        }

        return new Uri(endpoint, $"{path}/v1/{signal}");
    }

    /// <summary>What is wrong with these settings, one line each naming the key; empty when they can work (or export is off).</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!Enabled)
        {
            return problems;
        }

        if (Protocol.Trim().ToLowerInvariant() is not (Grpc or HttpProtobuf))
        {
            problems.Add($"Telemetry:Protocol must be '{Grpc}' or '{HttpProtobuf}', not '{Protocol}'");
        }

        if (!Uri.TryCreate(OtlpEndpoint.Trim(), UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
        {
            problems.Add($"Telemetry:OtlpEndpoint '{OtlpEndpoint}' is not an absolute http:// or https:// address");
        }

        if (ExportInterval < MinimumExportInterval || ExportInterval > MaximumExportInterval)
        {
            problems.Add($"Telemetry:ExportInterval must be between 100 ms and a day, not {ExportInterval}");
        }

        if (string.IsNullOrWhiteSpace(ServiceName))
        {
            problems.Add("Telemetry:ServiceName must not be empty");
        }

        return problems;
    }

    /// <summary>
    /// Whether the silo is composed with an OTLP exporter, and one for logs too: which OpenTelemetry providers exist
    /// is decided while the host is composed, before options can be read, so <c>Telemetry:OtlpEndpoint</c> (set or
    /// not) and <c>Telemetry:Logs</c> are read from <paramref name="configuration"/> directly. Both are also bound
    /// with the rest of the section, which is checked at start-up (a <c>Logs</c> value that is not a boolean is refused there).
    /// </summary>
    public static (bool Metrics, bool Logs) ComposedExporters(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        var metrics = !string.IsNullOrWhiteSpace(section[nameof(OtlpEndpoint)]);
        return (metrics, metrics && (!bool.TryParse(section[nameof(Logs)], out var logs) || logs));
    }
}
