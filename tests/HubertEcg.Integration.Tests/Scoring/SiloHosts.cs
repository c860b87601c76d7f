using Microsoft.Extensions.DependencyInjection;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using HubertEcg.Silo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// In-process silo hosts built by the silo program's own configuration code (<see cref="HubertEcgSilo"/>), on free
/// ports, with fast coordinator and worker pacing; <c>settings</c> choose the clustering and anything else.
/// </summary>
public static class SiloHosts
{
    public static async Task<IHost> StartAsync(
        string postgres, string blob, string name, IReadOnlyDictionary<string, string?> settings, Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var values = new Dictionary<string, string?>
        {
            ["Postgres:ConnectionString"] = postgres,
            ["BlobStorage:ConnectionString"] = blob,
            ["Silo:Name"] = name,
            ["Silo:SiloPort"] = FreePort().ToString(CultureInfo.InvariantCulture),
            ["Silo:GatewayPort"] = FreePort().ToString(CultureInfo.InvariantCulture),
            ["Coordinator:TickInterval"] = "00:00:00.200",
            ["Coordinator:DirectoryRefresh"] = "00:00:00.200",
            ["Workers:PreprocessThreads"] = "1",
            ["Workers:IntraOpThreads"] = "1",
            ["Workers:IdlePollInterval"] = "00:00:00.200",
        };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(values);
        services?.Invoke(builder.Services); // registered first, so it replaces the silo's defaults
        builder.AddHubertEcgSilo();
        var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return host;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
