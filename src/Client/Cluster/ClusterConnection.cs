using System.Net;
using HubertEcg.Grains;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Hosting;

namespace HubertEcg.Client.Cluster;

/// <summary>
/// One command's connection to the Orleans cluster through the configured silo gateways (static gateway clustering),
/// or the reason there is none: no gateway configured, or none answered within <see cref="ClusterClientOptions.ConnectTimeout"/>.
/// Opened per command and disposed after it. Postgres stays the durable record; the cluster is the fast path, so
/// every failure here ends in <see cref="Grains"/> being null and <see cref="Source"/> saying why, never in an error.
/// </summary>
public sealed class ClusterConnection : IAsyncDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    private readonly IHost? _host;
    private readonly string _gateways;

    private ClusterConnection(IHost? host, IGrainFactory? grains, string gateways, string source)
    {
        _host = host;
        _gateways = gateways;
        Grains = grains;
        Source = source;
    }

    /// <summary>The cluster's grains while a gateway answers; null when the command goes to Postgres only.</summary>
    public IGrainFactory? Grains { get; private set; }

    /// <summary>
    /// What answers the command, as the commands print it after <c>via</c>: <c>cluster gateway 127.0.0.1:30000</c>,
    /// <c>Postgres (no gateway configured)</c>, <c>Postgres (gateway 127.0.0.1:30000 unreachable: ...)</c>, or, once
    /// the cluster stopped answering, <c>Postgres (gateway 127.0.0.1:30000 stopped answering: ...)</c>.
    /// </summary>
    public string Source { get; private set; }

    /// <summary><c>cluster</c> while a gateway answers, otherwise <c>postgres</c> (the <c>source</c> of JSON output).</summary>
    public string SourceKind => Grains is null ? "postgres" : "cluster";

    public IRunDirectoryGrain? Directory => Grains?.GetGrain<IRunDirectoryGrain>(0);

    public IRunCoordinatorGrain? Coordinator(Guid runId) => Grains?.GetGrain<IRunCoordinatorGrain>(runId);

    /// <summary>
    /// Connects to the gateways of <paramref name="options"/>; without gateways, or when none answers in time, the
    /// connection is Postgres only. Only the caller's <paramref name="cancellationToken"/> makes it throw.
    /// </summary>
    public static async Task<ClusterConnection> OpenAsync(ClusterClientOptions options, CancellationToken cancellationToken)
    {
        if (options.Gateways.Count == 0)
        {
            return new(null, null, "", "Postgres (no gateway configured)");
        }

        var gateways = (options.Gateways.Count == 1 ? "gateway " : "gateways ") + string.Join(", ", options.Gateways);
        IHost? host = null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        try
        {
            var endpoints = await ResolveAsync(options.Gateways, timeout.Token);
            host = Build(options, endpoints);
            await host.StartAsync(timeout.Token).WaitAsync(timeout.Token);
            return new(host, host.Services.GetRequiredService<IClusterClient>(), gateways, $"cluster {gateways}");
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            if (host is not null)
            {
                await StopQuietlyAsync(host);
            }

            var reason = timeout.IsCancellationRequested
                ? $"no answer within {options.ConnectTimeout.TotalSeconds:0.###} s"
                : Reason(e);
            if (!timeout.IsCancellationRequested && !reason.Contains("ConnectionRefused", StringComparison.Ordinal)
                && !reason.Contains(options.ClusterId, StringComparison.Ordinal))
            {
                // Something answered but the handshake failed: a silo closes the handshake of a client of another
                // cluster, and its reason ("Connection terminated prematurely", "Underlying connection closed", the
                // cluster ids) reaches the client in one of several forms.
                reason += " (are Cluster:ClusterId and Cluster:ServiceId the silos'?)";
            }

            return new(null, null, gateways, $"Postgres ({gateways} unreachable: {reason})");
        }
        catch when (host is not null)
        {
            // The command was cancelled while connecting.
            await StopQuietlyAsync(host);
            throw;
        }
    }

    /// <summary>
    /// The cluster failed a call (<paramref name="error"/>): the rest of the command goes to Postgres, and
    /// <see cref="Source"/> says why.
    /// </summary>
    public void Lost(Exception error)
    {
        Grains = null;
        Source = $"Postgres ({_gateways} stopped answering: {Reason(error)})";
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await StopQuietlyAsync(_host);
        }
    }

    /// <summary>
    /// One line: the exception's message and, when it has causes, the innermost one's (a refused connection's socket
    /// error), e.g. <c>Unable to connect to any of the 1 available gateways: Unable to connect to 127.0.0.1:1. Error: ConnectionRefused</c>.
    /// </summary>
    public static string Reason(Exception e)
    {
        var innermost = Innermost(e);
        var outer = OneLine(e.Message);
        var cause = OneLine(innermost.Message);
        if (outer.Length == 0)
        {
            return cause.Length == 0 ? e.GetType().Name : cause;
        }

        return cause.Length == 0 || outer.Contains(cause, StringComparison.Ordinal) ? outer : $"{outer.TrimEnd('.')}: {cause}";
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is { } inner)
        {
            e = inner;
        }

        return e;
    }

    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static IHost Build(ClusterClientOptions options, IPEndPoint[] endpoints)
    {
        // An empty builder: no configuration sources and no logging providers, so the Orleans client writes nothing to
        // the console (standard output stays the command's), and no console lifetime takes Ctrl-C from the command.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        builder.UseOrleansClient(client =>
        {
            client.UseStaticClustering(endpoints);
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ServiceId;
            });
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = options.ConnectTimeout);
            client.Configure<ConnectionOptions>(o => o.OpenConnectionTimeout = options.ConnectTimeout);
            // Orleans tries every gateway once per attempt; a failed attempt is the answer (no retries until the timeout).
            client.UseConnectionRetryFilter((_, _) => Task.FromResult(false));
        });
        return builder.Build();
    }

    private static async Task<IPEndPoint[]> ResolveAsync(IReadOnlyList<string> gateways, CancellationToken cancellationToken)
    {
        var endpoints = new List<IPEndPoint>();
        foreach (var gateway in gateways)
        {
            if (!ClusterClientOptions.TrySplit(gateway, out var host, out var port))
            {
                throw new ArgumentException($"'{gateway}' is not host:port");
            }

            if (IPAddress.TryParse(host, out var address))
            {
                endpoints.Add(new IPEndPoint(address, port));
                continue;
            }

            var addresses = await Dns.GetHostAddressesAsync(host, cancellationToken);
            var chosen = addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw new IOException($"{host} has no address");
            endpoints.Add(new IPEndPoint(chosen, port));
        }

        return [.. endpoints];
    }

    private static async Task StopQuietlyAsync(IHost host)
    {
        // Closing a connection, possibly one that failed or broke: errors here change nothing for the command.
        try
        {
            using var stop = new CancellationTokenSource(StopTimeout);
            await host.StopAsync(stop.Token);
        }
        catch (Exception)
        {
        }

        try
        {
            // The client's services include some that only dispose asynchronously.
            if (host is IAsyncDisposable asyncDisposable)
            {
                await asyncDisposable.DisposeAsync();
            }
            else
            {
                host.Dispose();
            }
        }
        catch (Exception)
        {
        }
    }

    /// <summary>The command owns the process: the client host neither listens for Ctrl-C nor waits for it.</summary>
    private sealed class CommandLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
