using OpenTelemetry.Exporter;

namespace HubertEcg.Silo;

/// <summary>
/// Where the silo sends its metrics and logs: an OpenTelemetry collector reached over OTLP. Section <c>Telemetry</c>; off
/// while <see cref="OtlpEndpoint"/> is empty.
/// </summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Telemetry";

    public const string Grpc = "grpc";
    public const string HttpProtobuf = "http/protobuf";

    /// <summary>
    /// The collector's address, e.g. <c>http://collector:4317</c> (gRPC) or <c>http://collector:4318</c>
    /// (HTTP; <c>/v1/metrics</c> is appended unless the address already ends with it). Empty: no export.
    /// </summary>
    public string OtlpEndpoint { get; set; } = "";

    /// <summary><c>grpc</c> or <c>http/protobuf</c>.</summary>
    public string Protocol { get; set; } = Grpc;

    /// <summary>How often the metrics are exported.</summary>
    public TimeSpan ExportInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The <c>service.name</c> resource attribute; the silo name is the <c>service.instance.id</c> when set.</summary>
    public string ServiceName { get; set; } = "hubert-ecg-silo";

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
    public bool Logs { get; set; } = true;

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

    /// <summary>Checks every setting; throws <see cref="InvalidOperationException"/> naming the key that is wrong.</summary>
    public TelemetryOptions Validate()
    {
        if (!Enabled)
        {
            return this;
        }

        _ = MetricsEndpoint;
        if (ExportInterval < TimeSpan.FromMilliseconds(100) || ExportInterval > TimeSpan.FromDays(1))
        {
            throw new InvalidOperationException($"Telemetry:ExportInterval must be between 100 ms and a day, not {ExportInterval}");
        }

        if (string.IsNullOrWhiteSpace(ServiceName))
        {
            throw new InvalidOperationException("Telemetry:ServiceName must not be empty");
        }

        return this;
    }
}
