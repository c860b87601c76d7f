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
        foreach (var address in _inner.Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
        {
            _addresses.Addresses.Add(address);
        }
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
