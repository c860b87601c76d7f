using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// The silo's web server: Kestrel, listening on the validated <see cref="DashboardOptions.Urls"/>, when
/// <c>Dashboard:Enabled</c>; otherwise nothing listens at all. So the silo is one web application whether or not it
/// serves the dashboard, and the choice is made from the bound options when the host starts, not while it is
/// composed. Kestrel is created only when it is used; its listen addresses are this server's addresses.
/// </summary>
public sealed class DashboardHttpServer : IServer
{
    /// <summary>The service key the application's own server (Kestrel) is registered under once this one replaces it.</summary>
    public const string InnerServerKey = "hubert-ecg-dashboard-kestrel";

    private readonly IOptions<DashboardOptions> _options;
    private readonly IServiceProvider _services;
    private readonly ServerAddressesFeature _addresses = new();
    private IServer? _inner;

    public DashboardHttpServer(IOptions<DashboardOptions> options, IServiceProvider services)
    {
        _options = options;
        _services = services;
        Features.Set<IServerAddressesFeature>(_addresses);
    }

    /// <summary>Only the listen addresses; those ASP.NET adds from its <c>urls</c> settings are replaced on start.</summary>
    public IFeatureCollection Features { get; } = new FeatureCollection();

    public async Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull
    {
        _addresses.Addresses.Clear();
        if (!_options.Value.Enabled)
        {
            return;
        }

        _inner = _services.GetRequiredKeyedService<IServer>(InnerServerKey);
        await _inner.StartAsync(application, cancellationToken);
        var bound = _inner.Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
        if (ExposedWithoutToken(_options.Value, bound) is { } exposed)
        {
            // Whatever source asked Kestrel for it (Kestrel:Endpoints in any configuration source, a hosting default),
            // an address other machines can reach is not served without a token: close every listener and refuse.
            await _inner.StopAsync(cancellationToken);
            throw new OptionsValidationException(
                DashboardOptions.SectionName,
                typeof(DashboardOptions),
                [
                    $"the web server listened on '{exposed}', which other machines can reach, but Dashboard:Token is not set; " +
                    "only Dashboard:Urls may set the dashboard's addresses (remove Kestrel:Endpoints / Kestrel__Endpoints__* from every " +
                    "configuration source), and without a token only loopback addresses (127.0.0.0/8, [::1], localhost) are allowed",
                ]);
        }

        foreach (var address in bound)
        {
            _addresses.Addresses.Add(address);
        }
    }

    /// <summary>
    /// The first of the addresses Kestrel actually bound that is not loopback when <paramref name="options"/> has no
    /// token; null when every one is loopback or a token is required. Loopback follows <see cref="IPAddress.IsLoopback"/>:
    /// all of 127.0.0.0/8 (so 127.0.0.2 is loopback) and ::1; an unspecified address, a host name or an address that does
    /// not parse is not.
    /// </summary>
    public static string? ExposedWithoutToken(DashboardOptions options, IEnumerable<string> boundAddresses)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(boundAddresses);
        return options.TokenRequired
            ? null
            : boundAddresses.FirstOrDefault(a => !(DashboardEndpoint.TryParse(a.TrimEnd('/'), out var endpoint, out _) && endpoint.IsLoopback));
    }

    public Task StopAsync(CancellationToken cancellationToken) => _inner?.StopAsync(cancellationToken) ?? Task.CompletedTask;

    /// <summary>Nothing to release: the service provider disposes the inner server it made.</summary>
    public void Dispose()
    {
    }

    /// <summary>
    /// Makes this the application's <see cref="IServer"/>, keeping the registered one (Kestrel, from the web
    /// application builder) under <see cref="InnerServerKey"/>.
    /// </summary>
    public static void Replace(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(IServer) && !d.IsKeyedService && d.ImplementationType == typeof(DashboardHttpServer)))
        {
            return;
        }

        var server = services.LastOrDefault(d => d.ServiceType == typeof(IServer) && !d.IsKeyedService)
            ?? throw new InvalidOperationException("no web server is registered: build the dashboard on a WebApplicationBuilder");
        services.Remove(server);
        services.Add(server switch
        {
            { ImplementationType: { } type } => new ServiceDescriptor(typeof(IServer), InnerServerKey, type, server.Lifetime),
            { ImplementationFactory: { } factory } => new ServiceDescriptor(typeof(IServer), InnerServerKey, (sp, _) => factory(sp), server.Lifetime),
            _ => new ServiceDescriptor(typeof(IServer), InnerServerKey, server.ImplementationInstance!),
        });
        services.AddSingleton<IServer, DashboardHttpServer>();
    }
}
