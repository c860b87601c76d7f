using HubertEcg.Inference.Formats;
using HubertEcg.Storage;
using HubertEcg.Storage.Access;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HubertEcg.Silo.Dashboard;

/// <summary>
/// The web dashboard on Kestrel: the pages (<c>/</c>, <c>/runs/{id}</c>, the review pages <c>/runs/{id}/flagged</c> and
/// <c>/runs/{id}/record</c>, <c>/evaluations</c> and <c>/evaluations/{id}</c>), their scripts and style
/// (<c>/assets/...</c>), the login form (<c>/login</c>), the JSON API (<c>/api/...</c>, see <see cref="DashboardApi"/>)
/// and the Orleans Dashboard under <see cref="OrleansPath"/>, all behind <see cref="DashboardAccess"/>.
/// </summary>
public static partial class DashboardWeb
{
    /// <summary>Where the silo mounts the Orleans Dashboard (cluster health, grains, silos).</summary>
    public const string OrleansPath = "/orleans";

    /// <summary>ASP.NET's per-request log (<c>Request starting GET http://.../path?query</c>), kept at Warning and above.</summary>
    public const string RequestLogCategory = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>Kestrel's own endpoint configuration, refused while the dashboard is enabled.</summary>
    public const string KestrelEndpoints = "Kestrel:Endpoints";

    private const string PageSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    /// <summary>
    /// Binds <c>Dashboard</c> (<see cref="DashboardOptions"/>) once, checked at start-up together with the refusal of
    /// <c>Kestrel:Endpoints</c> (listeners there would bypass the access check), and registers the dashboard's
    /// services. The app's server is <see cref="DashboardHttpServer"/>: Kestrel on exactly the validated
    /// <see cref="DashboardOptions.Urls"/> (which win over ASP.NET's own <c>urls</c> settings) when
    /// <c>Dashboard:Enabled</c>, and no listener at all otherwise. The dashboard's queries use a read-only Postgres
    /// data source on <see cref="DashboardOptions.ConnectionString"/>, or <c>Postgres:ConnectionString</c>.
    /// </summary>
    public static WebApplicationBuilder AddHubertEcgDashboard(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var configuration = builder.Configuration;
        builder.Services.AddPostgresConnections(configuration);
        builder.Services.AddValidatedOptions<DashboardOptions>(configuration, DashboardOptions.SectionName, o => o.Problems())
            ?.Validate(
                o => !o.Enabled || !configuration.GetSection(KestrelEndpoints).GetChildren().Any(),
                $"{KestrelEndpoints} is set, which would open listeners the dashboard's access check never sees: set Dashboard:Urls instead");
        builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<DashboardOptions>>((kestrel, options) =>
        {
            foreach (var endpoint in options.Value.Enabled ? options.Value.Endpoints() : [])
            {
                Action<ListenOptions> https = listen =>
                {
                    if (endpoint.Https)
                    {
                        listen.UseHttps();
                    }
                };
                if (endpoint.Localhost)
                {
                    kestrel.ListenLocalhost(endpoint.Port, https);
                }
                else if (endpoint.AnyAddress)
                {
                    kestrel.ListenAnyIP(endpoint.Port, https);
                }
                else
                {
                    kestrel.Listen(endpoint.Address!, endpoint.Port, https);
                }
            }
        });
        DashboardHttpServer.Replace(builder.Services);
        builder.Services.AddSingleton(sp =>
        {
            var dashboard = sp.GetRequiredService<IOptions<DashboardOptions>>().Value;
            return new DashboardAccess(dashboard.Token, dashboard.SessionLifetime, sp.GetService<TimeProvider>() ?? TimeProvider.System);
        });

        // ASP.NET's request log writes every URL, query string included: a token someone put there would be kept in
        // the logs. The dashboard refuses such requests, and its request lines are not logged below Warning.
        builder.Logging.AddFilter(RequestLogCategory, LogLevel.Warning);
        builder.Services.AddSingleton(sp =>
        {
            var dashboard = sp.GetRequiredService<IOptions<DashboardOptions>>().Value;
            var connectionString = string.IsNullOrWhiteSpace(dashboard.ConnectionString) ? null : dashboard.ConnectionString;
            return new DashboardQueries(DashboardQueries.CreateDataSource(sp.GetRequiredService<PostgresConnections>(), connectionString));
        });

        // The record page reads ECGs through the silo's own input store and format registry (the workers'); a host
        // without them (no scoring services) answers the page with the reason instead.
        builder.Services.AddSingleton(sp => new DashboardRecords(
            sp.GetService<IInputStore>(),
            sp.GetService<FormatRegistry>() ?? FormatRegistry.Create()));
        return builder;
    }

    /// <summary>Adds the access check in front of everything the app serves, and the dashboard's pages, login and API.</summary>
    public static WebApplication UseHubertEcgDashboard(this WebApplication app)
    {
        var access = app.Services.GetRequiredService<DashboardAccess>();
        app.Use((context, next) => CheckAccessAsync(access, context, next));
        app.MapGet("/", () => Page("index.html"));
        app.MapGet("/runs/{id}", (string id) => DashboardApi.TryParseRunId(id, out _, out var error)
            ? Page("run.html")
            : Results.Text(error, statusCode: StatusCodes.Status404NotFound));
        app.MapGet("/evaluations", () => Page("evaluations.html"));
        app.MapGet("/evaluations/{id}", (string id) => Guid.TryParse(id, out _)
            ? Page("evaluation.html")
            : Results.Text($"'{id}' is not an evaluation id", statusCode: StatusCodes.Status404NotFound));
        app.MapGet("/runs/{id}/flagged", (string id) => DashboardApi.TryParseRunId(id, out _, out var error)
            ? Page("flagged.html")
            : Results.Text(error, statusCode: StatusCodes.Status404NotFound));
        app.MapGet("/runs/{id}/record", (string id) => DashboardApi.TryParseRunId(id, out _, out var error)
            ? Page("record.html")
            : Results.Text(error, statusCode: StatusCodes.Status404NotFound));
        app.MapGet("/assets/{name}", (string name) => DashboardAssets.Find(name) is { } asset
            ? Results.Bytes(asset.Content, asset.ContentType)
            : Results.NotFound());
        app.MapGet("/login", () => access.TokenRequired ? Page("login.html") : Results.Redirect("/"));
        app.MapPost("/login", LoginAsync);
        app.MapPost("/logout", (HttpContext context) =>
        {
            // The session ends on the server, so a copy of the cookie opens nothing either.
            access.EndSession(context.Request.Cookies[DashboardAccess.CookieName]);
            context.Response.Cookies.Delete(DashboardAccess.CookieName);
            return Results.Redirect("/login");
        });
        app.MapDashboardApi();
        app.Lifetime.ApplicationStarted.Register(() => LogAddresses(app, access));
        return app;
    }

    private static async Task CheckAccessAsync(DashboardAccess access, HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-store";
        if (!access.TokenRequired && !DashboardAccess.IsLoopbackHost(request.Host))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync(
                $"Host '{request.Host}' refused: without Dashboard:Token the dashboard answers only requests for localhost, 127.0.0.1 or [::1]");
            return;
        }

        if (DashboardAccess.CredentialInQuery(request) is { } parameter)
        {
            // Never echoed, never redirected with it: the request is refused as it stands.
            await DashboardApi.Error(
                    StatusCodes.Status400BadRequest,
                    $"the query parameter '{parameter}' looks like a credential and is refused: tokens are never accepted in a URL " +
                    "(URLs end up in logs and browser history); send Authorization: Bearer <Dashboard:Token>, or sign in at /login")
                .ExecuteAsync(context);
            return;
        }

        // Signing out needs no live session: one that has just expired is ended and its cookie deleted all the same.
        var open = request.Path.StartsWithSegments("/assets")
            || request.Path.Equals("/login", StringComparison.Ordinal)
            || request.Path.Equals("/logout", StringComparison.Ordinal);
        if (open || access.IsAuthorized(request))
        {
            await next(context);
            return;
        }

        // A person's browser opening a page goes to the login form; scripts and API clients get a 401.
        if (HttpMethods.IsGet(request.Method) && request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase))
        {
            context.Response.Redirect("/login?return=" + Uri.EscapeDataString(request.Path + request.QueryString));
            return;
        }

        headers.WWWAuthenticate = "Bearer realm=\"hubert-ecg dashboard\"";
        await DashboardApi.Error(StatusCodes.Status401Unauthorized, "this dashboard needs its token: send Authorization: Bearer <Dashboard:Token>, or sign in at /login")
            .ExecuteAsync(context);
    }

    /// <summary>The login form's POST: a right token sets the session cookie and goes back where the person came from.</summary>
    private static async Task<IResult> LoginAsync(HttpContext context, DashboardAccess access)
    {
        var form = context.Request.HasFormContentType ? await context.Request.ReadFormAsync(context.RequestAborted) : null;
        var back = LocalPath(form?["return"].ToString());
        if (!access.TokenRequired)
        {
            return Results.Redirect(back);
        }

        if (!access.TokenMatches(form?["token"].ToString()))
        {
            return Results.Redirect("/login?failed=1&return=" + Uri.EscapeDataString(back));
        }

        context.Response.Cookies.Append(DashboardAccess.CookieName, access.StartSession(), new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = context.Request.IsHttps,
            Path = "/",
            IsEssential = true,
        });
        return Results.Redirect(back);
    }

    /// <summary>
    /// A path on this server to return to after login; anything else (another site, a scheme, control characters)
    /// becomes <c>/</c>. Characters outside ASCII are percent-encoded as UTF-8 (a <c>Location</c> header holds ASCII
    /// only), so <c>/runs/é</c> returns to <c>/runs/%C3%A9</c>; an unpaired surrogate, which has no UTF-8, gives <c>/</c>.
    /// </summary>
    public static string LocalPath(string? path)
    {
        if (path is not { Length: > 0 } || path[0] != '/' || (path.Length > 1 && (path[1] == '/' || path[1] == '\\'))
            || path.Any(c => char.IsControl(c) || c == '\\'))
        {
            return "/";
        }

        if (path.All(char.IsAscii))
        {
            return path;
        }

        var encoded = new System.Text.StringBuilder(path.Length * 3);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in path.EnumerateRunes())
        {
            if (rune == System.Text.Rune.ReplacementChar && !path.Contains('\uFFFD', StringComparison.Ordinal))
            {
                return "/"; // an unpaired surrogate
            }

            if (rune.IsAscii)
            {
                encoded.Append((char)rune.Value);
                continue;
            }

            var length = rune.EncodeToUtf8(utf8);
            foreach (var b in utf8[..length])
            {
                encoded.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return encoded.ToString();
    }

    private static PageResult Page(string name)
    {
        return new PageResult(DashboardAssets.Find(name)!.Content);
    }

    private static void LogAddresses(WebApplication app, DashboardAccess access)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("HubertEcg.Silo.Dashboard");
        foreach (var address in addresses)
        {
            LogListening(logger, address, access.TokenRequired ? "token required" : "loopback only, no token", address.TrimEnd('/') + OrleansPath + "/");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Dashboard listening on {Address} ({Access}); Orleans Dashboard at {OrleansUrl}")]
    private static partial void LogListening(ILogger logger, string address, string access, string orleansUrl);

    /// <summary>An HTML page of the dashboard with its content security policy: scripts and styles from this server only.</summary>
    private sealed class PageResult(byte[] content) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.ContentSecurityPolicy = PageSecurityPolicy;
            httpContext.Response.ContentType = "text/html; charset=utf-8";
            return httpContext.Response.Body.WriteAsync(content).AsTask();
        }
    }
}
