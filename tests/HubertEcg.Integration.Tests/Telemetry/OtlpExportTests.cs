using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using HubertEcg.Silo;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;

namespace HubertEcg.Integration.Tests.Telemetry;

/// <summary>The silo's OTLP exporters (metrics and logs), configured by the <c>Telemetry</c> section, against a collector stand-in.</summary>
public sealed class OtlpExportTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task ASiloPostsItsAndOrleansMetricsAndItsLogsToTheConfiguredCollector()
    {
        // The collector: an HTTP listener taking OTLP/HTTP protobuf posts.
        var port = FreePort();
        using var collector = new HttpListener();
        collector.Prefixes.Add($"http://127.0.0.1:{port}/");
        collector.Start();
        var requests = new ConcurrentQueue<(string Path, string ContentType, byte[] Body)>();
        var serving = Task.Run(async () =>
        {
            while (collector.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await collector.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                requests.Enqueue((context.Request.Url!.AbsolutePath, context.Request.ContentType ?? "", body.ToArray()));
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/x-protobuf";
                context.Response.Close();
            }
        });

        var service = "hubert-ecg-test-" + Guid.NewGuid().ToString("N")[..8];
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Postgres:ConnectionString"] = database.ConnectionString,
            ["BlobStorage:ConnectionString"] = blobs.ConnectionString,
            ["Silo:Clustering"] = "localhost",
            ["Silo:ClusterId"] = service,
            ["Silo:ServiceId"] = service,
            ["Silo:Name"] = "otlp-silo",
            ["Silo:SiloPort"] = FreePort().ToString(CultureInfo.InvariantCulture),
            ["Silo:GatewayPort"] = FreePort().ToString(CultureInfo.InvariantCulture),
            ["Workers:IntraOpThreads"] = "1",
            ["Workers:PreprocessThreads"] = "1",
            ["Telemetry:OtlpEndpoint"] = $"http://127.0.0.1:{port}",
            ["Telemetry:Protocol"] = "http/protobuf",
            ["Telemetry:ExportInterval"] = "00:00:00.300",
            ["Telemetry:ServiceName"] = service,
            ["Logging:LogLevel:HubertEcg"] = "Information",
        });
        builder.AddHubertEcgSilo();
        using (var host = builder.Build())
        {
            await host.StartAsync();
            try
            {
                // An export that holds both meters: the workers' queue gauges and Orleans' own instruments.
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (!requests.Any(r => Holds(r.Body, ScoringMetrics.MeterName) && Holds(r.Body, ScoringMetrics.OrleansMeterName)))
                {
                    Assert.True(DateTime.UtcNow < deadline, $"no export with both meters in 60 s ({requests.Count} requests)");
                    await Task.Delay(100);
                }

                // And the workers' start-up line among the exported logs.
                while (!requests.Any(r => r.Path == "/v1/logs" && Holds(r.Body, "scoring workers")))
                {
                    Assert.True(DateTime.UtcNow < deadline, $"no log export with the workers' start-up line in 60 s ({requests.Count} requests)");
                    await Task.Delay(100);
                }
            }
            finally
            {
                await host.StopAsync();
            }
        }

        collector.Stop();
        await serving;
        // The first export holding a worker instrument (log exports name the HubertEcg categories too, and may come first).
        var export = requests.First(r => Holds(r.Body, ScoringMetrics.QueueWindows));
        Assert.Equal("/v1/metrics", export.Path);
        Assert.Equal("application/x-protobuf", export.ContentType);
        Assert.True(Holds(export.Body, ScoringMetrics.QueueWindows));
        Assert.True(Holds(export.Body, service));
        Assert.True(Holds(export.Body, "otlp-silo"));
        Assert.All(requests, r => Assert.Contains(r.Path, new[] { "/v1/metrics", "/v1/logs" }));
        var logs = requests.First(r => r.Path == "/v1/logs" && Holds(r.Body, "scoring workers"));
        Assert.Equal("application/x-protobuf", logs.ContentType);
        Assert.True(Holds(logs.Body, "silo otlp-silo: started 1 scoring workers"), "the formatted message");
        Assert.True(Holds(logs.Body, service));
    }

    [Fact]
    public void TelemetryIsOffWithoutAnEndpointAndWrongSettingsNameTheirKey()
    {
        using (var off = Build([]))
        {
            Assert.Null(off.Services.GetService<MeterProvider>());
        }

        using (var on = Build(new() { ["Telemetry:OtlpEndpoint"] = "http://127.0.0.1:9/" }))
        {
            Assert.NotNull(on.Services.GetService<MeterProvider>());
            Assert.NotNull(on.Services.GetService<LoggerProvider>());
        }

        using (var metricsOnly = Build(new() { ["Telemetry:OtlpEndpoint"] = "http://127.0.0.1:9/", ["Telemetry:Logs"] = "false" }))
        {
            Assert.NotNull(metricsOnly.Services.GetService<MeterProvider>());
            Assert.Null(metricsOnly.Services.GetService<LoggerProvider>());
        }

        var http = new TelemetryOptions { OtlpEndpoint = "http://collector:4318/", Protocol = "http/protobuf" };
        Assert.Equal((new Uri("http://collector:4318/v1/metrics"), OtlpExportProtocol.HttpProtobuf), (http.MetricsEndpoint, http.ExportProtocol));
        Assert.Equal(new Uri("http://collector:4318/v1/metrics"), new TelemetryOptions { OtlpEndpoint = "http://collector:4318/v1/metrics", Protocol = "http/protobuf" }.MetricsEndpoint);
        Assert.Equal(new Uri("http://collector:4317"), new TelemetryOptions { OtlpEndpoint = "http://collector:4317" }.MetricsEndpoint);
        Assert.Equal(new Uri("http://collector:4317"), new TelemetryOptions { OtlpEndpoint = "http://collector:4317" }.LogsEndpoint);
        Assert.Equal(new Uri("http://collector:4318/otlp/v1/logs"), new TelemetryOptions { OtlpEndpoint = "http://collector:4318/otlp/v1/metrics", Protocol = "http/protobuf" }.LogsEndpoint);
        Assert.Equal(new Uri("http://collector:4318/v1/logs"), http.LogsEndpoint);

        var protocol = Refused(new() { ["Telemetry:OtlpEndpoint"] = "http://c:4317", ["Telemetry:Protocol"] = "udp" });
        Assert.Contains("Telemetry:Protocol", protocol.Message, StringComparison.Ordinal);
        var endpoint = Refused(new() { ["Telemetry:OtlpEndpoint"] = "collector:4317" });
        Assert.Contains("Telemetry:OtlpEndpoint", endpoint.Message, StringComparison.Ordinal);
        var interval = Refused(new() { ["Telemetry:OtlpEndpoint"] = "http://c:4317", ["Telemetry:ExportInterval"] = "00:00:00", ["Telemetry:Logs"] = "false" });
        Assert.Contains("Telemetry:ExportInterval", interval.Message, StringComparison.Ordinal);
        var exportOff = Refused(new() { ["Telemetry:Protocol"] = "udp", ["Silo:Clustering"] = "multicast" });
        Assert.DoesNotContain("Telemetry", exportOff.Message, StringComparison.Ordinal); // export off: its settings are not checked
        Assert.Contains("Silo:Clustering must be 'localhost' or 'adonet', not 'multicast'", exportOff.Message, StringComparison.Ordinal);
    }

    /// <summary>The refusal of a host whose settings break the rules: when it is built or, at the latest, when its start-up check runs.</summary>
    private static OptionsValidationException Refused(Dictionary<string, string?> settings) =>
        Assert.Throws<OptionsValidationException>(() =>
        {
            using var host = Build(settings);
            host.Services.GetRequiredService<IStartupValidator>().Validate();
        });

    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddHubertEcgTelemetry();
        return builder.Build();
    }

    private static bool Holds(byte[] body, string text) => body.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text)) >= 0;

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
